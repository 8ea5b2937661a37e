package limits_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ulule/limiter/v3"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/dbtest"
	"github.com/example/order-mcp/internal/limits"
	"github.com/example/order-mcp/internal/redisstore"
	"github.com/example/order-mcp/internal/store"
	"github.com/example/order-mcp/internal/testenv"
)

// window is the period of the tests' rate limits. The counters run on
// ulule/limiter's own clock, the real one, which no test can hold still:
// an hour cannot pass while a test runs, however slow the machine, so no
// count and no RetryAfter here depends on how fast the test runs.
const window = time.Hour

// perWindow is a limit of n per window.
func perWindow(n int64) limiter.Rate { return limiter.Rate{Period: window, Limit: n} }

// inWindow checks that q's Reset is the end of the window the first
// request opened: one period after the clock read before that request
// (rounded down to whole seconds, as Reset is, and Redis keeps its expiry
// in milliseconds), and never more than a period from now.
func inWindow(t testing.TB, q limits.Quota, opened time.Time) {
	t.Helper()
	earliest := opened.Add(window - time.Millisecond).Truncate(time.Second)
	if latest := time.Now().Add(window); q.Reset.Before(earliest) || q.Reset.After(latest) {
		t.Fatalf("quota %+v: Reset outside the window opened at %v", q, opened)
	}
}

// limitsConfig is generous everywhere except where change tightens it.
func limitsConfig(change func(*limits.Config)) limits.Config {
	cfg := testenv.GenerousLimits()
	change(&cfg)
	return cfg
}

// principal is a customer caller no other test uses.
func principal(t testing.TB) *auth.Principal {
	return &auth.Principal{
		Subject: "apikey:" + newKey(t).KeyID, Method: "api_key",
		Scopes: []auth.Scope{auth.ScopeRead, auth.ScopeCancel}, CustomerID: customerID(),
	}
}

// limitBackends are where counters live: per process (no Redis), or in
// Redis. counters returns the SharedCounters of one new replica; every
// replica of one backend instance shares the same Redis prefix.
var limitBackends = []struct {
	name     string
	counters func(t *testing.T) func(t *testing.T) *redisstore.Counters
}{
	{"Memory", func(*testing.T) func(*testing.T) *redisstore.Counters {
		return func(*testing.T) *redisstore.Counters { return nil }
	}},
	{"Redis", func(t *testing.T) func(*testing.T) *redisstore.Counters {
		p := prefix(t)
		return func(t *testing.T) *redisstore.Counters { return shared(t, p, nil) }
	}},
}

// storesOf returns the counters' stores, or memory ones for nil.
func storesOf(c *redisstore.Counters) limits.Stores {
	if c == nil {
		return limits.MemoryStores()
	}
	return c.Stores()
}

// limited asserts that err is a *LimitError that asks to wait at most max.
func limited(t testing.TB, err error, max time.Duration) *limits.Error {
	t.Helper()
	var le *limits.Error
	if !errors.As(err, &le) {
		t.Fatalf("got %v, want a *limits.Error", err)
	}
	if le.RetryAfter <= 0 || le.RetryAfter > max {
		t.Fatalf("RetryAfter %v, want in (0, %v]", le.RetryAfter, max)
	}
	return le
}

