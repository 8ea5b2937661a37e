package redisstore

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/example/order-mcp/internal/limits"
	"github.com/example/order-mcp/internal/store"
)

// LockoutStore keeps lockout state in Redis. While Redis is unreachable it
// counts in memory, per replica: lockouts keep working, only no longer
// across replicas.
type LockoutStore struct {
	shared   *Counters
	fallback *limits.MemoryLockoutStore
}

// LockoutStore returns a lockout store in the Redis of c.
func (c *Counters) LockoutStore() *LockoutStore {
	return &LockoutStore{shared: c, fallback: limits.NewMemoryLockoutStore()}
}

func (r *LockoutStore) key(kind, bucket string) string {
	return r.shared.Prefix() + ":lockout:" + kind + ":" + bucket
}

// LockedUntil implements limits.LockoutStore.
func (r *LockoutStore) LockedUntil(ctx context.Context, buckets []string, now time.Time) (time.Time, error) {
	if r.shared.down() {
		return r.fallback.LockedUntil(ctx, buckets, now)
	}
	keys := make([]string, len(buckets))
	for i, b := range buckets {
		keys[i] = r.key("until", b)
	}
	vals, err := r.shared.Client().MGet(ctx, keys...).Result()
	if err != nil {
		r.shared.markDown(ctx, err)
		return r.fallback.LockedUntil(ctx, buckets, now)
	}
	var latest time.Time
	for _, v := range vals {
		s, ok := v.(string)
		if !ok {
			continue
		}
		ms, err := strconv.ParseInt(s, 10, 64)
		if u := time.UnixMilli(ms); err == nil && u.After(latest) && u.After(now) {
			latest = u
		}
	}
	return latest, nil
}

// UpdateLockout implements limits.LockoutStore with an optimistic
// transaction (WATCH/MULTI), retried if another replica changed the bucket
// meanwhile.
func (r *LockoutStore) UpdateLockout(ctx context.Context, bucket string, update func(*store.LockoutState)) (store.LockoutState, error) {
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
			// The lock's length on the policy's own clock (the time of
			// this failure is UpdatedAt), so Redis forgets it when the
			// policy would.
			if wait := st.LockedUntil.Sub(st.UpdatedAt); wait > 0 {
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
