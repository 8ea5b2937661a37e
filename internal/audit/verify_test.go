package audit_test

// Attacks on the chain by someone who can write the table but does not
// hold AUDIT_HMAC_KEY: every edit, deletion, insertion or reordering is
// caught at the first row it touches.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/example/order-mcp/internal/audit"
	"github.com/example/order-mcp/internal/dbtest"
	"github.com/example/order-mcp/internal/store"
	"github.com/example/order-mcp/internal/testenv"
)

// canonical is the row encoding the HMAC covers, as anyone reading this
// open-source project can reproduce it: the attacker of TestVerify knows
// the format, only not the key.
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

// forger computes a row's link the way an attacker without the key might.
type forger func(e *store.AuditEntry) []byte

func plainSHA256(e *store.AuditEntry) []byte {
	h := sha256.New()
	h.Write(e.PrevHMAC)
	h.Write(canonical(e))
	return h.Sum(nil)
}

func hmacUnder(key []byte) forger {
	return func(e *store.AuditEntry) []byte {
		m := hmac.New(sha256.New, key)
		m.Write(e.PrevHMAC)
		m.Write(canonical(e))
		return m.Sum(nil)
	}
}

var wrongKey = []byte("an attacker's guess at the key, also 32 bytes long or more")

// rechain recomputes prev_hmac and hmac of entries[from:] with forge, as an
// attacker covering an edit would.
func rechain(entries []*store.AuditEntry, from int, forge forger) {
	prev := store.GenesisHMAC()
	if from > 0 {
		prev = entries[from-1].HMAC
	}
	for _, e := range entries[from:] {
		e.PrevHMAC = prev
		e.HMAC = forge(e)
		prev = e.HMAC
	}
}

// renumber gives entries contiguous seqs from 1, as an attacker hiding a
// gap would.
func renumber(entries []*store.AuditEntry) {
	for i, e := range entries {
		e.Seq = int64(i) + 1
	}
}

