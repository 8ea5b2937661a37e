package httpserver_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/demo"
	"github.com/example/order-mcp/internal/httpserver"
	"github.com/example/order-mcp/internal/testenv"
)

// authzInitialize sends a raw initialize request, which opens a session in
// stateful mode.
func authzInitialize(t *testing.T, u, credential string) authzResponse {
	t.Helper()
	return authzPost(t, u, credential, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"`+
		testenv.Protocol20251125+`","capabilities":{},"clientInfo":{"name":"authz-raw-client","version":"1"}}}`)
}

// authzOpenSession opens a session with raw requests and returns its id.
func authzOpenSession(t *testing.T, u, credential string) string {
	t.Helper()
	r := authzInitialize(t, u, credential)
	id := r.header.Get("Mcp-Session-Id")
	if r.status != http.StatusOK || id == "" {
		t.Fatalf("initialize: %d %q %s", r.status, id, r.body)
	}
	if n := authzPost(t, u, credential, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, authzSession(id)...); n.status != http.StatusAccepted {
		t.Fatalf("notifications/initialized: %d %s", n.status, n.body)
	}
	return id
}

// authzSession are the headers of a request inside session id.
func authzSession(id string) []string {
	return []string{"Mcp-Session-Id", id, "MCP-Protocol-Version", testenv.Protocol20251125}
}

// authzSessionRequest sends method (GET, DELETE) for session id.
func authzSessionRequest(t *testing.T, method, u, credential, id string) authzResponse {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+credential)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Session-Id", id)
	req.Header.Set("MCP-Protocol-Version", testenv.Protocol20251125)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := authzHTTP.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("%s: no answer within 2s (were the headers never flushed?): %v", method, err)
	}
	defer resp.Body.Close()
	// A GET that was let through would stream forever: read only what
	// arrived with the status.
	buf := make([]byte, 4096)
	n, _ := resp.Body.Read(buf)
	return authzResponse{status: resp.StatusCode, header: resp.Header, body: string(buf[:n])}
}

// authzSwapBearer is an HTTP transport that sends a bearer credential.
type authzSwapBearer struct {
	mu    sync.Mutex
	token string
}

func (b *authzSwapBearer) RoundTrip(r *http.Request) (*http.Response, error) {
	b.mu.Lock()
	token := b.token
	b.mu.Unlock()
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+token)
	return http.DefaultTransport.RoundTrip(r)
}

func (b *authzSwapBearer) client() *http.Client {
	return &http.Client{Transport: b, Timeout: 30 * time.Second}
}

