package store

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// LockoutState is one brute-force lockout bucket (internal/limits owns the
// policy; this is only its storage).
type LockoutState struct {
	Failures    int
	WindowStart time.Time
	Strikes     int
	LockedUntil time.Time
	UpdatedAt   time.Time
}

// The lockout's own clock is passed in ($2), not the database's now(): the
// policy that wrote a lock and the check that reads it must agree on the
// time, and tests move that clock by hand.
const lockedUntilSQL = `-- name: locked_until
SELECT max(locked_until)
  FROM auth_lockouts
 WHERE bucket = ANY($1) AND locked_until > $2`

// LockedUntil returns the latest lock expiry among buckets that is after
// now, or the zero time when none of them is locked.
func (s *Store) LockedUntil(ctx context.Context, buckets []string, now time.Time) (time.Time, error) {
	var until *time.Time
	err := s.run(ctx, func(c *pgxpool.Conn) error { return c.QueryRow(ctx, lockedUntilSQL, buckets, now).Scan(&until) })
	if err != nil || until == nil {
		return time.Time{}, translate("locked until", err)
	}
	return *until, nil
}

// ensureLockoutSQL creates the bucket's row first, so that the SELECT ...
// FOR UPDATE below always has a row to lock: concurrent first failures
// then queue on it instead of all reading "no row" and overwriting each
// other.
const ensureLockoutSQL = `-- name: ensure_lockout
INSERT INTO auth_lockouts (bucket, failures, window_start, updated_at)
VALUES ($1, 0, 'epoch', 'epoch')
ON CONFLICT (bucket) DO NOTHING`

const selectLockoutSQL = `-- name: select_lockout
SELECT failures, window_start, strikes, locked_until, updated_at
  FROM auth_lockouts
 WHERE bucket = $1
   FOR UPDATE`

const upsertLockoutSQL = `-- name: upsert_lockout
INSERT INTO auth_lockouts (bucket, failures, window_start, strikes, locked_until, updated_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (bucket) DO UPDATE
   SET failures = EXCLUDED.failures, window_start = EXCLUDED.window_start,
       strikes = EXCLUDED.strikes, locked_until = EXCLUDED.locked_until,
       updated_at = EXCLUDED.updated_at`

// UpdateLockout reads a bucket under a row lock, lets update change it, and
// writes it back, so concurrent failures from many replicas count exactly.
// A bucket that does not exist yet starts from the zero LockoutState.
func (s *Store) UpdateLockout(ctx context.Context, bucket string, update func(*LockoutState)) (LockoutState, error) {
	var st LockoutState
	err := s.run(ctx, func(c *pgxpool.Conn) error {
		return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, ensureLockoutSQL, bucket); err != nil {
				return err
			}
			var lockedUntil *time.Time
			err := tx.QueryRow(ctx, selectLockoutSQL, bucket).Scan(&st.Failures, &st.WindowStart, &st.Strikes, &lockedUntil, &st.UpdatedAt)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			if lockedUntil != nil {
				st.LockedUntil = *lockedUntil
			}
			update(&st)
			lockedUntil = nil
			if !st.LockedUntil.IsZero() {
				lockedUntil = &st.LockedUntil
			}
			_, err = tx.Exec(ctx, upsertLockoutSQL, bucket, st.Failures, st.WindowStart, st.Strikes, lockedUntil, st.UpdatedAt)
			return err
		})
	})
	return st, translate("update lockout", err)
}

const pruneLockoutsSQL = `-- name: prune_lockouts
DELETE FROM auth_lockouts
 WHERE updated_at < $2::timestamptz - $1::interval
   AND (locked_until IS NULL OR locked_until < $2)`

// PruneLockouts deletes buckets that are not locked and have not failed for
// idle, so that every address that ever failed once does not stay forever.
func (s *Store) PruneLockouts(ctx context.Context, idle time.Duration, now time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, pruneLockoutsSQL, idle.String(), now)
	if err != nil {
		return 0, translate("prune lockouts", err)
	}
	return tag.RowsAffected(), nil
}

// LockMirror answers "is this bucket locked?" from memory, and stores
// everything else in Postgres (it implements the lockout's store, like
// *Store). Only that one question is answered from memory: counting
// failures reads and writes the table under a row lock, as before, so N
// replicas never allow N times the threshold.
//
// The mirror holds the buckets that are locked. It learns of a lock, made by
// any replica, from the trigger on auth_lockouts through the Watcher; on
// every (re)connect it reloads every current lock from the table. While the
// Watcher is not Healthy, and while the mirror is full (MaxMirroredLocks
// current locks), it answers from the table, as *Store does.
type LockMirror struct {
	store   *Store
	watcher *Watcher

	mu       sync.Mutex
	locks    map[string]time.Time
	overflow bool
}

