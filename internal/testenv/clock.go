package testenv

import (
	"sync"
	"time"
)

// Clock is a clock tests move by hand, so that no test waits for a lock
// to expire or a window to pass, and none depends on how fast the machine
// runs. Give its Now to the code under test.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock set to the current time, truncated to the
// millisecond, which every lockout store keeps exactly (Redis keeps
// milliseconds, Postgres microseconds).
func NewClock() *Clock { return &Clock{now: time.Now().UTC().Truncate(time.Millisecond)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
