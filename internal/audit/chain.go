package audit

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/example/order-mcp/internal/store"
)

// Sealer computes chain links with HMAC-SHA256 under a key the database
// never sees. It implements store.Sealer.
type Sealer struct {
	key []byte
	id  string
}

// NewSealer returns a Sealer for key, which must hold at least 32 bytes.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) < 32 {
		return nil, fmt.Errorf("audit HMAC key must be at least 32 bytes, got %d", len(key))
	}
	return &Sealer{key: bytes.Clone(key), id: KeyID(key)}, nil
}

// KeyID names a key without revealing it: the first 8 bytes of a SHA-256
// of the key under a fixed label, in hex. Every record carries the id of
// the key that sealed it, so `audit verify` can check each record with
// the right key after a rotation.
func KeyID(key []byte) string {
	sum := sha256.Sum256(append([]byte("order-mcp audit key id\x00"), key...))
	return hex.EncodeToString(sum[:8])
}

// KeyID implements store.Sealer.
func (s *Sealer) KeyID() string { return s.id }

// Seal returns the HMAC of e's content chained to e.PrevHMAC.
func (s *Sealer) Seal(e *store.AuditEntry) []byte {
	mac := hmac.New(sha256.New, s.key)
	mac.Write(e.PrevHMAC)
	mac.Write(canonical(e))
	return mac.Sum(nil)
}

// canonical is the byte string a row's HMAC covers: every column but the
// two links, in a fixed order, with the time at the microsecond precision
// Postgres stores. Rows of the first version (no seal key id) cover the
// columns that version had.
func canonical(e *store.AuditEntry) []byte {
	fields := []any{
		e.Seq, e.RecordedAt.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano), e.Kind,
		e.Principal, e.CredentialID, e.Transport, e.Action, e.ObjectIDs, e.Decision, e.Outcome,
		e.Reason, e.Source, e.Count, e.LatencyMicros, e.CorrelationID, e.Arguments,
	}
	if e.SealKeyID != "" {
		fields = append(fields, "v2", e.RecordID, e.SealKeyID, e.Replayed, e.TraceID)
	}
	b, _ := json.Marshal(fields)
	return b
}

// Reader reads the trail in chain order, from the record after seq from.
type Reader interface {
	ReadAudit(ctx context.Context, from, limit int64, fn func(*store.AuditEntry) error) error
}

// DevelopmentKey is the public key that seals the audit chain in
// development when AUDIT_HMAC_KEY is not set. Anyone can compute it, so a
// record it sealed proves nothing; Verify accepts such records only as a
// prefix of the chain (a database used with `make run` first), never after
// a record sealed by a real key.
func DevelopmentKey() []byte {
	sum := sha256.Sum256([]byte("order-mcp public development audit key"))
	return sum[:]
}

// Keyring is the set of keys Verify checks records with: the current key,
// the keys it replaced (AUDIT_HMAC_PREVIOUS_KEYS) and the public
// development key.
type Keyring struct {
	byID map[string]*Sealer
	dev  string
}

// NewKeyring returns a keyring of current and previous.
func NewKeyring(current *Sealer, previous ...*Sealer) *Keyring {
	dev, _ := NewSealer(DevelopmentKey())
	k := &Keyring{byID: map[string]*Sealer{dev.id: dev}, dev: dev.id}
	for _, s := range append([]*Sealer{current}, previous...) {
		if s != nil {
			k.byID[s.id] = s
		}
	}
	return k
}

// sealers returns the keys to check a record with: the one it names, or
// every key for a first-version record that names none.
func (k *Keyring) sealers(e *store.AuditEntry) []*Sealer {
	if e.SealKeyID != "" {
		if s, ok := k.byID[e.SealKeyID]; ok {
			return []*Sealer{s}
		}
		return nil
	}
	out := make([]*Sealer, 0, len(k.byID))
	for _, s := range k.byID {
		out = append(out, s)
	}
	return out
}

// KeyRange is a run of consecutive records sealed by one key.
type KeyRange struct {
	From, To    int64
	KeyID       string
	Development bool // the public development key: proves nothing
}

// VerifyReport is the result of Verify.
type VerifyReport struct {
	// Entries is how many rows were read.
	Entries int64
	// FirstBad is the seq of the first row that breaks the chain, or 0 when
	// the chain is intact.
	FirstBad int64
	// Problem says how it is broken.
	Problem string
	// HeadSeq and HeadHMAC identify the newest row of an intact chain.
	// Recorded elsewhere, they anchor the chain: a later verify whose
	// chain no longer passes through them shows the newest rows were cut.
	HeadSeq  int64
	HeadHMAC []byte
	// Keys are the runs of records by the key that sealed them.
	Keys []KeyRange
	// Replayed is how many records came from the spill directory.
	Replayed int64
}

// Verify walks the whole trail and reports the first row that was edited,
// inserted, deleted or reordered, or sealed by a key that is not in the
// keyring, or sealed by the public development key after a record sealed
// by a real one. Truncating the newest rows cannot be detected from the
// table alone; docs/AUDIT.md explains how to anchor the head.
func Verify(ctx context.Context, r Reader, keys *Keyring) (VerifyReport, error) {
	var (
		rep     VerifyReport
		prev    = store.GenesisHMAC()
		seq     int64
		sawReal bool
	)
	err := r.ReadAudit(ctx, 0, 0, func(e *store.AuditEntry) error {
		rep.Entries++
		seq++
		if rep.FirstBad != 0 {
			return nil
		}
		if e.Replayed {
			rep.Replayed++
		}
		switch {
		case e.Seq != seq:
			rep.FirstBad, rep.Problem = e.Seq, fmt.Sprintf("expected seq %d: a row is missing or was inserted", seq)
		case !hmac.Equal(e.PrevHMAC, prev):
			rep.FirstBad, rep.Problem = e.Seq, "its link to the previous row does not match"
		}
		if rep.FirstBad != 0 {
			return nil
		}
		sealer := matching(keys.sealers(e), e)
		switch {
		case sealer == nil && e.SealKeyID != "" && keys.byID[e.SealKeyID] == nil:
			rep.FirstBad, rep.Problem = e.Seq, fmt.Sprintf("it was sealed by key %s, which is not configured (AUDIT_HMAC_KEY or AUDIT_HMAC_PREVIOUS_KEYS)", e.SealKeyID)
		case sealer == nil:
			rep.FirstBad, rep.Problem = e.Seq, "its content does not match its HMAC"
		case sealer.id == keys.dev && sawReal:
			rep.FirstBad, rep.Problem = e.Seq, "it is sealed by the public development key after records sealed by a real key"
		}
		if rep.FirstBad != 0 {
			return nil
		}
		if sealer.id != keys.dev {
			sawReal = true
		}
		if n := len(rep.Keys); n > 0 && rep.Keys[n-1].KeyID == sealer.id {
			rep.Keys[n-1].To = e.Seq
		} else {
			rep.Keys = append(rep.Keys, KeyRange{From: e.Seq, To: e.Seq, KeyID: sealer.id, Development: sealer.id == keys.dev})
		}
		prev = e.HMAC
		return nil
	})
	if rep.FirstBad == 0 && rep.Entries > 0 {
		rep.HeadSeq, rep.HeadHMAC = seq, prev
	}
	return rep, err
}

// matching returns the sealer among candidates whose HMAC of e matches.
func matching(candidates []*Sealer, e *store.AuditEntry) *Sealer {
	for _, s := range candidates {
		if hmac.Equal(e.HMAC, s.Seal(e)) {
			return s
		}
	}
	return nil
}