// rewrite replaces the whole table with entries, as the owner.
func rewrite(t *testing.T, entries []*store.AuditEntry) {
	t.Helper()
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, ownerConn(t), func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "DELETE FROM audit_log"); err != nil {
			return err
		}
		for _, e := range entries {
			if _, err := tx.Exec(ctx, `INSERT INTO audit_log (seq, recorded_at, kind, principal, credential_id,
				transport, action, object_ids, decision, outcome, reason, source, count, latency_us,
				correlation_id, arguments, prev_hmac, hmac, record_id, seal_key_id, replayed, trace_id)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
				        NULLIF($19, ''), $20, $21, $22)`,
				e.Seq, e.RecordedAt, e.Kind, e.Principal, e.CredentialID, e.Transport, e.Action, e.ObjectIDs,
				e.Decision, e.Outcome, e.Reason, e.Source, e.Count, e.LatencyMicros, e.CorrelationID,
				e.Arguments, e.PrevHMAC, e.HMAC, e.RecordID, e.SealKeyID, e.Replayed, e.TraceID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestVerify builds a chain of ten records through the real writer, then
// tampers with it as someone who can write the table but does not hold
// AUDIT_HMAC_KEY, and checks Verify names the first row touched.
func TestVerify(t *testing.T) {
	const n = 10
	owner := dbtest.Owner(t, dsn)
	app := dbtest.App(t, dsn, store.Options{})

	build := func(t *testing.T) []*store.AuditEntry {
		t.Helper()
		freshTrail(t)
		w := audit.NewWriter(app, sealer(t), discard(), audit.Options{})
		for i := range n {
			e := entry(fmt.Sprintf("verify-%02d", i+1))
			e.Outcome = []string{"ok", "not_found", "denied"}[i%3]
			if err := w.Write(context.Background(), e); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		entries := readTrail(t, owner)
		if len(entries) != n {
			t.Fatalf("%d rows, want %d", len(entries), n)
		}
		return entries
	}

	t.Run("IntactChainVerifies", func(t *testing.T) {
		entries := build(t)
		rep := verify(t, owner)
		if rep.FirstBad != 0 || rep.Entries != n {
			t.Fatalf("intact chain reported as %+v", rep)
		}
		// The head to anchor elsewhere is the newest row's.
		if last := entries[n-1]; rep.HeadSeq != last.Seq || !bytes.Equal(rep.HeadHMAC, last.HMAC) {
			t.Fatalf("head seq %d hmac %x, want the newest row's: %d %x", rep.HeadSeq, rep.HeadHMAC, last.Seq, last.HMAC)
		}
	})

	t.Run("ChainDoesNotVerifyUnderAnotherKey", func(t *testing.T) {
		build(t)
		other, err := audit.NewSealer(wrongKey)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := audit.Verify(context.Background(), owner, audit.NewKeyring(other))
		if err != nil {
			t.Fatal(err)
		}
		if rep.FirstBad != 1 {
			t.Fatalf("verify under another key: %+v, want first bad 1", rep)
		}
	})

	// The forging code below is right: with the real key, the same forgery
	// verifies. So what stops the attacks that follow is the key alone, not
	// a mistake in how the test re-chains.
	t.Run("ForgeryWithTheRealKeyWouldVerify", func(t *testing.T) {
		entries := build(t)
		entries[4].Outcome = "ok"
		entries[4].Principal = "apikey:someoneelse0"
		rechain(entries, 4, hmacUnder(testenv.TestAuditKey))
		rewrite(t, entries)
		if rep := verify(t, owner); rep.FirstBad != 0 {
			t.Fatalf("control forgery not accepted: %+v", rep)
		}
	})

	edit := func(e *store.AuditEntry) {
		e.Outcome = "ok"
		e.Decision = "allowed"
		e.Principal = "apikey:someoneelse0"
		e.ObjectIDs = []string{"ord_ZZZZZZZZZZZZZZZZ"}
	}
	forged := func(seq int64) *store.AuditEntry {
		e := entry("forged")
		e.Seq, e.RecordedAt, e.Count = seq, time.Now().UTC().Truncate(time.Microsecond), 1
		return e
	}
	tests := []struct {
		name    string
		tamper  func([]*store.AuditEntry) []*store.AuditEntry
		want    int64
		problem string // what the report says, "" for any description
	}{
		{"EditedRowIsCaught", func(es []*store.AuditEntry) []*store.AuditEntry {
			edit(es[4])
			return es
		}, 5, ""},
		{"EditedRowRechainedWithSHA256IsCaught", func(es []*store.AuditEntry) []*store.AuditEntry {
			edit(es[4])
			rechain(es, 4, plainSHA256)
			return es
		}, 5, ""},
		{"EditedRowRechainedWithHMACUnderWrongKeyIsCaught", func(es []*store.AuditEntry) []*store.AuditEntry {
			edit(es[4])
			rechain(es, 4, hmacUnder(wrongKey))
			return es
		}, 5, ""},
		{"EditedLinkOnlyIsCaught", func(es []*store.AuditEntry) []*store.AuditEntry {
			es[4].PrevHMAC = plainSHA256(es[3])
			return es
		}, 5, ""},
		{"DeletedRowIsCaught", func(es []*store.AuditEntry) []*store.AuditEntry {
			return slices.Delete(es, 4, 5)
		}, 6, "missing"},
		{"DeletedRowRenumberedAndRechainedIsCaught", func(es []*store.AuditEntry) []*store.AuditEntry {
			es = slices.Delete(es, 4, 5)
			renumber(es)
			rechain(es, 4, plainSHA256)
			return es
		}, 5, ""},
		{"InsertedForgedRowIsCaught", func(es []*store.AuditEntry) []*store.AuditEntry {
			es = slices.Insert(es, 5, forged(6))
			renumber(es)
			rechain(es, 5, plainSHA256)
			return es
		}, 6, ""},
		{"InsertedForgedRowUnderWrongKeyIsCaught", func(es []*store.AuditEntry) []*store.AuditEntry {
			es = slices.Insert(es, 5, forged(6))
			renumber(es)
			rechain(es, 5, hmacUnder(wrongKey))
			return es
		}, 6, ""},
		{"AppendedForgedRowIsCaught", func(es []*store.AuditEntry) []*store.AuditEntry {
			es = append(es, forged(n+1))
			rechain(es, n, plainSHA256)
			return es
		}, n + 1, ""},
		{"SwappedRowsAreCaught", func(es []*store.AuditEntry) []*store.AuditEntry {
			es[2], es[3] = es[3], es[2]
			renumber(es)
			return es
		}, 3, ""},
		{"SwappedRowsRechainedAreCaught", func(es []*store.AuditEntry) []*store.AuditEntry {
			es[2], es[3] = es[3], es[2]
			renumber(es)
			rechain(es, 2, plainSHA256)
			return es
		}, 3, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rewrite(t, tt.tamper(build(t)))
			rep := verify(t, owner)
			if rep.FirstBad != tt.want {
				t.Fatalf("verify reported %+v, want first bad row %d", rep, tt.want)
			}
			if rep.Problem == "" || !strings.Contains(rep.Problem, tt.problem) {
				t.Fatalf("problem %q, want one saying %q", rep.Problem, tt.problem)
			}
		})
	}
}
