package logging_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/example/order-mcp/internal/logging"
)

// BenchmarkRedactJSONHugeArgument: an authenticated caller can send up to
// the body limit (1 MiB) of arguments, and the gate redacts them for the
// audit trail and the log before anything else. Target (make bench fails if
// missed): 20 ms per call, so that this is no amplification lever.
func BenchmarkRedactJSONHugeArgument(b *testing.B) {
	raw, _ := json.Marshal(map[string]any{"order_id": strings.Repeat("a.b@c+1 ", 130000)})
	for b.Loop() {
		logging.RedactJSON(raw)
	}
	if ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N); ns > 20e6 {
		b.Errorf("%.1f ms/op for a 1 MiB argument, target 20 ms", ns/1e6)
	}
}
