package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/ulule/limiter/v3"
	redisstore "github.com/ulule/limiter/v3/drivers/store/redis"

	"github.com/example/order-mcp/internal/limits"
)

// Counters is the Redis connection that rate-limit and lockout state share
// between replicas (REDIS_URL).
//
// When Redis is unreachable, read budgets fall back to per-replica memory
// counters (limits still hold, per replica instead of across replicas, and
// an error is logged), while the destructive tools' budget fails closed: a
// destructive tool is not called without its shared budget.
type Counters struct {
	client *redis.Client
	prefix string
	logger *slog.Logger
	now    func() time.Time

	mu        sync.Mutex
	store     limiter.Store // nil while Redis is not known to answer
	downUntil time.Time     // the circuit breaker: skip Redis until then
	lastLog   time.Time
	local     limiter.Store
}

// New connects lazily to Redis at url. It never talks to Redis here, so a
// dead Redis does not stop the server from starting; and its timeouts are
// short and it does not retry, so a dead Redis does not stall requests
// either. prefix namespaces the keys (tests use one each). now is the
// circuit breaker's clock (nil: time.Now).
func New(url, prefix string, logger *slog.Logger, now func() time.Time) (*Counters, error) {
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
	if now == nil {
		now = time.Now
	}
	return &Counters{
		client: redis.NewClient(opts),
		prefix: prefix,
		logger: logger,
		now:    now,
		local:  limits.NewMemoryStore(limits.MaxCounters, nil), // capped, as without Redis (internal/limits/memory.go)
	}, nil
}

// Close closes the Redis connection.
func (s *Counters) Close() error { return s.client.Close() }

// Client returns the Redis client.
func (s *Counters) Client() *redis.Client { return s.client }

// Prefix returns the key prefix.
func (s *Counters) Prefix() string { return s.prefix }

// Stores returns the limiter stores: reads fall back to memory while
// Redis is down, destructive budgets fail closed.
func (s *Counters) Stores() limits.Stores {
	return limits.Stores{Reads: &sharedStore{s: s, fallback: true}, Destructive: &sharedStore{s: s}}
}

// redisStore returns the limiter's Redis store, creating it (which loads
// its Lua scripts, a round trip) when Redis is not known to be down. This
// is a small circuit breaker: after a failure (markDown) no request waits
// on Redis again for a second.
func (s *Counters) redisStore(ctx context.Context) (limiter.Store, error) {
	s.mu.Lock()
	st, down := s.store, s.now().Before(s.downUntil)
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
func (s *Counters) down() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now().Before(s.downUntil)
}

// markDown records that a Redis operation failed: requests stop waiting
// on Redis for a second. It logs at most every ten seconds.
func (s *Counters) markDown(ctx context.Context, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.store, s.downUntil = nil, now.Add(time.Second)
	if now.Sub(s.lastLog) < 10*time.Second {
		return
	}
	s.lastLog = now
	s.logger.LogAttrs(ctx, slog.LevelError,
		"Redis unreachable: read budgets and lockouts count per replica meanwhile, destructive tools are refused",
		slog.String("error", err.Error()))
}

// RouteLogs sends what the Redis client logs on its own (dial failures)
// through logger, which redacts, instead of raw stderr. The Redis client's
// logger is process-wide, so the program calls this once, at start-up,
// rather than as a hidden side effect of New.
func RouteLogs(logger *slog.Logger) { redis.SetLogger(redisLogger{logger}) }

// redisLogger adapts go-redis's logger to slog.
type redisLogger struct{ l *slog.Logger }

func (r redisLogger) Printf(ctx context.Context, format string, v ...any) {
	r.l.LogAttrs(ctx, slog.LevelWarn, "redis client: "+fmt.Sprintf(format, v...))
}

var errRedisDown = fmt.Errorf("rate-limit store (Redis) unreachable: %w", limits.ErrUnavailable)

// sharedStore is a limiter.Store over Redis that, with fallback, counts in
// memory while Redis is unreachable, and otherwise reports the failure.
type sharedStore struct {
	s        *Counters
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
