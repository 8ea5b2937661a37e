package security

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/example/order-mcp/internal/store"
)

// LockoutPolicy says when repeated failures lock a bucket, and for how long.
type LockoutPolicy struct {
	// Threshold failures within Window lock a bucket that names a key (an
	// address and a key id) or a principal.
	Threshold int
	// AddressThreshold is the higher threshold of address-only buckets:
	// garbage credentials and malformed payloads that name no key.
	AddressThreshold int
	// Window is how long failures are counted together.
	Window time.Duration
	// Base is the first lock's length; each further lock doubles it, up to
	// Max.
	Base, Max time.Duration
	// Decay forgets past locks after this long without a failure.
	Decay time.Duration
}

// DefaultLockoutPolicy: 5 failures in 10 minutes lock an address+key for a
// minute, then 2, 4, 8... up to an hour; 20 for address-only buckets.
func DefaultLockoutPolicy() LockoutPolicy {
	return LockoutPolicy{
		Threshold: 5, AddressThreshold: 20, Window: 10 * time.Minute,
		Base: time.Minute, Max: time.Hour, Decay: 24 * time.Hour,
	}
}

// Bucket is one lockout counter.
type Bucket struct {
	Name      string
	threshold func(LockoutPolicy) int
}

func keyed(p LockoutPolicy) int       { return p.Threshold }
func addressOnly(p LockoutPolicy) int { return p.AddressThreshold }

// AddressKey is how an address is counted by the limits and lockouts: an
// IPv4 address as itself, an IPv6 address by its /64, since one host
// usually holds a whole /64 and could otherwise rotate through it.
func AddressKey(ip netip.Addr) string {
	if ip.Is6() && !ip.Is4In6() {
		return netip.PrefixFrom(ip, 64).Masked().String()
	}
	return ip.String()
}

// AuthBucket is the bucket checked before a credential from ip is even
// verified. A credential shaped like one of our API keys is checked per
// address and key id, so that a local attacker failing with other keys
// cannot lock out the Claude Desktop on the same machine; anything else per
// address.
func AuthBucket(ip netip.Addr, credential string) Bucket {
	if id := presentedKeyID(credential); id != "" {
		return Bucket{Name: "auth:" + AddressKey(ip) + "|" + id, threshold: keyed}
	}
	return AddressBucket(ip)
}

// AddressBucket counts failures that name no existing key: garbage, forged
// or expired JWTs, made-up key ids. Its threshold is higher.
func AddressBucket(ip netip.Addr) Bucket {
	return Bucket{Name: "auth:" + AddressKey(ip), threshold: addressOnly}
}

// PrecheckBucket is the bucket to check before verifying credential, and
// false when there is none: bearer JWTs are verified first, because every
// OAuth caller behind one address (an office, a proxy) shares the address
// bucket, and garbage sent by one of them must not lock out the others.
// Their failures are still counted per address, and a locked address is
// refused once its next JWT fails.
func PrecheckBucket(ip netip.Addr, credential string) (Bucket, bool) {
	if presentedKeyID(credential) == "" && strings.Count(credential, ".") == 2 {
		return Bucket{}, false
	}
	return AuthBucket(ip, credential), true
}

// FailureBucket is where a refused credential's failure is counted: per
// address and key id when the key exists (a wrong secret, a revoked or
// expired key), per address otherwise. Only an existing key id gets a
// bucket of its own: an attacker inventing a key id per attempt (or sending
// a key-shaped string with a malformed secret) is counted per address, and
// cannot fill the table with one row per invented id.
func FailureBucket(ip netip.Addr, credential string, err *AuthError) Bucket {
	if err != nil && err.KeyExists {
		return AuthBucket(ip, credential)
	}
	return AddressBucket(ip)
}

// InvalidInputBucket counts a caller's malformed requests: bodies that do
// not parse, and tool calls with invalid arguments.
func InvalidInputBucket(subject string) Bucket {
	return Bucket{Name: "invalid:" + subject, threshold: addressOnly}
}

