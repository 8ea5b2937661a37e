package httpserver_test

// Attacks on the rate limits the HTTP layer applies: floods from one
// address, X-Forwarded-For games, one key's tool-call budget and
// concurrency cap, and the readiness probe.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/demo"
	"github.com/example/order-mcp/internal/httpserver"
	"github.com/example/order-mcp/internal/limits"
	"github.com/example/order-mcp/internal/store"
	"github.com/example/order-mcp/internal/testenv"
	"github.com/example/order-mcp/internal/tools"
)

// Rate-limit refusals name the limit they hit.
const (
	addressLimit     = "requests from this address"
	principalLimit   = "tool calls for this credential"
	concurrencyLimit = "tool calls in flight for this credential"
)

// TestAddressFloodIsThrottled floods the MCP endpoint from one address,
// past RATE_LIMIT_PER_IP, with a valid key and without any credential.
func TestAddressFloodIsThrottled(t *testing.T) {
	t.Parallel()
	ip := addresses()
	const limit = 5
	srv := start(t, testenv.Options{Limits: limitsWith(func(l *limits.Config) { l.PerIP = perMinute(limit) })})
	customers := demo.Customers()
	key, _ := srv.Key(t, customers[0].ID, auth.ScopeRead)
	otherKey, _ := srv.Key(t, customers[1].ID, auth.ScopeRead)
	order := ordersOf(t, dsn, customers[0].ID)[0]
	otherOrder := ordersOf(t, dsn, customers[1].ID)[0]

	tests := []struct {
		name     string
		attacker string
		key      string
		wantOK   int // status of the requests within the limit
	}{
		{"ValidKeyFloodIsThrottledAfterTheLimit", ip(1), key, http.StatusOK},
		{"AnonymousFloodIsThrottledAfterTheLimit", ip(2), "", http.StatusUnauthorized},
	}
	var answers []string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := clientFrom(t, tt.attacker)
			for i := 1; i <= limit; i++ {
				r := do(t, c, srv.base, request{key: tt.key, body: getBody(order)})
				if r.status != tt.wantOK {
					t.Fatalf("request %d within the limit: status %d, want %d: %s", i, r.status, tt.wantOK, r.body)
				}
				if tt.key != "" {
					continue // the quota headers of tool calls have a test of their own, below
				}
				if got, want := r.header.Get("X-RateLimit-Remaining"), strconv.Itoa(limit-i); got != want {
					t.Fatalf("request %d: X-RateLimit-Remaining %q, want %q", i, got, want)
				}
			}
			for range 2 {
				sent := time.Now()
				r := do(t, c, srv.base, request{key: tt.key, body: getBody(order)})
				answered := time.Now()
				answers = append(answers, r.String())
				if ra := limited(t, r, addressLimit); ra > 60 {
					t.Fatalf("Retry-After %d exceeds the window", ra)
				}
				if r.header.Get("X-RateLimit-Limit") != strconv.Itoa(limit) || r.header.Get("X-RateLimit-Remaining") != "0" {
					t.Fatalf("429 quota headers: limit %q remaining %q", r.header.Get("X-RateLimit-Limit"), r.header.Get("X-RateLimit-Remaining"))
				}
				// The window was still open when the request was refused,
				// and it began no earlier than the refusal minus a minute.
				reset, err := strconv.ParseInt(r.header.Get("X-RateLimit-Reset"), 10, 64)
				if err != nil || reset < sent.Unix() || reset > answered.Unix()+61 {
					t.Fatalf("X-RateLimit-Reset %q is not the end of the current window", r.header.Get("X-RateLimit-Reset"))
				}
				if strings.Contains(r.body, "order_id") {
					t.Fatalf("a throttled request got data: %s", r.body)
				}
			}
		})
	}

	// A client pacing itself by the X-RateLimit-* headers must see the
	// limit it is about to hit: the per-address one here, not the far
	// larger per-key budget of tool calls.
	t.Run("QuotaHeadersOfAServedToolCallDescribeTheTighterLimit", func(t *testing.T) {
		r := do(t, clientFrom(t, ip(3)), srv.base, request{key: key, body: getBody(order)})
		served(t, r, order)
		if l, rem := r.header.Get("X-RateLimit-Limit"), r.header.Get("X-RateLimit-Remaining"); l != strconv.Itoa(limit) || rem != strconv.Itoa(limit-1) {
			t.Fatalf("X-RateLimit-Limit %q, X-RateLimit-Remaining %q; want %d and %d (the per-address limit, the tighter one)", l, rem, limit, limit-1)
		}
	})

	t.Run("AnotherAddressIsStillServed", func(t *testing.T) {
		c := clientFrom(t, ip(9))
		served(t, do(t, c, srv.base, request{key: otherKey, body: getBody(otherOrder)}), otherOrder)
		// The flooding key itself is not what is limited: the address is.
		served(t, do(t, c, srv.base, request{key: key, body: getBody(order)}), order)
	})

	flushAudit(t, srv.Env)
	for _, tt := range tests {
		if got := refusals(t, dsn, tt.attacker)["address_rate_limited"]; got != 2 {
			t.Errorf("%s: %d address_rate_limited refusals on record, want 2", tt.attacker, got)
		}
	}
	noSecrets(t, []*testenv.Env{srv.Env}, []string{key, otherKey}, answers...)
}

