package httpserver_test

// Attacks on stateful sessions (MCP_HTTP_STATEFUL=true): replaying another
// principal's session id, keeping a session's scopes after a refresh that
// dropped them, opening sessions without bound, and idle sessions that
// would otherwise live forever.

import (
	"context"
	"io"
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
	"github.com/example/order-mcp/internal/refusal"
	"github.com/example/order-mcp/internal/testenv"
)

// initialize sends a raw initialize request, which opens a session in
// stateful mode.
func initialize(t testing.TB, c *http.Client, base, credential string) response {
	t.Helper()
	return do(t, c, base, request{key: credential, header: map[string]string{"MCP-Protocol-Version": ""},
		body: `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"` + protocol +
			`","capabilities":{},"clientInfo":{"name":"raw-client","version":"1"}}}`})
}

// openSession opens a session with raw requests and returns its id.
func openSession(t testing.TB, c *http.Client, base, credential string) string {
	t.Helper()
	r := initialize(t, c, base, credential)
	id := r.header.Get("Mcp-Session-Id")
	if r.status != http.StatusOK || id == "" {
		t.Fatalf("initialize: %d %q %s", r.status, id, r.body)
	}
	n := do(t, c, base, request{key: credential, header: inSession(id), body: `{"jsonrpc":"2.0","method":"notifications/initialized"}`})
	if n.status != http.StatusAccepted {
		t.Fatalf("notifications/initialized: %d %s", n.status, n.body)
	}
	return id
}

// inSession are the headers of a request inside session id.
func inSession(id string) map[string]string {
	return map[string]string{"Mcp-Session-Id": id, "MCP-Protocol-Version": protocol}
}

// sessionRequest is a GET (the session's event stream) or DELETE of
// session id.
func sessionRequest(method, credential, id string) request {
	h := inSession(id)
	h["Accept"] = "text/event-stream"
	return request{method: method, key: credential, header: h, stream: true}
}

