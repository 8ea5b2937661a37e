package limits_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/example/order-mcp/internal/dbtest"
	"github.com/example/order-mcp/internal/limits"
	"github.com/example/order-mcp/internal/store"
	"github.com/example/order-mcp/internal/testenv"
)

// testPolicy is small enough to trip in a few calls.
var testPolicy = limits.Policy{
	Threshold: 3, Window: time.Minute, Base: time.Minute, Max: 4 * time.Minute, Decay: time.Hour,
}

// lockoutBackends are the lockout stores. open returns a function that
// opens a new instance over one shared state each time it is called (a
// restarted process, or another replica); the memory store has no state
// beyond its instance, so shared is false and open always returns the same
// one.
var lockoutBackends = []struct {
	name   string
	shared bool
	open   func(t *testing.T) func(t *testing.T) limits.LockoutStore
}{
	{"Postgres", true, func(*testing.T) func(t *testing.T) limits.LockoutStore {
		return func(t *testing.T) limits.LockoutStore { return dbtest.App(t, dsn, store.Options{}) }
	}},
	{"Redis", true, func(t *testing.T) func(t *testing.T) limits.LockoutStore {
		p := prefix(t)
		return func(t *testing.T) limits.LockoutStore { return shared(t, p, nil).LockoutStore() }
	}},
	{"Memory", false, func(*testing.T) func(t *testing.T) limits.LockoutStore {
		m := limits.NewMemoryLockoutStore()
		return func(*testing.T) limits.LockoutStore { return m }
	}},
}

// lockedFor asserts that err is a lockout whose RetryAfter is exactly want:
// the lockout runs on the test's clock, which moves only when told to.
func lockedFor(t *testing.T, err error, want time.Duration) {
	t.Helper()
	var le *limits.Error
	if !errors.As(err, &le) {
		t.Fatalf("got %v, want a lock of %v", err, want)
	}
	if le.RetryAfter != want {
		t.Fatalf("locked for %v, want %v", le.RetryAfter, want)
	}
}

// notLocked asserts that err is nil.
func notLocked(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v, want no lock", what, err)
	}
}

func TestLockoutLocksRepeatedFailuresWithGrowingLocks(t *testing.T) {
	ctx := context.Background()
	for _, b := range lockoutBackends {
		t.Run(b.name, func(t *testing.T) {
			clock := testenv.NewClock()
			l := limits.NewLockout(testPolicy, b.open(t)(t), clock.Now)
			bucket := limits.AddressBucket(randomIP(t))

			notLocked(t, l.Check(ctx, bucket), "before any failure")

			// Each round of Threshold failures is one more strike: the lock
			// doubles from Base and stops at Max.
			prev := time.Duration(0)
			for _, want := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 4 * time.Minute, 4 * time.Minute} {
				for i := 1; i < testPolicy.Threshold; i++ {
					if err := l.Fail(ctx, bucket); prev == 0 {
						notLocked(t, err, fmt.Sprintf("failure %d", i))
					} else {
						lockedFor(t, err, prev) // still under the last lock
					}
				}
				if prev == 0 {
					notLocked(t, l.Check(ctx, bucket), "below the threshold")
				}
				lockedFor(t, l.Fail(ctx, bucket), want)
				lockedFor(t, l.Check(ctx, bucket), want)
				prev = want
			}
		})
	}
}

// TestLockoutExpiresOnItsClock: a lock holds for exactly its length, on
// every store, and then lets the bucket through. Nothing waits: the clock
// is moved.
func TestLockoutExpiresOnItsClock(t *testing.T) {
	ctx := context.Background()
	for _, b := range lockoutBackends {
		t.Run(b.name, func(t *testing.T) {
			clock := testenv.NewClock()
			l := limits.NewLockout(testPolicy, b.open(t)(t), clock.Now)
			bucket := limits.AddressBucket(randomIP(t))
			for range testPolicy.Threshold {
				_ = l.Fail(ctx, bucket)
			}
			lockedFor(t, l.Check(ctx, bucket), testPolicy.Base)
			clock.Advance(testPolicy.Base - time.Second)
			lockedFor(t, l.Check(ctx, bucket), time.Second)
			clock.Advance(time.Second)
			notLocked(t, l.Check(ctx, bucket), "when the lock ends")
		})
	}
}

