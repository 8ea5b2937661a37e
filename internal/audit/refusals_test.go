package audit_test

// Refusals are aggregated: a flood of them becomes one record per source,
// reason and minute, and rotating sources cannot grow the trail.

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/example/order-mcp/internal/audit"
	"github.com/example/order-mcp/internal/dbtest"
	"github.com/example/order-mcp/internal/store"
)

// TestRefusalsAreAggregated floods the writer with refusals, as a client
// hammering the HTTP layer with bad credentials would, and checks the
// flood becomes one row per source, reason and minute with the right
// count, flushed by Close.
func TestRefusalsAreAggregated(t *testing.T) {
	app := dbtest.App(t, dsn, store.Options{})

	t.Run("OneRowPerSourceReasonAndMinute", func(t *testing.T) {
		w := audit.NewWriter(app, sealer(t), discard(), audit.Options{})
		start := head(t)
		want := map[[2]string]int{
			{"203.0.113.7", "bad_credential"}:  500,
			{"203.0.113.7", "rate_limited"}:    300,
			{"198.51.100.9", "bad_credential"}: 7,
			{"198.51.100.9", "foreign_origin"}: 1,
		}
		flood := clockMinutes()
		var wg sync.WaitGroup
		for k, n := range want {
			for range n {
				wg.Go(func() { w.Refusal(k[0], "", k[1]) })
			}
		}
		wg.Wait()
		minutes := flood()
		if err := w.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		rows := refusalRows(t, start)
		got := map[[2]string]int{}
		perMinute := map[string]bool{}
		for _, r := range rows {
			if r.Kind != "refusal" || r.Decision != "denied" || !slices.ContainsFunc(minutes, r.Minute.Equal) {
				t.Fatalf("row %+v", r)
			}
			k := fmt.Sprintf("%s|%s|%s", r.Source, r.Reason, r.Minute)
			if perMinute[k] {
				t.Fatalf("two rows for %s", k)
			}
			perMinute[k] = true
			got[[2]string{r.Source, r.Reason}] += r.Count
		}
		if len(got) != len(want) {
			t.Fatalf("counts %v, want %v", got, want)
		}
		for k, n := range want {
			if got[k] != n {
				t.Fatalf("counts %v, want %v", got, want)
			}
		}
		// One row per pair and minute the flood lasted.
		if len(rows) > len(minutes)*len(want) {
			t.Fatalf("%d rows for %d (source, reason) pairs in %d minutes: refusals are not aggregated", len(rows), len(want), len(minutes))
		}
	})

	// An attacker rotating source addresses cannot make the table (or the
	// writer's memory) grow with every address: past the bound, refusals
	// are counted under "other".
	t.Run("RotatingSourcesAreBounded", func(t *testing.T) {
		const bound = 10000 // audit.maxRefusalKeys
		const sources = bound + 500
		w := audit.NewWriter(app, sealer(t), discard(), audit.Options{})
		start := head(t)
		flood := clockMinutes()
		for i := range sources {
			w.Refusal(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), "", "bad_credential")
		}
		minutes := flood()
		if err := w.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		rows := refusalRows(t, start)
		total, other := 0, 0
		for _, r := range rows {
			total += r.Count
			if r.Source == "other" {
				other += r.Count
			}
		}
		if total != sources {
			t.Fatalf("%d refusals recorded, want %d", total, sources)
		}
		// The bound, and one "other" row per minute the flood lasted.
		if len(rows) > bound+len(minutes) || other == 0 {
			t.Fatalf("%d rows (%d under other) for %d sources: not bounded", len(rows), other, sources)
		}
	})
}

// clockMinutes starts watching the clock the writer counts refusals by (the
// real one: aggregation is per wall-clock minute), and returns a function
// that stops and returns every minute the clock was in between, so that
// what a test expects follows from when its flood really ran, however long
// that took.
func clockMinutes() func() []time.Time {
	from := time.Now().UTC().Truncate(time.Minute)
	return func() []time.Time {
		to := time.Now().UTC().Truncate(time.Minute)
		var out []time.Time
		for m := from; !m.After(to); m = m.Add(time.Minute) {
			out = append(out, m)
		}
		return out
	}
}