// TestForwardedForCannotChooseTheClientAddress tries to escape the
// per-address limit with X-Forwarded-For: rotating it from an untrusted
// peer, and prepending fake entries in front of a trusted proxy.
func TestForwardedForCannotChooseTheClientAddress(t *testing.T) {
	t.Parallel()
	ip := addresses()
	const limit = 3
	proxy := ip(10)
	srv := start(t, testenv.Options{
		Limits: limitsWith(func(l *limits.Config) { l.PerIP = perMinute(limit) }),
		HTTP:   httpserver.Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix(proxy + "/32")}},
	})
	customer := demo.Customers()[0]
	key, _ := srv.Key(t, customer.ID, auth.ScopeRead)
	order := ordersOf(t, dsn, customer.ID)[0]
	xff := func(values ...string) http.Header { return http.Header{"X-Forwarded-For": values} }

	tests := []struct {
		name       string
		peer       string
		xff        func(i int) http.Header
		wantSource string // the address the limit and the audit trail must use
		fakePrefix string // addresses the client chose, which must never be used
		thenServed []string
	}{
		{
			name:       "RotatingHeaderFromUntrustedPeerIsIgnored",
			peer:       ip(1),
			xff:        func(i int) http.Header { return xff(fmt.Sprintf("198.51.100.%d", i)) },
			wantSource: ip(1),
			fakePrefix: "198.51.100.",
		},
		{
			name:       "TrustedProxyForwardsTheClientAddress",
			peer:       proxy,
			xff:        func(int) http.Header { return xff(ip(107)) },
			wantSource: ip(107),
			// Another client behind the same proxy has a budget of its own.
			thenServed: []string{ip(108)},
		},
		{
			name:       "PrependedFakeEntriesDoNotChooseTheAddress",
			peer:       proxy,
			xff:        func(i int) http.Header { return xff(fmt.Sprintf("192.0.2.%d, %s", i, ip(109))) },
			wantSource: ip(109),
			fakePrefix: "192.0.2.",
		},
		{
			name:       "FakeEntriesInASeparateHeaderDoNotChooseTheAddress",
			peer:       proxy,
			xff:        func(i int) http.Header { return xff(fmt.Sprintf("192.0.2.%d", 100+i), ip(110)) },
			wantSource: ip(110),
			fakePrefix: "192.0.2.",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := clientFrom(t, tt.peer)
			for i := 1; i <= limit; i++ {
				served(t, do(t, c, srv.base, request{key: key, body: getBody(order), add: tt.xff(i)}), order)
			}
			limited(t, do(t, c, srv.base, request{key: key, body: getBody(order), add: tt.xff(limit + 1)}), addressLimit)
			for _, addr := range tt.thenServed {
				served(t, do(t, c, srv.base, request{key: key, body: getBody(order), add: xff(addr)}), order)
			}
		})
	}

	t.Run("AnotherAddressIsStillServed", func(t *testing.T) {
		served(t, do(t, clientFrom(t, ip(20)), srv.base, request{key: key, body: getBody(order)}), order)
	})

	flushAudit(t, srv.Env)
	for _, tt := range tests {
		if got := refusals(t, dsn, tt.wantSource)["address_rate_limited"]; got != 1 {
			t.Errorf("%s: %d address_rate_limited refusals on record for %s, want 1", tt.name, got, tt.wantSource)
		}
		if tt.fakePrefix == "" {
			continue
		}
		if sources := ownerQuery(t, dsn, `SELECT DISTINCT source FROM audit_log WHERE kind = 'refusal' AND source LIKE $1`, tt.fakePrefix+"%"); len(sources) > 0 {
			t.Errorf("%s: a client-chosen address was used as the source: %v", tt.name, sources)
		}
	}
	noSecrets(t, []*testenv.Env{srv.Env}, []string{key})
}

