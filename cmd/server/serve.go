package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/example/order-mcp/internal/app"
	"github.com/example/order-mcp/internal/config"
	"github.com/example/order-mcp/internal/httpserver"
)

// checkCanAuthenticate makes sure somebody can use the server. Beyond
// loopback it refuses to listen when nobody could authenticate (no active
// API key and no OAuth issuer): such a deployment forgot its credentials,
// and must not be reachable before it has them. On loopback it starts (a
// developer is about to mint a key), but says so, with the command that
// mints one: every request would otherwise get 401 with no explanation.
func checkCanAuthenticate(ctx context.Context, cfg *config.Config, a *app.App, logger *slog.Logger) error {
	if cfg.OAuth() {
		return nil
	}
	active, err := a.Store.HasActiveAPIKey(ctx)
	if err != nil {
		return fmt.Errorf("checking for API keys: %w", err)
	}
	switch {
	case active:
		return nil
	case cfg.LoopbackHTTP():
		logger.Warn("no active API key and no OAuth issuer: every request will be refused (401) until you mint a key: " +
			"server keys create --name <who> --scopes orders:read --customer <customer id>")
		return nil
	}
	return fmt.Errorf("refusing to serve on %s: authentication is not configured "+
		"(no active API key and no MCP_OAUTH_ISSUER); mint a key with `server keys create`", cfg.HTTPAddr)
}

func loopbackAddr(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// serve runs the Streamable HTTP transport until ctx ends, then shuts down
// gracefully: it stops accepting requests, lets those in flight finish
// writing their whole answer, and drains the audit writer.
func serve(ctx context.Context, cfg *config.Config, logger *slog.Logger, stdout io.Writer) error {
	if err := cfg.ValidateServe(); err != nil {
		return err
	}
	a, err := app.New(ctx, cfg, logger, app.WithVersion(version))
	if err != nil {
		return err
	}
	defer a.Close()
	if err := checkCanAuthenticate(ctx, cfg, a, logger); err != nil {
		return err
	}

	if _, err := a.ServeMetrics(ctx); err != nil {
		return err
	}
	srv, err := httpserver.Listen(cfg.HTTPAddr, a.HTTPHandler(), cfg.TLSCertFile, cfg.TLSKeyFile, logger)
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
	// begins so the streams end and shutdown does not wait them out. In
	// stateless mode the SDK's sessions are the requests in flight
	// themselves: closing them would cut answers off, so they are left to
	// finish.
	if cfg.Stateful {
		srv.OnShutdown(func() {
			for ss := range a.MCP.Sessions() {
				_ = ss.Close()
			}
		})
	}

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
