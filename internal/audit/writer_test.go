package audit_test

// The writer's promises: records share commits, Close drains what it
// accepted and refuses the rest, and several writers (processes) append
// to one gapless chain.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/example/order-mcp/internal/audit"
	"github.com/example/order-mcp/internal/dbtest"
	"github.com/example/order-mcp/internal/store"
	"github.com/example/order-mcp/internal/testenv"
)

// TestGroupCommit has many records wait for one commit and checks they
// share commits: every Write that waits returns nil only after its row is
// committed, the rows have contiguous seqs, and far fewer transactions
// than records ran.
func TestGroupCommit(t *testing.T) {
	const queued, waiting = 200, 50
	const n = queued + waiting
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
	// behind it, as they would under load. A Write whose caller has given
	// up returns once its record is queued, so when the loop below ends,
	// every one of its records is waiting for the commit: nothing here
	// depends on how goroutines are scheduled.
	release := testenv.HoldAuditChainLock(t, dsn)
	gaveUp, cancel := context.WithCancel(context.Background())
	cancel()
	entries := make([]*store.AuditEntry, n)
	for i := range queued {
		entries[i] = entry(fmt.Sprintf("group-%03d", i))
		if err := w.Write(gaveUp, entries[i]); !errors.Is(err, context.Canceled) {
			t.Fatalf("write %d: %v, want it queued behind the stalled commit", i, err)
		}
	}
	testenv.WaitForAuditChainWaiter(t, dsn)
	// Callers that wait for their records, queued behind those: each
	// Write must return nil, and only once its row is committed.
	var (
		wg   sync.WaitGroup
		errs = make([]error, waiting)
	)
	for i := range waiting {
		entries[queued+i] = entry(fmt.Sprintf("group-%03d", queued+i))
		wg.Go(func() { errs[i] = w.Write(context.Background(), entries[queued+i]) })
	}
	release()
	wg.Wait()

	for i, err := range errs {
		if err != nil {
			t.Fatalf("write %d: %v", queued+i, err)
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
	// The queued records take at most two commits (the stalled batch and
	// the rest); the waiting callers, at worst, one each.
	if tx := locks.Load(); tx > 2+waiting {
		t.Fatalf("%d transactions for %d records: commits are not shared", tx, n)
	} else {
		t.Logf("%d records in %d transactions", n, tx)
	}
	if rep := verify(t, owner); rep.FirstBad != 0 {
		t.Fatalf("chain broken at %d: %s", rep.FirstBad, rep.Problem)
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
	// Wait until Close has begun: from then on it refuses records. The
	// probes are records like the others (accepted and committed, or
	// refused and absent), written by callers that give up at once, a
	// little less often each time so that they cannot fill the queue.
	probes := 0
	for pause, deadline := time.Millisecond, time.Now().Add(30*time.Second); ; pause = min(2*pause, 100*time.Millisecond) {
		corr := fmt.Sprintf("drain-probe-%03d", probes)
		probes++
		write(gaveUp, corr)
		mu.Lock()
		closing := refused[corr]
		mu.Unlock()
		if closing {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Close never began refusing records")
		}
		time.Sleep(pause)
	}
	// Close has begun, and the committer cannot commit: Close must still
	// be waiting.
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
	if len(accepted)+len(refused) != n+100+probes {
		t.Fatalf("%d accepted + %d refused, want %d", len(accepted), len(refused), n+100+probes)
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
		case <-time.After(30 * time.Second): // a bound on a hang, not a measurement
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
