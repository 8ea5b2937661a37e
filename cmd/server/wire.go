package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/example/order-mcp/internal/audit"
	"github.com/example/order-mcp/internal/config"
	"github.com/example/order-mcp/internal/mcpserver"
	"github.com/example/order-mcp/internal/security"
	"github.com/example/order-mcp/internal/store"
	"github.com/example/order-mcp/internal/tools"
)

// components is what serve and stdio share, wired explicitly in one place.
type components struct {
	db      *store.Store
	audit   *audit.Writer
	shared  *security.SharedCounters
	auth    *security.Authenticator
	lockout *security.Lockout
	limits  *security.Limits
	mcp     *mcp.Server
}

// wire opens the database as the least-privilege role, refuses to go on if
// that role could bypass the database's controls, and builds the MCP server
// with its dependencies. The returned function releases everything,
// draining the audit writer last so that no record is lost; on an error,
// wire has already released what it opened.
func wire(ctx context.Context, cfg *config.Config, logger *slog.Logger) (_ *components, _ func(), err error) {
	c := &components{}
	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	defer func() {
		if err != nil {
			closeAll() // not the named result, which an error return sets to nil
		}
	}()

	c.db, err = store.Open(ctx, cfg.DatabaseURL, store.Options{
		AsAppRole:        true,
		StatementTimeout: cfg.StatementTimeout,
		MaxConns:         cfg.DBMaxConns,
		Logger:           logger,
	})
	if err != nil {
		return nil, nil, err
	}
	closers = append(closers, c.db.Close)
	if err := c.db.CheckLeastPrivilege(ctx); err != nil {
		if errors.Is(err, store.ErrUnsafeRole) {
			return nil, nil, fmt.Errorf("%w (migrations create order_mcp_app; DATABASE_URL must be able to SET ROLE to it)", err)
		}
		return nil, nil, fmt.Errorf("database not reachable or not migrated (run `server migrate`): %w", err)
	}
	if err := c.db.CheckMigrated(ctx); err != nil {
		return nil, nil, fmt.Errorf("database not reachable or not migrated (run `server migrate`): %w", err)
	}

	sealer, err := auditSealer(cfg, logger)
	if err != nil {
		return nil, nil, err
	}
	c.audit = audit.NewWriter(c.db, sealer, logger)
	closers = append(closers, func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.audit.Close(dctx); err != nil {
			logger.Error("audit records may be lost: drain did not finish", slog.String("error", err.Error()))
		}
	})

	var lockoutStore security.LockoutStore = c.db
	if cfg.RedisURL != "" {
		security.RouteRedisLogs(logger)
		c.shared, err = security.NewSharedCounters(cfg.RedisURL, cfg.RedisPrefix, logger)
		if err != nil {
			return nil, nil, err
		}
		closers = append(closers, func() { _ = c.shared.Close() })
		lockoutStore = security.NewRedisLockoutStore(c.shared)
	}
	c.lockout = security.NewLockout(security.DefaultLockoutPolicy(), lockoutStore)
	pruneCtx, stopPruning := context.WithCancel(context.WithoutCancel(ctx))
	closers = append(closers, stopPruning)
	go pruneLockouts(pruneCtx, c.lockout, logger)
	c.limits = security.NewLimits(security.LimitsConfig{
		PerIP:                cfg.RatePerIP,
		PerPrincipal:         cfg.RatePerPrincipal,
		Concurrency:          cfg.ConcurrencyPerCaller,
		CancelPerPrincipal:   cfg.RateCancel,
		NotFoundPerPrincipal: cfg.RateNotFound,
	}, c.shared, c.lockout)

	var tokens security.TokenVerifier
	if cfg.OAuth() {
		v, err := security.NewOAuthVerifier(ctx, security.OAuthConfig{
			Issuer: cfg.OAuthIssuer, JWKSURL: cfg.OAuthJWKSURL, Audience: cfg.ResourceURL,
			CustomerClaim: cfg.OAuthCustomerClaim, MaxLifetime: cfg.OAuthMaxLifetime, AcceptJWTType: cfg.OAuthAcceptJWTType,
		}, logger)
		if err != nil {
			return nil, nil, err
		}
		tokens = v
	}
	c.auth = security.NewAuthenticator(c.db, tokens, logger)

	c.mcp = mcpserver.New(mcpserver.Deps{
		Tools:         tools.Deps{Store: c.db, CancelDailyQuota: cfg.CancelDailyQuota},
		Authenticator: c.auth,
		Audit:         c.audit,
		Limits:        c.limits,
		Logger:        logger,
		Version:       version,
	})
	return c, closeAll, nil
}

// pruneLockouts forgets stale lockout buckets every ten minutes.
func pruneLockouts(ctx context.Context, l *security.Lockout, logger *slog.Logger) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := l.Prune(ctx); err != nil {
				logger.Warn("could not prune lockout buckets", slog.String("error", err.Error()))
			} else if n > 0 {
				logger.Debug("pruned lockout buckets", slog.Int64("buckets", n))
			}
		}
	}
}

// auditSealer returns the sealer for AUDIT_HMAC_KEY. In development only, a
// missing key is replaced by a fixed, public one, and the log says so: the
// chain then proves nothing.
func auditSealer(cfg *config.Config, logger *slog.Logger) (*audit.Sealer, error) {
	key := cfg.AuditHMACKey
	if len(key) == 0 {
		if !cfg.Development() {
			return nil, errors.New("AUDIT_HMAC_KEY is required outside development (or AUDIT_HMAC_KEY_FILE)")
		}
		logger.Warn("development: AUDIT_HMAC_KEY not set; using a public development key, so the audit chain proves nothing")
		sum := sha256.Sum256([]byte("order-mcp public development audit key"))
		key = sum[:]
	}
	return audit.NewSealer(key)
}
