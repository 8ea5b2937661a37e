package limits

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/ulule/limiter/v3"

	"github.com/example/order-mcp/internal/auth"
)

// Config holds every rate, concurrency and quota limit. Defaults
// (internal/config) suit one person's assistant; each is an environment
// variable.
type Config struct {
	// PerIP bounds requests per client address, before authentication.
	PerIP limiter.Rate
	// PerPrincipal bounds tool calls per caller, on every transport.
	PerPrincipal limiter.Rate
	// Concurrency bounds one caller's tool calls in flight at once.
	Concurrency int
	// CancelPerPrincipal is the much smaller budget of destructive tools.
	CancelPerPrincipal limiter.Rate
	// NotFoundPerPrincipal bounds lookups of orders that do not exist (or
	// are not the caller's): more than this is enumeration.
	NotFoundPerPrincipal limiter.Rate
}

// Quota is a limit's state after a request was counted, for the
// X-RateLimit-* headers.
type Quota struct {
	Limit, Remaining int64
	Reset            time.Time
}

// Stores are where the counters live. Reads holds the read budgets;
// Destructive holds the budget of destructive tools, which must fail
// closed (refuse) rather than fall back when its store is unreachable.
// MemoryStores keeps both in this process; internal/redisstore shares
// them between replicas.
type Stores struct {
	Reads, Destructive limiter.Store
}

// MemoryStores returns counters in this process's memory (no REDIS_URL):
// two MemoryStores, each capped at MaxCounters, one for the read budgets
// and one for the destructive budget, so that a flood of addresses or of
// reads cannot evict anyone's destructive budget (see MemoryStore for the
// eviction policy).
func MemoryStores() Stores {
	return Stores{Reads: NewMemoryStore(MaxCounters, nil), Destructive: NewMemoryStore(MaxCounters, nil)}
}

// Limits applies the limits.
//
// Checklist: "Rate limiting: prevent abuse and brute-force attacks".
// Counters live in memory, or in Redis when REDIS_URL is set so that every
// replica shares them. They use ulule/limiter's stores directly: its HTTP
// middleware is not used, because it would key on the leftmost
// X-Forwarded-For entry when told to trust the header (which the client
// controls) and its default error handler panics on a store error. Client
// addresses come from the HTTP layer's ClientIP instead.
type Limits struct {
	perIP, perPrincipal, notFound *limiter.Limiter
	cancel                        *limiter.Limiter
	concurrency                   int
	lockout                       *Lockout

	mu       sync.Mutex
	inFlight map[string]int
}

// New returns limits over counters in st. Callers that keep sending
// invalid arguments are locked out by lockout. (The counters keep their own
// time: ulule/limiter's windows run on the real clock, so the waits they
// report do too.)
func New(cfg Config, st Stores, lockout *Lockout) *Limits {
	return &Limits{
		lockout:      lockout,
		perIP:        limiter.New(st.Reads, cfg.PerIP),
		perPrincipal: limiter.New(st.Reads, cfg.PerPrincipal),
		notFound:     limiter.New(st.Reads, cfg.NotFoundPerPrincipal),
		cancel:       limiter.New(st.Destructive, cfg.CancelPerPrincipal),
		concurrency:  max(1, cfg.Concurrency),
		inFlight:     make(map[string]int),
	}
}

// AllowIP counts one request from ip (an IPv6 address by its /64).
func (l *Limits) AllowIP(ctx context.Context, ip netip.Addr) (Quota, error) {
	return l.count(ctx, l.perIP, "ip:"+AddressKey(ip), "requests from this address")
}

// Admit counts one tool call by p and takes one of its concurrency slots.
// The returned function gives the slot back; call it when the call ends.
func (l *Limits) Admit(ctx context.Context, p *auth.Principal) (func(), Quota, error) {
	q, err := l.count(ctx, l.perPrincipal, "principal:"+p.Subject, "tool calls for this credential")
	if err != nil {
		return nil, q, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inFlight[p.Subject] >= l.concurrency {
		return nil, q, &Error{What: "tool calls in flight for this credential", RetryAfter: time.Second}
	}
	l.inFlight[p.Subject]++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.inFlight[p.Subject]--; l.inFlight[p.Subject] <= 0 {
				delete(l.inFlight, p.Subject)
			}
		})
	}, q, nil
}

// AdmitCall implements the MCP layer's Limiter: for transports without an
// HTTP layer (stdio), it also refuses a caller locked out for malformed
// requests, which the HTTP layer checks before reading a body.
func (l *Limits) AdmitCall(ctx context.Context, p *auth.Principal) (func(), error) {
	if err := l.lockout.Check(ctx, InvalidInputBucket(p.Subject)); err != nil {
		return nil, err
	}
	release, _, err := l.Admit(ctx, p)
	return release, err
}

// AdmitDestructive charges a call of a destructive tool (cancel_order) to
// the principal's small budget for such calls (RATE_LIMIT_CANCEL), shared
// by every destructive tool.
func (l *Limits) AdmitDestructive(ctx context.Context, p *auth.Principal) error {
	_, err := l.count(ctx, l.cancel, "cancel:"+p.Subject, "order cancellations for this credential")
	return err
}

// CheckDestructive refuses, without charging anything, a principal whose
// budget for destructive calls is already spent. The MCP layer asks it
// before a destructive call's first round, so a user is never asked to
// confirm what the budget would refuse; AdmitDestructive charges the round
// that acts.
func (l *Limits) CheckDestructive(ctx context.Context, p *auth.Principal) error {
	c, err := l.cancel.Peek(ctx, "cancel:"+p.Subject)
	if err != nil {
		return err
	}
	if c.Remaining <= 0 {
		return &Error{What: "order cancellations for this credential", RetryAfter: time.Until(time.Unix(c.Reset, 0))}
	}
	return nil
}

// Invalid counts a tool call whose arguments were refused. A caller that
// keeps sending malformed arguments is locked out like a failing login.
func (l *Limits) Invalid(ctx context.Context, p *auth.Principal) error {
	return l.lockout.Fail(ctx, InvalidInputBucket(p.Subject))
}

// Missed counts a lookup of an order that was not found.
func (l *Limits) Missed(ctx context.Context, p *auth.Principal) error {
	_, err := l.count(ctx, l.notFound, "notfound:"+p.Subject, "lookups of unknown orders (this looks like guessing ids)")
	return err
}

// Probing refuses a caller that has already missed too many orders, before
// its next lookup runs.
func (l *Limits) Probing(ctx context.Context, p *auth.Principal) error {
	c, err := l.notFound.Peek(ctx, "notfound:"+p.Subject)
	if err != nil {
		return err
	}
	if c.Reached {
		return &Error{What: "lookups of unknown orders (this looks like guessing ids)", RetryAfter: time.Until(time.Unix(c.Reset, 0))}
	}
	return nil
}

func (l *Limits) count(ctx context.Context, lim *limiter.Limiter, key, what string) (Quota, error) {
	c, err := lim.Get(ctx, key)
	if err != nil {
		return Quota{}, err
	}
	q := Quota{Limit: c.Limit, Remaining: c.Remaining, Reset: time.Unix(c.Reset, 0)}
	if c.Reached {
		return q, &Error{What: what, RetryAfter: time.Until(q.Reset)}
	}
	return q, nil
}
