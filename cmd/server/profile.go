//go:build profile

package main

import (
	"os"
	"runtime/pprof"
	"strconv"
)

// Built only with -tags profile (go build -tags profile): writes a CPU profile of the
// whole run to ORDER_MCP_CPUPROFILE, for docs/PERFORMANCE.md. The server
// that ships has no profiling endpoint and no such variable.
func init() {
	path := os.Getenv("ORDER_MCP_CPUPROFILE")
	if path == "" {
		return
	}
	f, err := os.Create(path + "." + strconv.Itoa(os.Getpid()))
	if err != nil {
		panic(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		panic(err)
	}
	stopProfile = func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}
}
