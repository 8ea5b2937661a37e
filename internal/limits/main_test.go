package limits_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/dbtest"
	"github.com/example/order-mcp/internal/demo"
	"github.com/example/order-mcp/internal/logging"
	"github.com/example/order-mcp/internal/redisstore"
	"github.com/example/order-mcp/internal/testenv"
)

var dsn string

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m, &dsn)) }

// randHex returns n random bytes in hex.
func randHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// testLogger returns a logger built like the server's (redaction included)
// and the buffer it writes to.
func testLogger() (*slog.Logger, *testenv.Buffer) {
	buf := &testenv.Buffer{}
	return logging.New(slog.LevelDebug, buf), buf
}

// prefix returns a Redis key prefix unique to one test.
func prefix(t testing.TB) string { return "t-" + randHex(t, 8) }

// shared connects to the test Redis under prefix (logging to logger, or
// nowhere) and fails the test if Redis does not answer: a missing Redis is
// a failure, never a skip. The prefix's keys are deleted when the test
// ends.
func shared(t testing.TB, prefix string, logger *slog.Logger) *redisstore.Counters {
	t.Helper()
	if logger == nil {
		logger, _ = testLogger()
	}
	s, err := redisstore.New(testenv.RedisURL(), prefix, logger, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	if err := s.Client().Ping(ctx).Err(); err != nil {
		t.Fatalf("Redis at %s does not answer (%v): start it (see README, \"Running the tests\") or set TEST_REDIS_URL", testenv.RedisURL(), err)
	}
	t.Cleanup(func() {
		iter := s.Client().Scan(ctx, 0, prefix+"*", 100).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if len(keys) > 0 {
			_ = s.Client().Del(ctx, keys...).Err()
		}
	})
	return s
}

// randomIP returns an address in 10.0.0.0/8 no other test uses (with
// overwhelming probability): lockout and rate-limit state in Postgres is
// shared by every test of the package.
func randomIP(t testing.TB) netip.Addr {
	t.Helper()
	b, _ := hex.DecodeString(randHex(t, 3))
	return netip.AddrFrom4([4]byte{10, b[0], b[1], b[2]})
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
