package testenv

import (
	"context"
	"encoding/json"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/example/order-mcp/internal/store"
)

// Call calls a tool and fails the test on a protocol error (a tool error
// is a result, not a failure).
func Call(t testing.TB, cs *mcp.ClientSession, name string, args any) *mcp.CallToolResult {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return res
}

// Text returns the first text content of a result.
func Text(res *mcp.CallToolResult) string {
	if res == nil {
		return ""
	}
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			return tc.Text
		}
	}
	return ""
}

// Decode reads a result's structured content into T, failing the test on
// a tool error.
func Decode[T any](t testing.TB, res *mcp.CallToolResult) T {
	t.Helper()
	if res.IsError {
		t.Fatalf("tool error: %s", Text(res))
	}
	var out T
	b, err := json.Marshal(res.StructuredContent)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// HoldAuditChainLock takes the audit chain's advisory lock from an owner
// connection, so that every audit append on the database at dsn blocks
// until release is called (also at cleanup; calling it twice is harmless).
// Tests use it to stall the committer deterministically.
func HoldAuditChainLock(t testing.TB, dsn string) (release func()) {
	t.Helper()
	ctx := context.Background()
	conn := ownerConn(t, dsn)
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", store.AuditChainLockKey); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			if _, err := conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", store.AuditChainLockKey); err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(release)
	return release
}

// WaitForAuditChainWaiter returns once an audit append is blocked on the
// chain lock (the committer has a batch in flight). It polls for up to 30
// seconds: a bound on a hang, generous enough for a loaded machine.
func WaitForAuditChainWaiter(t testing.TB, dsn string) {
	t.Helper()
	conn := ownerConn(t, dsn)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		var n int
		if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_locks
			 WHERE locktype = 'advisory' AND NOT granted
			   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
	}
	t.Fatal("no audit append ever waited for the chain lock")
}

func ownerConn(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// RedisURL is the Redis the tests use: TEST_REDIS_URL, else the one on
// 127.0.0.1:6379 (the development and CI machines have it; `make test`
// starts one when redis-server is installed but not running). Tests give
// each of their counters a key prefix of their own.
func RedisURL() string {
	if u := os.Getenv("TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}
