package security_test

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
	"github.com/example/order-mcp/internal/security"
	"github.com/example/order-mcp/internal/store"
	"github.com/example/order-mcp/internal/testenv"
)

// testPolicy is small enough to trip in a few calls, with locks long
// enough that none expires during a test.
var testPolicy = security.LockoutPolicy{
	Threshold: 3, AddressThreshold: 5, Window: time.Minute,
	Base: time.Minute, Max: 4 * time.Minute, Decay: time.Hour,
}

// lockoutBackends are the lockout stores. open returns a function that
// opens a new instance over one shared state each time it is called (a
// restarted process, or another replica); the memory store has no state
// beyond its instance, so shared is false and open always returns the same
// one.
var lockoutBackends = []struct {
	name   string
	shared bool
	open   func(t *testing.T) func(t *testing.T) security.LockoutStore
}{
	{"Postgres", true, func(*testing.T) func(t *testing.T) security.LockoutStore {
		return func(t *testing.T) security.LockoutStore { return dbtest.App(t, dsn, store.Options{}) }
	}},
	{"Redis", true, func(t *testing.T) func(t *testing.T) security.LockoutStore {
		p := prefix(t)
		return func(t *testing.T) security.LockoutStore { return security.NewRedisLockoutStore(shared(t, p)) }
	}},
	{"Memory", false, func(*testing.T) func(t *testing.T) security.LockoutStore {
		m := security.NewMemoryLockoutStore()
		return func(*testing.T) security.LockoutStore { return m }
	}},
}

// lockedFor asserts that err is a lockout whose RetryAfter is want (less
// the time the test itself took).
func lockedFor(t *testing.T, err error, want time.Duration) {
	t.Helper()
	var le *security.LimitError
	if !errors.As(err, &le) {
		t.Fatalf("got %v, want a lock of %v", err, want)
	}
	if le.RetryAfter > want+50*time.Millisecond || le.RetryAfter < want-5*time.Second {
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
			l := security.NewLockout(testPolicy, b.open(t)(t))
			key := newKey(t)
			bucket := security.AuthBucket(randomIP(t), key.Key)

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
				err := l.Fail(ctx, bucket)
				lockedFor(t, err, want)
				lockedFor(t, l.Check(ctx, bucket), want)
				assertNoLeak(t, []string{key.Key, secretOf(key.Key), key.KeyID}, err.Error())
				prev = want
			}
		})
	}
}

func TestAuthBucketSeparatesKeysAndAddresses(t *testing.T) {
	ctx := context.Background()
	for _, b := range lockoutBackends {
		t.Run(b.name, func(t *testing.T) {
			l := security.NewLockout(testPolicy, b.open(t)(t))
			attacker, elsewhere := randomIP(t), randomIP(t)
			x, y := newKey(t), newKey(t)

			// The attack: guessing secrets for key x from one address.
			for i := range testPolicy.Threshold {
				guess := "osmcp_" + x.KeyID + "_" + secretOf(newKey(t).Key)
				err := l.Fail(ctx, security.AuthBucket(attacker, guess))
				if i == testPolicy.Threshold-1 {
					lockedFor(t, err, testPolicy.Base)
				}
			}

			tests := []struct {
				name       string
				ip         netip.Addr
				credential string
				locked     bool
			}{
				{"SameKeyFromTheSameAddressIsLocked", attacker, x.Key, true},
				{"SameKeyIDWithAnotherSecretIsLocked", attacker, "osmcp_" + x.KeyID + "_" + secretOf(y.Key), true},
				{"SameKeyIDWithAMalformedSecretIsLocked", attacker, "osmcp_" + x.KeyID + "_zz", true},
				{"AnotherKeyFromTheSameAddressIsNotLocked", attacker, y.Key, false},
				{"SameKeyFromAnotherAddressIsNotLocked", elsewhere, x.Key, false},
				{"GarbageFromTheSameAddressIsNotLockedByKeyedFailures", attacker, "garbage", false},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					err := l.Check(ctx, security.AuthBucket(tt.ip, tt.credential))
					if tt.locked {
						lockedFor(t, err, testPolicy.Base)
					} else {
						notLocked(t, err, tt.credential)
					}
				})
			}
		})
	}
}

