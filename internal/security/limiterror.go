package security

import (
	"fmt"
	"math"
	"time"
)

// LimitError refuses a request that exceeded a rate, concurrency or quota
// limit, or that hit a lockout. Its message is fixed text, safe to return.
type LimitError struct {
	// What names the limit, e.g. "tool calls for this credential".
	What string
	// RetryAfter is how long until the caller may try again.
	RetryAfter time.Duration
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("Too many requests: the limit on %s was reached. Retry in %d seconds.", e.What, e.RetryAfterSeconds())
}

// RetryAfterSeconds is RetryAfter rounded up to whole seconds, at least 1,
// as HTTP's Retry-After header wants it.
func (e *LimitError) RetryAfterSeconds() int {
	return max(1, int(math.Ceil(e.RetryAfter.Seconds())))
}
