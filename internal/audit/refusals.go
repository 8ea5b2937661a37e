package audit

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/example/order-mcp/internal/store"
)

// maxRefusalKeys bounds the distinct (minute, source, reason) counters held
// in memory; past it, refusals are counted under source "other", so an
// attacker rotating addresses cannot grow memory or the table without bound.
const maxRefusalKeys = 10000

type refusalKey struct {
	minute                    time.Time
	source, principal, reason string
}

type refusals struct {
	mu     sync.Mutex
	counts map[refusalKey]int
}

func newRefusals() *refusals { return &refusals{counts: make(map[refusalKey]int)} }

// Refusal counts one request refused before the MCP layer: from source
// (the client address), by principal when the caller was already
// authenticated ("" otherwise), for reason. It never blocks and never
// touches the database: counts are written once per source, principal,
// reason and minute by a background flush, so who was throttled is on
// record without a flood writing a row per request.
func (w *Writer) Refusal(source, principal, reason string) {
	k := refusalKey{minute: time.Now().UTC().Truncate(time.Minute), source: source, principal: principal, reason: reason}
	r := w.refusals
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.counts[k]; !ok && len(r.counts) >= maxRefusalKeys {
		k.source, k.principal = "other", ""
	}
	r.counts[k]++
}

// FlushRefusals writes every refusal counter now, the current minute's
// too (Close does it last; tests call it to see what a flush keeps).
func (w *Writer) FlushRefusals(ctx context.Context) { w.flushRefusals(ctx, true) }

// flushRefusals writes the counters of minutes that have ended (or, with
// all, of every minute) as one record each. A counter is forgotten only
// once its record is committed or spilled: when neither is possible (the
// database down and no spill directory), it is kept and written at the
// next flush.
func (w *Writer) flushRefusals(ctx context.Context, all bool) {
	now := time.Now().UTC().Truncate(time.Minute)
	r := w.refusals
	r.mu.Lock()
	type flush struct {
		key   refusalKey
		entry *store.AuditEntry
	}
	var due []flush
	for k, n := range r.counts {
		if !all && !k.minute.Before(now) {
			continue
		}
		due = append(due, flush{k, &store.AuditEntry{
			RecordID: NewRecordID(), RecordedAt: k.minute, Kind: "refusal", Transport: "http", Action: "http_request",
			Principal: k.principal, Decision: "denied", Outcome: "refused", Reason: k.reason, Source: k.source, Count: n,
		}})
	}
	r.mu.Unlock()
	if len(due) == 0 {
		return
	}
	var wg sync.WaitGroup
	for _, f := range due {
		wg.Go(func() {
			err := w.Write(ctx, f.entry)
			if err != nil && !errors.Is(err, ErrSpilled) {
				w.logger.Error("could not record refusals; kept for the next flush", slog.String("reason", f.entry.Reason),
					slog.Int("count", f.entry.Count), slog.String("error", err.Error()))
				return
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			// Refusals counted meanwhile stay for the next flush.
			if r.counts[f.key] -= f.entry.Count; r.counts[f.key] <= 0 {
				delete(r.counts, f.key)
			}
		})
	}
	wg.Wait()
}
