package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/example/order-mcp/internal/audit"
	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/config"
	"github.com/example/order-mcp/internal/confirm"
	"github.com/example/order-mcp/internal/httpserver"
	"github.com/example/order-mcp/internal/limits"
	"github.com/example/order-mcp/internal/mcpserver"
	"github.com/example/order-mcp/internal/metrics"
	"github.com/example/order-mcp/internal/redisstore"
	"github.com/example/order-mcp/internal/store"
	"github.com/example/order-mcp/internal/surface"
	"github.com/example/order-mcp/internal/tools"
)

// App is the server, assembled: every component `serve` and `stdio` run,
// wired explicitly in one place. The binary and the tests both build it
// with New, so the tests exercise the production assembly.
type App struct {
	Config *config.Config
	Logger *slog.Logger
	// Store is the database as the least-privilege role order_mcp_app.
	Store  *store.Store
	Sealer *audit.Sealer
	Audit  *audit.Writer
	Auth   *auth.Authenticator
	// Keys answers API-key lookups from memory while Watcher is healthy.
	Keys *store.KeyCache
	// Watcher receives the database's change notifications (revoked keys,
	// new locks) for Keys and the lock mirror.
	Watcher  *store.Watcher
	Lockout  *limits.Lockout
	Limits   *limits.Limits
	Counters *redisstore.Counters // nil without REDIS_URL
	// MCP is the MCP server: the tools behind the gate.
	MCP *mcp.Server
	// Metrics are served on MCP_METRICS_ADDR (see ServeMetrics).
	Metrics *metrics.Metrics
	// Pin is the digest of the tool surface each scope set sees, signed
	// with TOOL_DIGEST_SIGNING_KEY: handed to callers by the MCP layer and
	// served at /.well-known/mcp-tool-digest (internal/surface).
	Pin *surface.Pin

	version string
	closers []func()
}

// Option adjusts the assembly. Production passes only WithVersion; tests
// pass the limits, lockout policy, clock and faults they need.
type Option func(*options)

type options struct {
	version      string
	limits       *limits.Config
	policy       *limits.Policy
	clock        func() time.Time
	lockoutStore limits.LockoutStore
	counters     *redisstore.Counters
	tokens       auth.TokenVerifier
	wrapStore    func(tools.Store) tools.Store
	observe      func(store.QueryEvent)
	quota        int
	keyTTL       *time.Duration
}

func (o options) keyCacheTTL(cfg *config.Config) time.Duration {
	if o.keyTTL != nil {
		return *o.keyTTL
	}
	return cfg.CredentialCacheTTL
}

// WithKeyCacheTTL replaces how long a cached API key is trusted without a
// notification (0: no cache).
func WithKeyCacheTTL(d time.Duration) Option { return func(o *options) { o.keyTTL = &d } }

// WithVersion is the version reported in serverInfo.
func WithVersion(v string) Option { return func(o *options) { o.version = v } }

// WithLimits replaces the configured rate, concurrency and budget limits.
func WithLimits(c limits.Config) Option { return func(o *options) { o.limits = &c } }

// WithLockoutPolicy replaces the default lockout policy.
func WithLockoutPolicy(p limits.Policy) Option { return func(o *options) { o.policy = &p } }

// WithClock is the clock of the lockout, the Redis circuit breaker and the
// expiry of confirmations.
func WithClock(now func() time.Time) Option { return func(o *options) { o.clock = now } }

// WithLockoutStore keeps lockout state elsewhere (tests of failing stores).
func WithLockoutStore(s limits.LockoutStore) Option { return func(o *options) { o.lockoutStore = s } }

// WithCounters shares rate-limit and lockout state through these Redis
// counters instead of the ones REDIS_URL names (tests use a key prefix
// each).
func WithCounters(c *redisstore.Counters) Option { return func(o *options) { o.counters = c } }

// WithTokenVerifier verifies bearer JWTs with v instead of the configured
// issuer.
func WithTokenVerifier(v auth.TokenVerifier) Option { return func(o *options) { o.tokens = v } }

// WithToolStore wraps the store the tools use (fault injection).
func WithToolStore(wrap func(tools.Store) tools.Store) Option {
	return func(o *options) { o.wrapStore = wrap }
}

// WithQueryObserver is told about every statement the server runs.
func WithQueryObserver(f func(store.QueryEvent)) Option { return func(o *options) { o.observe = f } }

// WithCancelDailyQuota replaces CANCEL_DAILY_QUOTA.
func WithCancelDailyQuota(n int) Option { return func(o *options) { o.quota = n } }