// presentedKeyID returns the key id of a credential shaped like one of our
// API keys, valid or not, or "".
func presentedKeyID(credential string) string {
	rest, ok := strings.CutPrefix(credential, KeyPrefix+"_")
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, "_")
	if !LooksLikeAPIKeyID(id) {
		return ""
	}
	return id
}

// Pruner is implemented by lockout stores that must forget stale buckets
// themselves (Postgres; Redis expires them).
type Pruner interface {
	PruneLockouts(ctx context.Context, idle time.Duration) (int64, error)
}

// Prune forgets buckets that are neither locked nor failed within the
// policy's decay, so the table does not grow with every address that ever
// failed once.
func (l *Lockout) Prune(ctx context.Context) (int64, error) {
	if p, ok := l.store.(Pruner); ok {
		return p.PruneLockouts(ctx, l.policy.Decay)
	}
	return 0, nil
}

// LockoutStore keeps lockout state where every replica sees it and a
// restart does not clear it: Postgres by default (*store.Store), Redis with
// REDIS_URL.
type LockoutStore interface {
	LockedUntil(ctx context.Context, buckets []string) (time.Time, error)
	UpdateLockout(ctx context.Context, bucket string, update func(*store.LockoutState)) (store.LockoutState, error)
}

// Lockout locks out repeated failures with exponentially growing locks.
//
// Checklist: "block repeated failed requests or malformed payloads".
type Lockout struct {
	policy LockoutPolicy
	store  LockoutStore
	now    func() time.Time
}

