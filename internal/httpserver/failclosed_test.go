package httpserver_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/example/order-mcp/internal/security"
	"github.com/example/order-mcp/internal/store"
	"github.com/example/order-mcp/internal/testenv"
)

// TestLockoutStoreFailureFailsClosed: when the lockout state cannot be read
// or written (its database is gone), no request is served and no
// credential is tried: every caller gets 503 with Retry-After, so an
// outage can neither open the server to brute force nor let a locked-out
// caller in. Nothing of the store's error reaches the client.
func TestLockoutStoreFailureFailsClosed(t *testing.T) {
	broken, err := store.Open(context.Background(), dsn, store.Options{AsAppRole: true})
	if err != nil {
		t.Fatal(err)
	}
	broken.Close() // every statement now fails
	ip := hardIPs()
	env := testenv.New(t, dsn, testenv.Options{LockoutStore: broken})
	base := hardServe(t, env.Handler())
	customer, orders := hardCustomer(t, env, 1)
	key, keyID := env.Key(t, customer, security.ScopeRead)
	c := hardClient(t, ip(1))

	tests := map[string]string{
		"AValidKey":      key,
		"AWrongSecret":   key[:len(key)-4] + "aaaa",
		"GarbageInstead": "not-a-credential",
		"AnUnknownKeyID": "osmcp_zzzzzzzzzzzz_" + strings.Repeat("a", 52),
	}
	for name, credential := range tests {
		t.Run(name, func(t *testing.T) {
			r := hardDo(t, c, base, hardReq{key: credential, body: hardGet(orders[0])})
			if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
				t.Fatalf("status %d (Retry-After %q), want 503: %s", r.status, r.header.Get("Retry-After"), r.body)
			}
			for _, leak := range []string{"closed", "pool", "postgres", "auth_lockouts", orders[0]} {
				if strings.Contains(r.body, leak) {
					t.Fatalf("the answer carries %q: %s", leak, r.body)
				}
			}
		})
	}
	hardFlush(t, env)
	if calls := hardToolCalls(t, env, keyID); len(calls) != 0 {
		t.Fatalf("the MCP layer ran for a request that should have stopped at the lockout: %v", calls)
	}
	if got := hardRefusals(t, env, ip(1))["limit_store_unavailable"]; got != len(tests) {
		t.Fatalf("%d refusals audited as limit_store_unavailable, want %d", got, len(tests))
	}
}
