package limits_test

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/ulule/limiter/v3"
	memstore "github.com/ulule/limiter/v3/drivers/store/memory"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/limits"
	"github.com/example/order-mcp/internal/testenv"
)

// storeOp is one call of a limiter.Store: "get", "incr" (by n), "peek" or
// "reset".
type storeOp struct {
	op, key string
	n       int64
}

func (o storeOp) run(ctx context.Context, st limiter.Store, rate limiter.Rate) (limiter.Context, error) {
	switch o.op {
	case "get":
		return st.Get(ctx, o.key, rate)
	case "incr":
		return st.Increment(ctx, o.key, o.n, rate)
	case "peek":
		return st.Peek(ctx, o.key, rate)
	case "reset":
		return st.Reset(ctx, o.key, rate)
	}
	panic("unknown op " + o.op)
}

func TestMemoryStoreAnswersLikeUlulesMemoryStore(t *testing.T) {
	get := func(k string) storeOp { return storeOp{"get", k, 0} }
	peek := func(k string) storeOp { return storeOp{"peek", k, 0} }
	reset := func(k string) storeOp { return storeOp{"reset", k, 0} }
	incr := func(k string, n int64) storeOp { return storeOp{"incr", k, n} }
	cases := []struct {
		name string
		ops  []storeOp
	}{
		{"GetsCountUpToTheLimitThenReachIt", []storeOp{get("a"), get("a"), get("a"), get("a"), get("a")}},
		{"PeekOfAnUnknownKeyCountsNothing", []storeOp{peek("a"), peek("a"), get("a")}},
		{"PeekReadsWithoutCounting", []storeOp{get("a"), peek("a"), peek("a"), get("a"), get("a"), get("a"), peek("a")}},
		{"ResetStartsAgainFromZero", []storeOp{get("a"), get("a"), get("a"), get("a"), reset("a"), peek("a"), get("a")}},
		{"ResetOfAnUnknownKeyIsZero", []storeOp{reset("a"), get("a")}},
		{"IncrementAddsItsCount", []storeOp{incr("a", 2), incr("a", 0), get("a"), incr("a", 5), peek("a")}},
		{"IncrementByZeroOpensAWindow", []storeOp{incr("a", 0), peek("a"), get("a")}},
		{"KeysCountApart", []storeOp{get("a"), get("b"), get("a"), get("a"), get("a"), peek("b"), reset("b"), peek("a")}},
	}
	ctx := context.Background()
	rate := limiter.Rate{Period: time.Hour, Limit: 3}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clock := testenv.NewClock()
			ours := limits.NewMemoryStore(10, clock.Now)
			theirs := memstore.NewStoreWithOptions(limiter.StoreOptions{Prefix: "t"})
			for i, o := range c.ops {
				got, err := o.run(ctx, ours, rate)
				if err != nil {
					t.Fatal(err)
				}
				want, err := o.run(ctx, theirs, rate)
				if err != nil {
					t.Fatal(err)
				}
				// Reset differs only by the clocks (theirs is the real one).
				if got.Reset < clock.Now().Unix() {
					t.Errorf("op %d %v: Reset %d before the clock", i, o, got.Reset)
				}
				got.Reset, want.Reset = 0, 0
				if got != want {
					t.Errorf("op %d %v: got %+v, ulule's memory store %+v", i, o, got, want)
				}
			}
		})
	}
}

func TestMemoryStoreWindowFollowsTheClock(t *testing.T) {
	ctx := context.Background()
	rate := limiter.Rate{Period: time.Minute, Limit: 2}
	clock := testenv.NewClock()
	st := limits.NewMemoryStore(10, clock.Now)
	opened := clock.Now()
	for range 3 {
		if _, err := st.Get(ctx, "k", rate); err != nil {
			t.Fatal(err)
		}
	}
	check := func(t *testing.T, c limiter.Context, remaining int64, reached bool, reset time.Time) {
		t.Helper()
		if c.Remaining != remaining || c.Reached != reached || c.Reset != reset.Unix() {
			t.Fatalf("got %+v, want remaining %d, reached %v, reset %d", c, remaining, reached, reset.Unix())
		}
	}
	t.Run("TheWindowHoldsUntilItsLastInstant", func(t *testing.T) {
		clock.Advance(time.Minute)
		c, _ := st.Peek(ctx, "k", rate)
		check(t, c, 0, true, opened.Add(time.Minute))
	})
	t.Run("PeekAfterTheWindowSeesZeroAndOpensNothing", func(t *testing.T) {
		clock.Advance(time.Nanosecond)
		c, _ := st.Peek(ctx, "k", rate)
		check(t, c, 2, false, clock.Now().Add(time.Minute))
		clock.Advance(time.Second)
		c, _ = st.Peek(ctx, "k", rate)
		check(t, c, 2, false, clock.Now().Add(time.Minute))
	})
	t.Run("TheNextCountOpensANewWindow", func(t *testing.T) {
		reopened := clock.Now()
		c, _ := st.Get(ctx, "k", rate)
		check(t, c, 1, false, reopened.Add(time.Minute))
		clock.Advance(30 * time.Second)
		c, _ = st.Get(ctx, "k", rate)
		check(t, c, 0, false, reopened.Add(time.Minute))
		c, _ = st.Get(ctx, "k", rate)
		check(t, c, 0, true, reopened.Add(time.Minute))
	})
}

