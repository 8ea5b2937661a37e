package security_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/example/order-mcp/internal/dbtest"
	"github.com/example/order-mcp/internal/logging"
	"github.com/example/order-mcp/internal/security"
	"github.com/example/order-mcp/internal/store"
	"github.com/example/order-mcp/internal/testenv"
)

var dsn string

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m, &dsn)) }

// redisURL is the Redis the tests share (each test under a key prefix of its
// own). A Redis that does not answer fails the tests that need it.
func redisURL() string { return testenv.RedisURL() }

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

// shared connects to the test Redis under prefix and fails the test if
// Redis does not answer: a missing Redis is a failure, never a skip. The
// prefix's keys are deleted when the test ends.
func shared(t testing.TB, prefix string) *security.SharedCounters {
	t.Helper()
	s, _ := sharedLogged(t, prefix)
	return s
}

// sharedLogged is shared, with the log the counters write to.
func sharedLogged(t testing.TB, prefix string) (*security.SharedCounters, *testenv.Buffer) {
	t.Helper()
	logger, logs := testLogger()
	s, err := security.NewSharedCounters(redisURL(), prefix, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	if err := s.Client().Ping(ctx).Err(); err != nil {
		t.Fatalf("Redis at %s does not answer (%v): start it (see README, \"Running the tests\") or set TEST_REDIS_URL", redisURL(), err)
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
	return s, logs
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
func newKey(t testing.TB) security.NewKey {
	t.Helper()
	k, err := security.GenerateAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// secretOf returns the secret part of an API key.
func secretOf(key string) string { return key[strings.LastIndex(key, "_")+1:] }

// customerID is a seeded customer.
func customerID() string { return store.DemoCustomers()[0].ID }

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
