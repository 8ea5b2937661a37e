package security

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/ulule/limiter/v3"
	memstore "github.com/ulule/limiter/v3/drivers/store/memory"
	redisstore "github.com/ulule/limiter/v3/drivers/store/redis"
)

// LimitsConfig holds every rate, concurrency and quota limit. Defaults
// (config.go) suit one person's assistant; each is an environment variable.
type LimitsConfig struct {
	// PerIP bounds requests per client address, before authentication.
	PerIP limiter.Rate
	// PerPrincipal bounds tool calls per caller, on every transport.
	PerPrincipal limiter.Rate
	// Concurrency bounds one caller's tool calls in flight at once.
	Concurrency int
	// CancelPerPrincipal is cancel_order's own, much smaller, budget.
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

// Limits applies the limits.
//
// Checklist: "Rate limiting: prevent abuse and brute-force attacks".
// Counters live in memory, or in Redis when REDIS_URL is set so that every
// replica shares them. They use ulule/limiter's stores directly: its HTTP
// middleware is not used, because it would key on the leftmost
// X-Forwarded-For entry when told to trust the header (which the client
// controls) and its default error handler panics on a store error. Client
// addresses come from ClientIP instead.
//
// When Redis is unreachable, read budgets fall back to per-replica memory
// counters (limits still hold, per replica instead of across replicas, and
// an error is logged), while cancel_order's budget fails closed: a
// destructive tool is not called without its shared budget.
type Limits struct {
	perIP, perPrincipal, notFound *limiter.Limiter
	cancel                        *limiter.Limiter
	concurrency                   int
	lockout                       *Lockout

	mu       sync.Mutex
	inFlight map[string]int
}

// NewLimits returns limits over counters in shared (Redis, or nil for
// memory only). Callers that keep sending invalid arguments are locked out
// by lockout.
func NewLimits(cfg LimitsConfig, shared *SharedCounters, lockout *Lockout) *Limits {
	reads, destructive := shared.stores()
	return &Limits{
		lockout:      lockout,
		perIP:        limiter.New(reads, cfg.PerIP),
		perPrincipal: limiter.New(reads, cfg.PerPrincipal),
		notFound:     limiter.New(reads, cfg.NotFoundPerPrincipal),
		cancel:       limiter.New(destructive, cfg.CancelPerPrincipal),
		concurrency:  max(1, cfg.Concurrency),
		inFlight:     make(map[string]int),
	}
}

// AllowIP counts one request from ip (an IPv6 address by its /64).
func (l *Limits) AllowIP(ctx context.Context, ip netip.Addr) (Quota, error) {
	return count(ctx, l.perIP, "ip:"+AddressKey(ip), "requests from this address")
}

// Admit counts one tool call by p and takes one of its concurrency slots.
// The returned function gives the slot back; call it when the call ends.
func (l *Limits) Admit(ctx context.Context, p *Principal) (func(), Quota, error) {
	q, err := count(ctx, l.perPrincipal, "principal:"+p.Subject, "tool calls for this credential")
	if err != nil {
		return nil, q, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inFlight[p.Subject] >= l.concurrency {
		return nil, q, &LimitError{What: "tool calls in flight for this credential", RetryAfter: time.Second}
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

// AdmitCall implements mcpserver.Limiter: for transports without an HTTP
// layer (stdio), it also refuses a caller locked out for malformed
// requests, which the HTTP layer checks before reading a body.
func (l *Limits) AdmitCall(ctx context.Context, p *Principal) (func(), error) {
	if err := l.lockout.Check(ctx, InvalidInputBucket(p.Subject)); err != nil {
		return nil, err
	}
	release, _, err := l.Admit(ctx, p)
	return release, err
}

// AdmitDestructive charges a call of a destructive tool (cancel_order) to
// the principal's small budget for such calls (RATE_LIMIT_CANCEL), shared
// by every destructive tool.
func (l *Limits) AdmitDestructive(ctx context.Context, p *Principal) error {
	_, err := count(ctx, l.cancel, "cancel:"+p.Subject, "order cancellations for this credential")
	return err
}

// Invalid counts a tool call whose arguments were refused. A caller that
// keeps sending malformed arguments is locked out like a failing login.
func (l *Limits) Invalid(ctx context.Context, p *Principal) error {
	return l.lockout.Fail(ctx, InvalidInputBucket(p.Subject))
}

// Missed counts a lookup of an order that was not found.
func (l *Limits) Missed(ctx context.Context, p *Principal) error {
	_, err := count(ctx, l.notFound, "notfound:"+p.Subject, "lookups of unknown orders (this looks like guessing ids)")
	return err
}

// Probing refuses a caller that has already missed too many orders, before
// its next lookup runs.
func (l *Limits) Probing(ctx context.Context, p *Principal) error {
	c, err := l.notFound.Peek(ctx, "notfound:"+p.Subject)
	if err != nil {
		return err
	}
	if c.Reached {
		return &LimitError{What: "lookups of unknown orders (this looks like guessing ids)", RetryAfter: time.Until(time.Unix(c.Reset, 0))}
	}
	return nil
}

func count(ctx context.Context, l *limiter.Limiter, key, what string) (Quota, error) {
	c, err := l.Get(ctx, key)
	if err != nil {
		return Quota{}, err
	}
	q := Quota{Limit: c.Limit, Remaining: c.Remaining, Reset: time.Unix(c.Reset, 0)}
	if c.Reached {
		return q, &LimitError{What: what, RetryAfter: time.Until(q.Reset)}
	}
	return q, nil
}

// SharedCounters is the Redis connection that rate-limit and lockout state
// share between replicas. A nil *SharedCounters means memory only.
type SharedCounters struct {
	client *redis.Client
	prefix string
	logger *slog.Logger

	mu        sync.Mutex
	store     limiter.Store // nil while Redis is not known to answer
	downUntil time.Time     // the circuit breaker: skip Redis until then
	lastLog   time.Time
	local     limiter.Store
}

// NewSharedCounters connects lazily to Redis at url. It never talks to
// Redis here, so a dead Redis does not stop the server from starting; and
// its timeouts are short and it does not retry, so a dead Redis does not
// stall requests either. prefix namespaces the keys (tests use one each).
func NewSharedCounters(url, prefix string, logger *slog.Logger) (*SharedCounters, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, errors.New("REDIS_URL is not a valid redis:// URL")
	}
	opts.DialTimeout = 250 * time.Millisecond
	opts.ReadTimeout = 250 * time.Millisecond
	opts.WriteTimeout = 250 * time.Millisecond
	opts.PoolTimeout = 250 * time.Millisecond
	opts.MaxRetries = -1 // no retries: fail fast and let the caller decide
	opts.DialerRetries = 1
	opts.DialerRetryTimeout = 10 * time.Millisecond
	opts.DisableIdentity = true
	return &SharedCounters{
		client: redis.NewClient(opts),
		prefix: prefix,
		logger: logger,
		local:  memstore.NewStoreWithOptions(limiter.StoreOptions{Prefix: prefix, CleanUpInterval: time.Minute}),
	}, nil
}

// Close closes the Redis connection.
func (s *SharedCounters) Close() error {
	if s == nil {
		return nil
	}
	return s.client.Close()
}

// Client returns the Redis client, for the lockout store.
func (s *SharedCounters) Client() *redis.Client { return s.client }

// Prefix returns the key prefix.
func (s *SharedCounters) Prefix() string { return s.prefix }

// stores returns the store for read budgets (falls back to memory) and the
// one for destructive budgets (fails closed).
func (s *SharedCounters) stores() (reads, destructive limiter.Store) {
	if s == nil {
		m := memstore.NewStoreWithOptions(limiter.StoreOptions{Prefix: "ordermcp", CleanUpInterval: time.Minute})
		return m, m
	}
	return &sharedStore{s: s, fallback: true}, &sharedStore{s: s}
}

// redisStore returns the limiter's Redis store, creating it (which loads
// its Lua scripts, a round trip) when Redis is not known to be down. This
// is a small circuit breaker: after a failure (markDown) no request waits
// on Redis again for a second.
func (s *SharedCounters) redisStore(ctx context.Context) (limiter.Store, error) {
	s.mu.Lock()
	st, down := s.store, time.Now().Before(s.downUntil)
	s.mu.Unlock()
	switch {
	case st != nil:
		return st, nil
	case down:
		return nil, errRedisDown
	}
	st, err := redisstore.NewStoreWithOptions(s.client, limiter.StoreOptions{Prefix: s.prefix})
	if err != nil {
		s.markDown(ctx, err)
		return nil, errRedisDown
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.store = st
	return st, nil
}

// down reports whether the circuit breaker is open.
func (s *SharedCounters) down() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Now().Before(s.downUntil)
}

// markDown records that a Redis operation failed: requests stop waiting
// on Redis for a second. It logs at most every ten seconds.
func (s *SharedCounters) markDown(ctx context.Context, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.store, s.downUntil = nil, time.Now().Add(time.Second)
	if time.Since(s.lastLog) < 10*time.Second {
		return
	}
	s.lastLog = time.Now()
	s.logger.LogAttrs(ctx, slog.LevelError,
		"Redis unreachable: read budgets and lockouts count per replica meanwhile, cancel_order is refused",
		slog.String("error", err.Error()))
}

// RouteRedisLogs sends what the Redis client logs on its own (dial
// failures) through logger, which redacts, instead of raw stderr. The Redis
// client's logger is process-wide, so the program calls this once, at
// start-up, rather than as a hidden side effect of NewSharedCounters.
func RouteRedisLogs(logger *slog.Logger) { redis.SetLogger(redisLogger{logger}) }

// redisLogger adapts go-redis's logger to slog.
type redisLogger struct{ l *slog.Logger }

func (r redisLogger) Printf(ctx context.Context, format string, v ...any) {
	r.l.LogAttrs(ctx, slog.LevelWarn, "redis client: "+fmt.Sprintf(format, v...))
}

var errRedisDown = errors.New("rate-limit store (Redis) unreachable")

// sharedStore is a limiter.Store over Redis that, with fallback, counts in
// memory while Redis is unreachable, and otherwise reports the failure.
type sharedStore struct {
	s        *SharedCounters
	fallback bool
}

func (st *sharedStore) do(ctx context.Context, op func(limiter.Store) (limiter.Context, error)) (limiter.Context, error) {
	rs, err := st.s.redisStore(ctx)
	if err == nil {
		c, opErr := op(rs)
		if opErr == nil {
			return c, nil
		}
		st.s.markDown(ctx, opErr)
	}
	if !st.fallback {
		return limiter.Context{}, errRedisDown
	}
	return op(st.s.local)
}

func (st *sharedStore) Get(ctx context.Context, key string, rate limiter.Rate) (limiter.Context, error) {
	return st.do(ctx, func(s limiter.Store) (limiter.Context, error) { return s.Get(ctx, key, rate) })
}

func (st *sharedStore) Peek(ctx context.Context, key string, rate limiter.Rate) (limiter.Context, error) {
	return st.do(ctx, func(s limiter.Store) (limiter.Context, error) { return s.Peek(ctx, key, rate) })
}

func (st *sharedStore) Reset(ctx context.Context, key string, rate limiter.Rate) (limiter.Context, error) {
	return st.do(ctx, func(s limiter.Store) (limiter.Context, error) { return s.Reset(ctx, key, rate) })
}

func (st *sharedStore) Increment(ctx context.Context, key string, n int64, rate limiter.Rate) (limiter.Context, error) {
	return st.do(ctx, func(s limiter.Store) (limiter.Context, error) { return s.Increment(ctx, key, n, rate) })
}
