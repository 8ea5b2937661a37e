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

// side is one of the two servers under comparison, or a group of
// replicas of the real server measured as one (the replicas section).
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
	// replicas, when set, are the servers this side stands for: the
	// clients are spread round-robin over them, and the CPU, allocations,
	// log lines and memory measured are their sums. proc, target, allocs
	// and metricsURL are then unused.
	replicas []*side
	// sharesRedis says its servers keep their counters in Redis: the CPU
	// of the redis-server processes is then measured as part of the
	// system rather than counted among others.
	sharesRedis bool
}

// members are the server processes behind s: its replicas, or s itself.
func (s *side) members() []*side {
	if len(s.replicas) > 0 {
		return s.replicas
	}
	return []*side{s}
}

// targets are the addresses the clients call, one per member.
func (s *side) targets() []loadgen.Target {
	var t []loadgen.Target
	for _, m := range s.members() {
		t = append(t, m.target)
	}
	return t
}

// counters are the cumulative readings taken at the edges of a measured
// window; a measurement is the difference of two.
type counters struct {
	serverCPU time.Duration
	pg        procstat.PostgresCPU
	redis     time.Duration // every redis-server process's
	machine   time.Duration
	self      time.Duration
	allocs    uint64
	allocsOK  bool
	logLines  int64
	cpuOK     bool
	procs     map[int]procstat.Process
}

// read takes the readings for s, summed over its members. It runs while
// the clients are calling, so it is cheap: a few /proc files and one small
// HTTP request per server.
func (b *bench) read(ctx context.Context, s *side) counters {
	var c counters
	var err1, err2, err3, err4 error
	for _, m := range s.members() {
		cpu, err := procstat.CPU(m.proc.pid())
		c.serverCPU += cpu
		err1 = cmp.Or(err1, err)
	}
	c.pg, err2 = procstat.Postgres(b.db.name)
	c.machine, err3 = procstat.MachineCPU()
	c.self, err4 = procstat.CPU(b.selfPID)
	c.cpuOK = err1 == nil && err2 == nil && err3 == nil && err4 == nil
	c.procs, _ = procstat.Processes()
	for _, p := range c.procs {
		if p.Comm == redisComm {
			c.redis += p.CPU
		}
	}
	c.allocsOK = true
	for _, m := range s.members() {
		a, ok := m.allocs(ctx)
		c.allocs += a
		c.allocsOK = c.allocsOK && ok
		c.logLines += m.proc.lines.Load()
	}
	return c
}

// redisComm is Redis's command name in /proc.
const redisComm = "redis-server"

// measurement is one measured run of one side.
type measurement struct {
	side    string
	label   string // "run 2", "64 clients"...
	clients int
	res     *loadgen.Result
	// CPU used over the window by the server (all its replicas), by every
	// Postgres process, by the benchmark database's backends only, by the
	// runner itself (the load generator and the reading of the servers'
	// logs), by Redis when the side shares its counters there (0
	// otherwise), and by everything else on the machine.
	serverCPU, pgCPU, pgDBCPU, selfCPU, redisCPU, otherCPU time.Duration
	cpuOK                                                  bool
	// topOthers names the processes that used the most of otherCPU.
	topOthers string
	allocs    uint64
	allocsOK  bool
	logLines  int64
	// mem is read after the run: RSS then, and the peak during the run
	// (peakPerRun) or, when the peak could not be reset, since the
	// server started; for replicas, the sums over them.
	mem        procstat.Memory
	peakPerRun bool
}

// measure runs clients against s (spread over its replicas, if it has
// some): warm-up, then the measured window.
func (b *bench) measure(ctx context.Context, s *side, label string, clients int, warmup, duration time.Duration) (*measurement, error) {
	m := &measurement{side: s.name, label: label, clients: clients, peakPerRun: true}
	for _, r := range s.members() {
		if !r.proc.alive() {
			return nil, r.proc.failure("is not running")
		}
		m.peakPerRun = procstat.ResetPeak(r.proc.pid()) == nil && m.peakPerRun
	}
	var before, after counters
	res, err := loadgen.Run(ctx, loadgen.Config{
		Targets:  s.targets(),
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
	if s.sharesRedis {
		m.redisCPU = after.redis - before.redis
	}
	m.otherCPU = max(0, (after.machine-before.machine)-m.serverCPU-m.pgCPU-m.selfCPU-m.redisCPU)
	ours := map[int]bool{b.selfPID: true}
	for _, r := range s.members() {
		ours[r.proc.pid()] = true
	}
	m.topOthers = topOthers(before.procs, after.procs, res.Window, m.otherCPU, func(p procstat.Process) bool {
		return ours[p.PID] || p.Comm == "postgres" || (s.sharesRedis && p.Comm == redisComm)
	})
	m.allocsOK = before.allocsOK && after.allocsOK
	if m.allocsOK {
		m.allocs = after.allocs - before.allocs
	}
	m.logLines = after.logLines - before.logLines
	for _, r := range s.members() {
		mem, err := procstat.ReadMemory(r.proc.pid())
		if err != nil {
			return nil, r.proc.failure(fmt.Sprintf("memory unreadable (%v)", err))
		}
		m.mem.RSS += mem.RSS
		m.mem.Peak += mem.Peak
	}
	if !res.Valid() {
		b.invalid = append(b.invalid, fmt.Sprintf("%s %s (%d clients): %s; first: %s",
			s.name, label, clients, res.FailureSummary(), res.FirstFailure))
	}
	return m, nil
}

// topOthers lists the three processes, other than those measured (ours:
// the server or its replicas, the runner, Postgres, and Redis when it is
// part of the system), that used the most CPU between two readings, as
// "name(pid) 12%" of one core over window, and what no running process
// accounts for: processes that started and exited in between (a build's
// compiler runs), and kernel work not charged to a process.
func topOthers(before, after map[int]procstat.Process, window, others time.Duration, ours func(procstat.Process) bool) string {
	type use struct {
		p procstat.Process
		d time.Duration
	}
	var all []use
	var named time.Duration
	for pid, p := range after {
		if ours(p) {
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
