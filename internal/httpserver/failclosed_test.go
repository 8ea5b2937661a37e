package httpserver_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/httpserver"
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
	key, keyID := env.Key(t, customer, auth.ScopeRead)
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

// TestHandlerPanicsAreContained: a panic in any HTTP handler (here the
// readiness probe's, as a bug in a fork's dependency might) answers a fixed
// 500; the panic's text and stack, which name code paths and may carry
// data, go to the log only, and the server keeps serving.
func TestHandlerPanicsAreContained(t *testing.T) {
	const secret = "panic text with /srv/app/internal/secret.go:42 and a card 4111111111111111"
	env := testenv.New(t, dsn, testenv.Options{})
	h := httpserver.New(httpserver.Deps{
		Config: httpserver.Config{ResourceURL: "http://127.0.0.1/mcp"}, MCP: env.MCP, Authenticator: env.Auth,
		Lockout: env.Lockout, Limits: env.Limits, Audit: env.Audit, Logger: env.Logger,
		Ready: func(context.Context) error { panic(secret) },
	})
	base := hardServe(t, h)
	c := hardClient(t, hardIPs()(1))

	r := hardDo(t, c, base, hardReq{method: http.MethodGet, path: "/readyz"})
	if r.status != http.StatusInternalServerError || strings.Contains(r.body, "secret") || strings.Contains(r.body, "goroutine") {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if !strings.Contains(env.Logs.String(), "panic in http handler") {
		t.Fatal("the panic was not logged")
	}
	if strings.Contains(env.Logs.String(), "4111111111111111") {
		t.Fatal("the log carries the card number the panic quoted")
	}
	if again := hardDo(t, c, base, hardReq{method: http.MethodGet, path: "/healthz"}); again.status != http.StatusOK {
		t.Fatalf("after the panic /healthz answers %d", again.status)
	}
}

// TestReadinessIsRateLimited: /readyz touches the database for callers
// nobody authenticated, so it counts against the per-address limit.
func TestReadinessIsRateLimited(t *testing.T) {
	limits := testenv.GenerousLimits()
	limits.PerIP = perMinute(3)
	env := testenv.New(t, dsn, testenv.Options{Limits: &limits})
	base := hardServe(t, env.Handler())
	c := hardClient(t, hardIPs()(1))
	for i := range 3 {
		if r := hardDo(t, c, base, hardReq{method: http.MethodGet, path: "/readyz"}); r.status != http.StatusOK {
			t.Fatalf("probe %d: %d %s", i+1, r.status, r.body)
		}
	}
	r := hardDo(t, c, base, hardReq{method: http.MethodGet, path: "/readyz"})
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("fourth probe in a minute: %d (Retry-After %q)", r.status, r.header.Get("Retry-After"))
	}
}
