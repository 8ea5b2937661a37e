package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/example/order-mcp/internal/app"
	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/config"
	"github.com/example/order-mcp/internal/mcpserver"
	"github.com/example/order-mcp/internal/sdkfix"
)

// stdio serves MCP over stdin and stdout for a local client (Claude
// Desktop) as the caller whose key is MCP_API_KEY. The key is checked now,
// so a bad key refuses to start with a clear message, and again on every
// tools/list and tools/call, so revoking it takes effect within moments
// (a Postgres notification reaches the running server's key cache).
//
// stdout carries the protocol and nothing else; logs go to stderr.
func stdio(ctx context.Context, cfg *config.Config, logger *slog.Logger, stdin io.Reader, stdout io.Writer) error {
	if err := cfg.ValidateStdio(); err != nil {
		return err
	}
	a, err := app.New(ctx, cfg, logger, app.WithVersion(version))
	if err != nil {
		return err
	}
	defer a.Close()

	p, err := a.Auth.Authenticate(ctx, cfg.APIKey)
	if err != nil {
		if errors.Is(err, auth.ErrInvalidCredential) {
			return fmt.Errorf("MCP_API_KEY was refused (unknown, revoked, expired or malformed): mint a new one with `server keys create`")
		}
		return fmt.Errorf("checking MCP_API_KEY: %w", err)
	}
	logger.LogAttrs(ctx, slog.LevelInfo, "security posture", cfg.Posture()...)
	logger.Info("serving MCP over stdio", slog.String("principal", p.Subject), slog.Any("scopes", p.Scopes))

	// The line cap is the HTTP body cap: the same bound on every transport.
	// SafeWriter gives the SDK's own error answers fixed texts.
	transport := &mcp.IOTransport{Reader: io.NopCloser(stdin), Writer: sdkfix.SafeWriter(nopWriteCloser{stdout}),
		MaxLineLength: int(cfg.MaxBodyBytes)}
	err = a.MCP.Run(mcpserver.WithCredential(ctx, "stdio", cfg.APIKey), transport)
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, io.EOF) {
		return fmt.Errorf("stdio session: %w", err)
	}
	return nil
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
