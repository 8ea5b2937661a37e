package mcpserver

import (
	"context"
	"log/slog"
	"slices"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// One tool call, one log line. Over stdio the MCP layer writes it ("tool
// call"). Over HTTP the access log writes the request's line anyway, so
// the MCP layer hands its part (correlation id, outcome, redacted
// arguments, audit wait...) to the HTTP layer through a CallLine, and the
// request's one line carries both: what the HTTP layer saw and what the
// call did. Errors are lines of their own, with the call's fields.

// logger is what the gate logs through: a *slog.Logger or a callLogger.
type logger interface {
	LogAttrs(ctx context.Context, level slog.Level, msg string, attrs ...slog.Attr)
}

// CallLine collects the MCP layer's part of an HTTP request's log line.
type CallLine struct {
	mu     sync.Mutex
	attrs  []slog.Attr
	closed bool
}

// Close returns what the MCP layer recorded for the request (nil if it
// handled no tool call) and makes a call still running when the request's
// line was written (the client went away) write its own line instead.
func (l *CallLine) Close() []slog.Attr {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	return l.attrs
}

const callLineExtraKey = "order-mcp/call-line"

// CarryCallLine puts l in the TokenInfo the HTTP layer hands to the MCP
// layer, so that the tool call's fields end up in the request's line.
func CarryCallLine(extra map[string]any, l *CallLine) { extra[callLineExtraKey] = l }

func callLineOf(req *mcp.CallToolRequest) *CallLine {
	if req.Extra == nil || req.Extra.TokenInfo == nil {
		return nil
	}
	l, _ := req.Extra.TokenInfo.Extra[callLineExtraKey].(*CallLine)
	return l
}

// callLogger logs with one call's fields, built up as the gate learns
// them, without making a logger per call.
type callLogger struct {
	base  *slog.Logger
	line  *CallLine // nil: the gate writes the line itself
	attrs []slog.Attr
}

func (l *callLogger) add(attrs ...slog.Attr) { l.attrs = append(l.attrs, attrs...) }

// LogAttrs writes a line of its own (an error, a warning) with the call's
// fields.
func (l *callLogger) LogAttrs(ctx context.Context, level slog.Level, msg string, attrs ...slog.Attr) {
	l.base.LogAttrs(ctx, level, msg, append(slices.Clip(l.attrs), attrs...)...)
}

// done writes the call's line, or hands its fields to the HTTP layer's.
// The HTTP line has the tool, principal and transport of its own.
func (l *callLogger) done(ctx context.Context, attrs ...slog.Attr) {
	if l.line == nil {
		l.LogAttrs(ctx, slog.LevelInfo, "tool call", attrs...)
		return
	}
	l.line.mu.Lock()
	defer l.line.mu.Unlock()
	if l.line.closed {
		l.LogAttrs(ctx, slog.LevelInfo, "tool call", attrs...)
		return
	}
	for _, a := range append(slices.Clip(l.attrs), attrs...) {
		switch a.Key {
		case "tool", "principal", "transport":
			continue
		}
		l.line.attrs = append(l.line.attrs, a)
	}
}