// TestFailuresCountPerAddressWhateverTheKeyID: the bucket of a failed
// credential is its address's, whatever key id it names. A public key id
// therefore gives no bucket of its own to fill (nobody can lock one
// client out by its key id), and an existing key id is counted exactly
// like a made-up one.
func TestFailuresCountPerAddressWhateverTheKeyID(t *testing.T) {
	ip := netip.MustParseAddr("192.0.2.7")
	if limits.AddressBucket(ip) != limits.AddressBucket(netip.MustParseAddr("192.0.2.7")) {
		t.Fatal("the same address gives two buckets")
	}
	names := map[string]string{
		"address":       limits.AddressBucket(ip).Name,
		"other address": limits.AddressBucket(netip.MustParseAddr("192.0.2.8")).Name,
		"invalid input": limits.InvalidInputBucket("apikey:abcdefghijkl").Name,
		"same /64":      limits.AddressBucket(netip.MustParseAddr("2001:db8::1")).Name,
	}
	seen := map[string]string{}
	for what, name := range names {
		if other, dup := seen[name]; dup {
			t.Errorf("%s and %s share the bucket %q", what, other, name)
		}
		seen[name] = what
	}
	if limits.AddressBucket(netip.MustParseAddr("2001:db8::1")) != limits.AddressBucket(netip.MustParseAddr("2001:db8::ffff")) {
		t.Error("two addresses of one IPv6 /64 count apart: a host could rotate through its /64")
	}
}

func TestLockoutStateSurvivesRestartsAndIsSharedByReplicas(t *testing.T) {
	ctx := context.Background()
	for _, b := range lockoutBackends {
		if !b.shared {
			continue // per-process by design: the fallback while Redis is down
		}
		t.Run(b.name, func(t *testing.T) {
			open, clock := b.open(t), testenv.NewClock()
			replicaA := limits.NewLockout(testPolicy, open(t), clock.Now)
			replicaB := limits.NewLockout(testPolicy, open(t), clock.Now)
			bucket := limits.AddressBucket(randomIP(t))

			// Failures spread over two replicas add up: neither alone saw
			// enough to lock.
			notLocked(t, replicaA.Fail(ctx, bucket), "first failure, replica A")
			notLocked(t, replicaB.Fail(ctx, bucket), "second failure, replica B")
			lockedFor(t, replicaA.Fail(ctx, bucket), testPolicy.Base)

			t.Run("OtherReplicaSeesTheLock", func(t *testing.T) {
				lockedFor(t, replicaB.Check(ctx, bucket), testPolicy.Base)
			})
			t.Run("RestartedProcessSeesTheLock", func(t *testing.T) {
				restarted := limits.NewLockout(testPolicy, open(t), clock.Now)
				lockedFor(t, restarted.Check(ctx, bucket), testPolicy.Base)
			})
		})
	}
}

func TestLockoutCountsConcurrentFailuresExactly(t *testing.T) {
	// A burst of parallel failures against a fresh bucket, spread over two
	// replicas, must count every one: otherwise a burst is a free pass.
	ctx := context.Background()
	const burst = 24
	policy := testPolicy
	policy.Threshold = burst
	for _, b := range lockoutBackends {
		if !b.shared {
			continue
		}
		t.Run(b.name, func(t *testing.T) {
			open, clock := b.open(t), testenv.NewClock()
			stores := []limits.LockoutStore{open(t), open(t)}
			replicas := []*limits.Lockout{limits.NewLockout(policy, stores[0], clock.Now), limits.NewLockout(policy, stores[1], clock.Now)}
			bucket := limits.AddressBucket(randomIP(t))

			// Open the replicas' connections first, as a running server
			// has them: the burst then really runs in parallel.
			var wg sync.WaitGroup
			for _, st := range stores {
				for range burst / 2 {
					wg.Go(func() { _, _ = st.LockedUntil(ctx, []string{bucket.Name}, clock.Now()) })
				}
			}
			wg.Wait()
			start := make(chan struct{})
			errs := make(chan error, burst)
			for i := range burst {
				wg.Go(func() {
					<-start
					err := replicas[i%2].Fail(ctx, bucket)
					var le *limits.Error
					if err != nil && !errors.As(err, &le) {
						errs <- err
					}
				})
			}
			close(start)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("failure not recorded: %v", err)
			}
			observer := limits.NewLockout(policy, open(t), clock.Now)
			lockedFor(t, observer.Check(ctx, bucket), policy.Base)
		})
	}
}

