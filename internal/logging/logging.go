package logging

import (
	"context"
	"io"
	"log/slog"
	"strings"

	slogmulti "github.com/samber/slog-multi"
)

// Format is how a log line is written. Only the last stage of the
// pipeline differs: both formats get the same, already redacted, record.
type Format int

const (
	// JSON lines, one object per line: what production writes, for log
	// collectors.
	JSON Format = iota
	// Text lines in slog's key=value form, with the time of day only: what
	// development writes, for a person at a terminal. Values with spaces,
	// quotes or line breaks are quoted and escaped, so a value cannot start
	// a line of its own here either.
	Text
)

// New returns a logger that redacts, then writes JSON lines to every sink.
func New(level slog.Leveler, sinks ...io.Writer) *slog.Logger {
	return NewFormat(JSON, level, sinks...)
}

// NewFormat returns a logger that redacts, then writes lines of format f
// to every sink.
func NewFormat(f Format, level slog.Leveler, sinks ...io.Writer) *slog.Logger {
	handlers := make([]slog.Handler, 0, len(sinks))
	for _, w := range sinks {
		switch f {
		case Text:
			handlers = append(handlers, slog.NewTextHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: clockTime}))
		default:
			handlers = append(handlers, slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
		}
	}
	return slog.New(slogmulti.Pipe(redaction()).Handler(slogmulti.Fanout(handlers...)))
}

// clockTime writes a text line's time as the time of day, to the
// millisecond: a developer reads the log as it scrolls by.
func clockTime(groups []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey && len(groups) == 0 && a.Value.Kind() == slog.KindTime {
		return slog.String(slog.TimeKey, a.Value.Time().Format("15:04:05.000"))
	}
	return a
}

// AtLeast returns a logger that drops records below level. The MCP SDK
// logs every stateless request's session at info; it gets AtLeast(warn).
func AtLeast(l *slog.Logger, level slog.Level) *slog.Logger {
	return slog.New(minLevel{Handler: l.Handler(), min: level})
}

type minLevel struct {
	slog.Handler
	min slog.Level
}

func (m minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.min && m.Handler.Enabled(ctx, l)
}

func (m minLevel) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevel{Handler: m.Handler.WithAttrs(attrs), min: m.min}
}

func (m minLevel) WithGroup(name string) slog.Handler {
	return minLevel{Handler: m.Handler.WithGroup(name), min: m.min}
}

// ParseLevel reads LOG_LEVEL (debug, info, warn, error); anything else is
// info.
func ParseLevel(s string) slog.Level {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// redaction is the first stage of every pipeline. It redacts the message
// and every attribute of a record, and the attributes bound with
// logger.With before they are stored in the handler chain.
func redaction() slogmulti.Middleware {
	return slogmulti.NewInlineMiddleware(
		func(ctx context.Context, level slog.Level, next func(context.Context, slog.Level) bool) bool {
			return next(ctx, level)
		},
		func(ctx context.Context, r slog.Record, next func(context.Context, slog.Record) error) error {
			out := slog.NewRecord(r.Time, r.Level, RedactString(r.Message), r.PC)
			r.Attrs(func(a slog.Attr) bool {
				out.AddAttrs(redactAttr(a))
				return true
			})
			return next(ctx, out)
		},
		func(attrs []slog.Attr, next func([]slog.Attr) slog.Handler) slog.Handler {
			red := make([]slog.Attr, len(attrs))
			for i, a := range attrs {
				red[i] = redactAttr(a)
			}
			return next(red)
		},
		func(name string, next func(string) slog.Handler) slog.Handler {
			return next(name)
		},
	)
}