func TestGarbageCredentialsLockTheAddressAtTheHigherThreshold(t *testing.T) {
	ctx := context.Background()
	for _, b := range lockoutBackends {
		t.Run(b.name, func(t *testing.T) {
			l := security.NewLockout(testPolicy, b.open(t)(t))
			attacker := randomIP(t)
			// Garbage of every kind, different each time: none names a key.
			garbage := []string{"garbage", "a.b.c", "osmcp_", "osmcp_short_x", "osmcp_ABCDEFGHIJKL_x", "Basic dXNlcjpwYXNz"}
			for i := range testPolicy.AddressThreshold - 1 {
				notLocked(t, l.Fail(ctx, security.AuthBucket(attacker, garbage[i])), "garbage below the address threshold")
			}
			notLocked(t, l.Check(ctx, security.AuthBucket(attacker, "garbage")), "past the keyed threshold, below the address threshold")
			lockedFor(t, l.Fail(ctx, security.AuthBucket(attacker, garbage[testPolicy.AddressThreshold-1])), testPolicy.Base)

			tests := []struct {
				name       string
				ip         netip.Addr
				credential string
				locked     bool
			}{
				{"OtherGarbageFromTheSameAddressIsLocked", attacker, "something else entirely", true},
				{"EmptyCredentialFromTheSameAddressIsLocked", attacker, "", true},
				{"GarbageFromAnotherAddressIsNotLocked", randomIP(t), "garbage", false},
				{"ARealKeyFromTheSameAddressIsNotLocked", attacker, newKey(t).Key, false},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					err := l.Check(ctx, security.AuthBucket(tt.ip, tt.credential))
					if tt.locked {
						lockedFor(t, err, testPolicy.Base)
					} else {
						notLocked(t, err, tt.credential)
					}
				})
			}
		})
	}
}

func TestLockoutBucketsAreDistinct(t *testing.T) {
	ip := netip.MustParseAddr("192.0.2.1")
	key := newKey(t)
	names := map[string]string{
		"keyed":    security.AuthBucket(ip, key.Key).Name,
		"address":  security.AuthBucket(ip, "garbage").Name,
		"invalid":  security.InvalidInputBucket("apikey:" + key.KeyID).Name,
		"other ip": security.AuthBucket(netip.MustParseAddr("192.0.2.2"), "garbage").Name,
	}
	seen := map[string]string{}
	for what, name := range names {
		if other, dup := seen[name]; dup {
			t.Errorf("%s and %s share the bucket %q", what, other, name)
		}
		seen[name] = what
		assertNoLeak(t, []string{secretOf(key.Key)}, name)
	}
}

func TestLockoutStateSurvivesRestartsAndIsSharedByReplicas(t *testing.T) {
	ctx := context.Background()
	for _, b := range lockoutBackends {
		if !b.shared {
			continue // per-process by design: the fallback while Redis is down
		}
		t.Run(b.name, func(t *testing.T) {
			open := b.open(t)
			replicaA := security.NewLockout(testPolicy, open(t))
			replicaB := security.NewLockout(testPolicy, open(t))
			bucket := security.AuthBucket(randomIP(t), newKey(t).Key)

			// Failures spread over two replicas add up: neither alone saw
			// enough to lock.
			notLocked(t, replicaA.Fail(ctx, bucket), "first failure, replica A")
			notLocked(t, replicaB.Fail(ctx, bucket), "second failure, replica B")
			lockedFor(t, replicaA.Fail(ctx, bucket), testPolicy.Base)

			t.Run("OtherReplicaSeesTheLock", func(t *testing.T) {
				lockedFor(t, replicaB.Check(ctx, bucket), testPolicy.Base)
			})
			t.Run("RestartedProcessSeesTheLock", func(t *testing.T) {
				restarted := security.NewLockout(testPolicy, open(t))
				lockedFor(t, restarted.Check(ctx, bucket), testPolicy.Base)
			})
		})
	}
}

