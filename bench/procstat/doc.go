// Package procstat reads what the benchmark measures about processes from
// Linux's /proc: CPU time (utime+stime), resident memory (VmRSS) and its
// peak (VmHWM), and the CPU time of the whole machine.
//
// Why /proc and not the servers' own numbers: the benchmark compares two
// servers written differently, and the only accounting both are subject to
// is the kernel's. CPU time is read in clock ticks (USER_HZ, which Linux
// fixes at 100 for user space on every architecture the benchmark runs
// on), so a measurement window should span at least a few seconds: one
// tick is 10 ms.
//
// Peak RSS is per process lifetime unless reset: ResetPeak writes 5 to
// /proc/<pid>/clear_refs, which sets VmHWM back to the current RSS, so a
// peak can be measured per run. It needs the right to write that file (the
// process's own user, or root); callers fall back to the lifetime peak when
// it fails.
//
// Imports: the standard library only.
package procstat
