package logging_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"strings"
	"testing"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/dbtest"
	"github.com/example/order-mcp/internal/logging"
	"github.com/example/order-mcp/internal/testenv"
)

// dsn is this package's database; only the session test needs it.
var dsn string

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m, &dsn)) }

// capture returns a logger built exactly as the server builds its own, and
// the buffer its JSON lines go to.
func capture() (*slog.Logger, *testenv.Buffer) {
	buf := &testenv.Buffer{}
	return logging.New(slog.LevelDebug, buf), buf
}

// jsonLines decodes every line of out, failing the test on any line that is
// not a JSON object.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	if out == "" {
		return nil
	}
	for i, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %d is not valid JSON (%v): %s", i+1, err, line)
		}
		lines = append(lines, m)
	}
	return lines
}

// onlyLine decodes out, which must be exactly one JSON line.
func onlyLine(t *testing.T, out string) map[string]any {
	t.Helper()
	lines := jsonLines(t, out)
	if len(lines) != 1 {
		t.Fatalf("want exactly one log line, got %d:\n%s", len(lines), out)
	}
	return lines[0]
}

// lookup follows path through nested JSON objects.
func lookup(m map[string]any, path ...string) (any, bool) {
	var v any = m
	for _, p := range path {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = obj[p]; !ok {
			return nil, false
		}
	}
	return v, true
}

// allStrings collects every string (keys and values) in a decoded JSON value,
// so that checks see text after JSON escaping has been undone.
func allStrings(v any) []string {
	var out []string
	switch t := v.(type) {
	case map[string]any:
		for k, val := range t {
			out = append(out, k)
			out = append(out, allStrings(val)...)
		}
	case []any:
		for _, val := range t {
			out = append(out, allStrings(val)...)
		}
	case string:
		out = append(out, t)
	}
	return out
}

// Test values are generated at run time, so that nothing in this file looks
// like a committed secret to a scanner, and so that a value found in the
// logs can only have come from this run.

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func randomDigits(t testing.TB, n int) string {
	t.Helper()
	var sb strings.Builder
	for range n {
		d, err := rand.Int(rand.Reader, big.NewInt(10))
		if err != nil {
			t.Fatal(err)
		}
		sb.WriteString(d.String())
	}
	return sb.String()
}

// canary is a value no value pattern recognises: only redaction by key can
// hide it.
func canary(t testing.TB) string { return "canary" + randomHex(t, 12) }

func newAPIKey(t testing.TB) auth.NewKey {
	t.Helper()
	k, err := auth.GenerateAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newJWT returns a token shaped like a signed JWT, and its payload and
// signature segments (the header is the same in every HS256 token, so not
// a secret).
func newJWT(t testing.TB) (token, payload, signature string) {
	t.Helper()
	enc := base64.RawURLEncoding
	header := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	payload = enc.EncodeToString(fmt.Appendf(nil, `{"sub":"user-%s","scope":"orders:read"}`, randomHex(t, 8)))
	signature = enc.EncodeToString([]byte(randomHex(t, 16)))
	return header + "." + payload + "." + signature, payload, signature
}

func newEmail(t testing.TB) string {
	return "user." + randomHex(t, 4) + "@mail-" + randomHex(t, 3) + ".example.org"
}

// newPhone returns an international number written the way people write
// them: "+46 70 123 45 67".
func newPhone(t testing.TB) string {
	return "+46 70 " + randomDigits(t, 3) + " " + randomDigits(t, 2) + " " + randomDigits(t, 2)
}
