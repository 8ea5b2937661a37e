package httpserver_test

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/demo"
	"github.com/example/order-mcp/internal/httpserver"
	"github.com/example/order-mcp/internal/limits"
	"github.com/example/order-mcp/internal/testenv"
)

// TestInventedKeyIDsWithMalformedSecretsAreCountedPerAddress: key-shaped
// credentials with a made-up key id and a malformed secret name no key
// that exists. They are counted per address (and so locked there), and they
// leave one lockout row for the address, not one per invented id.
func TestInventedKeyIDsWithMalformedSecretsAreCountedPerAddress(t *testing.T) {
	t.Parallel()
	ip := hardIPs()
	policy := hardLockoutPolicy
	policy.Threshold = 5
	env := testenv.New(t, dsn, testenv.Options{Lockout: &policy})
	base := hardServe(t, env.Handler())
	c := hardClient(t, ip(1))
	locked := -1
	for i := range 10 {
		invented := "osmcp_" + strings.Repeat(string(rune('a'+i)), 12) + "_x" // a fresh key id each time
		r := hardDo(t, c, base, hardReq{key: invented, body: hardListTools})
		if r.status == http.StatusTooManyRequests {
			locked = i + 1
			break
		}
		if r.status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: status %d", i+1, r.status)
		}
	}
	if locked != policy.Threshold {
		t.Fatalf("locked at attempt %d, want %d", locked, policy.Threshold)
	}
	rows, err := env.OwnerQueryStrings(t, `SELECT bucket FROM auth_lockouts WHERE bucket LIKE $1`, "auth:"+ip(1)+"%")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 {
		t.Fatalf("%d lockout rows for one address: %v", len(rows), rows)
	}
}

// TestGarbageCannotLockOutJWTCallersBehindTheSameAddress: OAuth callers
// behind one address (an office, a proxy) share the address bucket. Garbage
// sent by one of them locks the garbage out, not the others' valid tokens.
func TestGarbageCannotLockOutJWTCallersBehindTheSameAddress(t *testing.T) {
	t.Parallel()
	ip := hardIPs()
	issuer := testenv.NewIssuer(t)
	aud := "http://127.0.0.1/mcp"
	policy := hardLockoutPolicy
	policy.Threshold = 3
	env := testenv.New(t, dsn, testenv.Options{
		Lockout: &policy, TokenVerifier: issuer.Verifier(t, aud),
		HTTP: httpserver.Config{ResourceURL: aud, OAuthIssuer: issuer.ID},
	})
	base := hardServe(t, env.Handler())
	c := hardClient(t, ip(1))
	claims := issuer.Claims(aud, "colleague", auth.ScopeRead)
	claims["customer_id"] = demo.Customers()[2].ID
	valid := issuer.Token(t, claims)
	order := hardOrders(t, env, demo.Customers()[2].ID)[0]

	for range policy.Threshold {
		hardDo(t, c, base, hardReq{key: "garbage", body: hardListTools})
	}
	hardLimited(t, hardDo(t, c, base, hardReq{key: "more-garbage", body: hardListTools}))
	forged := strings.TrimSuffix(valid, valid[len(valid)-4:]) + "AAAA"
	hardLimited(t, hardDo(t, c, base, hardReq{key: forged, body: hardListTools}))
	hardServed(t, hardDo(t, c, base, hardReq{key: valid, body: hardGet(order)}), order)
}