// New opens the database as the least-privilege role, refuses to go on if
// that role could bypass the database's controls, and builds every
// component. Close releases everything, draining the audit writer last so
// that no record is lost; on an error, New has already released what it
// opened.
func New(ctx context.Context, cfg *config.Config, logger *slog.Logger, opt ...Option) (_ *App, err error) {
	var o options
	for _, f := range opt {
		f(&o)
	}
	a := &App{Config: cfg, Logger: logger, version: o.version}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()

	a.Store, err = store.Open(ctx, cfg.DatabaseURL, store.Options{
		AsAppRole:        true,
		StatementTimeout: cfg.StatementTimeout,
		AcquireTimeout:   cfg.DBAcquireTimeout,
		MaxConns:         cfg.DBMaxConns,
		Logger:           logger,
		Observe:          o.observe,
	})
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, a.Store.Close)
	if err := a.Store.CheckLeastPrivilege(ctx); err != nil {
		if errors.Is(err, store.ErrUnsafeRole) {
			return nil, fmt.Errorf("%w (migrations create order_mcp_app; DATABASE_URL must be able to SET ROLE to it)", err)
		}
		return nil, fmt.Errorf("database not reachable or not migrated (run `server migrate`): %w", err)
	}
	if err := a.Store.CheckMigrated(ctx); err != nil {
		return nil, fmt.Errorf("database not reachable or not migrated (run `server migrate`): %w", err)
	}
	violations, err := a.Store.CheckCatalog(ctx)
	if err != nil {
		return nil, fmt.Errorf("checking the database's permission rules: %w", err)
	}
	if len(violations) > 0 {
		var lines []string
		for _, v := range violations {
			lines = append(lines, v.String())
		}
		return nil, fmt.Errorf("the schema breaks the server's permission rules (see internal/store/catalog.go): %s",
			strings.Join(lines, "; "))
	}

	if a.Sealer, err = Sealer(cfg, logger); err != nil {
		return nil, err
	}
	spill, err := audit.OpenSpill(cfg.AuditSpillDir, a.Sealer)
	switch {
	case err != nil && !cfg.Development():
		return nil, fmt.Errorf("%w: records Postgres cannot take must wait there (mount a writable volume, or set AUDIT_SPILL_DIR)", err)
	case err != nil:
		logger.Warn("development: no audit spill directory; records Postgres cannot take are lost", slog.String("error", err.Error()))
		spill = nil
	}
	names := make([]string, 0, len(tools.All()))
	for _, t := range tools.All() {
		names = append(names, t.Name())
	}
	a.Metrics = metrics.New(names)
	a.Metrics.Register(metrics.PoolCollector(a.Store.Stats))
	a.Audit = audit.NewWriter(a.Store, a.Sealer, logger, audit.Options{Spill: spill, Observer: a.Metrics.Audit()})
	a.closers = append(a.closers, func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := a.Audit.Close(dctx); err != nil {
			logger.Error("audit records may be lost: drain did not finish", slog.String("error", err.Error()))
		}
	})

	// What this process answers from memory, kept true by the database's
	// change notifications (internal/store/notify.go): API keys, and which
	// lockout buckets are locked.
	a.Watcher = a.Store.NewWatcher(logger)
	a.closers = append(a.closers, a.Watcher.Close)
	a.Keys = store.NewKeyCache(a.Store, a.Watcher, o.keyCacheTTL(cfg), o.clock)

	stores := limits.MemoryStores()
	var lockoutStore limits.LockoutStore = store.NewLockMirror(a.Store, a.Watcher)
	a.Counters = o.counters
	if a.Counters == nil && cfg.RedisURL != "" {
		redisstore.RouteLogs(logger)
		if a.Counters, err = redisstore.New(cfg.RedisURL, cfg.RedisPrefix, logger, o.clock); err != nil {
			return nil, err
		}
		a.closers = append(a.closers, func() { _ = a.Counters.Close() })
	}
	if a.Counters != nil {
		stores, lockoutStore = a.Counters.Stores(), a.Counters.LockoutStore()
	}
	if o.lockoutStore != nil {
		lockoutStore = o.lockoutStore
	}
	a.Metrics.CountEvictions(func() uint64 {
		var n uint64
		for _, st := range []any{stores.Reads, stores.Destructive} {
			if m, ok := st.(*limits.MemoryStore); ok {
				n += m.Evicted()
			}
		}
		return n
	})
	policy := limits.DefaultPolicy()
	if o.policy != nil {
		policy = *o.policy
	}
	a.Lockout = limits.NewLockout(policy, lockoutStore, o.clock)
	pruneCtx, stopPruning := context.WithCancel(context.WithoutCancel(ctx))
	a.closers = append(a.closers, stopPruning)
	go prune(pruneCtx, logger, "lockout buckets", a.Lockout.Prune)
	go prune(pruneCtx, logger, "answered confirmations", a.Store.PruneConfirmations)
	limitsCfg := limits.Config{
		PerIP:                cfg.RatePerIP,
		PerPrincipal:         cfg.RatePerPrincipal,
		Concurrency:          cfg.ConcurrencyPerCaller,
		CancelPerPrincipal:   cfg.RateCancel,
		NotFoundPerPrincipal: cfg.RateNotFound,
	}
	if o.limits != nil {
		limitsCfg = *o.limits
	}
	a.Limits = limits.New(limitsCfg, stores, a.Lockout)

	tokens := o.tokens
	if tokens == nil && cfg.OAuth() {
		v, err := auth.NewOAuthVerifier(ctx, auth.OAuthConfig{
			Issuer: cfg.OAuthIssuer, JWKSURL: cfg.OAuthJWKSURL, Audience: cfg.ResourceURL,
			CustomerClaim: cfg.OAuthCustomerClaim, MaxLifetime: cfg.OAuthMaxLifetime, AcceptJWTType: cfg.OAuthAcceptJWTType,
		}, logger)
		if err != nil {
			return nil, err
		}
		tokens = v
	}
	a.Auth = auth.NewAuthenticator(a.Keys, tokens, logger)
	a.Watcher.Start()

	var toolStore tools.Store = a.Store
	if o.wrapStore != nil {
		toolStore = o.wrapStore(toolStore)
	}
	quota := cfg.CancelDailyQuota
	if o.quota > 0 {
		quota = o.quota
	}
	confirmation, err := Confirmation(cfg, logger, o.clock)
	if err != nil {
		return nil, err
	}
	signer, err := DigestSigner(cfg, logger)
	if err != nil {
		return nil, err
	}
	if a.Pin, err = surface.New(tools.All(), signer); err != nil {
		return nil, err
	}
	a.MCP = mcpserver.New(mcpserver.Deps{
		Tools:         tools.Deps{Store: toolStore, CancelDailyQuota: quota, Confirmation: confirmation},
		Authenticator: a.Auth,
		Audit:         a.Audit,
		Limits:        a.Limits,
		Logger:        logger,
		Metrics:       a.Metrics,
		Version:       o.version,
		Surface:       a.Pin,
	})
	return a, nil
}

