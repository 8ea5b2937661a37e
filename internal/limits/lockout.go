package limits

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/example/order-mcp/internal/store"
)

// Policy says when repeated failures lock a bucket, and for how long.
type Policy struct {
	// Threshold failures within Window lock a bucket.
	Threshold int
	// Window is how long failures are counted together.
	Window time.Duration
	// Base is the first lock's length; each further lock doubles it, up to
	// Max.
	Base, Max time.Duration
	// Decay forgets past locks after this long without a failure.
	Decay time.Duration
}

// DefaultPolicy: 20 failures in 10 minutes lock a bucket for a minute,
// then 2, 4, 8... up to an hour; a day without failures forgets the
// strikes.
func DefaultPolicy() Policy {
	return Policy{Threshold: 20, Window: 10 * time.Minute, Base: time.Minute, Max: time.Hour, Decay: 24 * time.Hour}
}

// Bucket is one lockout counter.
type Bucket struct{ Name string }

// AddressKey is how an address is counted by the limits and lockouts: an
// IPv4 address as itself, an IPv6 address by its /64, since one host
// usually holds a whole /64 and could otherwise rotate through it.
func AddressKey(ip netip.Addr) string {
	if ip.Is6() && !ip.Is4In6() {
		return netip.PrefixFrom(ip, 64).Masked().String()
	}
	return ip.String()
}

// AddressBucket counts the failed credentials sent from one address: every
// kind of credential (API keys, whether their key id exists or not, JWTs
// and garbage) in one bucket, with one threshold.
//
// The lockout is a cost control, not a defence against guessing: a key
// has 256 random bits of secret and a JWT a signature, so neither can be
// guessed. What it does stop is a flood of failing attempts costing
// database lookups. Counting per address, whatever key id a credential
// names, means that
//
//   - the key id, which is public (it appears in `keys list`, logs and the
//     audit trail), cannot be used to lock one client out: there is no
//     bucket of its own to fill; and
//   - failures with an existing key id and with a made-up one are counted,
//     answered and locked exactly alike, so the lockout tells nobody which
//     key ids exist.
//
// A client behind the same address as an attacker is not locked out with
// it: the HTTP layer still serves a locked address's requests whose key it
// has seen succeed (RecentKeys), and refuses before any database work only
// the credentials it cannot tell from the flood.
func AddressBucket(ip netip.Addr) Bucket { return Bucket{Name: "auth:" + AddressKey(ip)} }

// InvalidInputBucket counts a caller's malformed requests: bodies that do
// not parse, and tool calls with invalid arguments.
func InvalidInputBucket(subject string) Bucket { return Bucket{Name: "invalid:" + subject} }

// LockoutStore keeps lockout state where every replica sees it and a
// restart does not clear it: Postgres by default (*store.Store), Redis with
// REDIS_URL (internal/redisstore). now is the Lockout's clock, passed in so
// that a store compares with the same time as the policy that wrote.
type LockoutStore interface {
	LockedUntil(ctx context.Context, buckets []string, now time.Time) (time.Time, error)
	UpdateLockout(ctx context.Context, bucket string, update func(*store.LockoutState)) (store.LockoutState, error)
}

// Pruner is implemented by lockout stores that must forget stale buckets
// themselves (Postgres; Redis expires them).
type Pruner interface {
	PruneLockouts(ctx context.Context, idle time.Duration, now time.Time) (int64, error)
}

// Lockout locks out repeated failures with exponentially growing locks.
//
// Checklist: "block repeated failed requests or malformed payloads".
type Lockout struct {
	policy Policy
	store  LockoutStore
	now    func() time.Time
}

// NewLockout returns a lockout over st. Zero fields of policy take their
// defaults, so a partial policy cannot switch the lockout off by accident.
// now is the clock (nil: time.Now); tests pass one they move by hand, so
// that no test waits for a lock to expire.
func NewLockout(policy Policy, st LockoutStore, now func() time.Time) *Lockout {
	d := DefaultPolicy()
	if policy.Threshold <= 0 {
		policy.Threshold = d.Threshold
	}
	if policy.Window <= 0 {
		policy.Window = d.Window
	}
	if policy.Base <= 0 {
		policy.Base = d.Base
	}
	if policy.Max < policy.Base {
		policy.Max = max(d.Max, policy.Base)
	}
	if policy.Decay <= 0 {
		policy.Decay = d.Decay
	}
	if now == nil {
		now = time.Now
	}
	return &Lockout{policy: policy, store: st, now: now}
}

// Policy returns the policy in force.
func (l *Lockout) Policy() Policy { return l.policy }

// Check refuses with an *Error if any of the buckets is locked.
func (l *Lockout) Check(ctx context.Context, buckets ...Bucket) error {
	names := make([]string, len(buckets))
	for i, b := range buckets {
		names[i] = b.Name
	}
	now := l.now()
	until, err := l.store.LockedUntil(ctx, names, now)
	if err != nil {
		return err
	}
	if wait := until.Sub(now); wait > 0 {
		return &Error{What: "failed attempts from this client", RetryAfter: wait}
	}
	return nil
}

