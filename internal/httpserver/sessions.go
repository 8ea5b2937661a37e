package httpserver

import (
	"net/http"
	"sync"
	"time"

	"github.com/example/order-mcp/internal/refusal"
)

// sessionTracker caps the MCP sessions each principal holds in stateful
// mode (MCP_HTTP_STATEFUL=true). The SDK itself binds each session to the
// subject of the principal that created it (TokenInfo.UserID), so a
// refreshed token keeps its session while another principal presenting the
// session id is refused; and it closes sessions idle for SessionTimeout
// (its default, zero, would keep them forever). What it does not do is cap
// how many sessions one principal opens; this does, counting a session as
// live until it is deleted or has been idle for the same timeout.
type sessionTracker struct {
	max  int
	idle time.Duration

	mu       sync.Mutex
	sessions map[string]map[string]time.Time // subject -> session id -> last seen
	pending  map[string]int                  // subject -> session creations under way
}

func newSessionTracker(max int, idle time.Duration) *sessionTracker {
	return &sessionTracker{max: max, idle: idle,
		sessions: make(map[string]map[string]time.Time), pending: make(map[string]int)}
}

const sessionHeader = "Mcp-Session-Id"

func (t *sessionTracker) wrap(next http.Handler, s *server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		subject := state(r).principal.Subject
		id := r.Header.Get(sessionHeader)
		creating := id == "" && r.Method == http.MethodPost
		if creating {
			if !t.reserve(subject) {
				w.Header().Set("Retry-After", "60")
				s.refuse(w, r, refusal.TooManySessions, refusal.TooManySessions.Message())
				return
			}
			defer t.unreserve(subject)
		}
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		switch {
		case creating && rec.status < 300:
			if created := w.Header().Get(sessionHeader); created != "" {
				t.seen(subject, created)
			}
		case id != "" && r.Method == http.MethodDelete && rec.status < 300:
			t.forget(subject, id)
		case id != "" && rec.status < 300:
			t.seen(subject, id)
		}
	})
}

// reserve takes a slot for a session subject is opening, if one is free.
// Sessions being created count, so concurrent initializes cannot all pass
// the check before any of them is recorded.
func (t *sessionTracker) reserve(subject string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	live := t.sessions[subject]
	for id, last := range live {
		if t.idle > 0 && time.Since(last) > t.idle {
			delete(live, id)
		}
	}
	if len(live)+t.pending[subject] >= t.max {
		return false
	}
	t.pending[subject]++
	return true
}

// unreserve releases a slot once the session is recorded (or was not
// created).
func (t *sessionTracker) unreserve(subject string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pending[subject]--; t.pending[subject] <= 0 {
		delete(t.pending, subject)
	}
}

func (t *sessionTracker) seen(subject, id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sessions[subject] == nil {
		t.sessions[subject] = make(map[string]time.Time)
	}
	t.sessions[subject][id] = time.Now()
}

func (t *sessionTracker) forget(subject, id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.sessions[subject], id)
	if len(t.sessions[subject]) == 0 {
		delete(t.sessions, subject)
	}
}