// NewLockout returns a lockout over st. Zero fields of policy take their
// defaults, so a partial policy cannot switch the lockout off by accident.
func NewLockout(policy LockoutPolicy, st LockoutStore) *Lockout {
	d := DefaultLockoutPolicy()
	if policy.Threshold <= 0 {
		policy.Threshold = d.Threshold
	}
	if policy.AddressThreshold <= 0 {
		policy.AddressThreshold = d.AddressThreshold
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
	return &Lockout{policy: policy, store: st, now: time.Now}
}

// Check refuses with a *LimitError if any of the buckets is locked.
func (l *Lockout) Check(ctx context.Context, buckets ...Bucket) error {
	names := make([]string, len(buckets))
	for i, b := range buckets {
		names[i] = b.Name
	}
	until, err := l.store.LockedUntil(ctx, names)
	if err != nil {
		return err
	}
	if wait := until.Sub(l.now()); wait > 0 {
		return &LimitError{What: "failed attempts from this client", RetryAfter: wait}
	}
	return nil
}

// Fail records one failure in b and returns a *LimitError if b is locked as
// a result.
func (l *Lockout) Fail(ctx context.Context, b Bucket) error {
	now := l.now()
	st, err := l.store.UpdateLockout(ctx, b.Name, func(st *store.LockoutState) {
		l.policy.apply(st, now, b.threshold(l.policy))
	})
	if err != nil {
		return err
	}
	if wait := st.LockedUntil.Sub(now); wait > 0 {
		return &LimitError{What: "failed attempts from this client", RetryAfter: wait}
	}
	return nil
}

// apply counts one failure at now.
func (p LockoutPolicy) apply(st *store.LockoutState, now time.Time, threshold int) {
	if st.UpdatedAt.IsZero() || now.Sub(st.UpdatedAt) > p.Decay {
		*st = store.LockoutState{}
	}
	if st.WindowStart.IsZero() || now.Sub(st.WindowStart) > p.Window {
		st.Failures, st.WindowStart = 0, now
	}
	st.Failures++
	st.UpdatedAt = now
	if st.Failures < threshold {
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

// RedisLockoutStore keeps lockout state in Redis. While Redis is
// unreachable it counts in memory, per replica: lockouts keep working, only
// no longer across replicas.
type RedisLockoutStore struct {
	shared   *SharedCounters
	fallback *MemoryLockoutStore
}

// NewRedisLockoutStore returns a lockout store in the Redis of shared.
func NewRedisLockoutStore(shared *SharedCounters) *RedisLockoutStore {
	return &RedisLockoutStore{shared: shared, fallback: NewMemoryLockoutStore()}
}

func (r *RedisLockoutStore) key(kind, bucket string) string {
	return r.shared.Prefix() + ":lockout:" + kind + ":" + bucket
}

// LockedUntil implements LockoutStore.
func (r *RedisLockoutStore) LockedUntil(ctx context.Context, buckets []string) (time.Time, error) {
	if r.shared.down() {
		return r.fallback.LockedUntil(ctx, buckets)
	}
	keys := make([]string, len(buckets))
	for i, b := range buckets {
		keys[i] = r.key("until", b)
	}
	vals, err := r.shared.Client().MGet(ctx, keys...).Result()
	if err != nil {
		r.shared.markDown(ctx, err)
		return r.fallback.LockedUntil(ctx, buckets)
	}
	var latest time.Time
	for _, v := range vals {
		s, ok := v.(string)
		if !ok {
			continue
		}
		ms, err := strconv.ParseInt(s, 10, 64)
		if err == nil && time.UnixMilli(ms).After(latest) {
			latest = time.UnixMilli(ms)
		}
	}
	return latest, nil
}

// UpdateLockout implements LockoutStore with an optimistic transaction
// (WATCH/MULTI), retried if another replica changed the bucket meanwhile.
func (r *RedisLockoutStore) UpdateLockout(ctx context.Context, bucket string, update func(*store.LockoutState)) (store.LockoutState, error) {
	stateKey, untilKey := r.key("state", bucket), r.key("until", bucket)
	var st store.LockoutState
	txf := func(tx *redis.Tx) error {
		st = store.LockoutState{}
		h, err := tx.HGetAll(ctx, stateKey).Result()
		if err != nil {
			return err
		}
		st.Failures, _ = strconv.Atoi(h["failures"])
		st.Strikes, _ = strconv.Atoi(h["strikes"])
		st.WindowStart = unixMilli(h["window_start"])
		st.UpdatedAt = unixMilli(h["updated_at"])
		st.LockedUntil = unixMilli(h["locked_until"])
		update(&st)
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, stateKey, "failures", st.Failures, "strikes", st.Strikes,
				"window_start", st.WindowStart.UnixMilli(), "updated_at", st.UpdatedAt.UnixMilli(),
				"locked_until", st.LockedUntil.UnixMilli())
			p.Expire(ctx, stateKey, 48*time.Hour)
			if wait := time.Until(st.LockedUntil); wait > 0 {
				p.Set(ctx, untilKey, st.LockedUntil.UnixMilli(), wait)
			}
			return nil
		})
		return err
	}
	if r.shared.down() {
		return r.fallback.UpdateLockout(ctx, bucket, update)
	}
	var err error
	for attempt := range 100 {
		if err = r.shared.Client().Watch(ctx, txf, stateKey); !errors.Is(err, redis.TxFailedErr) {
			break
		}
		// Another replica changed the bucket meanwhile: that is contention,
		// not an outage. Back off a little and read it again.
		time.Sleep(time.Duration(1+rand.IntN(1+attempt)) * time.Millisecond)
	}
	switch {
	case err == nil:
		return st, nil
	case errors.Is(err, redis.TxFailedErr):
		return r.fallback.UpdateLockout(ctx, bucket, update) // count it somewhere rather than lose it
	}
	r.shared.markDown(ctx, err)
	return r.fallback.UpdateLockout(ctx, bucket, update)
}

func unixMilli(s string) time.Time {
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

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
func (m *MemoryLockoutStore) LockedUntil(_ context.Context, buckets []string) (time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var latest time.Time
	for _, b := range buckets {
		if u := m.buckets[b].LockedUntil; u.After(latest) {
			latest = u
		}
	}
	return latest, nil
}

// UpdateLockout implements LockoutStore.
func (m *MemoryLockoutStore) UpdateLockout(_ context.Context, bucket string, update func(*store.LockoutState)) (store.LockoutState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.buckets) > 100000 {
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