// HTTPHandler is the whole HTTP surface (internal/httpserver) for the
// configuration.
func (a *App) HTTPHandler() http.Handler {
	c := a.Config
	return httpserver.New(httpserver.Deps{
		Config: httpserver.Config{
			ResourceURL:             c.ResourceURL,
			OAuthIssuer:             c.OAuthIssuer,
			AllowedOrigins:          c.AllowedOrigins,
			AllowedHosts:            c.AllowedHosts,
			TrustedProxies:          c.TrustedProxies,
			MaxBodyBytes:            c.MaxBodyBytes,
			TLS:                     c.TLS(),
			Stateful:                c.Stateful,
			SessionIdleTimeout:      c.SessionIdleTimeout,
			MaxSessionsPerPrincipal: c.MaxSessionsPerPrincipal,
		},
		MCP:           a.MCP,
		Authenticator: a.Auth,
		Lockout:       a.Lockout,
		Limits:        a.Limits,
		Audit:         a.Audit,
		Metrics:       a.Metrics,
		Logger:        a.Logger,
		Ready:         a.Store.Ping,
		ToolDigest:    a.Pin,
	})
}

// ServeMetrics serves the metrics on MCP_METRICS_ADDR, when it is set,
// until ctx ends, and returns the address it listens on (nil when off).
func (a *App) ServeMetrics(ctx context.Context) (net.Addr, error) {
	if a.Config.MetricsAddr == "" {
		return nil, nil
	}
	addr, err := a.Metrics.Serve(ctx, a.Config.MetricsAddr, a.Logger)
	if err != nil {
		return nil, fmt.Errorf("metrics listener on %s: %w", a.Config.MetricsAddr, err)
	}
	a.Logger.Info("serving metrics", slog.String("endpoint", "http://"+addr.String()+"/metrics"))
	return addr, nil
}

// Close releases everything New opened, in reverse order: the audit writer
// drains before the database closes. It is safe to call more than once.
func (a *App) Close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
}

// prune forgets stale bookkeeping (lockout buckets, answered
// confirmations) every ten minutes.
func prune(ctx context.Context, logger *slog.Logger, what string, f func(context.Context) (int64, error)) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := f(ctx); err != nil {
				logger.Warn("could not prune "+what, slog.String("error", err.Error()))
			} else if n > 0 {
				logger.Debug("pruned "+what, slog.Int64("rows", n))
			}
		}
	}
}

