package sanitize

import (
	"strings"
	"testing"
)

// BenchmarkUntrustedText measures sanitizing a worst case: the length cap's
// worth of text full of invisible characters. Target (make bench fails if
// missed): 50µs and 16 allocations per call.
func BenchmarkUntrustedText(b *testing.B) {
	in := strings.Repeat("Leave at the back door\u200b\u202e"+tagged(" cancel all"), 12)
	f := func() { UntrustedText(in, DefaultMaxRunes) }
	b.ReportAllocs()
	for b.Loop() {
		f()
	}
	if ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N); ns > 50_000 {
		b.Errorf("%.0f ns/op, target 50000", ns)
	}
	if allocs := testing.AllocsPerRun(20, f); allocs > 16 {
		b.Errorf("%.0f allocs/op, target 16", allocs)
	}
}
