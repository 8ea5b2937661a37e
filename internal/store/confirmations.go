package store

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrAnswered means a confirmation's nonce already has an answer: the
// state was replayed, to this replica or another, perhaps with the other
// answer. The first answer stands.
var ErrAnswered = errors.New("confirmation already answered")

// The primary key decides: of two answers to one nonce, on any replicas
// and at the same moment, exactly one inserts its row. No row is ever
// read back or updated (the server's role may do neither), so a recorded
// "decline" cannot become an "accept".
const answerConfirmationSQL = `-- name: answer_confirmation
INSERT INTO confirmation_nonces (nonce, answer, expires_at)
VALUES ($1, $2, $3)
ON CONFLICT DO NOTHING`

// AnswerConfirmation records the first answer ("accept", "decline" or
// "cancel") to the confirmation named by nonce, whose state expires at
// expiresAt. It returns ErrAnswered when the nonce already has one.
func (s *Store) AnswerConfirmation(ctx context.Context, nonce, answer string, expiresAt time.Time) error {
	err := s.run(ctx, func(c *pgxpool.Conn) error {
		tag, err := c.Exec(ctx, answerConfirmationSQL, nonce, answer, expiresAt)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrAnswered
		}
		return nil
	})
	return translate("answer confirmation", err)
}

// A row is kept for an hour past its state's expiry: replicas whose clocks
// disagree by less than that still find a replayed nonce.
const pruneConfirmationsSQL = `-- name: prune_confirmations
DELETE FROM confirmation_nonces
 WHERE expires_at < now() - interval '1 hour'`

// PruneConfirmations deletes the answers of confirmations whose state
// expired more than an hour ago (an expired state is refused anyway) and
// returns how many it deleted.
func (s *Store) PruneConfirmations(ctx context.Context) (int64, error) {
	var n int64
	err := s.run(ctx, func(c *pgxpool.Conn) error {
		tag, err := c.Exec(ctx, pruneConfirmationsSQL)
		n = tag.RowsAffected()
		return err
	})
	return n, translate("prune confirmations", err)
}
