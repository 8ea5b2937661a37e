package audit_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/example/order-mcp/internal/audit"
	"github.com/example/order-mcp/internal/dbtest"
	"github.com/example/order-mcp/internal/store"
)

// The trail's promise is one record per tool call, even while Postgres
// cannot take it. These tests take the database away from the writer the
// way a real outage does to the server's role (its INSERT privilege is
// revoked in a scratch database, so every append fails at Postgres), and
// give it back.

// outage revokes the server role's right to append to the trail of the
// database at dsn until the returned function restores it.
func outage(t *testing.T, dsn string) (restore func()) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(ctx) })
	if _, err := conn.Exec(ctx, "REVOKE INSERT ON audit_log FROM order_mcp_app"); err != nil {
		t.Fatal(err)
	}
	return func() {
		if _, err := conn.Exec(ctx, "GRANT INSERT ON audit_log TO order_mcp_app"); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSpilledRecordsAreReplayedOnce: a record Postgres cannot take is
// spilled to disk (Write says ErrSpilled, so the caller withholds its
// result), the tool call's record says its result was withheld, and when
// Postgres is back the record is appended once, marked replayed, with its
// original time, and the chain verifies.
func TestSpilledRecordsAreReplayedOnce(t *testing.T) {
	scratch := dbtest.Scratch(t)
	app := dbtest.App(t, scratch, store.Options{})
	owner := dbtest.Owner(t, scratch)
	spill, err := audit.OpenSpill(t.TempDir(), sealer(t))
	if err != nil {
		t.Fatal(err)
	}
	w := audit.NewWriter(app, sealer(t), discard(), audit.Options{Spill: spill, Retries: -1})
	restore := outage(t, scratch)

	e := entry("spilled-1")
	if err := w.Write(context.Background(), e); !errors.Is(err, audit.ErrSpilled) {
		t.Fatalf("Write during the outage = %v, want ErrSpilled", err)
	}
	if spill.Pending() != 1 {
		t.Fatalf("%d spill files, want 1", spill.Pending())
	}
	if rows := readTrail(t, owner); len(rows) != 0 {
		t.Fatalf("%d rows in the trail during the outage", len(rows))
	}

	restore()
	n, err := spill.Replay(context.Background(), app)
	if err != nil || n != 1 || spill.Pending() != 0 {
		t.Fatalf("replay: %d records, %v, %d files left", n, err, spill.Pending())
	}
	rows := readTrail(t, owner)
	if len(rows) != 1 {
		t.Fatalf("%d rows after the replay, want 1", len(rows))
	}
	r := rows[0]
	if !r.Replayed || r.CorrelationID != "spilled-1" || r.Outcome != "withheld" || !strings.Contains(r.Reason, "intended outcome: ok") ||
		!r.RecordedAt.Equal(e.RecordedAt.UTC().Truncate(1000)) {
		t.Fatalf("replayed row %+v", r)
	}

	t.Run("AReplayOfTheSameRecordsAddsNothing", func(t *testing.T) {
		// A batch whose commit happened unseen, then spilled and replayed:
		// its record ids are in the trail already.
		again := *r
		again.Seq = 0
		if err := app.AppendAudit(context.Background(), sealer(t), []*store.AuditEntry{&again}); err != nil {
			t.Fatal(err)
		}
		if rows := readTrail(t, owner); len(rows) != 1 {
			t.Fatalf("%d rows after appending a record id twice, want 1", len(rows))
		}
	})
	t.Run("ARetriedBatchSkipsWhatCommittedUnseen", func(t *testing.T) {
		// A batch retried after a commit that happened unseen is not marked
		// replayed: its first attempt does not look record ids up, the
		// unique index refuses the one already there, and the retry skips
		// it and appends the rest.
		again := *r
		again.Seq, again.Replayed = 0, false
		fresh := entry("retried-2")
		if err := app.AppendAudit(context.Background(), sealer(t), []*store.AuditEntry{&again, fresh}); err != nil {
			t.Fatal(err)
		}
		rows := readTrail(t, owner)
		if len(rows) != 2 || rows[1].CorrelationID != "retried-2" || again.Seq != 0 {
			t.Fatalf("trail after the retried batch: %d rows, %+v", len(rows), rows)
		}
	})
	t.Run("TheChainVerifiesAndCountsTheReplay", func(t *testing.T) {
		rep, err := audit.Verify(context.Background(), owner, audit.NewKeyring(sealer(t)))
		if err != nil || rep.FirstBad != 0 || rep.Replayed != 1 {
			t.Fatalf("verify: %+v, %v", rep, err)
		}
	})
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestAWithheldRecordAlreadyCommittedGetsACorrection: the commit of a
// tool call's record reached Postgres but its acknowledgement did not, so
// the writer spilled a copy marked "withheld" and the client got an
// internal error. On replay the original is found in the trail: a
// correction record (same correlation id, outcome withheld, naming the
// original) is appended instead, once however often the file is replayed,
// so the trail never says a withheld result was delivered.
func TestAWithheldRecordAlreadyCommittedGetsACorrection(t *testing.T) {
	scratch := dbtest.Scratch(t)
	app := dbtest.App(t, scratch, store.Options{})
	owner := dbtest.Owner(t, scratch)
	dir := t.TempDir()
	spill, err := audit.OpenSpill(dir, sealer(t))
	if err != nil {
		t.Fatal(err)
	}
	// The commit that happened unseen.
	committed := entry("lost-ack-1")
	committed.RecordID = "lostack1lostack1lostack1ab"
	if err := app.AppendAudit(context.Background(), sealer(t), []*store.AuditEntry{committed}); err != nil {
		t.Fatal(err)
	}
	// The writer, not knowing, spilled the same record as withheld.
	spilled := *committed
	spilled.Seq, spilled.PrevHMAC, spilled.HMAC = 0, nil, nil
	spilled.Outcome, spilled.Reason = "withheld", "result withheld: the audit trail could not take the record (intended outcome: ok)"
	if err := spill.Write([]*store.AuditEntry{&spilled}); err != nil {
		t.Fatal(err)
	}
	files, _ := os.ReadDir(dir)
	var copies [][]byte
	for _, f := range files {
		b, _ := os.ReadFile(filepath.Join(dir, f.Name()))
		copies = append(copies, b)
	}
	for round := range 2 { // the second round replays the same file again
		if round == 1 {
			for i, f := range files {
				if err := os.WriteFile(filepath.Join(dir, f.Name()), copies[i], 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}
		if _, err := spill.Replay(context.Background(), app); err != nil {
			t.Fatal(err)
		}
		rows := readTrail(t, owner)
		if len(rows) != 2 {
			t.Fatalf("round %d: %d rows, want the original and one correction", round, len(rows))
		}
		c := rows[1]
		if rows[0].Outcome != "ok" || c.Kind != "correction" || c.Outcome != "withheld" ||
			c.CorrelationID != "lost-ack-1" || !strings.Contains(c.Reason, committed.RecordID) || !c.Replayed {
			t.Fatalf("round %d: trail %+v then %+v", round, rows[0], c)
		}
	}
	rep, err := audit.Verify(context.Background(), owner, audit.NewKeyring(sealer(t)))
	if err != nil || rep.FirstBad != 0 {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
}

// TestEditedSpillFilesAreNotAppended: the spill directory is local disk,
// which someone may edit while Postgres is away. A file whose seal does
// not match the audit key is set aside and reported, never appended.
func TestEditedSpillFilesAreNotAppended(t *testing.T) {
	scratch := dbtest.Scratch(t)
	app := dbtest.App(t, scratch, store.Options{})
	dir := t.TempDir()
	spill, err := audit.OpenSpill(dir, sealer(t))
	if err != nil {
		t.Fatal(err)
	}
	e := entry("tampered-1")
	e.RecordID = audit.NewRecordID()
	if err := spill.Write([]*store.AuditEntry{e}); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.audit.json"))
	if len(files) != 1 {
		t.Fatalf("spill files: %v", files)
	}
	body, _ := os.ReadFile(files[0])
	edited := strings.Replace(string(body), `"Decision":"allowed"`, `"Decision":"denied"`, 1)
	if edited == string(body) {
		t.Fatal("the edit changed nothing: the test is wrong")
	}
	if err := os.WriteFile(files[0], []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := spill.Replay(context.Background(), app)
	if n != 0 || err == nil || !strings.Contains(err.Error(), "set aside") {
		t.Fatalf("replay of an edited file: %d records, %v", n, err)
	}
	if rows := readTrail(t, dbtest.Owner(t, scratch)); len(rows) != 0 {
		t.Fatalf("the edited record reached the trail: %+v", rows)
	}
}

// TestRefusalCountsAreKeptUntilWritten: aggregated refusals are forgotten
// only once their record is written; when the database is down at flush
// time (and there is nowhere to spill), they are kept and written at the
// next flush.
func TestRefusalCountsAreKeptUntilWritten(t *testing.T) {
	scratch := dbtest.Scratch(t)
	app := dbtest.App(t, scratch, store.Options{})
	owner := dbtest.Owner(t, scratch)
	w := audit.NewWriter(app, sealer(t), discard(), audit.Options{Retries: -1})
	for range 7 {
		w.Refusal("198.51.100.23", "", "invalid_credential")
	}
	restore := outage(t, scratch)
	w.FlushRefusals(context.Background())
	restore()
	w.Refusal("198.51.100.23", "", "invalid_credential")
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, r := range readTrail(t, owner) {
		if r.Kind == "refusal" && r.Source == "198.51.100.23" {
			total += r.Count
		}
	}
	if total != 8 {
		t.Fatalf("%d refusals recorded, want 8: counts were dropped when the database was down", total)
	}
}

// TestVerifyFollowsKeyRotationAndTheDevelopmentKey: a trail sealed first
// with the public development key (make run), then with a production key,
// then with the key that replaced it, verifies with the current key and
// the previous one, and says which records each sealed. Without the
// previous key the records it sealed are named, not called tampered. A
// record sealed by the development key after a real one is tampering:
// anyone can compute that key.
func TestVerifyFollowsKeyRotationAndTheDevelopmentKey(t *testing.T) {
	scratch := dbtest.Scratch(t)
	app := dbtest.App(t, scratch, store.Options{})
	owner := dbtest.Owner(t, scratch)
	ctx := context.Background()
	dev, _ := audit.NewSealer(audit.DevelopmentKey())
	first, _ := audit.NewSealer([]byte("the first production key, 32 bytes or more long"))
	second, _ := audit.NewSealer([]byte("the key that replaced it, also 32 bytes or more"))
	write := func(s *audit.Sealer, n int) {
		t.Helper()
		w := audit.NewWriter(app, s, discard(), audit.Options{})
		for range n {
			if err := w.Write(ctx, entry("rotation")); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	write(dev, 3)
	write(first, 3)
	write(second, 2)

	rep, err := audit.Verify(ctx, owner, audit.NewKeyring(second, first))
	if err != nil || rep.FirstBad != 0 {
		t.Fatalf("verify with the current and previous keys: %+v, %v", rep, err)
	}
	want := []audit.KeyRange{{1, 3, dev.KeyID(), true}, {4, 6, first.KeyID(), false}, {7, 8, second.KeyID(), false}}
	if len(rep.Keys) != len(want) {
		t.Fatalf("key ranges %+v, want %+v", rep.Keys, want)
	}
	for i := range want {
		if rep.Keys[i] != want[i] {
			t.Fatalf("key ranges %+v, want %+v", rep.Keys, want)
		}
	}

	rep, _ = audit.Verify(ctx, owner, audit.NewKeyring(second))
	if rep.FirstBad != 4 || !strings.Contains(rep.Problem, first.KeyID()) || !strings.Contains(rep.Problem, "not configured") {
		t.Fatalf("without the previous key: %+v", rep)
	}

	write(dev, 1)
	rep, _ = audit.Verify(ctx, owner, audit.NewKeyring(second, first))
	if rep.FirstBad != 9 || !strings.Contains(rep.Problem, "development key after") {
		t.Fatalf("a development record after production ones: %+v", rep)
	}
}
