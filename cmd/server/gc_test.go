package main

import (
	"runtime/debug"
	"testing"
)

// TestServingProcessesTradeMemoryForGCTime: serve and stdio run the
// collector at defaultGCPercent unless GOGC is set, in which case the
// operator's value stands.
func TestServingProcessesTradeMemoryForGCTime(t *testing.T) {
	before := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(before) })

	tuneGC(func(string) string { return "" })
	if got := debug.SetGCPercent(100); got != defaultGCPercent {
		t.Errorf("GOGC unset: GC percent %d, want %d", got, defaultGCPercent)
	}
	tuneGC(func(name string) string {
		if name == "GOGC" {
			return "100"
		}
		return ""
	})
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC=100 set: GC percent %d, want the operator's 100", got)
	}
}
