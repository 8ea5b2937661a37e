package store_test

import (
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/example/order-mcp/internal/dbtest"
	"github.com/example/order-mcp/internal/store"
)

// nonce is a fresh nonce of the shape the table accepts.
func nonce(t *testing.T) string {
	t.Helper()
	return rand.Text()[:22]
}

// TestAConfirmationIsAnsweredOnce attacks the single use of a
// confirmation: the same answer replayed, a "decline" turned into an
// "accept", and many replicas answering one nonce at the same moment. The
// first answer stands, every other is ErrAnswered.
func TestAConfirmationIsAnsweredOnce(t *testing.T) {
	ctx := context.Background()
	s := dbtest.App(t, dsn, store.Options{})
	expires := time.Now().Add(5 * time.Minute)

	t.Run("ReplayedAcceptIsRefused", func(t *testing.T) {
		n := nonce(t)
		if err := s.AnswerConfirmation(ctx, n, "accept", expires); err != nil {
			t.Fatal(err)
		}
		if err := s.AnswerConfirmation(ctx, n, "accept", expires); !errors.Is(err, store.ErrAnswered) {
			t.Fatalf("replayed accept: err = %v, want ErrAnswered", err)
		}
	})
	t.Run("DeclineCannotBecomeAccept", func(t *testing.T) {
		n := nonce(t)
		if err := s.AnswerConfirmation(ctx, n, "decline", expires); err != nil {
			t.Fatal(err)
		}
		if err := s.AnswerConfirmation(ctx, n, "accept", expires); !errors.Is(err, store.ErrAnswered) {
			t.Fatalf("accept after decline: err = %v, want ErrAnswered", err)
		}
	})
	t.Run("ConcurrentAnswersOneWins", func(t *testing.T) {
		n := nonce(t)
		const replicas = 8
		errs := make([]error, replicas)
		var wg sync.WaitGroup
		for i := range replicas {
			wg.Go(func() {
				// Each its own pool: as many replicas would.
				errs[i] = dbtest.App(t, dsn, store.Options{}).AnswerConfirmation(ctx, n, "accept", expires)
			})
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, store.ErrAnswered):
				t.Fatalf("unexpected error: %v", err)
			}
		}
		if won != 1 {
			t.Fatalf("%d answers recorded for one nonce, want 1", won)
		}
	})
	t.Run("MalformedNonceIsRefusedByTheTable", func(t *testing.T) {
		err := s.AnswerConfirmation(ctx, "x' OR '1'='1", "accept", expires)
		var dbErr *store.DBError
		if !errors.As(err, &dbErr) || dbErr.Code != "23514" {
			t.Fatalf("err = %v, want a check violation", err)
		}
	})
	t.Run("PruneForgetsOnlyLongExpiredAnswers", func(t *testing.T) {
		old, fresh := nonce(t), nonce(t)
		if err := s.AnswerConfirmation(ctx, old, "accept", time.Now().Add(-2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := s.AnswerConfirmation(ctx, fresh, "accept", time.Now().Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
		if n, err := s.PruneConfirmations(ctx); err != nil || n < 1 {
			t.Fatalf("pruned %d, err %v", n, err)
		}
		if err := s.AnswerConfirmation(ctx, fresh, "accept", expires); !errors.Is(err, store.ErrAnswered) {
			t.Fatalf("an answer expired a minute ago was pruned: %v", err)
		}
		if err := s.AnswerConfirmation(ctx, old, "accept", expires); err != nil {
			t.Fatalf("an answer expired two hours ago was kept: %v", err)
		}
	})
}