func TestPerIPLimit(t *testing.T) {
	ctx := context.Background()
	for _, b := range limitBackends {
		t.Run(b.name, func(t *testing.T) {
			l := limits.New(limitsConfig(func(c *limits.Config) { c.PerIP = perWindow(3) }),
				storesOf(b.counters(t)(t)), limits.NewLockout(testPolicy, limits.NewMemoryLockoutStore(), nil))
			ip, other := randomIP(t), randomIP(t)

			opened := time.Now()
			for i := range 3 {
				q, err := l.AllowIP(ctx, ip)
				if err != nil {
					t.Fatalf("request %d: %v", i+1, err)
				}
				if q.Limit != 3 || q.Remaining != int64(2-i) {
					t.Fatalf("request %d: quota %+v", i+1, q)
				}
				inWindow(t, q, opened)
			}
			q, err := l.AllowIP(ctx, ip)
			limited(t, err, window)
			if q.Limit != 3 || q.Remaining != 0 {
				t.Errorf("quota when refused %+v", q)
			}
			inWindow(t, q, opened)
			t.Run("OtherAddressesAreNotLimited", func(t *testing.T) {
				if _, err := l.AllowIP(ctx, other); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

func TestPerPrincipalLimit(t *testing.T) {
	ctx := context.Background()
	for _, b := range limitBackends {
		t.Run(b.name, func(t *testing.T) {
			l := limits.New(limitsConfig(func(c *limits.Config) { c.PerPrincipal = perWindow(3) }),
				storesOf(b.counters(t)(t)), limits.NewLockout(testPolicy, limits.NewMemoryLockoutStore(), nil))
			p := principal(t)
			opened := time.Now()
			for i := range 3 {
				release, q, err := l.Admit(ctx, p)
				if err != nil {
					t.Fatalf("call %d: %v", i+1, err)
				}
				release()
				if q.Limit != 3 || q.Remaining != int64(2-i) {
					t.Fatalf("call %d: quota %+v", i+1, q)
				}
			}
			release, q, err := l.Admit(ctx, p)
			if release != nil {
				t.Error("a refused call got a release function")
			}
			limited(t, err, window)
			if q.Remaining != 0 {
				t.Errorf("quota when refused %+v", q)
			}
			inWindow(t, q, opened)
			t.Run("AdmitCallIsRefusedAlike", func(t *testing.T) {
				_, err := l.AdmitCall(ctx, p)
				limited(t, err, window)
			})
			t.Run("OtherPrincipalsAreNotLimited", func(t *testing.T) {
				release, _, err := l.Admit(ctx, principal(t))
				if err != nil {
					t.Fatal(err)
				}
				release()
			})
		})
	}
}

func TestConcurrencyCap(t *testing.T) {
	ctx := context.Background()
	l := limits.New(limitsConfig(func(c *limits.Config) { c.Concurrency = 2 }),
		limits.MemoryStores(), limits.NewLockout(testPolicy, limits.NewMemoryLockoutStore(), nil))
	p := principal(t)
	admit := func(t *testing.T) func() {
		t.Helper()
		release, _, err := l.Admit(ctx, p)
		if err != nil {
			t.Fatalf("admit: %v", err)
		}
		return release
	}
	refused := func(t *testing.T) {
		t.Helper()
		release, _, err := l.Admit(ctx, p)
		if release != nil {
			release()
		}
		limited(t, err, window)
	}

	first, second := admit(t), admit(t)
	t.Run("ThirdCallWhileTwoAreInFlightIsRefused", func(t *testing.T) { refused(t) })
	t.Run("OtherPrincipalsHaveTheirOwnSlots", func(t *testing.T) {
		release, _, err := l.Admit(ctx, principal(t))
		if err != nil {
			t.Fatal(err)
		}
		release()
	})
	t.Run("AReleasedSlotIsAdmittedAgain", func(t *testing.T) {
		first()
		first() // releasing twice gives back one slot, not two
		third := admit(t)
		refused(t)
		third()
	})
	t.Run("AllSlotsFreeAfterRelease", func(t *testing.T) {
		second()
		a, b := admit(t), admit(t)
		refused(t)
		a()
		b()
	})
}

func TestCancelBudgetIsSeparateFromReads(t *testing.T) {
	ctx := context.Background()
	for _, b := range limitBackends {
		t.Run(b.name, func(t *testing.T) {
			l := limits.New(limitsConfig(func(c *limits.Config) { c.CancelPerPrincipal = perWindow(2) }),
				storesOf(b.counters(t)(t)), limits.NewLockout(testPolicy, limits.NewMemoryLockoutStore(), nil))
			p := principal(t)
			for i := range 2 {
				if err := l.AdmitDestructive(ctx, p); err != nil {
					t.Fatalf("cancel %d: %v", i+1, err)
				}
			}
			limited(t, l.AdmitDestructive(ctx, p), window)

			t.Run("ReadsAreStillAdmitted", func(t *testing.T) {
				for range 5 {
					release, _, err := l.Admit(ctx, p)
					if err != nil {
						t.Fatal(err)
					}
					release()
				}
			})
			t.Run("OtherPrincipalsMayStillCancel", func(t *testing.T) {
				if err := l.AdmitDestructive(ctx, principal(t)); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

func TestEnumerationThrottle(t *testing.T) {
	ctx := context.Background()
	for _, b := range limitBackends {
		t.Run(b.name, func(t *testing.T) {
			l := limits.New(limitsConfig(func(c *limits.Config) { c.NotFoundPerPrincipal = perWindow(2) }),
				storesOf(b.counters(t)(t)), limits.NewLockout(testPolicy, limits.NewMemoryLockoutStore(), nil))
			guesser := principal(t)

			if err := l.Probing(ctx, guesser); err != nil {
				t.Fatalf("before any miss: %v", err)
			}
			for i := range 2 {
				if err := l.Missed(ctx, guesser); err != nil {
					t.Fatalf("miss %d: %v", i+1, err)
				}
			}
			if err := l.Probing(ctx, guesser); err != nil {
				t.Fatalf("within the budget: %v", err)
			}
			limited(t, l.Missed(ctx, guesser), window)

			t.Run("TheNextLookupIsRefusedBeforeItRuns", func(t *testing.T) {
				for range 3 {
					limited(t, l.Probing(ctx, guesser), window)
				}
			})
			t.Run("OtherPrincipalsMayLookUp", func(t *testing.T) {
				if err := l.Probing(ctx, principal(t)); err != nil {
					t.Fatal(err)
				}
			})
			t.Run("ReadsThatFindSomethingAreNotCounted", func(t *testing.T) {
				other := principal(t)
				for range 5 {
					release, _, err := l.Admit(ctx, other)
					if err != nil {
						t.Fatal(err)
					}
					release()
				}
				if err := l.Probing(ctx, other); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

func TestInvalidArgumentsLockOutThePrincipal(t *testing.T) {
	ctx := context.Background()
	stores := []struct {
		name string
		open func(t *testing.T) (limits.LockoutStore, *redisstore.Counters)
	}{
		{"Postgres", func(t *testing.T) (limits.LockoutStore, *redisstore.Counters) {
			return dbtest.App(t, dsn, store.Options{}), nil
		}},
		{"Redis", func(t *testing.T) (limits.LockoutStore, *redisstore.Counters) {
			s := shared(t, prefix(t), nil)
			return s.LockoutStore(), s
		}},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			ls, counters := st.open(t)
			l := limits.New(testenv.GenerousLimits(), storesOf(counters), limits.NewLockout(testPolicy, ls, testenv.NewClock().Now))
			p := principal(t)

			for i := 1; i < testPolicy.Threshold; i++ {
				if err := l.Invalid(ctx, p); err != nil {
					t.Fatalf("invalid call %d: %v", i, err)
				}
			}
			// AdmitCall is the stdio path's admission; over HTTP the same
			// bucket is checked before the body is read.
			release, err := l.AdmitCall(ctx, p)
			if err != nil {
				t.Fatalf("below the threshold: %v", err)
			}
			release()
			lockedFor(t, l.Invalid(ctx, p), testPolicy.Base)

			t.Run("TheNextCallIsRefused", func(t *testing.T) {
				release, err := l.AdmitCall(ctx, p)
				if release != nil {
					t.Error("a refused call got a release function")
				}
				lockedFor(t, err, testPolicy.Base)
			})
			t.Run("OtherPrincipalsAreAdmitted", func(t *testing.T) {
				release, err := l.AdmitCall(ctx, principal(t))
				if err != nil {
					t.Fatal(err)
				}
				release()
			})
		})
	}
}

func TestRedisCountersAreSharedByReplicas(t *testing.T) {
	ctx := context.Background()
	p := prefix(t)
	cfg := limitsConfig(func(c *limits.Config) {
		c.PerIP, c.PerPrincipal, c.CancelPerPrincipal, c.NotFoundPerPrincipal = perWindow(3), perWindow(3), perWindow(3), perWindow(3)
	})
	newReplica := func() *limits.Limits {
		return limits.New(cfg, shared(t, p, nil).Stores(), limits.NewLockout(testPolicy, limits.NewMemoryLockoutStore(), nil))
	}
	a, b := newReplica(), newReplica()
	caller := principal(t)

	tests := []struct {
		name  string
		count func(l *limits.Limits) error
	}{
		{"RequestsFromOneAddress", func(l *limits.Limits) error {
			_, err := l.AllowIP(ctx, netip.MustParseAddr("192.0.2.77"))
			return err
		}},
		{"ToolCallsOfOnePrincipal", func(l *limits.Limits) error {
			release, _, err := l.Admit(ctx, caller)
			if release != nil {
				release()
			}
			return err
		}},
		{"CancellationsOfOnePrincipal", func(l *limits.Limits) error {
			return l.AdmitDestructive(ctx, caller)
		}},
		{"LookupsOfUnknownOrders", func(l *limits.Limits) error { return l.Missed(ctx, caller) }},
	}
	for _, tt := range tests {
		t.Run(tt.name+"AreCountedAcrossReplicas", func(t *testing.T) {
			// Two on one replica and one on the other use up a limit of
			// three: the fourth is refused on both.
			for i, l := range []*limits.Limits{a, a, b} {
				if err := tt.count(l); err != nil {
					t.Fatalf("call %d: %v", i+1, err)
				}
			}
			limited(t, tt.count(a), window)
			limited(t, tt.count(b), window)
		})
	}
	t.Run("ProbingSeesMissesOfTheOtherReplica", func(t *testing.T) {
		limited(t, b.Probing(ctx, caller), window)
	})
	t.Run("AnotherPrefixDoesNotShare", func(t *testing.T) {
		other := limits.New(cfg, shared(t, prefix(t), nil).Stores(), limits.NewLockout(testPolicy, limits.NewMemoryLockoutStore(), nil))
		if _, err := other.AllowIP(ctx, netip.MustParseAddr("192.0.2.77")); err != nil {
			t.Fatal(err)
		}
	})
}

// silentServer accepts TCP connections and never answers: a Redis that
// hangs rather than refuses. accepted reports how many connections it
// took.
func silentServer(t *testing.T) (addr string, accepted func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() { _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String(), func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(conns)
	}
}

// TestDeadRedis: a Redis that refuses or hangs must neither stop the
// server starting nor stall requests. Read budgets and lockouts then count
// in memory, per replica; destructive budgets fail closed. Nothing here is
// timed: the circuit breaker runs on a clock the test holds still, and
// what is counted is how often the client reaches for the dead Redis.
func TestDeadRedis(t *testing.T) {
	ctx := context.Background()
	const password = "hunter2-redis-password"
	deadRedis := []struct {
		name string
		addr func(t *testing.T) (string, func() int)
	}{
		{"NothingListens", func(*testing.T) (string, func() int) { return "127.0.0.1:1", nil }},
		{"ServerNeverAnswers", silentServer},
	}
	for _, d := range deadRedis {
		t.Run(d.name, func(t *testing.T) {
			logger, logs := testLogger()
			redisstore.RouteLogs(logger) // as the server does at start-up
			addr, accepted := d.addr(t)
			clock := testenv.NewClock()
			counters, err := redisstore.New("redis://:"+password+"@"+addr+"/0", prefix(t), logger, clock.Now)
			if err != nil {
				t.Fatalf("a dead Redis stopped start-up: %v", err)
			}
			t.Cleanup(func() { _ = counters.Close() })
			if accepted != nil && accepted() != 0 {
				t.Errorf("New connected to Redis: it must connect lazily")
			}
			// Wired as the server wires it with REDIS_URL set.
			lockout := limits.NewLockout(testPolicy, counters.LockoutStore(), clock.Now)
			l := limits.New(limitsConfig(func(c *limits.Config) {
				c.PerIP, c.PerPrincipal, c.NotFoundPerPrincipal = perWindow(3), perWindow(3), perWindow(3)
			}), counters.Stores(), lockout)

			// count runs n calls of op and returns how many were refused by
			// a limit; any other error fails the test.
			count := func(t *testing.T, n int, op func() error) (refused int) {
				t.Helper()
				for i := range n {
					err := op()
					var le *limits.Error
					switch {
					case errors.As(err, &le):
						refused++
					case err != nil:
						t.Fatalf("call %d: %v", i+1, err)
					}
				}
				return refused
			}

			t.Run("PerIPLimitStillHoldsInMemory", func(t *testing.T) {
				if refused := count(t, 20, func() error {
					_, err := l.AllowIP(ctx, netip.MustParseAddr("192.0.2.10"))
					return err
				}); refused != 17 {
					t.Errorf("%d of 20 refused, want 17 (limit 3)", refused)
				}
			})
			t.Run("PerPrincipalLimitStillHoldsInMemory", func(t *testing.T) {
				p := principal(t)
				if refused := count(t, 20, func() error {
					release, _, err := l.Admit(ctx, p)
					if release != nil {
						release()
					}
					return err
				}); refused != 17 {
					t.Errorf("%d of 20 refused, want 17 (limit 3)", refused)
				}
			})
			t.Run("EnumerationThrottleStillHoldsInMemory", func(t *testing.T) {
				p := principal(t)
				if refused := count(t, 10, func() error { return l.Missed(ctx, p) }); refused != 7 {
					t.Errorf("%d of 10 refused, want 7 (limit 3)", refused)
				}
				limited(t, l.Probing(ctx, p), window)
			})
			t.Run("LockoutStillLocksInMemory", func(t *testing.T) {
				bucket := limits.AddressBucket(randomIP(t))
				if refused := count(t, 20, func() error {
					if err := lockout.Check(ctx, bucket); err != nil {
						return err
					}
					return lockout.Fail(ctx, bucket)
				}); refused != 20-testPolicy.Threshold+1 {
					t.Errorf("%d of 20 refused, want %d", refused, 20-testPolicy.Threshold+1)
				}
			})
			t.Run("CancelOrderFailsClosed", func(t *testing.T) {
				p := principal(t)
				for i := range 5 {
					err := l.AdmitDestructive(ctx, p)
					if err == nil {
						t.Fatalf("cancel %d admitted without its shared budget", i+1)
					}
					assertNoLeak(t, []string{password}, err.Error())
				}
			})
			t.Run("TheCircuitBreakerSparesTheDeadRedis", func(t *testing.T) {
				// Everything above, some fifty operations, reached for
				// Redis once: the breaker stayed open on a clock that did
				// not move. (The second try is the dialer's single retry.)
				if accepted != nil && accepted() > 2 {
					t.Errorf("the hanging Redis was dialled %d times while the breaker was open", accepted())
				}
			})
			t.Run("OutageIsLoggedWithoutThePassword", func(t *testing.T) {
				if !strings.Contains(logs.String(), "Redis unreachable") {
					t.Errorf("no outage in the log: %s", logs.String())
				}
				assertNoLeak(t, []string{password}, logs.String())
			})
		})
	}
}

func TestLimitErrorRetryAfterSeconds(t *testing.T) {
	tests := []struct {
		name  string
		after time.Duration
		want  int
	}{
		{"ZeroIsOneSecond", 0, 1},
		{"NegativeIsOneSecond", -5 * time.Second, 1},
		{"FractionsRoundUp", 1500 * time.Millisecond, 2},
		{"WholeSecondsStay", time.Minute, 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &limits.Error{What: "requests from this address", RetryAfter: tt.after}
			if got := e.RetryAfterSeconds(); got != tt.want {
				t.Fatalf("RetryAfterSeconds = %d, want %d", got, tt.want)
			}
			if !strings.Contains(e.Error(), "requests from this address") || !strings.HasPrefix(e.Error(), "Too many requests") {
				t.Fatalf("message %q", e.Error())
			}
		})
	}
}