// TestStatefulSessions runs the server in stateful mode and attacks its
// sessions: another principal replaying a session id, a token refreshed
// with fewer scopes, one principal opening sessions without bound. The
// go-sdk client works; a session belongs to the subject that opened it,
// across token refreshes, and to nobody else; each request is authorized
// with the scopes of the credential it carries, not those the session
// started with; and the per-principal cap answers 429.
func TestStatefulSessions(t *testing.T) {
	env := authzNewEnv(t, true, httpserver.Config{Stateful: true, SessionIdleTimeout: time.Minute, MaxSessionsPerPrincipal: 2})
	iss := env.issuer
	demo := demo.Customers()
	customerA, ordersA := authzCustomer(t, env.Env, demo[0], 2)
	customerB, _ := authzCustomer(t, env.Env, demo[1], 1)
	getA := authzToolCall(7, "get_order_status", map[string]any{"order_id": ordersA[0]})
	var keys, tokens []string

	t.Run("GoSDKClientWorks", func(t *testing.T) {
		key, _ := env.Key(t, customerA, auth.ScopeRead)
		keys = append(keys, key)
		// A short client timeout: connecting waits for the standalone event
		// stream's headers, and a server that never sends them should fail
		// this test quickly rather than hang it.
		hc := (&authzSwapBearer{token: key}).client()
		hc.Timeout = 5 * time.Second
		cs := authzConnect(t, env.url, hc, testenv.Protocol20251125)
		if got := cs.InitializeResult().ProtocolVersion; got != testenv.Protocol20251125 || cs.ID() == "" {
			t.Fatalf("protocol %s, session %q", got, cs.ID())
		}
		if got, want := authzToolNames(t, cs), []string{"get_order_status", "list_recent_orders"}; !slices.Equal(got, want) {
			t.Fatalf("tools %v, want %v", got, want)
		}
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "get_order_status",
			Arguments: map[string]any{"order_id": ordersA[0]}})
		if err != nil || res.IsError {
			t.Fatalf("get_order_status: %v %s", err, testenv.Text(res))
		}
	})

	t.Run("SessionReplayedByAnotherPrincipalIsRefused", func(t *testing.T) {
		owner, _ := env.Key(t, customerA, auth.ScopeRead, auth.ScopeCancel)
		otherCustomer, _ := env.Key(t, customerB, auth.ScopeRead)
		sameCustomerOtherKey, _ := env.Key(t, customerA, auth.ScopeRead, auth.ScopeCancel)
		otherSubject := iss.Token(t, authzCustomerClaims(iss, "someone-else", customerA, auth.ScopeRead))
		staff := iss.Token(t, iss.Claims(authzAudience, "staff-member", auth.ScopeRead, auth.ScopeReadAny))
		keys = append(keys, owner, otherCustomer, sameCustomerOtherKey)
		tokens = append(tokens, append(authzTokenSecrets(otherSubject), authzTokenSecrets(staff)...)...)
		id := authzOpenSession(t, env.url, owner)

		attackers := []struct{ name, credential string }{
			{"OtherCustomersKey", otherCustomer},
			{"SameCustomersOtherKey", sameCustomerOtherKey},
			{"TokenOfAnotherSubject", otherSubject},
			{"StaffToken", staff},
		}
		refused := func(t *testing.T, r authzResponse) {
			t.Helper()
			if r.status != http.StatusForbidden && r.status != http.StatusNotFound {
				t.Fatalf("status %d, want 403 or 404: %.300s", r.status, r.body)
			}
			if strings.Contains(r.body, `"result"`) || strings.Contains(r.body, ordersA[0]) || r.header.Get("Mcp-Session-Id") != "" {
				t.Fatalf("the session answered another principal: %.300s", r.body)
			}
			authzSaysNothingWhy(t, r)
		}
		for _, a := range attackers {
			t.Run(a.name+"/ToolCall", func(t *testing.T) {
				refused(t, authzPost(t, env.url, a.credential, getA, authzSession(id)...))
			})
			t.Run(a.name+"/ToolsList", func(t *testing.T) {
				refused(t, authzPost(t, env.url, a.credential, `{"jsonrpc":"2.0","id":3,"method":"tools/list"}`, authzSession(id)...))
			})
			t.Run(a.name+"/StreamOpen", func(t *testing.T) {
				refused(t, authzSessionRequest(t, http.MethodGet, env.url, a.credential, id))
			})
			t.Run(a.name+"/SessionDelete", func(t *testing.T) {
				refused(t, authzSessionRequest(t, http.MethodDelete, env.url, a.credential, id))
			})
		}
		t.Run("OwnerOpensTheEventStream", func(t *testing.T) {
			// The control for the refused GETs: the owner's stream opens.
			r := authzSessionRequest(t, http.MethodGet, env.url, owner, id)
			if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/event-stream") {
				t.Fatalf("owner's stream: %d %q %s", r.status, r.header.Get("Content-Type"), r.body)
			}
		})
		t.Run("OwnerStillUsesTheSession", func(t *testing.T) {
			// The control: the session id is live, and the deletes above did
			// not end it.
			r := authzPost(t, env.url, owner, getA, authzSession(id)...)
			if msg := authzDecode(t, r); r.status != http.StatusOK || msg.Result == nil || msg.Result.IsError {
				t.Fatalf("owner: %d %s", r.status, r.body)
			}
		})
	})

	t.Run("RefreshedTokenOfTheSameSubjectKeepsTheSession", func(t *testing.T) {
		mint := func(subject string) string {
			tok := iss.Token(t, authzCustomerClaims(iss, subject, customerA, auth.ScopeRead))
			tokens = append(tokens, authzTokenSecrets(tok)...)
			return tok
		}
		first := mint("refreshing-user")
		id := authzOpenSession(t, env.url, first)
		refreshed := mint("refreshing-user") // another token: its own jti and signature
		if refreshed == first {
			t.Fatal("the refreshed token is the same token")
		}
		r := authzPost(t, env.url, refreshed, getA, authzSession(id)...)
		if msg := authzDecode(t, r); r.status != http.StatusOK || msg.Result == nil || msg.Result.IsError {
			t.Fatalf("refreshed token on the session: %d %s", r.status, r.body)
		}
		// The control: the session follows the subject, not any token that
		// verifies. Another subject's valid token is refused on it.
		r = authzPost(t, env.url, mint("not-the-refreshing-user"), getA, authzSession(id)...)
		if r.status != http.StatusForbidden && r.status != http.StatusNotFound || strings.Contains(r.body, `"result"`) {
			t.Fatalf("another subject used the session: %d %s", r.status, r.body)
		}
	})

	t.Run("RefreshedTokenWithFewerScopesLosesCancelAtOnce", func(t *testing.T) {
		target := ordersA[1]
		mint := func(scopes ...string) string {
			tok := iss.Token(t, authzCustomerClaims(iss, "downscoped-user", customerA, scopes...))
			tokens = append(tokens, authzTokenSecrets(tok)...)
			return tok
		}
		list := `{"jsonrpc":"2.0","id":4,"method":"tools/list"}`
		tools := func(t *testing.T, tok, id string) []string {
			t.Helper()
			r := authzPost(t, env.url, tok, list, authzSession(id)...)
			msg := authzDecode(t, r)
			if r.status != http.StatusOK || msg.Result == nil {
				t.Fatalf("tools/list: %d %s", r.status, r.body)
			}
			var names []string
			for _, tool := range msg.Result.Tools {
				names = append(names, tool.Name)
			}
			slices.Sort(names)
			return names
		}
		full := mint(auth.ScopeRead, auth.ScopeCancel)
		id := authzOpenSession(t, env.url, full)
		if got := tools(t, full, id); !slices.Contains(got, "cancel_order") {
			t.Fatalf("tools %v before the refresh", got)
		}

		readOnly := mint(auth.ScopeRead)
		if got, want := tools(t, readOnly, id), []string{"get_order_status", "list_recent_orders"}; !slices.Equal(got, want) {
			t.Fatalf("tools %v after the refresh, want %v", got, want)
		}
		cancel := authzToolCall(9, "cancel_order", map[string]any{"order_id": target})
		r := authzPost(t, env.url, readOnly, cancel, authzSession(id)...)
		if r.status != http.StatusForbidden {
			t.Fatalf("cancel in the session with the read-only token: %d %s", r.status, r.body)
		}
		authzWantChallenge(t, r, map[string]string{"realm": "order-mcp", "error": "insufficient_scope",
			"scope": auth.ScopeCancel, "resource_metadata": authzMetadataURL})
		authzNotCancelled(t, env.Env, target)

		// The control: the same session with a token that has the scope
		// again cancels the order.
		r = authzPost(t, env.url, mint(auth.ScopeRead, auth.ScopeCancel), cancel, authzSession(id)...)
		if msg := authzDecode(t, r); r.status != http.StatusOK || msg.Result == nil || msg.Result.IsError {
			t.Fatalf("cancel with the scope back: %d %s", r.status, r.body)
		}
		if st := authzOrderState(t, env.Env, target); !strings.HasPrefix(st, "cancelled|") {
			t.Fatalf("order %s", st)
		}
	})

	t.Run("ThirdSessionOfOnePrincipalIsRefused", func(t *testing.T) {
		key, _ := env.Key(t, customerA, auth.ScopeRead)
		other, _ := env.Key(t, customerA, auth.ScopeRead)
		keys = append(keys, key, other)
		first := authzOpenSession(t, env.url, key)
		authzOpenSession(t, env.url, key)

		r := authzInitialize(t, env.url, key)
		if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
			t.Fatalf("third session: %d Retry-After %q: %s", r.status, r.header.Get("Retry-After"), r.body)
		}
		if r.header.Get("Mcp-Session-Id") != "" || strings.Contains(r.body, `"result"`) {
			t.Fatalf("the refused session was opened: %q %s", r.header.Get("Mcp-Session-Id"), r.body)
		}
		// The go-sdk client is refused as well.
		client := mcp.NewClient(&mcp.Implementation{Name: "authz-test-client", Version: "1"}, nil)
		if cs, err := client.Connect(context.Background(), &mcp.StreamableClientTransport{
			Endpoint: env.url, HTTPClient: testenv.BearerClient(key), MaxRetries: -1,
		}, &mcp.ClientSessionOptions{ProtocolVersion: testenv.Protocol20251125}); err == nil {
			_ = cs.Close()
			t.Fatal("the go-sdk client opened a third session")
		}

		// The cap is per principal: another key opens a session.
		authzOpenSession(t, env.url, other)
		// Closing a session frees its place.
		if d := authzSessionRequest(t, http.MethodDelete, env.url, key, first); d.status >= 300 {
			t.Fatalf("delete: %d %s", d.status, d.body)
		}
		authzOpenSession(t, env.url, key)
	})

	t.Run("CapCountsTheSubjectNotTheToken", func(t *testing.T) {
		// A client refreshing its token, or minting many, is still one
		// principal.
		mint := func() string {
			time.Sleep(5 * time.Millisecond) // distinct jti
			tok := iss.Token(t, authzCustomerClaims(iss, "many-tokens-user", customerA, auth.ScopeRead))
			tokens = append(tokens, authzTokenSecrets(tok)...)
			return tok
		}
		authzOpenSession(t, env.url, mint())
		authzOpenSession(t, env.url, mint())
		if r := authzInitialize(t, env.url, mint()); r.status != http.StatusTooManyRequests {
			t.Fatalf("third session with a fresh token: %d %s", r.status, r.body)
		}
	})

	authzNoSecrets(t, env.Env, nil, keys, tokens...)
}

