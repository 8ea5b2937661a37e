package audit_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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

// TestGroupCommit writes many records at once and checks they share
// commits: every Write returns nil only after its row is durable, the rows
// have contiguous seqs, and far fewer transactions than records ran.
func TestGroupCommit(t *testing.T) {
	const n = 200
	var locks atomic.Int64
	app := dbtest.App(t, dsn, store.Options{Observe: func(e store.QueryEvent) {
		if e.Name == "lock_audit_chain" {
			locks.Add(1)
		}
	}})
	w := audit.NewWriter(app, sealer(t), discard(), audit.Options{})
	t.Cleanup(func() { _ = w.Close(context.Background()) })
	owner := dbtest.Owner(t, dsn)
	freshTrail(t)
	start := head(t)

	// Stall the committer on its first batch so that the others queue up
	// behind it, as they would under load; without the stall the test
	// would depend on scheduling.
	release := testenv.HoldAuditChainLock(t, dsn)
	var (
		wg      sync.WaitGroup
		entered atomic.Int64
		errs    = make([]error, n)
		entries = make([]*store.AuditEntry, n)
	)
	for i := range n {
		entries[i] = entry(fmt.Sprintf("group-%03d", i))
		wg.Go(func() {
			entered.Add(1)
			errs[i] = w.Write(context.Background(), entries[i])
		})
	}
	testenv.WaitForAuditChainWaiter(t, dsn)
	for entered.Load() < n {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // let the last callers reach the queue
	release()
	wg.Wait()

	for i, err := range errs {
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	ids := correlationIDs(t, start)
	if len(ids) != n {
		t.Fatalf("%d rows after seq %d, want %d", len(ids), start, n)
	}
	seqs := make([]int64, n)
	for i, e := range entries {
		seqs[i] = e.Seq
	}
	slices.Sort(seqs)
	for i, s := range seqs {
		if s != start+int64(i)+1 {
			t.Fatalf("seqs not contiguous from %d: %v", start+1, seqs)
		}
	}
	got := slices.Clone(ids)
	slices.Sort(got)
	for i, id := range got {
		if want := fmt.Sprintf("group-%03d", i); id != want {
			t.Fatalf("row %d is %q, want %q", i, id, want)
		}
	}
	if tx := locks.Load(); tx >= n/2 {
		t.Fatalf("%d transactions for %d records: commits are not shared", tx, n)
	} else {
		t.Logf("%d records in %d transactions", n, tx)
	}
	if rep := verify(t, owner); rep.FirstBad != 0 {
		t.Fatalf("chain broken at %d: %s", rep.FirstBad, rep.Problem)
	}
}

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

// TestCloseDrains checks that Close returns only once every record it
// accepted is committed, and refuses records after it.
func TestCloseDrains(t *testing.T) {
	app := dbtest.App(t, dsn, store.Options{})
	w := audit.NewWriter(app, sealer(t), discard(), audit.Options{})
	freshTrail(t)
	start := head(t)

	// The committer is stalled, so nothing accepted below can be committed
	// before Close is called.
	release := testenv.HoldAuditChainLock(t, dsn)

	// Callers that give up at once: their records are accepted (queued),
	// and only the writer's drain can commit them.
	gaveUp, cancel := context.WithCancel(context.Background())
	cancel()
	const n = 300
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		accepted = map[string]bool{}
		refused  = map[string]bool{}
	)
	write := func(ctx context.Context, corr string) {
		err := w.Write(ctx, entry(corr))
		mu.Lock()
		defer mu.Unlock()
		switch {
		case errors.Is(err, audit.ErrClosed):
			refused[corr] = true
		case err == nil, errors.Is(err, context.Canceled):
			accepted[corr] = true
		default:
			t.Errorf("write %s: %v", corr, err)
		}
	}
	for i := range n {
		wg.Go(func() { write(gaveUp, fmt.Sprintf("drain-early-%03d", i)) })
	}
	wg.Wait()
	testenv.WaitForAuditChainWaiter(t, dsn)

	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		closed <- w.Close(ctx)
	}()
	// Writers racing with Close: each is either committed or refused with
	// ErrClosed, never silently dropped.
	for i := range 100 {
		wg.Go(func() { write(context.Background(), fmt.Sprintf("drain-racing-%03d", i)) })
	}
	time.Sleep(50 * time.Millisecond)
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while accepted records could not be committed", err)
	default:
	}
	release()
	if err := <-closed; err != nil {
		t.Fatalf("close: %v", err)
	}
	// Read before the racing writers are waited for: Close alone must
	// have made every accepted early record durable.
	rows := correlationIDs(t, start)
	wg.Wait()
	inTable := map[string]bool{}
	for _, id := range rows {
		inTable[id] = true
	}
	for i := range n {
		if corr := fmt.Sprintf("drain-early-%03d", i); !inTable[corr] {
			t.Fatalf("record %s was accepted before Close but is not in the table", corr)
		}
	}
	rows = correlationIDs(t, start)
	inTable = map[string]bool{}
	for _, id := range rows {
		if inTable[id] {
			t.Fatalf("record %s written twice", id)
		}
		inTable[id] = true
	}
	for corr := range accepted {
		if !inTable[corr] {
			t.Fatalf("accepted record %s is not in the table", corr)
		}
	}
	for corr := range refused {
		if inTable[corr] {
			t.Fatalf("record %s was refused with ErrClosed but is in the table", corr)
		}
	}
	if len(accepted)+len(refused) != n+100 {
		t.Fatalf("%d accepted + %d refused, want %d", len(accepted), len(refused), n+100)
	}

	t.Run("WriteAfterCloseIsRefused", func(t *testing.T) {
		before := head(t)
		if err := w.Write(context.Background(), entry("after-close")); !errors.Is(err, audit.ErrClosed) {
			t.Fatalf("write after close: %v, want ErrClosed", err)
		}
		if err := w.Admin(context.Background(), "keys_create", "ok"); !errors.Is(err, audit.ErrClosed) {
			t.Fatalf("admin after close: %v, want ErrClosed", err)
		}
		if got := correlationIDs(t, before); len(got) != 0 {
			t.Fatalf("rows written after close: %v", got)
		}
	})
	t.Run("SecondCloseIsHarmless", func(t *testing.T) {
		if err := w.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
	if rep := verify(t, dbtest.Owner(t, dsn)); rep.FirstBad != 0 {
		t.Fatalf("chain broken at %d: %s", rep.FirstBad, rep.Problem)
	}
}

type refusalRow struct {
	Minute         time.Time
	Source, Reason string
	Count          int
	Kind, Decision string
}

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

// TestRefusalsAreAggregated floods the writer with refusals, as a client
// hammering the HTTP layer with bad credentials would, and checks the
// flood becomes one row per source, reason and minute with the right
// count, flushed by Close.
func TestRefusalsAreAggregated(t *testing.T) {
	app := dbtest.App(t, dsn, store.Options{})

	t.Run("OneRowPerSourceReasonAndMinute", func(t *testing.T) {
		w := audit.NewWriter(app, sealer(t), discard(), audit.Options{})
		start := head(t)
		want := map[[2]string]int{
			{"203.0.113.7", "bad_credential"}:  500,
			{"203.0.113.7", "rate_limited"}:    300,
			{"198.51.100.9", "bad_credential"}: 7,
			{"198.51.100.9", "foreign_origin"}: 1,
		}
		var wg sync.WaitGroup
		for k, n := range want {
			for range n {
				wg.Go(func() { w.Refusal(k[0], "", k[1]) })
			}
		}
		wg.Wait()
		if err := w.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		rows := refusalRows(t, start)
		got := map[[2]string]int{}
		perMinute := map[string]bool{}
		for _, r := range rows {
			if r.Kind != "refusal" || r.Decision != "denied" || !r.Minute.Equal(r.Minute.Truncate(time.Minute)) {
				t.Fatalf("row %+v", r)
			}
			k := fmt.Sprintf("%s|%s|%s", r.Source, r.Reason, r.Minute)
			if perMinute[k] {
				t.Fatalf("two rows for %s", k)
			}
			perMinute[k] = true
			got[[2]string{r.Source, r.Reason}] += r.Count
		}
		if len(got) != len(want) {
			t.Fatalf("counts %v, want %v", got, want)
		}
		for k, n := range want {
			if got[k] != n {
				t.Fatalf("counts %v, want %v", got, want)
			}
		}
		// One row per pair, two if the flood straddled a minute boundary.
		if len(rows) > 2*len(want) {
			t.Fatalf("%d rows for %d (source, reason) pairs: refusals are not aggregated", len(rows), len(want))
		}
	})

	// An attacker rotating source addresses cannot make the table (or the
	// writer's memory) grow with every address: past the bound, refusals
	// are counted under "other".
	t.Run("RotatingSourcesAreBounded", func(t *testing.T) {
		const bound = 10000 // audit.maxRefusalKeys
		const sources = bound + 500
		w := audit.NewWriter(app, sealer(t), discard(), audit.Options{})
		start := head(t)
		for i := range sources {
			w.Refusal(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), "", "bad_credential")
		}
		if err := w.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		rows := refusalRows(t, start)
		total, other := 0, 0
		for _, r := range rows {
			total += r.Count
			if r.Source == "other" {
				other += r.Count
			}
		}
		if total != sources {
			t.Fatalf("%d refusals recorded, want %d", total, sources)
		}
		if len(rows) > bound+2 || other == 0 {
			t.Fatalf("%d rows (%d under other) for %d sources: not bounded", len(rows), other, sources)
		}
	})
}

