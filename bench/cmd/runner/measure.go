package main

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/example/order-mcp/bench/loadgen"
	"github.com/example/order-mcp/bench/procstat"
)

// side is one of the two servers under comparison.
type side struct {
	// name is "this" (the real server, every control on) or "bare".
	name   string
	proc   *process
	target loadgen.Target
	// allocs returns the heap allocations the server has made so far, or
	// false when it cannot say (the real server before it has /metrics).
	allocs func(context.Context) (uint64, bool)
	// metricsURL is the real server's /metrics, or "" when it has none.
	metricsURL string
}

// counters are the cumulative readings taken at the edges of a measured
// window; a measurement is the difference of two.
type counters struct {
	serverCPU time.Duration
	pg        procstat.PostgresCPU
	machine   time.Duration
	self      time.Duration
	allocs    uint64
	allocsOK  bool
	logLines  int64
	cpuOK     bool
	procs     map[int]procstat.Process
}

// read takes the readings for s. It runs while the clients are calling, so
// it is cheap: a few /proc files and one small HTTP request.
func (b *bench) read(ctx context.Context, s *side) counters {
	var c counters
	var err1, err2, err3, err4 error
	c.serverCPU, err1 = procstat.CPU(s.proc.pid())
	c.pg, err2 = procstat.Postgres(b.db.name)
	c.machine, err3 = procstat.MachineCPU()
	c.self, err4 = procstat.CPU(b.selfPID)
	c.cpuOK = err1 == nil && err2 == nil && err3 == nil && err4 == nil
	c.procs, _ = procstat.Processes()
	c.allocs, c.allocsOK = s.allocs(ctx)
	c.logLines = s.proc.lines.Load()
	return c
}

// measurement is one measured run of one side.
type measurement struct {
	side    string
	label   string // "run 2", "64 clients"...
	clients int
	res     *loadgen.Result
	// CPU used over the window by the server, by every Postgres process,
	// by the benchmark database's backends only, by the runner itself (the
	// load generator and the reading of the servers' logs), and by
	// everything else on the machine.
	serverCPU, pgCPU, pgDBCPU, selfCPU, otherCPU time.Duration
	cpuOK                                        bool
	// topOthers names the processes that used the most of otherCPU.
	topOthers string
	allocs    uint64
	allocsOK  bool
	logLines  int64
	// mem is read after the run: RSS then, and the peak during the run
	// (peakPerRun) or, when the peak could not be reset, since the
	// server started.
	mem        procstat.Memory
	peakPerRun bool
}

// measure runs clients against s: warm-up, then the measured window.
func (b *bench) measure(ctx context.Context, s *side, label string, clients int, warmup, duration time.Duration) (*measurement, error) {
	if !s.proc.alive() {
		return nil, s.proc.failure("is not running")
	}
	m := &measurement{side: s.name, label: label, clients: clients}
	m.peakPerRun = procstat.ResetPeak(s.proc.pid()) == nil
	var before, after counters
	res, err := loadgen.Run(ctx, loadgen.Config{
		Target:   s.target,
		OrderIDs: b.ids,
		Clients:  clients,
		Warmup:   warmup,
		Duration: duration,
		Mark: func(start bool) {
			if start {
				before = b.read(ctx, s)
			} else {
				after = b.read(ctx, s)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	m.res = res
	m.cpuOK = before.cpuOK && after.cpuOK
	m.serverCPU = after.serverCPU - before.serverCPU
	m.pgCPU = after.pg.All - before.pg.All
	m.pgDBCPU = after.pg.Database - before.pg.Database
	m.selfCPU = after.self - before.self
	m.otherCPU = max(0, (after.machine-before.machine)-m.serverCPU-m.pgCPU-m.selfCPU)
	m.topOthers = topOthers(before.procs, after.procs, res.Window, m.otherCPU, s.proc.pid(), b.selfPID)
	m.allocsOK = before.allocsOK && after.allocsOK
	if m.allocsOK {
		m.allocs = after.allocs - before.allocs
	}
	m.logLines = after.logLines - before.logLines
	m.mem, err = procstat.ReadMemory(s.proc.pid())
	if err != nil {
		return nil, s.proc.failure(fmt.Sprintf("memory unreadable (%v)", err))
	}
	if !res.Valid() {
		b.invalid = append(b.invalid, fmt.Sprintf("%s %s (%d clients): %s; first: %s",
			s.name, label, clients, res.FailureSummary(), res.FirstFailure))
	}
	return m, nil
}

// topOthers lists the three processes, other than the measured server,
// the runner and Postgres, that used the most CPU between two readings, as
// "name(pid) 12%" of one core over window, and what no running process
// accounts for: processes that started and exited in between (a build's
// compiler runs), and kernel work not charged to a process.
func topOthers(before, after map[int]procstat.Process, window, others time.Duration, server, self int) string {
	type use struct {
		p procstat.Process
		d time.Duration
	}
	var all []use
	var named time.Duration
	for pid, p := range after {
		if pid == server || pid == self || p.Comm == "postgres" {
			continue
		}
		d := p.CPU - before[pid].CPU // a process that started in between had 0 before
		if d > 0 {
			all = append(all, use{p, d})
			named += d
		}
	}
	slices.SortFunc(all, func(a, b use) int { return cmp.Compare(b.d, a.d) })
	share := func(d time.Duration) string { return fmt.Sprintf("%.0f%%", 100*d.Seconds()/window.Seconds()) }
	var parts []string
	for _, u := range all[:min(3, len(all))] {
		parts = append(parts, fmt.Sprintf("%s(%d) %s", u.p.Comm, u.p.PID, share(u.d)))
	}
	if rest := others - named; rest > 0 {
		parts = append(parts, "exited processes or the kernel "+share(rest))
	}
	return strings.Join(parts, ", ")
}

// perCall is a cumulative quantity divided by the run's successful calls.
func (m *measurement) perCall(v float64) float64 {
	if m.res.Calls == 0 {
		return 0
	}
	return v / float64(m.res.Calls)
}

// cpuPerCall is d per call in milliseconds.
func (m *measurement) cpuPerCall(d time.Duration) float64 {
	return m.perCall(float64(d) / float64(time.Millisecond))
}

// otherShare is the CPU everything else on the machine used during the
// window, as a fraction of one core.
func (m *measurement) otherShare() float64 {
	if m.res.Window <= 0 {
		return 0
	}
	return m.otherCPU.Seconds() / m.res.Window.Seconds()
}
