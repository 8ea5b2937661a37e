package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

// The targets the real server is held to, against the bare one.
const (
	targetThroughput = 0.90 // this/bare calls per second, at least
	targetP99        = 1.25 // this/bare p99 latency, at most
	targetRSS        = 2.0  // this/bare peak RSS, at most
)

func (b *bench) printHeader() {
	i := b.info
	b.printf("\nmachine: %d cores, %s, Linux %s; %s; Postgres %s\n", i.cores, i.cpu, i.kernel, i.goVersion, i.postgres)
	b.printf("real server: %s (version %s), production mode, every control on, limits raised out of the way\n", b.server, i.serverVersion)
	b.printf("bare server: go-sdk v1.8.0, one tool, no controls, same database, one statement per call\n")
	b.printf("orders: %d, called round-robin; real server's /metrics: %s\n", len(b.ids), orNA(b.real.metricsURL))
}

func (b *bench) printRunHeader() {
	b.printf("%-5s %-15s %7s %9s %7s %7s %8s %8s %9s %9s %9s %6s %6s  %s\n",
		"side", "run", "clients", "calls/s", "p50 ms", "p99 ms", "srv ms", "pg ms", "allocs", "peak RSS", "RSS now", "logs", "others", "validity")
	b.printf("%-5s %-15s %7s %9s %7s %7s %8s %8s %9s %9s %9s %6s %6s\n",
		"", "", "", "", "", "", "CPU/call", "CPU/call", "/call", "MiB", "MiB", "/call", "CPU")
}

// printRun prints one measurement as one line.
func (b *bench) printRun(m *measurement) {
	r := m.res
	allocs := "n/a"
	if m.allocsOK {
		allocs = fmt.Sprintf("%.0f", m.perCall(float64(m.allocs)))
	}
	peak := fmt.Sprintf("%.1f", float64(m.mem.Peak)/(1<<20))
	if !m.peakPerRun {
		peak += "*"
	}
	validity := "ok"
	if !r.Valid() {
		validity = fmt.Sprintf("INVALID: %s; first: %s", r.FailureSummary(), r.FirstFailure)
	}
	if m.otherShare() > 0.10 && m.topOthers != "" {
		validity += "  (others: " + m.topOthers + ")"
	}
	b.printf("%-5s %-15s %7d %9.1f %7.2f %7.2f %8.3f %8.3f %9s %9s %9.1f %6.1f %5.0f%%  %s\n",
		m.side, m.label, m.clients, r.Throughput(), msf(r.Latency.Quantile(0.50)), msf(r.Latency.Quantile(0.99)),
		m.cpuPerCall(m.serverCPU), m.cpuPerCall(m.pgCPU), allocs, peak, float64(m.mem.RSS)/(1<<20),
		m.perCall(float64(m.logLines)), 100*m.otherShare(), validity)
}

// auditFallback reads the real server's metrics that count audit records
// taking a fallback path; nil means there are none to read.
func (b *bench) auditFallback(ctx context.Context) map[string]float64 {
	if b.real.metricsURL == "" {
		return nil
	}
	m, err := scrapeMetrics(ctx, metricsClient(), b.real.metricsURL)
	if err != nil {
		return nil
	}
	f := auditFallbackMetrics(m)
	if len(f) == 0 {
		return nil
	}
	return f
}

// auditBatching reads how the real server's audit writer grouped its
// records: records committed and commits made, from its /metrics ("" when
// it has no such counters).
func (b *bench) auditBatching(ctx context.Context) string {
	if b.real.metricsURL == "" {
		return ""
	}
	m, err := scrapeMetrics(ctx, metricsClient(), b.real.metricsURL)
	if err != nil {
		return ""
	}
	records, ok1 := m[`order_mcp_audit_records_total{result="committed"}`]
	commits, ok2 := m["order_mcp_audit_commit_duration_seconds_count"]
	if !ok1 || !ok2 || commits == 0 {
		return ""
	}
	return fmt.Sprintf("%.0f records in %.0f group commits, %.1f per commit", records, commits, records/commits)
}

