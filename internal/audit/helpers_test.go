package audit_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/example/order-mcp/internal/audit"
	"github.com/example/order-mcp/internal/dbtest"
	"github.com/example/order-mcp/internal/store"
	"github.com/example/order-mcp/internal/testenv"
)

var dsn string

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m, &dsn)) }

// The tests of this package share one database and therefore one trail.
// None of them runs in parallel; each starts from an empty trail
// (freshTrail) or measures from the head it found.

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func sealer(t *testing.T) *audit.Sealer {
	t.Helper()
	s, err := audit.NewSealer(testenv.TestAuditKey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// ownerConn is a plain connection as the database owner, for reading back
// and for playing the attacker who can write the table.
func ownerConn(t *testing.T) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// freshTrail empties the trail, so that a test's chain starts at seq 1.
func freshTrail(t *testing.T) {
	t.Helper()
	if _, err := ownerConn(t).Exec(context.Background(), "TRUNCATE audit_log"); err != nil {
		t.Fatal(err)
	}
}

// head returns the seq of the newest row, 0 for an empty trail.
func head(t *testing.T) int64 {
	t.Helper()
	var seq int64
	if err := ownerConn(t).QueryRow(context.Background(), "SELECT coalesce(max(seq), 0) FROM audit_log").Scan(&seq); err != nil {
		t.Fatal(err)
	}
	return seq
}

// readTrail reads every row in chain order, as the owner.
func readTrail(t *testing.T, owner *store.Store) []*store.AuditEntry {
	t.Helper()
	var out []*store.AuditEntry
	if err := owner.ReadAudit(context.Background(), 0, 0, func(e *store.AuditEntry) error {
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func verify(t *testing.T, owner *store.Store) audit.VerifyReport {
	t.Helper()
	rep, err := audit.Verify(context.Background(), owner, audit.NewKeyring(sealer(t)))
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// entry is a tool-call record whose correlation id identifies it.
func entry(corr string) *store.AuditEntry {
	return &store.AuditEntry{
		Kind: "tool_call", Principal: "apikey:abcdefghijkl", CredentialID: "abcdefghijkl", Transport: "stdio",
		Action: "get_order_status", ObjectIDs: []string{"ord_0000000000000000"}, Decision: "allowed",
		Outcome: "ok", CorrelationID: corr, Arguments: `{"order_id":"ord_0000000000000000"}`,
	}
}

// correlationIDs returns the correlation ids of the rows after seq.
func correlationIDs(t *testing.T, after int64) []string {
	t.Helper()
	rows, err := ownerConn(t).Query(context.Background(),
		"SELECT correlation_id FROM audit_log WHERE seq > $1 ORDER BY seq", after)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// refusalRow is one aggregated refusal record.
type refusalRow struct {
	Minute         time.Time
	Source, Reason string
	Count          int
	Kind, Decision string
}

// refusalRows returns the aggregated refusal records after seq.
func refusalRows(t *testing.T, after int64) []refusalRow {
	t.Helper()
	rows, err := ownerConn(t).Query(context.Background(),
		`SELECT recorded_at, source, reason, count, kind, decision FROM audit_log
		  WHERE seq > $1 AND kind = 'refusal' ORDER BY seq`, after)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (refusalRow, error) {
		var x refusalRow
		err := r.Scan(&x.Minute, &x.Source, &x.Reason, &x.Count, &x.Kind, &x.Decision)
		return x, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