// TestScopeRefusalOverHTTPIsAuditedByName: a read-only caller attempting
// cancel_order over HTTP is refused before the MCP layer (403), and the
// attempt is still recorded as a tool call of its own: who, which tool,
// which order (redacted arguments), denied, and why.
func TestScopeRefusalOverHTTPIsAuditedByName(t *testing.T) {
	t.Parallel()
	ip := hardIPs()
	env := testenv.New(t, dsn, testenv.Options{Lockout: &hardNoLockout})
	base := hardServe(t, env.Handler())
	customer := demo.Customers()[0]
	order := hardOrders(t, env, customer.ID)[0]
	key, keyID := env.Key(t, customer.ID, auth.ScopeRead)
	r := hardDo(t, hardClient(t, ip(1)), base, hardReq{key: key,
		body: hardCall("cancel_order", map[string]any{"order_id": order, "reason": "customer_request"})})
	if r.status != http.StatusForbidden {
		t.Fatalf("status %d, want 403", r.status)
	}
	hardFlush(t, env)
	rows, err := env.OwnerQueryStrings(t, `SELECT concat_ws('|', kind, principal, credential_id, transport, action, decision, outcome, reason, arguments)
		FROM audit_log WHERE credential_id = $1`, keyID)
	if err != nil {
		t.Fatal(err)
	}
	want := "tool_call|apikey:" + keyID + "|" + keyID + "|http|cancel_order|denied|denied|missing scope orders:cancel|"
	if len(rows) != 1 || !strings.HasPrefix(rows[0], want) || !strings.Contains(rows[0], order) {
		t.Fatalf("audit rows %q, want one starting %q and naming the order", rows, want)
	}
}

// TestSessionCapHoldsUnderConcurrentInitializes: many initializes at once
// from one principal must not all pass the per-principal session cap
// before any of them is recorded.
func TestSessionCapHoldsUnderConcurrentInitializes(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, dsn, testenv.Options{Lockout: &hardNoLockout,
		HTTP: httpserver.Config{Stateful: true, MaxSessionsPerPrincipal: 2, SessionIdleTimeout: time.Minute}})
	base := hardServe(t, env.Handler())
	key, _ := env.Key(t, demo.Customers()[0].ID, auth.ScopeRead)
	const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`
	var (
		mu  sync.Mutex
		ids = map[string]bool{}
		wg  sync.WaitGroup
	)
	start := make(chan struct{})
	c := &http.Client{Timeout: 10 * time.Second}
	for range 50 {
		wg.Go(func() {
			<-start
			req, _ := http.NewRequest(http.MethodPost, base+"/mcp", strings.NewReader(initialize))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set("Authorization", "Bearer "+key)
			resp, err := c.Do(req)
			if err != nil {
				return
			}
			defer resp.Body.Close()
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
			if id := resp.Header.Get("Mcp-Session-Id"); id != "" {
				mu.Lock()
				ids[id] = true
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	if len(ids) == 0 || len(ids) > 2 {
		t.Fatalf("%d sessions opened under a cap of 2", len(ids))
	}
}

// TestScopeRefusalsCountAgainstThePrincipalLimit: over HTTP too, a caller
// hammering a tool it may not use is throttled (429) once its budget is
// spent, rather than getting an endless stream of 403s.
func TestScopeRefusalsCountAgainstThePrincipalLimit(t *testing.T) {
	t.Parallel()
	ip := hardIPs()
	env := testenv.New(t, dsn, testenv.Options{Lockout: &hardNoLockout,
		Limits: hardLimits(func(l *limits.Config) { l.PerPrincipal = perMinute(2) })})
	base := hardServe(t, env.Handler())
	key, keyID := env.Key(t, demo.Customers()[0].ID, auth.ScopeRead)
	c := hardClient(t, ip(1))
	body := hardCall("cancel_order", map[string]any{"order_id": "ord_0000000000000000"})
	for i := range 2 {
		if r := hardDo(t, c, base, hardReq{key: key, body: body}); r.status != http.StatusForbidden {
			t.Fatalf("call %d: status %d, want 403", i+1, r.status)
		}
	}
	hardLimited(t, hardDo(t, c, base, hardReq{key: key, body: body}))

	// The throttling is on record by principal, not only by address.
	hardFlush(t, env)
	rows, err := env.OwnerQueryStrings(t, `SELECT reason FROM audit_log WHERE kind = 'refusal' AND principal = $1`, "apikey:"+keyID)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0] != "principal_rate_limited" {
		t.Fatalf("refusal records for the principal: %v", rows)
	}
}