// Confirmation returns what the tools need to ask the user before a
// destructive call acts (docs/BEYOND-THE-CHECKLIST.md#human-confirmation-of-destructive-calls): CANCEL_CONFIRMATION, and a
// sealer keyed by CONFIRMATION_SECRET. Without the secret, development
// uses a fixed, public one and says so; a production process gets here
// only as stdio (serve refuses to start without it: its replicas must
// share it), which answers its own questions, and gets a key of its own.
// now is the clock of expiries (nil: time.Now).
func Confirmation(cfg *config.Config, logger *slog.Logger, now func() time.Time) (tools.Confirmation, error) {
	policy, err := confirm.ParsePolicy(cfg.CancelConfirmation)
	if err != nil {
		return tools.Confirmation{}, fmt.Errorf("CANCEL_CONFIRMATION: %w", err)
	}
	if policy == confirm.Off {
		logger.Warn("CANCEL_CONFIRMATION=off: destructive tools act without asking the user; only the budgets and quotas " +
			"bound what a prompt-injected model can do")
		return tools.Confirmation{Policy: policy}, nil
	}
	secret := cfg.ConfirmationSecret
	switch {
	case len(secret) > 0:
	case cfg.Development():
		logger.Warn("development: CONFIRMATION_SECRET not set; using a public development secret, so anyone can forge " +
			"the state of a confirmation")
		secret = confirm.DevelopmentSecret()
	default:
		logger.Info("CONFIRMATION_SECRET not set: confirmations are sealed with a key of this process's own")
		secret = confirm.RandomSecret()
	}
	sealer, err := confirm.NewSealer(secret, now)
	if err != nil {
		return tools.Confirmation{}, fmt.Errorf("CONFIRMATION_SECRET: %w", err)
	}
	return tools.Confirmation{Policy: policy, Sealer: sealer}, nil
}

// Sealer returns the sealer for AUDIT_HMAC_KEY. In development only, a
// missing key is replaced by a fixed, public one, and the log says so: the
// chain then proves nothing.
func Sealer(cfg *config.Config, logger *slog.Logger) (*audit.Sealer, error) {
	key := cfg.AuditHMACKey
	if len(key) == 0 {
		if !cfg.Development() {
			return nil, errors.New("AUDIT_HMAC_KEY is required outside development (or AUDIT_HMAC_KEY_FILE)")
		}
		logger.Warn("development: AUDIT_HMAC_KEY not set; using a public development key, so the audit chain proves nothing")
		key = audit.DevelopmentKey()
	}
	return audit.NewSealer(key)
}

// DigestSigner returns the signer of the tool digest: the key in
// TOOL_DIGEST_SIGNING_KEY. In development only, a missing key is replaced
// by a fixed, public one, and the log says so: the signature then proves
// nothing. Outside development that public key is refused, and a missing
// key leaves the digests unsigned (nil): only stdio gets here so, since
// serve refuses to start without one (config.ToolDigestKeyRequired), and
// a stdio client started the binary itself.
func DigestSigner(cfg *config.Config, logger *slog.Logger) (*surface.Signer, error) {
	key := cfg.ToolDigestKey
	switch {
	case key != nil && !cfg.Development() && key.Equal(surface.DevelopmentKey()):
		return nil, errors.New("TOOL_DIGEST_SIGNING_KEY is the public development key: generate one (openssl genpkey -algorithm ed25519)")
	case key == nil && cfg.Development():
		logger.Warn("development: TOOL_DIGEST_SIGNING_KEY not set; the tool digest is signed with a public development key, " +
			"so its signature proves nothing")
		key = surface.DevelopmentKey()
	case key == nil:
		logger.Info("TOOL_DIGEST_SIGNING_KEY not set: the tool digests are published unsigned")
		return nil, nil
	}
	return surface.NewSigner(key)
}

// Keyring returns the keys `audit verify` checks records with: the
// current one (or the development key), AUDIT_HMAC_PREVIOUS_KEYS, and
// the public development key.
func Keyring(cfg *config.Config, logger *slog.Logger) (*audit.Keyring, error) {
	current, err := Sealer(cfg, logger)
	if err != nil {
		return nil, err
	}
	var previous []*audit.Sealer
	for _, k := range cfg.AuditPreviousKeys {
		s, err := audit.NewSealer(k)
		if err != nil {
			return nil, fmt.Errorf("AUDIT_HMAC_PREVIOUS_KEYS: %w", err)
		}
		previous = append(previous, s)
	}
	return audit.NewKeyring(current, previous...), nil
}