func TestLimiterOverMemoryStoreRefusesAtTheLimit(t *testing.T) {
	ctx := context.Background()
	clock := testenv.NewClock()
	lim := limiter.New(limits.NewMemoryStore(0, clock.Now), limiter.Rate{Period: time.Minute, Limit: 5})
	for i := range 5 {
		c, err := lim.Get(ctx, "ip:192.0.2.1")
		if err != nil || c.Reached || c.Remaining != int64(4-i) {
			t.Fatalf("request %d: %+v, %v", i+1, c, err)
		}
	}
	for range 3 {
		if c, _ := lim.Get(ctx, "ip:192.0.2.1"); !c.Reached || c.Remaining != 0 {
			t.Fatalf("past the limit: %+v", c)
		}
	}
	if c, _ := lim.Get(ctx, "ip:192.0.2.2"); c.Reached {
		t.Fatalf("another key: %+v", c)
	}
	clock.Advance(time.Minute + time.Nanosecond)
	if c, _ := lim.Get(ctx, "ip:192.0.2.1"); c.Reached || c.Remaining != 4 {
		t.Fatalf("next window: %+v", c)
	}
}

func TestMemoryStoreCap(t *testing.T) {
	ctx := context.Background()
	short := limiter.Rate{Period: time.Minute, Limit: 5}
	long := limiter.Rate{Period: time.Hour, Limit: 5}
	const capacity = 160
	// spent counts key to its limit: a caller the store must keep refusing.
	spent := func(t *testing.T, st *limits.MemoryStore, key string, rate limiter.Rate) {
		t.Helper()
		for range rate.Limit + 1 {
			if _, err := st.Get(ctx, key, rate); err != nil {
				t.Fatal(err)
			}
		}
	}
	stillRefused := func(t *testing.T, st *limits.MemoryStore, keys []string, rate limiter.Rate) {
		t.Helper()
		for _, k := range keys {
			if c, _ := st.Peek(ctx, k, rate); !c.Reached {
				t.Errorf("%s: counter lost (%+v)", k, c)
			}
		}
	}
	// flood counts n new distinct keys named after wave, checking after
	// each that the store stays within its cap and that the key counted
	// was kept.
	flood := func(t *testing.T, st *limits.MemoryStore, wave string, n int, rate limiter.Rate) {
		t.Helper()
		for i := range n {
			key := fmt.Sprintf("flood:%s:%d", wave, i)
			c, err := st.Get(ctx, key, rate)
			if err != nil || c.Reached || c.Remaining != rate.Limit-1 {
				t.Fatalf("new key %d: %+v, %v: a new key must be counted, not refused", i, c, err)
			}
			if c, _ := st.Peek(ctx, key, rate); c.Remaining != rate.Limit-1 {
				t.Fatalf("new key %d was evicted as it was counted: %+v", i, c)
			}
			if st.Len() > capacity {
				t.Fatalf("after %d new keys the store holds %d counters, over its cap of %d", i+1, st.Len(), capacity)
			}
		}
	}
	victims := func(n int) []string {
		keys := make([]string, n)
		for i := range keys {
			keys[i] = fmt.Sprintf("victim:%d", i)
		}
		return keys
	}

	t.Run("ThreeTimesTheCapOfNewKeysStaysWithinTheCap", func(t *testing.T) {
		st := limits.NewMemoryStore(capacity, testenv.NewClock().Now)
		flood(t, st, "a", 3*capacity, short)
		if st.Evicted() == 0 {
			t.Error("Evicted() = 0 after a flood of live counters past the cap")
		}
	})
	t.Run("ExpiredCountersMakeRoomBeforeRunningOnes", func(t *testing.T) {
		clock := testenv.NewClock()
		st := limits.NewMemoryStore(capacity, clock.Now)
		running := victims(10)
		for _, k := range running {
			spent(t, st, k, long)
		}
		flood(t, st, "first", capacity-len(running), short)
		clock.Advance(2 * time.Minute) // the first flood's windows are over
		flood(t, st, "second", capacity-len(running), long)
		stillRefused(t, st, running, long)
		if n := st.Evicted(); n != 0 {
			t.Errorf("Evicted() = %d with expired counters to sweep", n)
		}
	})
	t.Run("AFloodEvictsTheWindowsEndingSoonestFirst", func(t *testing.T) {
		clock := testenv.NewClock()
		st := limits.NewMemoryStore(capacity, clock.Now)
		running := victims(10)
		for _, k := range running {
			spent(t, st, k, long) // windows of an hour
		}
		flood(t, st, "a", 3*capacity, short) // windows of a minute, none over
		stillRefused(t, st, running, long)
		if st.Evicted() == 0 {
			t.Error("Evicted() = 0 after a flood of live counters past the cap")
		}
	})
	t.Run("ConcurrentCountsAreExact", func(t *testing.T) {
		st := limits.NewMemoryStore(capacity, testenv.NewClock().Now)
		rate := limiter.Rate{Period: time.Hour, Limit: 1000}
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := range 100 {
					_, _ = st.Get(ctx, "shared", rate)
					_, _ = st.Get(ctx, fmt.Sprintf("own:%d:%d", w, i), short) // past the cap, evicted first
				}
			})
		}
		wg.Wait()
		if c, _ := st.Peek(ctx, "shared", rate); c.Remaining != 200 {
			t.Errorf("800 concurrent counts left %d of 1000", c.Remaining)
		}
		if st.Len() > capacity {
			t.Errorf("%d counters, over the cap of %d", st.Len(), capacity)
		}
	})
}

