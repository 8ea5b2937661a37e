package store

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// QueryEvent describes one statement the pool ran: its name, how many rows
// it returned or changed, and its SQLSTATE if it failed. It carries no
// arguments and no row data.
type QueryEvent struct {
	Name     string
	Rows     int64
	Code     string
	Duration time.Duration
}

// tracer is the pool's pgx.QueryTracer.
//
// Checklist: "Logging: mask sensitive fields in logs". pgx's stock tracelog
// adapter logs every query's arguments, and here arguments are customer ids,
// order ids and emails. This tracer logs only the statement's name (the
// "-- name: x" comment each statement starts with), its duration and its
// outcome.
type tracer struct {
	logger  *slog.Logger
	observe func(QueryEvent)
}

type traceStartKey struct{}

type traceStart struct {
	name  string
	start time.Time
}

func (t *tracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	return context.WithValue(ctx, traceStartKey{}, traceStart{name: statementName(data.SQL), start: time.Now()})
}

func (t *tracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	st, _ := ctx.Value(traceStartKey{}).(traceStart)
	t.record(ctx, st.name, time.Since(st.start), data.CommandTag, data.Err)
}

func (t *tracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return context.WithValue(ctx, traceStartKey{}, traceStart{start: time.Now()})
}

func (t *tracer) TraceBatchQuery(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchQueryData) {
	st, _ := ctx.Value(traceStartKey{}).(traceStart)
	t.record(ctx, statementName(data.SQL), time.Since(st.start), data.CommandTag, data.Err)
}

func (t *tracer) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

func (t *tracer) record(ctx context.Context, name string, d time.Duration, tag pgconn.CommandTag, err error) {
	ev := QueryEvent{Name: name, Rows: tag.RowsAffected(), Duration: d}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		ev.Code = pgErr.Code
	}
	if t.observe != nil {
		t.observe(ev)
	}
	if t.logger == nil {
		return
	}
	switch {
	case err != nil:
		t.logger.LogAttrs(ctx, slog.LevelWarn, "db statement failed",
			slog.String("statement", name), slog.String("sqlstate", ev.Code),
			slog.Float64("duration_ms", float64(d.Microseconds())/1000))
	default:
		t.logger.LogAttrs(ctx, slog.LevelDebug, "db statement",
			slog.String("statement", name), slog.Int64("rows", ev.Rows),
			slog.Float64("duration_ms", float64(d.Microseconds())/1000))
	}
}

// statementName returns the name from a leading "-- name: x" comment, or
// the statement's first word (begin, commit, set...) for unnamed ones.
func statementName(sql string) string {
	sql = strings.TrimSpace(sql)
	if rest, ok := strings.CutPrefix(sql, "-- name:"); ok {
		name, _, _ := strings.Cut(rest, "\n")
		return strings.TrimSpace(name)
	}
	word, _, _ := strings.Cut(sql, " ")
	return strings.ToLower(word)
}
