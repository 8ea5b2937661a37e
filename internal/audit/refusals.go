package audit

import (
	"context"
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

func (w *Writer) flushRefusalsEvery(d time.Duration) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-w.stopTick:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), d)
			w.flushRefusals(ctx, false)
			cancel()
		}
	}
}

// flushRefusals writes the counters of minutes that have ended (or, with
// all, of every minute) as one record each.
func (w *Writer) flushRefusals(ctx context.Context, all bool) {
	now := time.Now().UTC().Truncate(time.Minute)
	r := w.refusals
	r.mu.Lock()
	var entries []*store.AuditEntry
	for k, n := range r.counts {
		if !all && !k.minute.Before(now) {
			continue
		}
		entries = append(entries, &store.AuditEntry{
			RecordedAt: k.minute, Kind: "refusal", Transport: "http", Action: "http_request",
			Principal: k.principal, Decision: "denied", Outcome: "refused", Reason: k.reason, Source: k.source, Count: n,
		})
		delete(r.counts, k)
	}
	r.mu.Unlock()
	if len(entries) == 0 {
		return
	}
	var wg sync.WaitGroup
	for _, e := range entries {
		wg.Go(func() {
			if err := w.Write(ctx, e); err != nil {
				w.logger.Error("could not record refusals", slog.String("reason", e.Reason), slog.Int("count", e.Count),
					slog.String("error", err.Error()))
			}
		})
	}
	wg.Wait()
}