// TestMemoryStoresAreCappedAndKeepTheDestructiveBudgetApart sends three
// times MaxCounters distinct addresses through the limits over
// MemoryStores, within one window: the read store never holds more than
// MaxCounters, and a destructive budget spent before the flood (whose
// window therefore ends first) is still spent after it. With ulule's
// memory store back in MemoryStores, or one store for both budgets, it
// fails.
func TestMemoryStoresAreCappedAndKeepTheDestructiveBudgetApart(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 600,000 requests")
	}
	ctx := context.Background()
	st := limits.MemoryStores()
	reads, ok := st.Reads.(*limits.MemoryStore)
	if !ok {
		t.Fatalf("MemoryStores().Reads is a %T, not a capped *limits.MemoryStore", st.Reads)
	}
	if st.Reads == st.Destructive {
		t.Fatal("one store holds both the read and the destructive budgets: a flood of reads could evict a destructive budget")
	}
	l := limits.New(limitsConfig(func(c *limits.Config) {
		c.PerIP, c.CancelPerPrincipal = perWindow(5), perWindow(1)
	}), st, limits.NewLockout(testPolicy, limits.NewMemoryLockoutStore(), nil))
	p := &auth.Principal{Subject: "apikey:spent"}
	if err := l.AdmitDestructive(ctx, p); err != nil {
		t.Fatal(err)
	}
	limited(t, l.CheckDestructive(ctx, p), window)

	for i := range 3 * limits.MaxCounters {
		ip := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i), 15: 1}) // a /64 each
		if _, err := l.AllowIP(ctx, ip); err != nil {
			t.Fatalf("address %d, new: %v", i, err)
		}
		if i%1000 == 0 && reads.Len() > limits.MaxCounters {
			t.Fatalf("after %d addresses the read store holds %d counters, over MaxCounters", i+1, reads.Len())
		}
	}
	if n := reads.Len(); n > limits.MaxCounters {
		t.Fatalf("the read store holds %d counters, over MaxCounters", n)
	}
	t.Run("TheSpentDestructiveBudgetIsStillSpent", func(t *testing.T) {
		limited(t, l.CheckDestructive(ctx, p), window)
		limited(t, l.AdmitDestructive(ctx, p), window)
	})
}
