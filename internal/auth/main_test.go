package auth_test

import (
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/dbtest"
	"github.com/example/order-mcp/internal/demo"
	"github.com/example/order-mcp/internal/logging"
	"github.com/example/order-mcp/internal/testenv"
)

var dsn string

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m, &dsn)) }

// testLogger returns a logger built like the server's (redaction included)
// and the buffer it writes to.
func testLogger() (*slog.Logger, *testenv.Buffer) {
	buf := &testenv.Buffer{}
	return logging.New(slog.LevelDebug, buf), buf
}

// newKey returns a well-formed API key that is not stored anywhere.
func newKey(t testing.TB) auth.NewKey {
	t.Helper()
	k, err := auth.GenerateAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// secretOf returns the secret part of an API key.
func secretOf(key string) string { return key[strings.LastIndex(key, "_")+1:] }

// customerID is a seeded customer.
func customerID() string { return demo.Customers()[0].ID }

// assertNoLeak fails if any of secrets appears in any of texts.
func assertNoLeak(t testing.TB, secrets []string, texts ...string) {
	t.Helper()
	for _, s := range secrets {
		if s == "" {
			continue
		}
		for _, text := range texts {
			if strings.Contains(text, s) {
				t.Errorf("secret %.8s... leaked into %q", s, text)
			}
		}
	}
}
