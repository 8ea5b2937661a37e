package procstat

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// tick is one clock tick of /proc's CPU accounting (USER_HZ = 100).
const tick = 10 * time.Millisecond

// CPU returns the CPU time pid has used so far: user plus system time,
// fields 14 and 15 of /proc/<pid>/stat.
func CPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	_, ticks, err := parseStat(b)
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return time.Duration(ticks) * tick, nil
}

// parseStat returns the command name and utime+stime (in ticks) of one
// /proc/<pid>/stat line. The name is in parentheses and may itself contain
// spaces and parentheses, so the fields are counted from the last ')'.
func parseStat(b []byte) (comm string, ticks uint64, err error) {
	lp, rp := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if lp < 0 || rp < lp {
		return "", 0, errors.New("malformed stat line")
	}
	comm = string(b[lp+1 : rp])
	// After ") " come field 3 (state) onwards; utime and stime are fields
	// 14 and 15, so indexes 11 and 12 here.
	f := strings.Fields(string(b[rp+1:]))
	if len(f) < 13 {
		return "", 0, errors.New("short stat line")
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return "", 0, errors.New("malformed utime or stime")
	}
	return comm, utime + stime, nil
}

// Process is one process's CPU time so far.
type Process struct {
	PID  int
	Comm string // the command name, at most 15 bytes, e.g. "postgres"
	CPU  time.Duration
}

// Processes returns every process's CPU time so far, by pid. Comparing two
// readings shows who used the machine in between (a process that started
// in between is missing from the first).
func Processes() (map[int]Process, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	out := make(map[int]Process, len(entries))
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		comm, ticks, err := parseStat(b)
		if err != nil {
			continue
		}
		out[pid] = Process{PID: pid, Comm: comm, CPU: time.Duration(ticks) * tick}
	}
	return out, nil
}

// PostgresCPU is the CPU time used so far by the Postgres processes on
// this machine.
type PostgresCPU struct {
	// All is every process whose command name is "postgres": the
	// postmaster, every backend, and the background processes that do
	// work for writes (WAL writer, checkpointer, background writer).
	All time.Duration
	// Database is the backends connected to one database only (their
	// process title, /proc/<pid>/cmdline, names it). It leaves out other
	// databases' work (a test suite running at the same time) but also the
	// background processes.
	Database time.Duration
}

// Postgres sums the CPU time of Postgres processes; database names the
// database whose backends are counted in Database ("" for none). Processes
// that exit between two readings take their time with them: compare
// readings only over windows in which the connections stay open (a
// connection pool's do).
func Postgres(database string) (PostgresCPU, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return PostgresCPU{}, err
	}
	var out PostgresCPU
	needle := []byte(" " + database + " ")
	for _, e := range entries {
		name := e.Name()
		if name[0] < '0' || name[0] > '9' {
			continue
		}
		b, err := os.ReadFile("/proc/" + name + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		comm, ticks, err := parseStat(b)
		if err != nil || comm != "postgres" {
			continue
		}
		d := time.Duration(ticks) * tick
		out.All += d
		if database == "" {
			continue
		}
		// A backend's title is "postgres: <cluster>: <user> <database>
		// <client> <state>", NUL-padded.
		title, err := os.ReadFile("/proc/" + name + "/cmdline")
		if err == nil && bytes.Contains(title, needle) {
			out.Database += d
		}
	}
	return out, nil
}

// Memory is a process's resident memory.
type Memory struct {
	// RSS is the resident set size now (VmRSS), in bytes.
	RSS int64
	// Peak is the highest RSS since the process started or since the last
	// ResetPeak (VmHWM), in bytes.
	Peak int64
}

// ReadMemory reads VmRSS and VmHWM from /proc/<pid>/status.
func ReadMemory(pid int) (Memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, err
	}
	defer f.Close()
	var m Memory
	found := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		var dst *int64
		switch {
		case strings.HasPrefix(line, "VmRSS:"):
			dst = &m.RSS
		case strings.HasPrefix(line, "VmHWM:"):
			dst = &m.Peak
		default:
			continue
		}
		f := strings.Fields(line) // "VmRSS:", "12345", "kB"
		if len(f) != 3 || f[2] != "kB" {
			return Memory{}, fmt.Errorf("/proc/%d/status: malformed %q", pid, line)
		}
		kb, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return Memory{}, fmt.Errorf("/proc/%d/status: malformed %q", pid, line)
		}
		*dst = kb << 10
		found++
	}
	if err := sc.Err(); err != nil {
		return Memory{}, err
	}
	if found != 2 {
		return Memory{}, fmt.Errorf("/proc/%d/status: no VmRSS or VmHWM", pid)
	}
	return m, nil
}

// ResetPeak sets pid's VmHWM back to its current RSS, so that the next
// ReadMemory reports the peak since now.
func ResetPeak(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// MachineCPU returns the CPU time all processors of the machine have spent
// doing anything but idling or waiting for I/O, from the first line of
// /proc/stat. Over a window, subtracting the processes one accounts for
// leaves what everything else on the machine used.
func MachineCPU() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return 0, errors.New("/proc/stat: no cpu line")
	}
	var busy uint64
	// user nice system idle iowait irq softirq steal guest guest_nice;
	// guest time is already counted in user and nice.
	for i, v := range f[1:] {
		if i >= 8 {
			break
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, errors.New("/proc/stat: malformed cpu line")
		}
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		busy += n
	}
	return time.Duration(busy) * tick, nil
}
