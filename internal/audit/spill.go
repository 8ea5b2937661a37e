package audit

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/example/order-mcp/internal/store"
)

// The spill directory keeps audit records that Postgres could not take, on
// local disk, until they can be appended to the trail. It is how "one
// record per tool call" survives a database outage:
//
//   - a batch the writer cannot commit after its retries is written to a
//     new file in the directory, sealed with the audit key (so a file
//     edited on disk is refused at replay, not appended), and fsynced
//     (file and directory) before the callers are told; they then withhold
//     their results as for any failed commit, so no result ever leaves
//     without a durable record;
//   - files are immutable once in place (written under a temporary name,
//     then renamed), so a reader never sees half a file;
//   - a replay (at start-up and every few seconds while files remain)
//     claims a file by renaming it, which only one process can win when
//     several share the directory, appends its records at the head of the
//     chain marked replayed, and deletes it; the records keep their
//     original recorded_at;
//   - records carry an id the trail never holds twice, so a batch whose
//     commit did happen unseen, spilled, then replayed, is not recorded
//     twice; a file claimed by a process that died is reclaimed after
//     claimStale.

// spillFile is the content of one spill file.
type spillFile struct {
	Version int                 `json:"version"`
	KeyID   string              `json:"key_id"`
	Records []*store.AuditEntry `json:"records"`
	MAC     string              `json:"mac"` // HMAC-SHA256 of Records' JSON under the audit key
}

const (
	spillSuffix   = ".audit.json"
	claimInfix    = ".claimed-"
	spillTempName = ".tmp-"
	// claimStale is how long a claimed file may stay unreplayed before
	// another process takes it over (its claimer died mid-replay).
	claimStale = 5 * time.Minute
)

// Spill is a spill directory.
type Spill struct {
	dir    string
	sealer *Sealer
}

// OpenSpill prepares dir (creating it, mode 0700) and checks it is
// writable, so a server that could not spill says so at start-up rather
// than in an outage.
func OpenSpill(dir string, sealer *Sealer) (*Spill, error) {
	if dir == "" {
		return nil, errors.New("audit spill directory: not set (AUDIT_SPILL_DIR)")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit spill directory %s cannot be created (AUDIT_SPILL_DIR must be writable): %w", dir, err)
	}
	probe, err := os.CreateTemp(dir, spillTempName+"probe-")
	if err != nil {
		return nil, fmt.Errorf("audit spill directory %s is not writable (AUDIT_SPILL_DIR): %w", dir, err)
	}
	probe.Close()
	_ = os.Remove(probe.Name())
	return &Spill{dir: dir, sealer: sealer}, nil
}

// Dir is the directory.
func (s *Spill) Dir() string { return s.dir }

func (s *Spill) mac(records []byte) string {
	m := hmac.New(sha256.New, s.sealer.key)
	m.Write([]byte("order-mcp audit spill\x00"))
	m.Write(records)
	return hex.EncodeToString(m.Sum(nil))
}

// Write stores entries durably in a new file.
func (s *Spill) Write(entries []*store.AuditEntry) error {
	records, err := json.Marshal(entries)
	if err != nil {
		return err
	}
	body, err := json.Marshal(spillFile{Version: 1, KeyID: s.sealer.id, Records: entries, MAC: s.mac(records)})
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(s.dir, spillTempName)
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if _, err := tmp.Write(body); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	name := filepath.Join(s.dir, fmt.Sprintf("%d-%s%s", time.Now().UnixNano(), randomHex(8), spillSuffix))
	if err := os.Rename(tmp.Name(), name); err != nil {
		return err
	}
	return syncDir(s.dir)
}

// Pending reports how many spill files wait to be replayed.
func (s *Spill) Pending() int {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		if strings.Contains(e.Name(), spillSuffix) {
			n++
		}
	}
	return n
}

// Replay appends every spilled record it can claim to the trail through
// db, and returns how many it appended. A file whose seal does not match
// is set aside (renamed .rejected) and reported, never appended.
func (s *Spill) Replay(ctx context.Context, db Appender) (int, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return 0, err
	}
	replayed := 0
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if !strings.Contains(name, spillSuffix) || strings.HasSuffix(name, ".rejected") {
			continue
		}
		claimed, ok := s.claim(name)
		if !ok {
			continue
		}
		n, err := s.replayFile(ctx, db, claimed)
		replayed += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	return replayed, errors.Join(errs...)
}

// claim renames a spill file to a name of this replay's own; only one of
// several processes renaming the same file succeeds. A file already
// claimed is taken over only when its claim is stale.
func (s *Spill) claim(name string) (string, bool) {
	path := filepath.Join(s.dir, name)
	if base, _, claimedBefore := strings.Cut(name, claimInfix); claimedBefore {
		info, err := os.Stat(path)
		if err != nil || time.Since(info.ModTime()) < claimStale {
			return "", false
		}
		name = base
	}
	claimed := filepath.Join(s.dir, name+claimInfix+randomHex(6))
	if err := os.Rename(path, claimed); err != nil {
		return "", false // another process won
	}
	now := time.Now()
	_ = os.Chtimes(claimed, now, now) // the claim's age starts now
	return claimed, true
}

func (s *Spill) replayFile(ctx context.Context, db Appender, path string) (int, error) {
	body, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	var f spillFile
	if err := json.Unmarshal(body, &f); err != nil || f.Version != 1 {
		return 0, s.reject(path, "unreadable")
	}
	records, _ := json.Marshal(f.Records)
	if f.KeyID != s.sealer.id || !hmac.Equal([]byte(f.MAC), []byte(s.mac(records))) {
		return 0, s.reject(path, "its seal does not match the audit key")
	}
	for _, r := range f.Records {
		r.Replayed = true
		if r.Kind == "tool_call" && r.Outcome == "withheld" {
			r.Fallback = correction(r)
		}
	}
	if err := db.AppendAudit(ctx, s.sealer, f.Records); err != nil {
		// Put it back for the next replay.
		_ = os.Rename(path, strings.SplitN(path, claimInfix, 2)[0])
		return 0, err
	}
	if err := os.Remove(path); err != nil {
		return 0, err
	}
	n := 0
	for _, r := range f.Records {
		if r.Seq != 0 || r.Fallback != nil && r.Fallback.Seq != 0 { // else already in the trail
			n++
		}
	}
	return n, syncDir(s.dir)
}

// correction is what replaces a withheld call's spilled record when the
// record turns out to be in the trail already: its commit happened, but
// its acknowledgement was lost, so the server withheld the result it was
// allowed to give. The trail cannot change the committed record (it says
// the call's intended outcome); this record, with the same correlation id,
// says the result never left. Its record id is derived from the original,
// so replaying the same file twice still appends it once.
func correction(r *store.AuditEntry) *store.AuditEntry {
	return &store.AuditEntry{
		RecordID:      r.RecordID + "/withheld",
		RecordedAt:    time.Now(),
		Kind:          "correction",
		Principal:     r.Principal,
		CredentialID:  r.CredentialID,
		Transport:     r.Transport,
		Action:        r.Action,
		ObjectIDs:     r.ObjectIDs,
		Decision:      r.Decision,
		Outcome:       "withheld",
		Reason:        "record " + r.RecordID + " was committed but the commit was never acknowledged: " + r.Reason,
		CorrelationID: r.CorrelationID,
		TraceID:       r.TraceID,
		Replayed:      true,
	}
}

func (s *Spill) reject(path, why string) error {
	_ = os.Rename(path, path+".rejected")
	return fmt.Errorf("audit spill file %s set aside: %s", filepath.Base(path), why)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
