package main

import "runtime/debug"

// defaultGCPercent is the garbage collector's target for a serving process
// when GOGC is not set: 200 (the heap may grow to three times what is live
// between collections) instead of Go's 100.
//
// Why (docs/PERFORMANCE.md): a CPU profile under load shows about a
// quarter of the server's CPU in the garbage collector (background marking
// and allocation assists). Most of the garbage is not this server's: the
// go-sdk (v1.8) decodes each request several times, each through a
// decoder that allocates a 32 KiB buffer, and the bare go-sdk server in
// `make bench` allocates more per call than this one does. Halving how
// often the collector runs cuts the server's CPU per call by about a sixth,
// for a live heap of a few MiB: peak RSS under load grows from about 33 to
// about 38 MiB, and the 100,000-caller memory check stays within its
// budget. The in-memory structures are capped (docs/LIMITS.md), so the
// heap cannot grow without bound either way.
//
// GOGC, when set, wins (including GOGC=100 or off); GOMEMLIMIT, which the
// Kubernetes manifest sets below the container's limit, makes the
// collector run sooner whenever memory is short.
const defaultGCPercent = 200

// tuneGC applies defaultGCPercent unless the environment sets GOGC.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
}