// TestStatefulSessions runs the server in stateful mode and attacks its
// sessions: another principal replaying a session id, a token refreshed
// with fewer scopes, one principal opening sessions without bound. The
// go-sdk client works; a session belongs to the subject that opened it,
// across token refreshes, and to nobody else; each request is authorized
// with the scopes of the credential it carries, not those the session
// started with; and the per-principal cap answers 429.
func TestStatefulSessions(t *testing.T) {
	t.Parallel()
	srv := startOAuth(t, testenv.Options{Lockout: &noLockout,
		HTTP: httpserver.Config{Stateful: true, SessionIdleTimeout: time.Minute, MaxSessionsPerPrincipal: 2}})
	iss := srv.issuer
	ip := addresses()
	c := clientFrom(t, ip(1))
	customers := demo.Customers()
	customerA, ordersA := newCustomer(t, dsn, customers[0], 2)
	customerB, _ := newCustomer(t, dsn, customers[1], 1)
	getA := getBody(ordersA[0])
	var credentials []string
	mint := func(subject string, scopes ...auth.Scope) string {
		c := customerClaims(iss, subject, customerA, scopes...)
		c["jti"] = newID("jti") // each token its own, whenever it is minted
		tok := iss.Token(t, c)
		credentials = append(credentials, tok)
		return tok
	}
	key := func(customerID string, scopes ...auth.Scope) string {
		k, _ := srv.Key(t, customerID, scopes...)
		credentials = append(credentials, k)
		return k
	}

	t.Run("GoSDKClientWorks", func(t *testing.T) {
		k := key(customerA, auth.ScopeRead)
		cs := connect(t, srv.base, bearerFrom(t, ip(1), k), testenv.Protocol20251125)
		if got := cs.InitializeResult().ProtocolVersion; got != testenv.Protocol20251125 || cs.ID() == "" {
			t.Fatalf("protocol %s, session %q", got, cs.ID())
		}
		if got, want := listedTools(t, cs), []string{"get_order_status", "list_recent_orders"}; !slices.Equal(got, want) {
			t.Fatalf("tools %v, want %v", got, want)
		}
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "get_order_status",
			Arguments: map[string]any{"order_id": ordersA[0]}})
		if err != nil || res.IsError {
			t.Fatalf("get_order_status: %v %s", err, testenv.Text(res))
		}
	})

	t.Run("SessionReplayedByAnotherPrincipalIsRefused", func(t *testing.T) {
		owner := key(customerA, auth.ScopeRead, auth.ScopeCancel)
		id := openSession(t, c, srv.base, owner)
		attackers := []struct{ name, credential string }{
			{"OtherCustomersKey", key(customerB, auth.ScopeRead)},
			{"SameCustomersOtherKey", key(customerA, auth.ScopeRead, auth.ScopeCancel)},
			{"TokenOfAnotherSubject", mint("someone-else", auth.ScopeRead)},
			{"StaffToken", func() string {
				tok := iss.Token(t, iss.Claims(oauthResource, "staff-member", auth.ScopeRead, auth.ScopeReadAny))
				credentials = append(credentials, tok)
				return tok
			}()},
		}
		refused := func(t *testing.T, r response) {
			t.Helper()
			if r.status != http.StatusForbidden && r.status != http.StatusNotFound {
				t.Fatalf("status %d, want 403 or 404: %.300s", r.status, r.body)
			}
			if strings.Contains(r.body, `"result"`) || strings.Contains(r.body, ordersA[0]) || r.header.Get("Mcp-Session-Id") != "" {
				t.Fatalf("the session answered another principal: %.300s", r.body)
			}
			if strings.Contains(r.body, refusal.ForeignHost.Message()) {
				t.Fatalf("another principal's session id is refused as if its Host were foreign: %s", r.body)
			}
			saysNothingWhy(t, r)
		}
		for _, a := range attackers {
			t.Run(a.name+"/ToolCall", func(t *testing.T) {
				refused(t, do(t, c, srv.base, request{key: a.credential, body: getA, header: inSession(id)}))
			})
			t.Run(a.name+"/ToolsList", func(t *testing.T) {
				refused(t, do(t, c, srv.base, request{key: a.credential, body: listToolsBody, header: inSession(id)}))
			})
			t.Run(a.name+"/StreamOpen", func(t *testing.T) {
				refused(t, do(t, c, srv.base, sessionRequest(http.MethodGet, a.credential, id)))
			})
			t.Run(a.name+"/SessionDelete", func(t *testing.T) {
				refused(t, do(t, c, srv.base, sessionRequest(http.MethodDelete, a.credential, id)))
			})
		}
		t.Run("OwnerOpensTheEventStream", func(t *testing.T) {
			// The control for the refused GETs: the owner's stream opens.
			r := do(t, c, srv.base, sessionRequest(http.MethodGet, owner, id))
			if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/event-stream") {
				t.Fatalf("owner's stream: %d %q %s", r.status, r.header.Get("Content-Type"), r.body)
			}
		})
		t.Run("OwnerStillUsesTheSession", func(t *testing.T) {
			// The control: the session id is live, and the deletes above did
			// not end it.
			ok(t, do(t, c, srv.base, request{key: owner, body: getA, header: inSession(id)}))
		})
	})

	t.Run("RefreshedTokenOfTheSameSubjectKeepsTheSession", func(t *testing.T) {
		first := mint("refreshing-user", auth.ScopeRead)
		id := openSession(t, c, srv.base, first)
		refreshed := mint("refreshing-user", auth.ScopeRead) // another token: its own jti and signature
		if refreshed == first {
			t.Fatal("the refreshed token is the same token")
		}
		ok(t, do(t, c, srv.base, request{key: refreshed, body: getA, header: inSession(id)}))
		// The control: the session follows the subject, not any token that
		// verifies. Another subject's valid token is refused on it.
		r := do(t, c, srv.base, request{key: mint("not-the-refreshing-user", auth.ScopeRead), body: getA, header: inSession(id)})
		if r.status != http.StatusForbidden && r.status != http.StatusNotFound || strings.Contains(r.body, `"result"`) {
			t.Fatalf("another subject used the session: %d %s", r.status, r.body)
		}
	})

	t.Run("RefreshedTokenWithFewerScopesLosesCancelAtOnce", func(t *testing.T) {
		target := ordersA[1]
		listed := func(t *testing.T, tok, id string) []string {
			t.Helper()
			return ok(t, do(t, c, srv.base, request{key: tok, body: listToolsBody, header: inSession(id)})).toolNames()
		}
		full := mint("downscoped-user", auth.ScopeRead, auth.ScopeCancel)
		id := openSession(t, c, srv.base, full)
		if got := listed(t, full, id); !slices.Contains(got, "cancel_order") {
			t.Fatalf("tools %v before the refresh", got)
		}

		readOnly := mint("downscoped-user", auth.ScopeRead)
		if got, want := listed(t, readOnly, id), []string{"get_order_status", "list_recent_orders"}; !slices.Equal(got, want) {
			t.Fatalf("tools %v after the refresh, want %v", got, want)
		}
		cancel := callBody("cancel_order", map[string]any{"order_id": target})
		r := do(t, c, srv.base, request{key: readOnly, body: cancel, header: inSession(id)})
		if r.status != http.StatusForbidden {
			t.Fatalf("cancel in the session with the read-only token: %d %s", r.status, r.body)
		}
		wantChallenge(t, r, map[string]string{"realm": "order-mcp", "error": "insufficient_scope",
			"scope": string(auth.ScopeCancel), "resource_metadata": oauthMetadata})
		notCancelled(t, dsn, target)

		// The control: the same session with a token that has the scope
		// again gets past the scope check to the tool itself, which, this
		// raw session having declared no elicitation, cannot ask the user
		// and so, under the production default, does not cancel.
		r = do(t, c, srv.base, request{key: mint("downscoped-user", auth.ScopeRead, auth.ScopeCancel), body: cancel, header: inSession(id)})
		if m := r.rpc(t); r.status != http.StatusOK || m.Result == nil || m.text() != refusal.ConfirmationUnavailable.Message("cancel_order") {
			t.Fatalf("cancel in the session with the full token: %d %s", r.status, r.body)
		}
		notCancelled(t, dsn, target)
	})

	t.Run("ThirdSessionOfOnePrincipalIsRefused", func(t *testing.T) {
		k, other := key(customerA, auth.ScopeRead), key(customerA, auth.ScopeRead)
		first := openSession(t, c, srv.base, k)
		openSession(t, c, srv.base, k)

		r := initialize(t, c, srv.base, k)
		if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
			t.Fatalf("third session: %d Retry-After %q: %s", r.status, r.header.Get("Retry-After"), r.body)
		}
		if r.header.Get("Mcp-Session-Id") != "" || strings.Contains(r.body, `"result"`) {
			t.Fatalf("the refused session was opened: %q %s", r.header.Get("Mcp-Session-Id"), r.body)
		}
		// The go-sdk client is refused as well.
		client := mcp.NewClient(&mcp.Implementation{Name: "httpserver-test-client", Version: "1"}, nil)
		if cs, err := client.Connect(context.Background(), &mcp.StreamableClientTransport{
			Endpoint: srv.base + "/mcp", HTTPClient: bearerFrom(t, ip(1), k), MaxRetries: -1,
		}, &mcp.ClientSessionOptions{ProtocolVersion: testenv.Protocol20251125}); err == nil {
			_ = cs.Close()
			t.Fatal("the go-sdk client opened a third session")
		}

		// The cap is per principal: another key opens a session.
		openSession(t, c, srv.base, other)
		// Closing a session frees its place.
		if d := do(t, c, srv.base, sessionRequest(http.MethodDelete, k, first)); d.status >= 300 {
			t.Fatalf("delete: %d %s", d.status, d.body)
		}
		openSession(t, c, srv.base, k)
	})

	t.Run("CapCountsTheSubjectNotTheToken", func(t *testing.T) {
		// A client refreshing its token, or minting many, is still one
		// principal.
		openSession(t, c, srv.base, mint("many-tokens-user", auth.ScopeRead))
		openSession(t, c, srv.base, mint("many-tokens-user", auth.ScopeRead))
		if r := initialize(t, c, srv.base, mint("many-tokens-user", auth.ScopeRead)); r.status != http.StatusTooManyRequests {
			t.Fatalf("third session with a fresh token: %d %s", r.status, r.body)
		}
	})

	noSecrets(t, []*testenv.Env{srv.Env}, credentials)
}