// MaxMirroredLocks is the most locks a LockMirror holds.
const MaxMirroredLocks = 100_000

// NewLockMirror returns a mirror of s's locks kept current by w.
func NewLockMirror(s *Store, w *Watcher) *LockMirror {
	m := &LockMirror{store: s, watcher: w, locks: make(map[string]time.Time)}
	w.subscribe(channelLockouts, subscriber{notify: m.notify, reset: m.reload})
	return m
}

// LockedUntil implements the lockout's store.
func (m *LockMirror) LockedUntil(ctx context.Context, buckets []string, now time.Time) (time.Time, error) {
	if !m.watcher.Healthy() {
		return m.store.LockedUntil(ctx, buckets, now)
	}
	m.mu.Lock()
	if m.overflow {
		m.mu.Unlock()
		return m.store.LockedUntil(ctx, buckets, now)
	}
	var latest time.Time
	for _, b := range buckets {
		if u, ok := m.locks[b]; ok && u.After(now) && u.After(latest) {
			latest = u
		}
	}
	m.mu.Unlock()
	return latest, nil
}

// UpdateLockout implements the lockout's store: in the table, under its row
// lock. A lock it sets is mirrored at once (the notification confirms it).
func (m *LockMirror) UpdateLockout(ctx context.Context, bucket string, update func(*LockoutState)) (LockoutState, error) {
	st, err := m.store.UpdateLockout(ctx, bucket, update)
	if err == nil && !st.LockedUntil.IsZero() {
		m.set(bucket, st.LockedUntil)
	}
	return st, err
}

// PruneLockouts implements the lockout's pruning, in the table; the mirror
// drops locks that ended.
func (m *LockMirror) PruneLockouts(ctx context.Context, idle time.Duration, now time.Time) (int64, error) {
	m.mu.Lock()
	for b, u := range m.locks {
		if !u.After(now) {
			delete(m.locks, b)
		}
	}
	m.mu.Unlock()
	return m.store.PruneLockouts(ctx, idle, now)
}

func (m *LockMirror) set(bucket string, until time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.locks[bucket]; !ok && len(m.locks) >= MaxMirroredLocks {
		m.overflow = true // answer from the table until the next reload
		return
	}
	m.locks[bucket] = until
}

// notify applies one notification: "bucket\tmicros", "bucket\t" (no lock
// any more), or "*" (reload everything: the bucket name was too long to
// send).
func (m *LockMirror) notify(payload string) {
	i := strings.LastIndexByte(payload, '\t')
	if payload == "*" || i < 0 {
		m.mu.Lock()
		m.overflow = true // answered from the table until the reconnect reloads
		m.mu.Unlock()
		m.watcher.requestReset()
		return
	}
	bucket, micros := payload[:i], payload[i+1:]
	if micros == "" {
		m.mu.Lock()
		delete(m.locks, bucket)
		m.mu.Unlock()
		return
	}
	n, err := strconv.ParseInt(micros, 10, 64)
	if err != nil {
		m.mu.Lock()
		m.overflow = true
		m.mu.Unlock()
		m.watcher.requestReset()
		return
	}
	m.set(bucket, time.UnixMicro(n))
}

const currentLocksSQL = `-- name: current_locks
SELECT bucket, locked_until
  FROM auth_lockouts
 WHERE locked_until IS NOT NULL
 ORDER BY locked_until DESC
 LIMIT $1`

// reload forgets every lock and reads the current ones from the table. A
// lock that ended is harmless (LockedUntil compares with the lockout's
// clock); more than MaxMirroredLocks leaves the mirror answering from the
// table.
func (m *LockMirror) reload(ctx context.Context) error {
	locks := make(map[string]time.Time)
	err := m.store.run(ctx, func(c *pgxpool.Conn) error {
		rows, err := c.Query(ctx, currentLocksSQL, MaxMirroredLocks+1)
		if err != nil {
			return err
		}
		var (
			b string
			u time.Time
		)
		_, err = pgx.ForEachRow(rows, []any{&b, &u}, func() error {
			locks[b] = u
			return nil
		})
		return err
	})
	if err != nil {
		return translate("current locks", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.overflow = len(locks) > MaxMirroredLocks
	if m.overflow {
		locks = map[string]time.Time{}
	}
	m.locks = locks
	return nil
}
