package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config is one run: who to call, with what, how hard and for how long.
type Config struct {
	// Target is the server the clients call.
	Target Target
	// Targets, when set, replaces Target with several servers (replicas
	// of one service): client i calls Targets[i%len(Targets)], so the
	// clients are spread round-robin over them, each client on its own
	// kept-alive connection to its server.
	Targets []Target
	// OrderIDs are called round-robin: client i of n calls ids i, i+n,
	// i+2n... (mod len), so together the clients go round all of them.
	OrderIDs []string
	// Clients is how many calls are in flight at once; each client waits
	// for its answer before sending the next call (a closed loop).
	Clients int
	// Warmup runs before the window and is not measured, except that its
	// failures count: a refusal is a refusal whenever it happens.
	Warmup time.Duration
	// Duration is the measured window.
	Duration time.Duration
	// Mark, if set, is called just before the window opens (true) and just
	// after it closes (false), with the clients running, so the caller can
	// read counters (CPU time, allocations) over exactly the window.
	Mark func(windowStart bool)
}

// Result is what a run measured.
type Result struct {
	Clients int
	// Window is the measured window's actual length.
	Window time.Duration
	// Calls is the successful calls that completed inside the window.
	Calls int64
	// Bytes is the response bytes of those calls.
	Bytes int64
	// Latency is the latency of those calls, send to last byte read.
	Latency *Histogram
	// Failures counts every non-successful answer of the whole run, warm-up
	// included, by Kind (Failures[OK] stays 0).
	Failures [numKinds]int64
	// FirstFailure describes the first failure seen, for the report.
	FirstFailure string
}

// Valid reports whether every answer of the run was a successful tool call.
// An invalid run's numbers mean nothing: a server that refuses quickly
// would look fast.
func (r *Result) Valid() bool { return r.FailureCount() == 0 && r.Calls > 0 }

// FailureCount is the number of failed calls of every kind.
func (r *Result) FailureCount() int64 {
	var n int64
	for _, c := range r.Failures {
		n += c
	}
	return n
}

// FailureSummary lists the failures by kind, e.g. "bad status: 12", or
// "none".
func (r *Result) FailureSummary() string {
	var parts []string
	for k, c := range r.Failures {
		if c > 0 {
			parts = append(parts, fmt.Sprintf("%s: %d", Kind(k), c))
		}
	}
	if r.Calls == 0 && len(parts) == 0 {
		return "no successful call in the window"
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// Throughput is successful calls per second over the window.
func (r *Result) Throughput() float64 {
	if r.Window <= 0 {
		return 0
	}
	return float64(r.Calls) / r.Window.Seconds()
}

// Phases of a run, read by every client after each call.
const (
	phaseWarmup int32 = iota
	phaseWindow
	phaseDone
)

// client is one closed-loop client's state; only its own goroutine touches
// it until the run ends.
type client struct {
	buf      bytes.Buffer
	hist     *Histogram
	calls    int64
	bytes    int64
	failures [numKinds]int64
	first    string
}

// Run runs the clients against cfg.Target (or cfg.Targets) for
// cfg.Warmup plus cfg.Duration. It returns an error only if the run could not be made (a
// bad Config, or ctx ending); failed calls are counted in the Result.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Clients <= 0 || len(cfg.OrderIDs) == 0 || cfg.Duration <= 0 || cfg.Warmup < 0 {
		return nil, errors.New("loadgen: need clients, order ids and a duration")
	}
	bodies := make([][]byte, len(cfg.OrderIDs))
	for i, id := range cfg.OrderIDs {
		bodies[i] = CallBody(id)
	}
	targets := cfg.Targets
	if len(targets) == 0 {
		targets = []Target{cfg.Target}
	}
	callers := make([]*Caller, len(targets))
	for j, t := range targets {
		// Enough idle connections for the clients that call this target.
		callers[j] = NewCaller(t, (cfg.Clients+len(targets)-1)/len(targets))
		defer callers[j].Close()
	}

	var phase atomic.Int32
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	clients := make([]*client, cfg.Clients)
	var wg sync.WaitGroup
	for i := range clients {
		c := &client{hist: NewHistogram()}
		c.buf.Grow(16 << 10)
		clients[i] = c
		wg.Go(func() { c.loop(runCtx, callers[i%len(callers)], bodies, i, cfg.Clients, &phase) })
	}

	finish := func() { stop(); wg.Wait() }
	if !sleep(ctx, cfg.Warmup) {
		finish()
		return nil, ctx.Err()
	}
	if cfg.Mark != nil {
		cfg.Mark(true)
	}
	start := time.Now()
	phase.Store(phaseWindow)
	ok := sleep(ctx, cfg.Duration)
	phase.Store(phaseDone)
	window := time.Since(start)
	if cfg.Mark != nil {
		cfg.Mark(false)
	}
	finish()
	if !ok {
		return nil, ctx.Err()
	}

	res := &Result{Clients: cfg.Clients, Window: window, Latency: NewHistogram()}
	for _, c := range clients {
		res.Calls += c.calls
		res.Bytes += c.bytes
		res.Latency.Merge(c.hist)
		for k, n := range c.failures {
			res.Failures[k] += n
		}
		if res.FirstFailure == "" {
			res.FirstFailure = c.first
		}
	}
	return res, nil
}

// loop calls until ctx ends. Client i of n sends calls i, i+n, i+2n...,
// so together the clients go round the order ids in turn.
func (c *client) loop(ctx context.Context, caller *Caller, bodies [][]byte, i, n int, phase *atomic.Int32) {
	for k := i; ; k += n {
		if ctx.Err() != nil {
			return
		}
		t := time.Now()
		out := caller.Call(ctx, bodies[k%len(bodies)], &c.buf)
		d := time.Since(t)
		if out.Kind == TransportError && ctx.Err() != nil {
			return // cut off by the end of the run, not by the server
		}
		if out.Kind != OK {
			c.failures[out.Kind]++
			if c.first == "" {
				c.first = out.Detail
			}
			continue
		}
		if phase.Load() == phaseWindow {
			c.calls++
			c.bytes += int64(out.Bytes)
			c.hist.Record(d)
		}
	}
}

// sleep waits for d or until ctx ends, reporting whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