// Fail records one failure in b and returns an *Error if b is locked as a
// result (or already was).
func (l *Lockout) Fail(ctx context.Context, b Bucket) error {
	now := l.now()
	st, err := l.store.UpdateLockout(ctx, b.Name, func(st *store.LockoutState) {
		l.policy.apply(st, now)
	})
	if err != nil {
		return err
	}
	if wait := st.LockedUntil.Sub(now); wait > 0 {
		return &Error{What: "failed attempts from this client", RetryAfter: wait}
	}
	return nil
}

// Prune forgets buckets that are neither locked nor failed within the
// policy's decay, so the table does not grow with every address that ever
// failed once.
func (l *Lockout) Prune(ctx context.Context) (int64, error) {
	if p, ok := l.store.(Pruner); ok {
		return p.PruneLockouts(ctx, l.policy.Decay, l.now())
	}
	return 0, nil
}

// apply counts one failure at now.
func (p Policy) apply(st *store.LockoutState, now time.Time) {
	if st.UpdatedAt.IsZero() || now.Sub(st.UpdatedAt) > p.Decay {
		*st = store.LockoutState{}
	}
	if st.WindowStart.IsZero() || now.Sub(st.WindowStart) > p.Window {
		st.Failures, st.WindowStart = 0, now
	}
	st.Failures++
	st.UpdatedAt = now
	if st.Failures < p.Threshold {
		return
	}
	st.Strikes++
	lock := p.Base << min(st.Strikes-1, 20)
	if lock > p.Max || lock <= 0 {
		lock = p.Max
	}
	st.LockedUntil = now.Add(lock)
	st.Failures, st.WindowStart = 0, now
}

// MaxMemoryBuckets is the most buckets a MemoryLockoutStore holds. Past it,
// unlocked buckets are forgotten first; locks are never lifted early.
const MaxMemoryBuckets = 100_000

// MemoryLockoutStore keeps lockout state in this process only. It is the
// fallback while Redis is unreachable, not a configuration of its own: a
// restart would forget every lockout.
type MemoryLockoutStore struct {
	mu      sync.Mutex
	buckets map[string]store.LockoutState
}

// NewMemoryLockoutStore returns an empty store.
func NewMemoryLockoutStore() *MemoryLockoutStore {
	return &MemoryLockoutStore{buckets: make(map[string]store.LockoutState)}
}

// LockedUntil implements LockoutStore.
func (m *MemoryLockoutStore) LockedUntil(_ context.Context, buckets []string, now time.Time) (time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var latest time.Time
	for _, b := range buckets {
		if u := m.buckets[b].LockedUntil; u.After(latest) && u.After(now) {
			latest = u
		}
	}
	return latest, nil
}

// UpdateLockout implements LockoutStore.
func (m *MemoryLockoutStore) UpdateLockout(_ context.Context, bucket string, update func(*store.LockoutState)) (store.LockoutState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, known := m.buckets[bucket]; !known && len(m.buckets) >= MaxMemoryBuckets {
		// Bound memory under a flood of new buckets, without lifting any
		// lock: only buckets that are not locked are forgotten.
		now := time.Now()
		for name, st := range m.buckets {
			if !st.LockedUntil.After(now) {
				delete(m.buckets, name)
			}
		}
	}
	st := m.buckets[bucket]
	update(&st)
	m.buckets[bucket] = st
	return st, nil
}

// MaxRecentKeys is the most key ids a RecentKeys remembers.
const MaxRecentKeys = 10_000

// RecentKeys remembers the API key ids that authenticated successfully in
// this process lately. While an address is locked, the HTTP layer still
// verifies a credential naming one of them (and serves it when it is
// right), so a flood from a shared address (a NAT, an office) does not
// lock out the clients behind it that were already working; any other
// credential from a locked address is refused before any database work.
//
// It holds key ids only (public values), at most MaxRecentKeys, each for
// the lockout policy's decay.
type RecentKeys struct {
	ttl time.Duration
	now func() time.Time

	mu   sync.Mutex
	seen map[string]time.Time
}

// NewRecentKeys remembers key ids for ttl on the clock now (nil: time.Now).
func NewRecentKeys(ttl time.Duration, now func() time.Time) *RecentKeys {
	if now == nil {
		now = time.Now
	}
	return &RecentKeys{ttl: ttl, now: now, seen: make(map[string]time.Time)}
}

// Add records that keyID authenticated now.
func (r *RecentKeys) Add(keyID string) {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.seen[keyID]; !ok && len(r.seen) >= MaxRecentKeys {
		for id, at := range r.seen {
			if now.Sub(at) > r.ttl {
				delete(r.seen, id)
			}
		}
		for id := range r.seen { // still full: forget arbitrary ones
			if len(r.seen) < MaxRecentKeys*3/4 {
				break
			}
			delete(r.seen, id)
		}
	}
	r.seen[keyID] = now
}

// Has reports whether keyID authenticated within the ttl.
func (r *RecentKeys) Has(keyID string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.seen[keyID]
	return ok && r.now().Sub(at) <= r.ttl
}