// TestSessionCapHoldsUnderConcurrentInitializes: many initializes at once
// from one principal must not all pass the per-principal session cap
// before any of them is recorded.
func TestSessionCapHoldsUnderConcurrentInitializes(t *testing.T) {
	t.Parallel()
	srv := start(t, testenv.Options{Lockout: &noLockout,
		HTTP: httpserver.Config{Stateful: true, MaxSessionsPerPrincipal: 2, SessionIdleTimeout: time.Minute}})
	key, _ := srv.Key(t, demo.Customers()[0].ID, auth.ScopeRead)
	c := clientFrom(t, addresses()(1))
	const initializeBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`
	var (
		mu  sync.Mutex
		ids = map[string]bool{}
		wg  sync.WaitGroup
	)
	gate := make(chan struct{})
	for range 50 {
		wg.Go(func() {
			<-gate
			// Not do: a helper that fails the test must not run off the
			// test's goroutine.
			req, _ := http.NewRequest(http.MethodPost, srv.base+"/mcp", strings.NewReader(initializeBody))
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
	close(gate)
	wg.Wait()
	if len(ids) == 0 || len(ids) > 2 {
		t.Fatalf("%d sessions opened under a cap of 2", len(ids))
	}
}

// TestIdleSessionExpires leaves sessions idle past SessionIdleTimeout: they
// are gone (404) afterwards, and no longer count towards their principal's
// cap. The test waits for the expiry by polling, with a generous bound; it
// asserts nothing about how long anything took.
func TestIdleSessionExpires(t *testing.T) {
	t.Parallel()
	const idle = 2 * time.Second
	srv := start(t, testenv.Options{HTTP: httpserver.Config{Stateful: true, SessionIdleTimeout: idle, MaxSessionsPerPrincipal: 2}})
	customer := demo.Customers()[2]
	c := clientFrom(t, addresses()(1))
	var keys []string

	t.Run("IdleSessionIsGone", func(t *testing.T) {
		key, _ := srv.Key(t, customer.ID, auth.ScopeRead)
		keys = append(keys, key)
		id := openSession(t, c, srv.base, key) // answered inside the session: it was live
		// Every request in the session starts its idle time again, so the
		// polls are further apart than the timeout.
		eventually(t, "the idle session is refused", 2*idle, func() bool {
			r := do(t, c, srv.base, request{key: key, body: listToolsBody, header: inSession(id)})
			switch r.status {
			case http.StatusOK:
				return false
			case http.StatusNotFound:
				if strings.Contains(r.body, `"result"`) {
					t.Fatalf("expired session answered: %s", r.body)
				}
				return true
			}
			t.Fatalf("idle session: %d, want 404 once expired: %s", r.status, r.body)
			return false
		})
	})

	t.Run("ExpiredSessionsFreeTheCap", func(t *testing.T) {
		// The cap itself is attacked in TestStatefulSessions; here the
		// point is that sessions nobody uses stop counting, without anyone
		// deleting them. The polls open no session until one is allowed.
		key, _ := srv.Key(t, customer.ID, auth.ScopeRead)
		keys = append(keys, key)
		openSession(t, c, srv.base, key)
		openSession(t, c, srv.base, key)
		eventually(t, "a third session opens once the first two are idle", idle/4, func() bool {
			r := initialize(t, c, srv.base, key)
			switch r.status {
			case http.StatusOK:
				return r.header.Get("Mcp-Session-Id") != ""
			case http.StatusTooManyRequests:
				return false
			}
			t.Fatalf("initialize: %d %s", r.status, r.body)
			return false
		})
	})
	noSecrets(t, []*testenv.Env{srv.Env}, keys)
}