func TestLockoutWindowAndDecay(t *testing.T) {
	ctx := context.Background()

	t.Run("FailuresFurtherApartThanTheWindowDoNotAddUp", func(t *testing.T) {
		p := testPolicy
		p.Threshold = 2
		clock := testenv.NewClock()
		l := limits.NewLockout(p, limits.NewMemoryLockoutStore(), clock.Now)
		bucket := limits.AddressBucket(randomIP(t))
		notLocked(t, l.Fail(ctx, bucket), "first failure")
		clock.Advance(p.Window + time.Second)
		notLocked(t, l.Fail(ctx, bucket), "a failure after the window")
		lockedFor(t, l.Fail(ctx, bucket), p.Base) // two within the window
	})
	t.Run("PastLocksAreForgottenAfterTheDecay", func(t *testing.T) {
		p := testPolicy
		p.Threshold = 1
		clock := testenv.NewClock()
		l := limits.NewLockout(p, limits.NewMemoryLockoutStore(), clock.Now)
		bucket := limits.AddressBucket(randomIP(t))
		lockedFor(t, l.Fail(ctx, bucket), p.Base)
		lockedFor(t, l.Fail(ctx, bucket), 2*p.Base)
		clock.Advance(p.Decay + time.Second)
		lockedFor(t, l.Fail(ctx, bucket), p.Base)
	})
	t.Run("PastLocksAreRememberedWithinTheDecay", func(t *testing.T) {
		p := testPolicy
		p.Threshold = 1
		clock := testenv.NewClock()
		l := limits.NewLockout(p, limits.NewMemoryLockoutStore(), clock.Now)
		bucket := limits.AddressBucket(randomIP(t))
		lockedFor(t, l.Fail(ctx, bucket), p.Base)
		clock.Advance(p.Window + time.Second) // past the window and the lock, within the decay
		lockedFor(t, l.Fail(ctx, bucket), 2*p.Base)
	})
}

func TestLockoutCheckReportsTheLatestLockOfSeveralBuckets(t *testing.T) {
	ctx := context.Background()
	p := testPolicy
	p.Threshold = 1
	for _, b := range lockoutBackends {
		t.Run(b.name, func(t *testing.T) {
			l := limits.NewLockout(p, b.open(t)(t), testenv.NewClock().Now)
			ip := randomIP(t)
			short, long, free := limits.InvalidInputBucket("apikey:"+ip.String()), limits.AddressBucket(ip), limits.AddressBucket(randomIP(t))
			lockedFor(t, l.Fail(ctx, short), p.Base)
			lockedFor(t, l.Fail(ctx, long), p.Base)
			lockedFor(t, l.Fail(ctx, long), 2*p.Base)
			lockedFor(t, l.Check(ctx, free, short, long), 2*p.Base)
			notLocked(t, l.Check(ctx, free), "a bucket that never failed")
			notLocked(t, l.Check(ctx), "no bucket")
		})
	}
}

func TestMemoryLockoutStore(t *testing.T) {
	ctx := context.Background()
	m := limits.NewMemoryLockoutStore()
	now := time.Now()

	t.Run("UnknownBucketsAreNotLocked", func(t *testing.T) {
		until, err := m.LockedUntil(ctx, []string{"a", "b"}, now)
		if err != nil || !until.IsZero() {
			t.Fatalf("LockedUntil = %v, %v", until, err)
		}
	})
	t.Run("UpdateStartsFromZeroAndIsKept", func(t *testing.T) {
		st, err := m.UpdateLockout(ctx, "a", func(st *store.LockoutState) {
			if *st != (store.LockoutState{}) {
				t.Errorf("new bucket starts from %+v", *st)
			}
			st.Failures, st.LockedUntil = 1, now.Add(time.Minute)
		})
		if err != nil || st.Failures != 1 {
			t.Fatalf("UpdateLockout = %+v, %v", st, err)
		}
		st, _ = m.UpdateLockout(ctx, "a", func(st *store.LockoutState) { st.Failures++ })
		if st.Failures != 2 {
			t.Fatalf("second update saw %d failures, want 2", st.Failures)
		}
	})
	t.Run("LatestLockOfSeveralBucketsWins", func(t *testing.T) {
		_, _ = m.UpdateLockout(ctx, "b", func(st *store.LockoutState) { st.LockedUntil = now.Add(time.Hour) })
		until, _ := m.LockedUntil(ctx, []string{"a", "b", "c"}, now)
		if !until.Equal(now.Add(time.Hour)) {
			t.Fatalf("LockedUntil = %v, want %v", until, now.Add(time.Hour))
		}
	})
	t.Run("FloodOfNewBucketsDoesNotLiftALock", func(t *testing.T) {
		// While Redis is down this store is the lockout. An attacker with
		// many source addresses (an IPv6 /48 holds 2^16 /64s) creates a
		// bucket per address; that must not unlock the address it locked.
		l := limits.NewLockout(limits.Policy{Threshold: 1, Window: time.Minute, Base: time.Hour, Max: time.Hour, Decay: time.Hour}, m, nil)
		locked := limits.AddressBucket(netip.MustParseAddr("2001:db8::1"))
		if err := l.Fail(ctx, locked); err == nil {
			t.Fatal("not locked")
		}
		base := netip.MustParseAddr("2001:db8:1::").As16()
		for i := range limits.MaxMemoryBuckets + 1 {
			a := base
			a[4], a[5], a[6], a[7] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i) // a /64 each
			_ = l.Fail(ctx, limits.AddressBucket(netip.AddrFrom16(a)))
		}
		if err := l.Check(ctx, locked); err == nil {
			t.Fatal("a flood of new buckets lifted the lock")
		}
	})
}

