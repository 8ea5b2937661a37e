package limits

import (
	"errors"
	"math"
	"time"

	"github.com/example/order-mcp/internal/refusal"
)

// Error refuses a request that exceeded a rate, concurrency or quota
// limit, or that hit a lockout. Its message is fixed text, safe to return.
type Error struct {
	// What names the limit, e.g. "tool calls for this credential".
	What string
	// RetryAfter is how long until the caller may try again.
	RetryAfter time.Duration
}

func (e *Error) Error() string { return refusal.RateLimited.Message(e.What, e.RetryAfterSeconds()) }

// RetryAfterSeconds is RetryAfter rounded up to whole seconds, at least 1,
// as HTTP's Retry-After header wants it.
func (e *Error) RetryAfterSeconds() int {
	return max(1, int(math.Ceil(e.RetryAfter.Seconds())))
}

// ErrUnavailable is what a limit store returns when it cannot count (Redis
// unreachable) for a budget that fails closed. It is not the caller's
// fault: the client is told the server is temporarily unavailable and when
// to retry, never that it was rate limited.
var ErrUnavailable = errors.New("limit store unavailable")
