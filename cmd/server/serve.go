package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/example/order-mcp/internal/config"
	"github.com/example/order-mcp/internal/httpserver"
)

// checkCanAuthenticate refuses to expose the server beyond this machine
// when nobody could authenticate: no active API key and no OAuth issuer.
// (No request is ever served unauthenticated; this catches a deployment
// that forgot its credentials before it is reachable.)
func checkCanAuthenticate(ctx context.Context, cfg *config.Config, c *components) error {
	if cfg.LoopbackHTTP() || cfg.OAuth() {
		return nil
	}
	active, err := c.db.HasActiveAPIKey(ctx)
	if err != nil {
		return fmt.Errorf("checking for API keys: %w", err)
	}
	if !active {
		return fmt.Errorf("refusing to serve on %s: authentication is not configured "+
			"(no active API key and no MCP_OAUTH_ISSUER); mint a key with `server keys create`", cfg.HTTPAddr)
	}
	return nil
}

func loopbackAddr(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// serve runs the Streamable HTTP transport until ctx ends, then shuts down
// gracefully: it stops accepting requests, lets those in flight finish,
// and drains the audit writer.
func serve(ctx context.Context, cfg *config.Config, logger *slog.Logger, stdout io.Writer) error {
	if err := cfg.ValidateServe(); err != nil {
		return err
	}
	c, closeAll, err := wire(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer closeAll()
	if err := checkCanAuthenticate(ctx, cfg, c); err != nil {
		return err
	}

	handler := httpserver.New(httpserver.Deps{
		Config: httpserver.Config{
			ResourceURL:             cfg.ResourceURL,
			OAuthIssuer:             cfg.OAuthIssuer,
			AllowedOrigins:          cfg.AllowedOrigins,
			AllowedHosts:            cfg.AllowedHosts,
			TrustedProxies:          cfg.TrustedProxies,
			MaxBodyBytes:            cfg.MaxBodyBytes,
			TLS:                     cfg.TLS(),
			Stateful:                cfg.Stateful,
			SessionIdleTimeout:      cfg.SessionIdleTimeout,
			MaxSessionsPerPrincipal: cfg.MaxSessionsPerPrincipal,
		},
		MCP:           c.mcp,
		Authenticator: c.auth,
		Lockout:       c.lockout,
		Limits:        c.limits,
		Audit:         c.audit,
		Logger:        logger,
		Ready:         c.db.Ping,
	})
	srv, err := httpserver.Listen(cfg.HTTPAddr, handler, cfg.TLSCertFile, cfg.TLSKeyFile, logger)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	logger.LogAttrs(ctx, slog.LevelInfo, "security posture", cfg.Posture()...)
	if cfg.Development() && !cfg.TLS() && !loopbackAddr(srv.Addr()) {
		logger.Warn("development: serving plain HTTP on a non-loopback address; never do this in production")
	}
	scheme := "http"
	if cfg.TLSCertFile != "" {
		scheme = "https"
	}
	endpoint := fmt.Sprintf("%s://%s/mcp", scheme, srv.Addr())
	logger.Info("serving MCP over Streamable HTTP", slog.String("endpoint", endpoint))
	fmt.Fprintln(stdout, "listening on "+endpoint)

	// Stateful sessions hold event streams open; close them when shutdown
	// begins so the streams end and shutdown does not wait them out.
	srv.OnShutdown(func() {
		for ss := range c.mcp.Sessions() {
			_ = ss.Close()
		}
	})

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return <-errc
}
