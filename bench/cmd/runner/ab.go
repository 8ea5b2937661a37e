package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/example/order-mcp/bench/loadgen"
)

// abResult is the main section: every run of each side.
type abResult struct {
	this, bare []*measurement
}

// abSection alternates the sides, changing which goes first on every run
// (this, bare; bare, this; this, bare...), so that a drift of the machine
// over the session (a warming page cache, a growing table, a neighbour's
// job) falls on both sides alike instead of on whichever always ran
// second. Only one side runs at a time: the servers share one Postgres and
// two cores.
func (b *bench) abSection(ctx context.Context) (*abResult, error) {
	o := b.opts
	b.printf("\n## A/B: %d run(s) per side, %d clients, %v warm-up + %v measured\n\n", o.runs, o.clients, o.warmup, o.duration)
	b.printRunHeader()
	r := &abResult{}
	for i := range o.runs {
		order := []*side{b.real, b.bare}
		if i%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for _, s := range order {
			m, err := b.measure(ctx, s, fmt.Sprintf("run %d", i+1), o.clients, o.warmup, o.duration)
			if err != nil {
				return nil, err
			}
			b.printRun(m)
			if s == b.real {
				r.this = append(r.this, m)
			} else {
				r.bare = append(r.bare, m)
			}
		}
	}
	return r, nil
}

// scalingRow is one client count of the scaling section.
type scalingRow struct {
	clients    int
	this, bare *measurement
}

// scalingSection runs one short run per side at each client count, to
// show where each server saturates.
func (b *bench) scalingSection(ctx context.Context) ([]scalingRow, error) {
	const warmup = time.Second
	b.printf("\n## Scaling: one run per side at %v clients, %v warm-up + %v measured\n\n", b.opts.scalingClients, warmup, b.opts.scalingDuration)
	b.printRunHeader()
	var rows []scalingRow
	for i, n := range b.opts.scalingClients {
		row := scalingRow{clients: n}
		order := []*side{b.real, b.bare}
		if i%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for _, s := range order {
			m, err := b.measure(ctx, s, fmt.Sprintf("%d clients", n), n, warmup, b.opts.scalingDuration)
			if err != nil {
				return nil, err
			}
			b.printRun(m)
			if s == b.real {
				row.this = m
			} else {
				row.bare = m
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// summary adds up one side's runs.
type summary struct {
	rates                              []float64            // each run's calls/s
	latencies                          []*loadgen.Histogram // each run's
	calls, bytes, logLines             int64
	serverCPU, pgCPU, pgDBCPU, selfCPU time.Duration
	redisCPU                           time.Duration
	allocs                             uint64
	allocsOK                           bool
	peakRSS, lastRSS                   int64
	peakPerRun, valid                  bool
	maxOther                           float64 // the largest share of a core others used in a run
}

func summarize(ms []*measurement) *summary {
	s := &summary{allocsOK: true, valid: true, peakPerRun: true}
	for _, m := range ms {
		s.rates = append(s.rates, m.res.Throughput())
		s.latencies = append(s.latencies, m.res.Latency)
		s.calls += m.res.Calls
		s.bytes += m.res.Bytes
		s.logLines += m.logLines
		s.serverCPU += m.serverCPU
		s.pgCPU += m.pgCPU
		s.pgDBCPU += m.pgDBCPU
		s.selfCPU += m.selfCPU
		s.redisCPU += m.redisCPU
		s.allocs += m.allocs
		s.allocsOK = s.allocsOK && m.allocsOK
		s.peakRSS = max(s.peakRSS, m.mem.Peak)
		s.lastRSS = m.mem.RSS
		s.peakPerRun = s.peakPerRun && m.peakPerRun
		s.valid = s.valid && m.res.Valid()
		s.maxOther = max(s.maxOther, m.otherShare())
	}
	return s
}

// meanRate is the mean of the runs' calls per second: the throughput the
// target is about.
func (s *summary) meanRate() float64 {
	var sum float64
	for _, r := range s.rates {
		sum += r
	}
	return sum / float64(max(len(s.rates), 1))
}

// rateRange is the slowest and the fastest run's calls per second.
func (s *summary) rateRange() (lo, hi float64) {
	if len(s.rates) == 0 {
		return 0, 0
	}
	return slices.Min(s.rates), slices.Max(s.rates)
}

// perCall divides a total over all runs by their successful calls.
func (s *summary) perCall(v float64) float64 {
	if s.calls == 0 {
		return 0
	}
	return v / float64(s.calls)
}

// msPerCall is CPU time per call in milliseconds.
func (s *summary) msPerCall(d time.Duration) float64 { return s.perCall(msf(d)) }

// p is the median over the runs of each run's q-quantile latency, in
// milliseconds. On a shared machine the likely disturbance is one run
// slowed by something else; it moves the median of the runs' p99 much less
// than it would move the p99 of all runs' calls pooled together.
func (s *summary) p(q float64) float64 {
	v := make([]float64, 0, len(s.latencies))
	for _, h := range s.latencies {
		v = append(v, msf(h.Quantile(q)))
	}
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	if n := len(v); n%2 == 0 {
		return (v[n/2-1] + v[n/2]) / 2
	}
	return v[len(v)/2]
}
