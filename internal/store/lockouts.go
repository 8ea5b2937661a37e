package store

import (
	"context"
	"errors"
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