// blockingStore wraps the real store; GetOrder of one order blocks until
// released, so that a test can hold a tool call in flight.
type blockingStore struct {
	tools.Store
	blockID string
	entered chan struct{}
	release chan struct{}
}

func (s *blockingStore) GetOrder(ctx context.Context, a store.Access, orderID string) (*store.Order, error) {
	if orderID == s.blockID {
		s.entered <- struct{}{}
		select {
		case <-s.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return s.Store.GetOrder(ctx, a, orderID)
}

// TestPrincipalLimitsThrottleToolCalls exhausts one key's tool-call budget
// (RATE_LIMIT_PER_PRINCIPAL) and its concurrency cap
// (CONCURRENCY_PER_PRINCIPAL=1).
func TestPrincipalLimitsThrottleToolCalls(t *testing.T) {
	t.Parallel()
	ip := addresses()
	const limit = 3
	customers := demo.Customers()
	blockID := ordersOf(t, dsn, customers[2].ID)[0]
	gate := &blockingStore{blockID: blockID, entered: make(chan struct{}, 1), release: make(chan struct{})}
	srv := start(t, testenv.Options{
		Limits: limitsWith(func(l *limits.Config) {
			l.PerPrincipal = perMinute(limit)
			l.Concurrency = 1
		}),
		WrapStore: func(s tools.Store) tools.Store { gate.Store = s; return gate },
	})
	var released bool
	t.Cleanup(func() {
		if !released {
			close(gate.release)
		}
	})
	keyA, idA := srv.Key(t, customers[0].ID, auth.ScopeRead)
	keyB, _ := srv.Key(t, customers[1].ID, auth.ScopeRead)
	keyC, idC := srv.Key(t, customers[2].ID, auth.ScopeRead)
	keyD, _ := srv.Key(t, customers[3].ID, auth.ScopeRead)
	orderA := ordersOf(t, dsn, customers[0].ID)[0]
	orderB := ordersOf(t, dsn, customers[1].ID)[0]
	otherC := ordersOf(t, dsn, customers[2].ID)[1]
	orderD := ordersOf(t, dsn, customers[3].ID)[0]
	attacker, elsewhere := ip(1), ip(2)
	c := clientFrom(t, attacker)
	var answers []string

	t.Run("ToolsListIsNotCountedAsAToolCall", func(t *testing.T) {
		for range limit + 2 {
			if m := ok(t, do(t, c, srv.base, request{key: keyA, body: listToolsBody})); len(m.Result.Tools) == 0 {
				t.Fatal("tools/list listed nothing")
			}
		}
	})

	t.Run("ToolCallsOverTheBudgetGet429", func(t *testing.T) {
		for i := 1; i <= limit; i++ {
			served(t, do(t, c, srv.base, request{key: keyA, body: getBody(orderA)}), orderA)
		}
		r := do(t, c, srv.base, request{key: keyA, body: getBody(orderA)})
		answers = append(answers, r.String())
		limited(t, r, principalLimit)
		if r.header.Get("X-RateLimit-Limit") != strconv.Itoa(limit) || r.header.Get("X-RateLimit-Remaining") != "0" {
			t.Fatalf("quota headers: limit %q remaining %q", r.header.Get("X-RateLimit-Limit"), r.header.Get("X-RateLimit-Remaining"))
		}
	})

	t.Run("TheBudgetFollowsTheKeyToAnotherAddress", func(t *testing.T) {
		limited(t, do(t, clientFrom(t, elsewhere), srv.base, request{key: keyA, body: getBody(orderA)}), principalLimit)
	})

	t.Run("AnotherKeyIsServed", func(t *testing.T) {
		served(t, do(t, c, srv.base, request{key: keyB, body: getBody(orderB)}), orderB)
	})

	t.Run("SecondConcurrentCallOfTheSameKeyGets429", func(t *testing.T) {
		first := make(chan response, 1)
		go func() {
			// Not do: a helper that fails the test must not run off the
			// test's goroutine. A transport failure is a status 0 answer.
			req, _ := http.NewRequest(http.MethodPost, srv.base+"/mcp", strings.NewReader(getBody(blockID)))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set("MCP-Protocol-Version", protocol)
			req.Header.Set("Authorization", "Bearer "+keyC)
			resp, err := c.Do(req)
			if err != nil {
				first <- response{body: err.Error()}
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			first <- response{status: resp.StatusCode, header: resp.Header, body: string(b)}
		}()
		select {
		case <-gate.entered:
		case <-time.After(30 * time.Second):
			t.Fatal("the first call never reached the store")
		}
		r := do(t, c, srv.base, request{key: keyC, body: getBody(otherC)})
		answers = append(answers, r.String())
		limited(t, r, concurrencyLimit)
		served(t, do(t, clientFrom(t, elsewhere), srv.base, request{key: keyD, body: getBody(orderD)}), orderD)

		released = true
		close(gate.release)
		select {
		case r := <-first:
			served(t, r, blockID)
		case <-time.After(30 * time.Second):
			t.Fatal("the first call never finished")
		}
		served(t, do(t, c, srv.base, request{key: keyC, body: getBody(otherC)}), otherC) // the slot was given back
	})

	flushAudit(t, srv.Env)
	if got := refusals(t, dsn, attacker)["principal_rate_limited"]; got != 2 {
		t.Errorf("%d principal_rate_limited refusals on record from %s, want 2 (budget, concurrency)", got, attacker)
	}
	if got := refusals(t, dsn, elsewhere)["principal_rate_limited"]; got != 1 {
		t.Errorf("%d principal_rate_limited refusals on record from %s, want 1", got, elsewhere)
	}
	// The throttled calls never reached the MCP layer, and the calls that
	// did were charged once, not twice.
	if got := toolCalls(t, dsn, idA); got["get_order_status/ok"] != limit || len(got) != 1 {
		t.Errorf("tool calls of key A: %v, want exactly %d ok", got, limit)
	}
	if got := toolCalls(t, dsn, idC); got["get_order_status/ok"] != 2 || len(got) != 1 {
		t.Errorf("tool calls of key C: %v, want exactly 2 ok", got)
	}
	noSecrets(t, []*testenv.Env{srv.Env}, []string{keyA, keyB, keyC, keyD}, answers...)
}

// TestScopeRefusalsCountAgainstThePrincipalLimit: a caller hammering a tool
// it may not use is throttled (429) once its budget is spent, rather than
// getting an endless stream of 403s; and the throttling is on record by
// principal, not only by address.
func TestScopeRefusalsCountAgainstThePrincipalLimit(t *testing.T) {
	t.Parallel()
	srv := start(t, testenv.Options{Lockout: &noLockout,
		Limits: limitsWith(func(l *limits.Config) { l.PerPrincipal = perMinute(2) })})
	key, keyID := srv.Key(t, demo.Customers()[0].ID, auth.ScopeRead)
	c := clientFrom(t, addresses()(1))
	body := callBody("cancel_order", map[string]any{"order_id": "ord_0000000000000000"})
	for i := range 2 {
		if r := do(t, c, srv.base, request{key: key, body: body}); r.status != http.StatusForbidden {
			t.Fatalf("call %d: status %d, want 403", i+1, r.status)
		}
	}
	limited(t, do(t, c, srv.base, request{key: key, body: body}), principalLimit)

	flushAudit(t, srv.Env)
	if rows := ownerQuery(t, dsn, `SELECT reason FROM audit_log WHERE kind = 'refusal' AND principal = $1`, "apikey:"+keyID); len(rows) != 1 || rows[0] != "principal_rate_limited" {
		t.Fatalf("refusal records for the principal: %v", rows)
	}
}

// TestReadinessIsRateLimited: /readyz touches the database for callers
// nobody authenticated, so it counts against the per-address limit.
func TestReadinessIsRateLimited(t *testing.T) {
	t.Parallel()
	srv := start(t, testenv.Options{Limits: limitsWith(func(l *limits.Config) { l.PerIP = perMinute(3) })})
	c := clientFrom(t, addresses()(1))
	for i := range 3 {
		if r := do(t, c, srv.base, request{method: http.MethodGet, path: "/readyz"}); r.status != http.StatusOK {
			t.Fatalf("probe %d: %d %s", i+1, r.status, r.body)
		}
	}
	limited(t, do(t, c, srv.base, request{method: http.MethodGet, path: "/readyz"}), addressLimit)
}