// TestIdleSessionExpires leaves a session idle past SessionIdleTimeout: it
// is gone (404) afterwards, and no longer counts towards its principal's
// cap.
func TestIdleSessionExpires(t *testing.T) {
	const idle = 300 * time.Millisecond
	env := authzNewEnv(t, false, httpserver.Config{Stateful: true, SessionIdleTimeout: idle, MaxSessionsPerPrincipal: 2})
	customer := demo.Customers()[2]
	key, _ := env.Key(t, customer.ID, auth.ScopeRead)
	list := `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`

	t.Run("IdleSessionIsGone", func(t *testing.T) {
		id := authzOpenSession(t, env.url, key)
		// The control: in use, the session lives longer than the timeout.
		for range 3 {
			time.Sleep(idle / 2)
			if r := authzPost(t, env.url, key, list, authzSession(id)...); r.status != http.StatusOK {
				t.Fatalf("session in use: %d %s", r.status, r.body)
			}
		}
		time.Sleep(3 * idle)
		r := authzPost(t, env.url, key, list, authzSession(id)...)
		if r.status != http.StatusNotFound {
			t.Fatalf("idle session: %d, want 404: %s", r.status, r.body)
		}
		if strings.Contains(r.body, `"result"`) {
			t.Fatalf("expired session answered: %s", r.body)
		}
	})

	t.Run("ExpiredSessionsFreeTheCap", func(t *testing.T) {
		authzOpenSession(t, env.url, key)
		authzOpenSession(t, env.url, key)
		if r := authzInitialize(t, env.url, key); r.status != http.StatusTooManyRequests {
			t.Fatalf("third session: %d", r.status)
		}
		time.Sleep(3 * idle)
		authzOpenSession(t, env.url, key)
	})
	authzNoSecrets(t, env.Env, nil, []string{key})
}
