package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Canary records are customers and orders that no legitimate flow touches
// (00013_canaries.sql lists their ids; `server seed --canary` plants
// them). Every statement a tool runs leaves them out, as if they did not
// exist, and every lookup asks, in the same round trip, whether the id it
// was given is one: a call that reaches a canary does exactly the work a
// call for a missing id does, and is answered the same way, but the store
// says so (ErrCanary) and the MCP layer raises the alarm.

// ErrCanary means a caller named a canary record. It is also ErrNotFound:
// everything that does not look for it treats the call as "not found",
// which is how the caller must see it.
var ErrCanary = fmt.Errorf("%w (canary record)", ErrNotFound)

// canaryOr reads the is_canary result that follows a lookup in a batch:
// ErrCanary when the id was a canary, else the lookup's own error err.
func canaryOr(br pgx.BatchResults, err error) error {
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	var canary bool
	if cerr := br.QueryRow().Scan(&canary); cerr != nil {
		return cerr
	}
	if canary {
		return ErrCanary
	}
	return err
}

// CountCanaries returns how many ids are marked as canaries.
// Administrative: it runs as the schema owner.
func (s *Store) CountCanaries(ctx context.Context) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `-- name: count_canaries
SELECT count(*) FROM canaries`).Scan(&n)
	return n, translate("count canaries", err)
}
