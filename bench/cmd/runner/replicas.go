package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/example/order-mcp/bench/loadgen"
)

// replicasResult is the replicas section's outcome: the figure of
// docs/SCALING.md.
type replicasResult struct {
	// n is the number of replicas, compared with one.
	n int
	// prefix is the REDIS_PREFIX every replica used.
	prefix string
	// one and many are every run of one replica and of n.
	one, many []*measurement
	// redisKeys is how many keys under prefix Redis held after the runs
	// (-1 when it could not be read): more than none shows the replicas
	// really counted there.
	redisKeys int
	// logs describes each replica's log (lines, warnings, errors) and
	// lists its first warning and error lines. A Redis that stopped
	// answering would show there: the servers then count in memory and
	// log an error.
	logs     []string
	problems int // warning and error lines over all replicas
}

// replicasSection measures what it costs replicas to share state. It
// starts -replicas `server serve` processes on the benchmark's database,
// each exactly as the A/B section starts the real server (production
// mode, every control on, limits raised out of the way) plus
// REDIS_URL=redis://127.0.0.1:6379 and a REDIS_PREFIX of their own for
// this invocation (the database's name), so that their rate-limit counters
// and lockouts are shared as a multi-replica deployment's are. Then it
// runs the A/B section's load (same clients, warm-up, window and number of
// runs) against all of them, the clients spread round-robin over the
// replicas, and against one replica alone: the first of them, with the
// same settings, while the others idle. The two alternate which goes
// first, as the A/B sides do.
//
// The replicas run on this machine, sharing its cores with each other,
// Postgres, Redis and the load generator: the figure is the cost of
// sharing state, not scale-out capacity.
//
// Redis keys the replicas write expire with their rate windows (a minute,
// with the A/B limits); the section leaves them to expire.
func (b *bench) replicasSection(ctx context.Context) (*replicasResult, error) {
	o := b.opts
	r := &replicasResult{n: o.replicas, prefix: b.db.name, redisKeys: -1}
	b.printf("\n## Replicas: %d serve processes sharing Redis against one, %d run(s) each, %d clients (round-robin over the replicas), %v warm-up + %v measured\n\n",
		r.n, o.runs, o.clients, o.warmup, o.duration)
	b.printf("Every replica: as the A/B real server, plus REDIS_URL=%s and REDIS_PREFIX=%s. One replica is the first of them alone.\n", redisURL, r.prefix)
	b.printf("srv ms, allocs, logs and RSS are summed over the replicas. %s\n\n", sharedCoresNote(b.info.cores))

	var reps []*side
	defer func() {
		for _, s := range reps {
			s.proc.stop()
		}
	}()
	for i := range r.n {
		s, err := b.startReal(ctx, fmt.Sprintf("replica %d", i+1), "REDIS_URL="+redisURL, "REDIS_PREFIX="+r.prefix)
		if err != nil {
			return nil, err
		}
		s.sharesRedis = true
		reps = append(reps, s)
	}
	if err := b.checkReplicasAnswer(ctx, reps); err != nil {
		return nil, err
	}

	one := reps[0]
	all := &side{name: "this", replicas: reps, sharesRedis: true}
	b.printRunHeader()
	for i := range o.runs {
		order := []*side{one, all}
		if i%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for _, s := range order {
			label := fmt.Sprintf("%d replicas #%d", r.n, i+1)
			if s == one {
				label = fmt.Sprintf("1 replica #%d", i+1)
			}
			m, err := b.measure(ctx, s, label, o.clients, o.warmup, o.duration)
			if err != nil {
				return nil, err
			}
			b.printRun(m)
			if s == one {
				r.one = append(r.one, m)
			} else {
				r.many = append(r.many, m)
			}
		}
	}

	if n, err := countRedisKeys(ctx, redisAddr, r.prefix); err != nil {
		b.printf("\ncould not count the replicas' keys in Redis: %v\n", err)
	} else {
		r.redisKeys = n
		b.printf("\nkeys under %s in Redis after the runs: %d\n", r.prefix, n)
	}
	for _, s := range reps {
		p := s.proc
		r.problems += int(p.warnings.Load() + p.errorLines.Load())
		r.logs = append(r.logs, fmt.Sprintf("%s log: %d lines, %d warnings, %d errors", p.name, p.lines.Load(), p.warnings.Load(), p.errorLines.Load()))
		for _, l := range p.notableLines() {
			r.logs = append(r.logs, "    "+l)
		}
	}
	b.printf("%s\n", strings.Join(r.logs, "\n"))
	return r, nil
}