// printSummary prints the result in a form to paste into
// docs/PERFORMANCE.md: what was measured where, with which command, and
// the tables.
func (b *bench) printSummary(args []string, ab *abResult, scaling []scalingRow, replicas *replicasResult, revs []*revocation, fallback map[string]float64, mem *memoryResult) {
	this, bare := summarize(ab.this), summarize(ab.bare)
	i := b.info
	b.printf("\n## Summary (for docs/PERFORMANCE.md)\n\n")
	b.printf("Measured %s on %d cores (%s), Linux %s, %s, Postgres %s; real server %s.\n\n", i.date, i.cores, i.cpu, i.kernel, i.goVersion, i.postgres, i.serverVersion)
	b.printf("Command: `cd bench && go run ./cmd/runner %s`, which is `%s`\n\n", strings.Join(args[1:], " "), makeCommand(args[1:]))
	b.printf("A/B: %d run(s) per side alternating, %d clients, %v warm-up + %v measured each; one Postgres, one side at a time.\n\n",
		b.opts.runs, b.opts.clients, b.opts.warmup, b.opts.duration)

	b.printf("| | this (every control on) | bare go-sdk | this/bare | target | |\n")
	b.printf("|---|---:|---:|---:|---:|---|\n")
	verdict := func(ok bool) string {
		if !this.valid || !bare.valid {
			return "INVALID"
		}
		if ok {
			return "PASS"
		}
		return "MISS"
	}
	tLo, tHi := this.rateRange()
	bLo, bHi := bare.rateRange()
	tput := ratio(this.meanRate(), bare.meanRate())
	b.printf("| throughput, calls/s (mean of runs; range) | %.0f (%.0f-%.0f) | %.0f (%.0f-%.0f) | %.2f | >= %.2f | %s |\n",
		this.meanRate(), tLo, tHi, bare.meanRate(), bLo, bHi, tput, targetThroughput, verdict(tput >= targetThroughput))
	p99 := ratio(this.p(0.99), bare.p(0.99))
	b.printf("| p99 latency, ms (median of runs) | %.2f | %.2f | %.2f | <= %.2f | %s |\n", this.p(0.99), bare.p(0.99), p99, targetP99, verdict(p99 <= targetP99))
	rss := ratio(float64(this.peakRSS), float64(bare.peakRSS))
	b.printf("| peak RSS, MiB | %.1f | %.1f | %.2f | <= %.1f | %s |\n",
		mibf(this.peakRSS), mibf(bare.peakRSS), rss, targetRSS, verdict(rss <= targetRSS))
	b.printf("| p50 latency, ms (median of runs) | %.2f | %.2f | %.2f | | |\n", this.p(0.5), bare.p(0.5), ratio(this.p(0.5), bare.p(0.5)))
	row := func(name string, t, bb float64, format string) {
		b.printf("| %s | "+format+" | "+format+" | %.2f | | |\n", name, t, bb, ratio(t, bb))
	}
	row("server CPU per call, ms", this.msPerCall(this.serverCPU), bare.msPerCall(bare.serverCPU), "%.3f")
	row("Postgres CPU per call, ms (all postgres processes)", this.msPerCall(this.pgCPU), bare.msPerCall(bare.pgCPU), "%.3f")
	row("Postgres CPU per call, ms (this database's backends)", this.msPerCall(this.pgDBCPU), bare.msPerCall(bare.pgDBCPU), "%.3f")
	if this.allocsOK && bare.allocsOK {
		row("allocations per call", this.perCall(float64(this.allocs)), bare.perCall(float64(bare.allocs)), "%.0f")
	} else {
		b.printf("| allocations per call | %s | %s | n/a | | |\n", allocText(this), allocText(bare))
	}
	row("RSS after the last run, MiB", mibf(this.lastRSS), mibf(bare.lastRSS), "%.1f")
	row("answer size, bytes", this.perCall(float64(this.bytes)), bare.perCall(float64(bare.bytes)), "%.0f")
	b.printf("| server log lines per call | %.2f | %.2f | | | |\n", this.perCall(float64(this.logLines)), bare.perCall(float64(bare.logLines)))
	b.printf("| load generator CPU per call, ms | %.3f | %.3f | | | |\n", this.msPerCall(this.selfCPU), bare.msPerCall(bare.selfCPU))
	b.printf("\nTargets are reported, not enforced: the runner exits non-zero only for an INVALID run (any failed call) or a server that does not start.\n")
	if !this.peakPerRun || !bare.peakPerRun {
		b.printf("Peak RSS marked * is since the process started (VmHWM could not be reset through /proc/<pid>/clear_refs).\n")
	} else {
		b.printf("Peak RSS is VmHWM over each run (reset through /proc/<pid>/clear_refs before it), the maximum over the runs.\n")
	}
	if o := max(this.maxOther, bare.maxOther); o > 0.10 {
		b.printf("WARNING: other processes used up to %.0f%% of a core during a run; the machine was not quiet, so repeat before trusting small differences.\n", 100*o)
	}

	if len(scaling) > 0 {
		b.printf("\nScaling (one %v run per side per row):\n\n", b.opts.scalingDuration)
		b.printf("| clients | this calls/s | bare calls/s | this/bare | this p99 ms | bare p99 ms | p99 this/bare | this srv CPU ms/call | bare srv CPU ms/call |\n")
		b.printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, r := range scaling {
			t, bb := r.this, r.bare
			tp, bp := msf(t.res.Latency.Quantile(0.99)), msf(bb.res.Latency.Quantile(0.99))
			mark := ""
			if !t.res.Valid() || !bb.res.Valid() {
				mark = " INVALID"
			}
			b.printf("| %d%s | %.0f | %.0f | %.2f | %.2f | %.2f | %.2f | %.3f | %.3f |\n", r.clients, mark,
				t.res.Throughput(), bb.res.Throughput(), ratio(t.res.Throughput(), bb.res.Throughput()),
				tp, bp, ratio(tp, bp), t.cpuPerCall(t.serverCPU), bb.cpuPerCall(bb.serverCPU))
		}
	}

	if replicas != nil {
		b.printReplicasSummary(replicas)
	}

	b.printf("\nRevocation (one call at a time with a second key while it is revoked; times are when calls were sent, relative to the key's revoked_at):\n\n")
	b.printf("| revoked with | accepted until | refused from | first refusal | calls accepted after the commit | loop call latency | revoking took |\n")
	b.printf("|---|---:|---:|---|---:|---:|---:|\n")
	for _, r := range revs {
		if r.problem != "" {
			b.printf("| %s | %s | | | | | |\n", r.method, r.problem)
			continue
		}
		b.printf("| %s | %s | %s | %s at %s | %d | %s | %s |\n", r.method, r.since(r.lastAccepted), r.since(r.firstRefused),
			strings.ReplaceAll(r.refusal, "|", "/"), r.since(r.refusedAt), r.acceptedAfterCommit, ms(r.latency), ms(r.revokeTook))
	}
	if fallback == nil {
		b.printf("\nAudit records that took a fallback path: n/a (no *audit*fallback* or *audit*spill* metric)\n")
	} else {
		names := make([]string, 0, len(fallback))
		for n := range fallback {
			names = append(names, n)
		}
		sort.Strings(names)
		b.printf("\nAudit records that took a fallback path:")
		for _, n := range names {
			b.printf(" %s = %.0f;", n, fallback[n])
		}
		b.printf("\n")
	}
	if b.batching != "" {
		b.printf("Audit group commit (the whole session): %s.\n", b.batching)
	}

	if mem != nil {
		b.printf("\nMemory (a fresh server, warmed with %d calls, then %d requests from distinct 127.x.y.z addresses: one in %d with the valid key, the rest with made-up keys):\n\n",
			mem.warm.res.Calls, mem.sent, validEvery)
		b.printf("| idle RSS | RSS after | growth | target | | peak | 3 s later | requests/s | lockout rows |\n")
		b.printf("|---:|---:|---:|---:|---|---:|---:|---:|---:|\n")
		v := "PASS"
		if mem.growth() > memoryBudget {
			v = "MISS"
		}
		if mem.sent < mem.callers {
			v += fmt.Sprintf(" (only %d of %d sent)", mem.sent, mem.callers)
		}
		rows := "n/a"
		if mem.lockoutRowsKnown {
			rows = fmt.Sprint(mem.lockoutRows)
		}
		b.printf("| %s | %s | %s | <= %s | %s | %s | %s | %.0f | %s |\n", mib(mem.idle.RSS), mib(mem.after.RSS), mib(mem.growth()),
			mib(memoryBudget), v, mib(mem.after.Peak), mib(mem.settled.RSS), float64(mem.sent)/mem.took.Seconds(), rows)
		b.printf("\nAnswers: made-up keys %s; valid key %s. CPU per request: server %s, Postgres %s.\n",
			counts(mem.madeUp), counts(mem.valid), mem.perRequest(mem.serverCPU), mem.perRequest(mem.pgCPU))
	}
	b.printf("\nserver log: %d lines, %d warnings, %d errors (main server)\n",
		b.real.proc.lines.Load(), b.real.proc.warnings.Load(), b.real.proc.errorLines.Load())
	for _, l := range b.real.proc.notableLines() {
		b.printf("    %s\n", l)
	}
}

// makeCommand is the make command that runs the runner with args: make
// bench passes -server and BENCHFLAGS; make bench-smoke adds -smoke.
func makeCommand(args []string) string {
	target := "make bench"
	var flags []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-smoke" || a == "--smoke":
			target = "make bench-smoke"
		case a == "-server" || a == "--server":
			i++ // the binary make build made
		case strings.HasPrefix(a, "-server=") || strings.HasPrefix(a, "--server="):
		default:
			flags = append(flags, a)
		}
	}
	if len(flags) == 0 {
		return target
	}
	return fmt.Sprintf("%s BENCHFLAGS='%s'", target, strings.Join(flags, " "))
}

func allocText(s *summary) string {
	if s.allocsOK {
		return fmt.Sprintf("%.0f", s.perCall(float64(s.allocs)))
	}
	return "n/a"
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// mibf is n bytes in MiB.
func mibf(n int64) float64 { return float64(n) / (1 << 20) }

// msf is d in milliseconds.
func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func orNA(s string) string {
	if s == "" {
		return "n/a"
	}
	return s
}