// TestWritersOfSeveralProcessesShareOneChain runs two writers on two
// connection pools, as two server processes would, appending at the same
// time. The chain stays one gapless, verifiable sequence.
func TestWritersOfSeveralProcessesShareOneChain(t *testing.T) {
	freshTrail(t)
	owner := dbtest.Owner(t, dsn)
	writers := []*audit.Writer{
		audit.NewWriter(dbtest.App(t, dsn, store.Options{}), sealer(t), discard(), audit.Options{}),
		audit.NewWriter(dbtest.App(t, dsn, store.Options{}), sealer(t), discard(), audit.Options{}),
	}
	const perWriter, rounds = 60, 4
	var (
		wg   sync.WaitGroup
		errs atomic.Int64
	)
	for r := range rounds {
		for i := range perWriter {
			for wi, w := range writers {
				wg.Go(func() {
					e := entry(fmt.Sprintf("proc%d-%d-%03d", wi, r, i))
					if wi == 1 {
						e.Transport = "http"
					}
					if err := w.Write(context.Background(), e); err != nil {
						t.Errorf("writer %d: %v", wi, err)
						errs.Add(1)
					}
				})
			}
		}
		// Interleave an administrative record from each process too.
		if err := writers[r%2].Admin(context.Background(), "keys_revoke", "ok", "abcdefghijkl"); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	for _, w := range writers {
		if err := w.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if errs.Load() > 0 {
		t.FailNow()
	}
	entries := readTrail(t, owner)
	if want := 2*perWriter*rounds + rounds; len(entries) != want {
		t.Fatalf("%d rows, want %d", len(entries), want)
	}
	var fromEach [2]int
	for i, e := range entries {
		if e.Seq != int64(i)+1 {
			t.Fatalf("row %d has seq %d", i, e.Seq)
		}
		if e.Kind == "tool_call" {
			fromEach[map[string]int{"stdio": 0, "http": 1}[e.Transport]]++
		}
	}
	if fromEach[0] != perWriter*rounds || fromEach[1] != perWriter*rounds {
		t.Fatalf("records per writer %v", fromEach)
	}
	rep := verify(t, owner)
	if rep.FirstBad != 0 || rep.Entries != int64(len(entries)) {
		t.Fatalf("chain of two writers: %+v", rep)
	}
}

// TestConcurrentCloseIsHarmless closes one writer from two goroutines at
// once, as a signal handler and a deferred shutdown might, while
// aggregated refusals are being flushed. Both calls return, neither
// panics, and the refusals are written once.
func TestConcurrentCloseIsHarmless(t *testing.T) {
	app := dbtest.App(t, dsn, store.Options{})
	w := audit.NewWriter(app, sealer(t), discard(), audit.Options{})
	start := head(t)
	for i := range 50 {
		w.Refusal(fmt.Sprintf("192.0.2.%d", i), "", "bad_credential")
	}
	results := make(chan string, 2)
	for range 2 {
		go func() {
			defer func() {
				if r := recover(); r != nil {
					results <- fmt.Sprintf("panic: %v", r)
				}
			}()
			if err := w.Close(context.Background()); err != nil {
				results <- err.Error()
				return
			}
			results <- ""
		}()
	}
	for range 2 {
		select {
		case r := <-results:
			if r != "" {
				// A Close that panics does so holding the writer's mutex:
				// the other Close then never returns.
				t.Fatalf("concurrent Close: %s", r)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("concurrent Close calls did not return")
		}
	}
	total := 0
	for _, r := range refusalRows(t, start) {
		total += r.Count
	}
	if total != 50 {
		t.Fatalf("%d refusals recorded, want 50", total)
	}
}

// TestAppendsHoldUnderRepeatableReadDefaults: a database (or a
// DATABASE_URL) may set default_transaction_isolation to repeatable read.
// The chain's head is read after its lock, which only sees the previous
// holder's commit under READ COMMITTED; the store pins that, so several
// writers still append without colliding.
func TestAppendsHoldUnderRepeatableReadDefaults(t *testing.T) {
	freshTrail(t)
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	rr := dsn + sep + "default_transaction_isolation=repeatable%20read"
	var (
		failed atomic.Int64
		wg     sync.WaitGroup
	)
	for range 3 {
		w := audit.NewWriter(dbtest.App(t, rr, store.Options{}), sealer(t), discard(), audit.Options{})
		t.Cleanup(func() { _ = w.Close(context.Background()) })
		for range 4 {
			wg.Go(func() {
				for range 25 {
					if err := w.Write(context.Background(), entry("rr")); err != nil {
						failed.Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of 300 appends failed", n)
	}
	if rep := verify(t, dbtest.Owner(t, dsn)); rep.FirstBad != 0 {
		t.Fatalf("chain broken at %d: %s", rep.FirstBad, rep.Problem)
	}
}