// checkReplicasAnswer makes one call to each replica, so that a replica
// that cannot answer is a start-up failure rather than an invalid run.
func (b *bench) checkReplicasAnswer(ctx context.Context, reps []*side) error {
	var buf bytes.Buffer
	for _, s := range reps {
		c := loadgen.NewCaller(s.target, 1)
		out := c.Call(ctx, loadgen.CallBody(b.ids[0]), &buf)
		c.Close()
		if out.Kind != loadgen.OK {
			return fmt.Errorf("%s cannot answer get_order_status(%s): %s", s.proc.name, b.ids[0], out.Detail)
		}
	}
	return nil
}

// sharedCoresNote says what a figure from replicas on one machine shows.
func sharedCoresNote(cores int) string {
	return fmt.Sprintf("The replicas run on this one machine: on its %d cores they share the same cores "+
		"(with each other, Postgres, Redis and the load generator), so the figure shows the cost of sharing state, "+
		"not scale-out capacity.", cores)
}

// printReplicasSummary prints the replicas section's table, to paste into
// docs/SCALING.md.
func (b *bench) printReplicasSummary(r *replicasResult) {
	one, many := summarize(r.one), summarize(r.many)
	o := b.opts
	b.printf("\nReplicas (for docs/SCALING.md): %d replicas against one, every replica in production mode with REDIS_URL (prefix %s); %d run(s) each alternating, %d clients round-robin over the replicas, %v warm-up + %v measured each.\n\n",
		r.n, r.prefix, o.runs, o.clients, o.warmup, o.duration)
	b.printf("| replicas | calls/s (mean of runs; range) | p50 ms | p99 ms | server CPU ms/call (sum over replicas) | Postgres CPU ms/call | Redis CPU ms/call |\n")
	b.printf("|---|---:|---:|---:|---:|---:|---:|\n")
	row := func(name string, s *summary) {
		lo, hi := s.rateRange()
		if !s.valid {
			name += " INVALID"
		}
		b.printf("| %s | %.0f (%.0f-%.0f) | %.2f | %.2f | %.3f | %.3f | %.3f |\n", name, s.meanRate(), lo, hi,
			s.p(0.5), s.p(0.99), s.msPerCall(s.serverCPU), s.msPerCall(s.pgCPU), s.msPerCall(s.redisCPU))
	}
	row("1", one)
	row(fmt.Sprint(r.n), many)
	b.printf("| %d/1 | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n", r.n, ratio(many.meanRate(), one.meanRate()),
		ratio(many.p(0.5), one.p(0.5)), ratio(many.p(0.99), one.p(0.99)),
		ratio(many.msPerCall(many.serverCPU), one.msPerCall(one.serverCPU)),
		ratio(many.msPerCall(many.pgCPU), one.msPerCall(one.pgCPU)),
		ratio(many.msPerCall(many.redisCPU), one.msPerCall(one.redisCPU)))
	b.printf("\n%s\n", sharedCoresNote(b.info.cores))
	b.printf("Postgres CPU is every postgres process's (WAL writer and checkpointer included); Redis CPU every redis-server process's on this machine.\n")
	switch {
	case r.redisKeys == 0:
		b.printf("WARNING: Redis held no key under %s after the runs: the replicas did not share their counters there.\n", r.prefix)
	case r.redisKeys > 0:
		b.printf("Redis held %d keys under %s after the runs: the replicas shared their counters there.\n", r.redisKeys, r.prefix)
	}
	if r.problems > 0 {
		b.printf("WARNING: the replicas logged %d warning or error lines (a Redis that stopped answering makes them count in memory); see the replicas section.\n", r.problems)
	}
	if o := max(one.maxOther, many.maxOther); o > 0.10 {
		b.printf("WARNING: other processes used up to %.0f%% of a core during a run; the machine was not quiet, so repeat before trusting small differences.\n", 100*o)
	}
}
