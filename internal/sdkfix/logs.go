package sdkfix

import (
	"context"
	"log/slog"
)

// Workaround: the go-sdk logs at ERROR some things any client can make it
// do, so a client could flood an operator's error alerts at will. As of
// v1.8.0 these are protocol misuse by the client, not server faults
// (https://github.com/modelcontextprotocol/go-sdk/blob/v1.8.0/mcp/server.go,
// ServerSession.handle): a 2026-07-28 request for a method that protocol
// removed (initialize, ping, logging/setLevel...), a method sent before
// initialization, an initialized notification before initialize or twice,
// and a duplicate initialize. The client still gets its error answer.
var clientCaused = map[string]bool{
	"method removed in the new protocol":   true,
	"method invalid during initialization": true,
	"initialized before initialize":        true,
	"duplicate initialized notification":   true,
	"duplicate initialize request":         true,
}

// DemoteClientErrors returns a handler that logs the SDK's client-caused
// ERROR records at DEBUG, and everything else unchanged. Give the SDK a
// logger over it.
func DemoteClientErrors(h slog.Handler) slog.Handler { return demote{h} }

type demote struct{ slog.Handler }

func (d demote) Enabled(ctx context.Context, l slog.Level) bool {
	// An ERROR record may be demoted: decide in Handle, on its message.
	return l >= slog.LevelError || d.Handler.Enabled(ctx, l)
}

func (d demote) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError && clientCaused[r.Message] {
		if !d.Handler.Enabled(ctx, slog.LevelDebug) {
			return nil
		}
		r.Level = slog.LevelDebug
	} else if !d.Handler.Enabled(ctx, r.Level) {
		return nil
	}
	return d.Handler.Handle(ctx, r)
}

func (d demote) WithAttrs(attrs []slog.Attr) slog.Handler { return demote{d.Handler.WithAttrs(attrs)} }
func (d demote) WithGroup(name string) slog.Handler       { return demote{d.Handler.WithGroup(name)} }