// TestRecentKeysAreBoundedAndForgotten: the key ids a locked address may
// still be verified for are remembered for the policy's decay on the
// process's clock, and never more than MaxRecentKeys of them.
func TestRecentKeysAreBoundedAndForgotten(t *testing.T) {
	clock := testenv.NewClock()
	r := limits.NewRecentKeys(time.Hour, clock.Now)
	r.Add("abcdefghijkl")
	if !r.Has("abcdefghijkl") || r.Has("mnopqrstuvwx") {
		t.Fatal("Has does not reflect Add")
	}
	clock.Advance(time.Hour + time.Second)
	if r.Has("abcdefghijkl") {
		t.Fatal("a key id is remembered past the ttl")
	}
	for i := range 3 * limits.MaxRecentKeys {
		r.Add(fmt.Sprintf("k%011d", i))
	}
	held := 0
	for i := range 3 * limits.MaxRecentKeys {
		if r.Has(fmt.Sprintf("k%011d", i)) {
			held++
		}
	}
	if held > limits.MaxRecentKeys || !r.Has(fmt.Sprintf("k%011d", 3*limits.MaxRecentKeys-1)) {
		t.Fatalf("%d key ids held (at most %d), the newest one kept: %v", held, limits.MaxRecentKeys,
			r.Has(fmt.Sprintf("k%011d", 3*limits.MaxRecentKeys-1)))
	}
}

func TestRedisLockoutContentionIsNotAnOutage(t *testing.T) {
	// A burst of failures on one bucket makes two replicas' optimistic
	// transactions collide. That is contention, not an outage: it must not
	// switch a replica to per-process counting, nor make it refuse
	// destructive tools, which fail closed while Redis is down. Otherwise
	// any client can turn off cancellations by failing in parallel.
	ctx := context.Background()
	const burst = 40
	p := prefix(t)
	policy := testPolicy
	policy.Threshold = 1_000
	var (
		replicas []*limits.Limits
		lockouts []*limits.Lockout
		logs     []*testenv.Buffer
	)
	for range 2 {
		logger, log := testLogger()
		counters := shared(t, p, logger)
		lockout := limits.NewLockout(policy, counters.LockoutStore(), nil)
		replicas = append(replicas, limits.New(testenv.GenerousLimits(), counters.Stores(), lockout))
		lockouts = append(lockouts, lockout)
		logs = append(logs, log)
	}
	bucket := limits.AddressBucket(randomIP(t))
	for _, l := range lockouts {
		notLocked(t, l.Check(ctx, bucket), "warm-up")
	}

	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range burst {
		wg.Go(func() {
			<-start
			_ = lockouts[i%2].Fail(ctx, bucket)
		})
	}
	close(start)
	wg.Wait()

	for i, l := range replicas {
		if err := l.AdmitDestructive(ctx, principal(t)); err != nil {
			t.Errorf("replica %d refuses cancel_order after a burst of failed logins: %v", i+1, err)
		}
		if strings.Contains(logs[i].String(), "Redis unreachable") {
			t.Errorf("replica %d reported Redis down while it answered: %s", i+1, logs[i].String())
		}
	}
}