func TestLockoutCountsConcurrentFailuresExactly(t *testing.T) {
	// A burst of parallel guesses against a fresh bucket, spread over two
	// replicas, must count every guess: otherwise a burst is a free pass.
	ctx := context.Background()
	const burst = 24
	policy := testPolicy
	policy.Threshold = burst
	for _, b := range lockoutBackends {
		if !b.shared {
			continue
		}
		t.Run(b.name, func(t *testing.T) {
			open := b.open(t)
			stores := []security.LockoutStore{open(t), open(t)}
			replicas := []*security.Lockout{security.NewLockout(policy, stores[0]), security.NewLockout(policy, stores[1])}
			bucket := security.AuthBucket(randomIP(t), newKey(t).Key)

			// Open the replicas' connections first, as a running server
			// has them: the burst then really runs in parallel.
			var wg sync.WaitGroup
			for _, st := range stores {
				for range burst / 2 {
					wg.Go(func() { _, _ = st.LockedUntil(ctx, []string{bucket.Name}) })
				}
			}
			wg.Wait()
			start := make(chan struct{})
			errs := make(chan error, burst)
			for i := range burst {
				wg.Go(func() {
					<-start
					err := replicas[i%2].Fail(ctx, bucket)
					var le *security.LimitError
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
			observer := security.NewLockout(policy, open(t))
			lockedFor(t, observer.Check(ctx, bucket), policy.Base)
		})
	}
}

func TestLockoutWindowAndDecay(t *testing.T) {
	ctx := context.Background()

	t.Run("FailuresFurtherApartThanTheWindowDoNotAddUp", func(t *testing.T) {
		p := testPolicy
		p.Threshold, p.Window = 2, 100*time.Millisecond
		l := security.NewLockout(p, security.NewMemoryLockoutStore())
		bucket := security.AuthBucket(randomIP(t), newKey(t).Key)
		notLocked(t, l.Fail(ctx, bucket), "first failure")
		time.Sleep(150 * time.Millisecond)
		notLocked(t, l.Fail(ctx, bucket), "a failure after the window")
		lockedFor(t, l.Fail(ctx, bucket), p.Base) // two within the window
	})
	t.Run("PastLocksAreForgottenAfterTheDecay", func(t *testing.T) {
		p := testPolicy
		p.Threshold, p.Decay = 1, 100*time.Millisecond
		l := security.NewLockout(p, security.NewMemoryLockoutStore())
		bucket := security.AuthBucket(randomIP(t), newKey(t).Key)
		lockedFor(t, l.Fail(ctx, bucket), p.Base)
		lockedFor(t, l.Fail(ctx, bucket), 2*p.Base)
		time.Sleep(150 * time.Millisecond)
		lockedFor(t, l.Fail(ctx, bucket), p.Base)
	})
	t.Run("PastLocksAreRememberedWithinTheDecay", func(t *testing.T) {
		p := testPolicy
		p.Threshold, p.Window = 1, 10*time.Millisecond
		l := security.NewLockout(p, security.NewMemoryLockoutStore())
		bucket := security.AuthBucket(randomIP(t), newKey(t).Key)
		lockedFor(t, l.Fail(ctx, bucket), p.Base)
		time.Sleep(20 * time.Millisecond) // past the window, within the decay
		lockedFor(t, l.Fail(ctx, bucket), 2*p.Base)
	})
}

func TestLockoutCheckReportsTheLatestLockOfSeveralBuckets(t *testing.T) {
	ctx := context.Background()
	p := testPolicy
	p.Threshold, p.AddressThreshold = 1, 1
	for _, b := range lockoutBackends {
		t.Run(b.name, func(t *testing.T) {
			l := security.NewLockout(p, b.open(t)(t))
			ip := randomIP(t)
			short, long, free := security.InvalidInputBucket("apikey:"+ip.String()), security.AuthBucket(ip, "garbage"), security.AuthBucket(ip, newKey(t).Key)
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
	m := security.NewMemoryLockoutStore()
	now := time.Now()

	t.Run("UnknownBucketsAreNotLocked", func(t *testing.T) {
		until, err := m.LockedUntil(ctx, []string{"a", "b"})
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
		until, _ := m.LockedUntil(ctx, []string{"a", "b", "c"})
		if !until.Equal(now.Add(time.Hour)) {
			t.Fatalf("LockedUntil = %v, want %v", until, now.Add(time.Hour))
		}
	})
	t.Run("FloodOfNewBucketsDoesNotLiftALock", func(t *testing.T) {
		// While Redis is down this store is the lockout. An attacker with
		// many source addresses (an IPv6 /64 holds 2^64) creates a bucket
		// per address; that must not unlock the key it is guessing.
		l := security.NewLockout(security.LockoutPolicy{
			Threshold: 1, AddressThreshold: 1, Window: time.Minute, Base: time.Hour, Max: time.Hour, Decay: time.Hour,
		}, m)
		guessed := security.AuthBucket(netip.MustParseAddr("2001:db8::1"), newKey(t).Key)
		lockedFor(t, l.Fail(ctx, guessed), time.Hour)
		base := netip.MustParseAddr("2001:db8:1::").As16()
		for i := range 100_001 {
			a := base
			a[4], a[5], a[6], a[7] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i) // a /64 each
			_ = l.Fail(ctx, security.AddressBucket(netip.AddrFrom16(a)))
		}
		lockedFor(t, l.Check(ctx, guessed), time.Hour)
	})
}

func TestRedisLockoutContentionIsNotAnOutage(t *testing.T) {
	// A burst of failures on one bucket makes two replicas' optimistic
	// transactions collide. That is contention, not an outage: it must not
	// switch a replica to per-process counting, nor make it refuse
	// cancel_order, which fails closed while Redis is down. Otherwise any
	// client can turn off cancellations by failing in parallel.
	ctx := context.Background()
	const burst = 40
	p := prefix(t)
	policy := testPolicy
	policy.Threshold = 1_000
	var (
		limits []*security.Limits
		fails  []*security.Lockout
		logs   []*testenv.Buffer
	)
	for range 2 {
		counters, log := sharedLogged(t, p)
		lockout := security.NewLockout(policy, security.NewRedisLockoutStore(counters))
		limits = append(limits, security.NewLimits(testenv.GenerousLimits(), counters, lockout))
		fails = append(fails, lockout)
		logs = append(logs, log)
	}
	bucket := security.AuthBucket(randomIP(t), newKey(t).Key)
	for _, l := range fails {
		notLocked(t, l.Check(ctx, bucket), "warm-up")
	}

	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range burst {
		wg.Go(func() {
			<-start
			_ = fails[i%2].Fail(ctx, bucket)
		})
	}
	close(start)
	wg.Wait()

	for i, l := range limits {
		if err := l.AdmitDestructive(ctx, principal(t)); err != nil {
			t.Errorf("replica %d refuses cancel_order after a burst of failed logins: %v", i+1, err)
		}
		if strings.Contains(logs[i].String(), "Redis unreachable") {
			t.Errorf("replica %d reported Redis down while it answered: %s", i+1, logs[i].String())
		}
	}
}
