package httpserver_test

// Tests of abuse resistance and HTTP hardening: rate limits, concurrency
// caps, cancellation budgets and quotas, brute-force lockouts, malformed
// payloads, enumeration, Origin and Host checks, body size, slow headers,
// security headers and the SDK's own error texts.
//
// Every test performs the attack against the real HTTP surface (real
// Postgres, real Redis, real TCP), asserts it is stopped, asserts that
// other callers are still served, asserts the attempt left an audit record,
// and asserts that no secret reached a response or the log.
//
// Each test plays its attackers and bystanders from loopback addresses of
// its own (see hardIPs; Linux routes all of 127/8 to the loopback device), so
// that rate limits and lockouts, whose state is shared through the test
// database, never leak from one test into another.

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ulule/limiter/v3"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/demo"
	"github.com/example/order-mcp/internal/httpserver"
	"github.com/example/order-mcp/internal/limits"
	"github.com/example/order-mcp/internal/logging"
	"github.com/example/order-mcp/internal/redisstore"
	"github.com/example/order-mcp/internal/refusal"
	"github.com/example/order-mcp/internal/store"
	"github.com/example/order-mcp/internal/testenv"
	"github.com/example/order-mcp/internal/tools"
)

// hardProtocol is the protocol version raw requests announce.
const hardProtocol = testenv.Protocol20251125

// hardClient returns an HTTP client whose connections come from the
// loopback address ip, so that one test can play several client addresses.
func hardClient(t testing.TB, ip string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport:     tr,
		Timeout:       20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// hardServe serves h on a loopback port and returns its base URL
// (http://127.0.0.1:port).
func hardServe(t testing.TB, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// hardReq is one raw HTTP request. The zero value is a POST to /mcp with
// the headers an MCP client sends; header entries override them (an empty
// value removes the header).
type hardReq struct {
	method  string
	path    string
	key     string
	body    string
	chunked bool // send the body without Content-Length
	host    string
	header  map[string]string
	xff     []string // X-Forwarded-For headers, in order
}

// hardResp is one HTTP answer, read in full.
type hardResp struct {
	status int
	header http.Header
	body   string
}

// hardDo sends r to base through c and reads the whole answer.
func hardDo(t testing.TB, c *http.Client, base string, r hardReq) hardResp {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodPost
	}
	if r.path == "" {
		r.path = "/mcp"
	}
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
		if r.chunked {
			body = struct{ io.Reader }{body} // hides the length: chunked encoding
		}
	}
	req, err := http.NewRequest(r.method, base+r.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if r.chunked {
		req.ContentLength = -1
		req.TransferEncoding = []string{"chunked"}
	}
	if r.method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("MCP-Protocol-Version", hardProtocol)
	}
	if r.key != "" {
		req.Header.Set("Authorization", "Bearer "+r.key)
	}
	for k, v := range r.header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	for _, v := range r.xff {
		req.Header.Add("X-Forwarded-For", v)
	}
	if r.host != "" {
		req.Host = r.host
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return hardResp{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// hardRPC is a decoded JSON-RPC answer.
type hardRPC struct {
	Result *struct {
		IsError bool `json:"isError"`
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
		StructuredContent json.RawMessage `json:"structuredContent"`
		Tools             []struct {
			Name string `json:"name"`
		} `json:"tools"`
	} `json:"result"`
	Error *struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	} `json:"error"`
}

func (r hardResp) rpc(t testing.TB) hardRPC {
	t.Helper()
	var msg hardRPC
	if err := json.Unmarshal([]byte(r.body), &msg); err != nil {
		t.Fatalf("answer %d is not a JSON-RPC message: %v\n%s", r.status, err, r.body)
	}
	return msg
}

// text is the first text content of a tool result.
func (m hardRPC) text() string {
	if m.Result == nil || len(m.Result.Content) == 0 {
		return ""
	}
	return m.Result.Content[0].Text
}

// hardCall is the body of a tools/call request.
func hardCall(tool string, args map[string]any) string {
	b, err := json.Marshal(map[string]any{
		"jsonrpc": "2.0", "id": 1, "method": "tools/call",
		"params": map[string]any{"name": tool, "arguments": args},
	})
	if err != nil {
		panic(err)
	}
	return string(b)
}

// hardGet is the body of a get_order_status call.
func hardGet(orderID string) string {
	return hardCall("get_order_status", map[string]any{"order_id": orderID})
}

const hardListTools = `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`

// hardServed asserts that r is a successful tool result carrying orderID,
// i.e. that the caller was served and got data.
func hardServed(t testing.TB, r hardResp, orderID string) {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", r.status, r.body)
	}
	m := r.rpc(t)
	if m.Error != nil || m.Result == nil || m.Result.IsError {
		t.Fatalf("not served: %s", r.body)
	}
	var out struct {
		OrderID string `json:"order_id"`
		Status  string `json:"status"`
	}
	if err := json.Unmarshal(m.Result.StructuredContent, &out); err != nil || out.OrderID != orderID || out.Status == "" {
		t.Fatalf("no order data for %s in %s", orderID, r.body)
	}
}

// hardLimited asserts that r is a 429 refusal with Retry-After and returns
// Retry-After in seconds.
func hardLimited(t testing.TB, r hardResp) int {
	t.Helper()
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429: %s", r.status, r.body)
	}
	ra, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || ra < 1 {
		t.Fatalf("Retry-After %q, want a positive number of seconds", r.header.Get("Retry-After"))
	}
	m := r.rpc(t)
	if m.Error == nil || m.Error.Code != refusal.CodeRateLimited || !strings.HasPrefix(m.Error.Message, "Too many requests") {
		t.Fatalf("429 body is not the fixed rate-limit error: %s", r.body)
	}
	return ra
}

// hardRPCLimited asserts that r is a JSON-RPC rate-limit error (decided
// inside the MCP layer) naming what, and returns its message.
func hardRPCLimited(t testing.TB, r hardResp, what string) string {
	t.Helper()
	m := r.rpc(t)
	if m.Error == nil || m.Error.Code != refusal.CodeRateLimited || !strings.Contains(m.Error.Message, what) {
		t.Fatalf("want a JSON-RPC rate-limit error about %q, got %d %s", what, r.status, r.body)
	}
	var data struct {
		RetryAfter int `json:"retry_after_seconds"`
	}
	if err := json.Unmarshal(m.Error.Data, &data); err != nil || data.RetryAfter < 1 {
		t.Fatalf("rate-limit error without retry_after_seconds: %s", r.body)
	}
	return m.Error.Message
}

// hardOrders returns the ids of a customer's orders, as the database owner
// sees them.
func hardOrders(t testing.TB, env *testenv.Env, customerID string) []string {
	t.Helper()
	ids, err := env.OwnerQueryStrings(t, `SELECT id FROM orders WHERE customer_id = $1 ORDER BY id`, customerID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) == 0 {
		t.Fatalf("customer %s has no orders", customerID)
	}
	return ids
}

// hardStatus returns an order's status as the database owner sees it.
func hardStatus(t testing.TB, env *testenv.Env, orderID string) string {
	t.Helper()
	rows, err := env.OwnerQueryStrings(t, `SELECT status FROM orders WHERE id = $1`, orderID)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 {
		t.Fatalf("order %s: %d rows", orderID, len(rows))
	}
	return rows[0]
}

// hardID returns a fresh id of the shape prefix_ + 16 Crockford base32
// characters (valid, and almost surely unused).
func hardID(prefix string) string {
	const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	var b [16]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = crockford[int(b[i])%len(crockford)]
	}
	return prefix + "_" + string(b[:])
}

// hardCustomer creates a customer of the calling test's own, a copy of a
// demo customer under a fresh id, with n pending orders that no other test
// can cancel.
func hardCustomer(t testing.TB, env *testenv.Env, n int) (customerID string, orders []string) {
	t.Helper()
	from := demo.Customers()[0]
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, env.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config('app.any_customer', 'on', true)`); err != nil {
			return err
		}
		customerID = hardID("cus")
		if _, err := tx.Exec(ctx, `INSERT INTO customers (id, name, email, phone, address_line1, city, postal_code, country_code)
			SELECT $1, name, email, phone, address_line1, city, postal_code, country_code FROM customers WHERE id = $2`,
			customerID, from.ID); err != nil {
			return err
		}
		for i := range n {
			id := hardID("ord")
			if _, err := tx.Exec(ctx, `INSERT INTO orders (id, customer_id, status, placed_at, item_count, total_cents, currency, card_brand, card_last4)
				VALUES ($1, $2, 'pending', now() - make_interval(mins => $3::int), 1, 1999, 'SEK', 'Visa', '4242')`,
				id, customerID, i+1); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO order_events (order_id, customer_id, status, occurred_at, description)
				VALUES ($1, $2, 'pending', now(), 'Order placed.')`, id, customerID); err != nil {
				return err
			}
			orders = append(orders, id)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return customerID, orders
}

// hardFlush drains the audit writers of envs: refusals are aggregated in
// memory and written when the writer closes. The environments serve no
// tool call after this.
func hardFlush(t testing.TB, envs ...*testenv.Env) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, e := range envs {
		if err := e.Audit.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// hardRefusals returns the refusals recorded for source, by reason. Call
// hardFlush first.
func hardRefusals(t testing.TB, env *testenv.Env, source string) map[string]int {
	t.Helper()
	rows, err := env.OwnerQueryStrings(t, `SELECT reason || '=' || sum(count)::text FROM audit_log
		WHERE kind = 'refusal' AND source = $1 GROUP BY reason`, source)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, r := range rows {
		reason, n, _ := strings.Cut(r, "=")
		out[reason], _ = strconv.Atoi(n)
	}
	return out
}

// hardToolCalls returns the tool calls recorded for a key, by "tool/outcome".
func hardToolCalls(t testing.TB, env *testenv.Env, keyID string) map[string]int {
	t.Helper()
	rows, err := env.OwnerQueryStrings(t, `SELECT action || '/' || outcome || '=' || count(*)::text FROM audit_log
		WHERE kind = 'tool_call' AND principal = $1 GROUP BY action, outcome`, "apikey:"+keyID)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, r := range rows {
		k, n, _ := strings.Cut(r, "=")
		out[k], _ = strconv.Atoi(n)
	}
	return out
}

// hardNoSecrets asserts that no secret of the demo data and none of keys
// appears in the answers or in the logs of envs.
func hardNoSecrets(t testing.TB, envs []*testenv.Env, keys []string, answers ...hardResp) {
	t.Helper()
	secrets := envs[0].Secrets(t, keys...)
	var texts []string
	for _, e := range envs {
		texts = append(texts, e.Logs.String())
	}
	for _, a := range answers {
		texts = append(texts, a.body)
		for k, vs := range a.header {
			texts = append(texts, k+": "+strings.Join(vs, ", "))
		}
	}
	for _, s := range secrets {
		if s == "" {
			continue
		}
		for i, text := range texts {
			if strings.Contains(text, s) {
				t.Fatalf("secret %q leaked (text %d of %d)", s, i, len(texts))
			}
		}
	}
}

// hardLimits are generous limits with the given changes.
func hardLimits(change func(*limits.Config)) *limits.Config {
	l := testenv.GenerousLimits()
	change(&l)
	return &l
}

var hardNets atomic.Int64

// hardIPs returns a /24 of the loopback network that no other test of this
// process uses, as a function from host number to address. Lockouts live in
// the package's test database and the audit trail counts refusals per
// address, so every test, and every repetition of it (-count), plays its
// clients from addresses of its own.
func hardIPs() func(host int) string {
	n := hardNets.Add(1)
	o2, o3 := 20+n/250, n%250
	return func(host int) string { return fmt.Sprintf("127.%d.%d.%d", o2, o3, host) }
}

// perMinute is a rate of n per minute.
func perMinute(n int64) limiter.Rate { return limiter.Rate{Period: time.Minute, Limit: n} }

// hardNoLockout keeps the brute-force lockout out of tests that refuse many
// requests on purpose; the lockout has tests of its own.
var hardNoLockout = func() limits.Policy {
	p := limits.DefaultPolicy()
	p.Threshold = 1_000_000
	return p
}()

// hardLogger is a logger for components built before an environment, with
// the project's redaction; its output is kept in logs.
func hardLoggerTo(logs *testenv.Buffer) *slog.Logger { return logging.New(slog.LevelDebug, logs) }

func hardLogger() *slog.Logger { return hardLoggerTo(&testenv.Buffer{}) }

// hardJSON encodes s as a JSON string.
func hardJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// hardOrdersAt returns the ids of a customer's orders before any
// environment exists, straight from the test database.
func hardOrdersAt(t testing.TB, customerID string) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT id FROM orders WHERE customer_id = $1 ORDER BY id`, customerID)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(ids) == 0 {
		t.Fatalf("orders of %s: %v %v", customerID, ids, err)
	}
	return ids
}

// TestAddressFloodIsThrottled floods the MCP endpoint from one address,
// past RATE_LIMIT_PER_IP, with a valid key and without any credential.
func TestAddressFloodIsThrottled(t *testing.T) {
	t.Parallel()
	ip := hardIPs()
	const limit = 5
	env := testenv.New(t, dsn, testenv.Options{Limits: hardLimits(func(l *limits.Config) { l.PerIP = perMinute(limit) })})
	base := hardServe(t, env.Handler())
	customers := demo.Customers()
	key, _ := env.Key(t, customers[0].ID, auth.ScopeRead)
	otherKey, _ := env.Key(t, customers[1].ID, auth.ScopeRead)
	order := hardOrders(t, env, customers[0].ID)[0]
	otherOrder := hardOrders(t, env, customers[1].ID)[0]

	tests := []struct {
		name     string
		attacker string
		key      string
		wantOK   int // status of the requests within the limit
	}{
		{"ValidKeyFloodIsThrottledAfterTheLimit", ip(1), key, http.StatusOK},
		{"AnonymousFloodIsThrottledAfterTheLimit", ip(2), "", http.StatusUnauthorized},
	}
	var answers []hardResp
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := hardClient(t, tt.attacker)
			for i := 1; i <= limit; i++ {
				r := hardDo(t, c, base, hardReq{key: tt.key, body: hardGet(order)})
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
				r := hardDo(t, c, base, hardReq{key: tt.key, body: hardGet(order)})
				answers = append(answers, r)
				ra := hardLimited(t, r)
				if ra > 60 {
					t.Fatalf("Retry-After %d exceeds the window", ra)
				}
				if r.header.Get("X-RateLimit-Limit") != strconv.Itoa(limit) || r.header.Get("X-RateLimit-Remaining") != "0" {
					t.Fatalf("429 quota headers: limit %q remaining %q", r.header.Get("X-RateLimit-Limit"), r.header.Get("X-RateLimit-Remaining"))
				}
				reset, err := strconv.ParseInt(r.header.Get("X-RateLimit-Reset"), 10, 64)
				if now := time.Now().Unix(); err != nil || reset < now-1 || reset > now+61 {
					t.Fatalf("X-RateLimit-Reset %q is not a time within the window", r.header.Get("X-RateLimit-Reset"))
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
		r := hardDo(t, hardClient(t, ip(3)), base, hardReq{key: key, body: hardGet(order)})
		hardServed(t, r, order)
		if l, rem := r.header.Get("X-RateLimit-Limit"), r.header.Get("X-RateLimit-Remaining"); l != strconv.Itoa(limit) || rem != strconv.Itoa(limit-1) {
			t.Fatalf("X-RateLimit-Limit %q, X-RateLimit-Remaining %q; want %d and %d (the per-address limit, the tighter one)", l, rem, limit, limit-1)
		}
	})

	t.Run("AnotherAddressIsStillServed", func(t *testing.T) {
		c := hardClient(t, ip(9))
		hardServed(t, hardDo(t, c, base, hardReq{key: otherKey, body: hardGet(otherOrder)}), otherOrder)
		// The flooding key itself is not what is limited: the address is.
		hardServed(t, hardDo(t, c, base, hardReq{key: key, body: hardGet(order)}), order)
	})

	hardFlush(t, env)
	for _, tt := range tests {
		if got := hardRefusals(t, env, tt.attacker)["address_rate_limited"]; got != 2 {
			t.Errorf("%s: %d address_rate_limited refusals audited, want 2", tt.attacker, got)
		}
	}
	hardNoSecrets(t, []*testenv.Env{env}, []string{key, otherKey}, answers...)
}

// TestForwardedForCannotChooseTheClientAddress tries to escape the
// per-address limit with X-Forwarded-For: rotating it from an untrusted
// peer, and prepending fake entries in front of a trusted proxy.
func TestForwardedForCannotChooseTheClientAddress(t *testing.T) {
	t.Parallel()
	ip := hardIPs()
	const limit = 3
	proxy := ip(10)
	env := testenv.New(t, dsn, testenv.Options{
		Limits: hardLimits(func(l *limits.Config) { l.PerIP = perMinute(limit) }),
		HTTP:   httpserver.Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix(proxy + "/32")}},
	})
	base := hardServe(t, env.Handler())
	customer := demo.Customers()[0]
	key, _ := env.Key(t, customer.ID, auth.ScopeRead)
	order := hardOrders(t, env, customer.ID)[0]

	tests := []struct {
		name       string
		peer       string
		xff        func(i int) []string
		wantSource string // the address the limit and the audit trail must use
		fakePrefix string // addresses the client chose, which must never be used
		thenServed []string
	}{
		{
			name:       "RotatingHeaderFromUntrustedPeerIsIgnored",
			peer:       ip(1),
			xff:        func(i int) []string { return []string{fmt.Sprintf("198.51.100.%d", i)} },
			wantSource: ip(1),
			fakePrefix: "198.51.100.",
		},
		{
			name:       "TrustedProxyForwardsTheClientAddress",
			peer:       proxy,
			xff:        func(int) []string { return []string{ip(107)} },
			wantSource: ip(107),
			// Another client behind the same proxy has a budget of its own.
			thenServed: []string{ip(108)},
		},
		{
			name:       "PrependedFakeEntriesDoNotChooseTheAddress",
			peer:       proxy,
			xff:        func(i int) []string { return []string{fmt.Sprintf("192.0.2.%d, %s", i, ip(109))} },
			wantSource: ip(109),
			fakePrefix: "192.0.2.",
		},
		{
			name: "FakeEntriesInASeparateHeaderDoNotChooseTheAddress",
			peer: proxy,
			xff: func(i int) []string {
				return []string{fmt.Sprintf("192.0.2.%d", 100+i), ip(110)}
			},
			wantSource: ip(110),
			fakePrefix: "192.0.2.",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := hardClient(t, tt.peer)
			for i := 1; i <= limit; i++ {
				hardServed(t, hardDo(t, c, base, hardReq{key: key, body: hardGet(order), xff: tt.xff(i)}), order)
			}
			r := hardDo(t, c, base, hardReq{key: key, body: hardGet(order), xff: tt.xff(limit + 1)})
			hardLimited(t, r)
			for _, addr := range tt.thenServed {
				hardServed(t, hardDo(t, c, base, hardReq{key: key, body: hardGet(order), xff: []string{addr}}), order)
			}
		})
	}

	t.Run("AnotherAddressIsStillServed", func(t *testing.T) {
		hardServed(t, hardDo(t, hardClient(t, ip(20)), base, hardReq{key: key, body: hardGet(order)}), order)
	})

	hardFlush(t, env)
	for _, tt := range tests {
		if got := hardRefusals(t, env, tt.wantSource)["address_rate_limited"]; got != 1 {
			t.Errorf("%s: %d address_rate_limited refusals audited for %s, want 1", tt.name, got, tt.wantSource)
		}
		if tt.fakePrefix == "" {
			continue
		}
		sources, err := env.OwnerQueryStrings(t, `SELECT DISTINCT source FROM audit_log WHERE kind = 'refusal' AND source LIKE $1`, tt.fakePrefix+"%")
		if err != nil {
			t.Fatal(err)
		}
		if len(sources) > 0 {
			t.Errorf("%s: a client-chosen address was used as the source: %v", tt.name, sources)
		}
	}
	hardNoSecrets(t, []*testenv.Env{env}, []string{key})
}

// hardGateStore wraps the real store; GetOrder of one order blocks until
// released, so that a test can hold a tool call in flight.
type hardGateStore struct {
	tools.Store
	blockID string
	entered chan struct{}
	release chan struct{}
}

func (s *hardGateStore) GetOrder(ctx context.Context, a store.Access, orderID string) (*store.Order, error) {
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
	ip := hardIPs()
	const limit = 3
	customers := demo.Customers()
	blockID := hardOrdersAt(t, customers[2].ID)[0]
	gate := &hardGateStore{blockID: blockID, entered: make(chan struct{}, 1), release: make(chan struct{})}
	env := testenv.New(t, dsn, testenv.Options{
		Limits: hardLimits(func(l *limits.Config) {
			l.PerPrincipal = perMinute(limit)
			l.Concurrency = 1
		}),
		WrapStore: func(s tools.Store) tools.Store { gate.Store = s; return gate },
	})
	base := hardServe(t, env.Handler())
	var released bool
	t.Cleanup(func() {
		if !released {
			close(gate.release)
		}
	})
	keyA, idA := env.Key(t, customers[0].ID, auth.ScopeRead)
	keyB, _ := env.Key(t, customers[1].ID, auth.ScopeRead)
	keyC, idC := env.Key(t, customers[2].ID, auth.ScopeRead)
	keyD, _ := env.Key(t, customers[3].ID, auth.ScopeRead)
	orderA := hardOrders(t, env, customers[0].ID)[0]
	orderB := hardOrders(t, env, customers[1].ID)[0]
	otherC := hardOrders(t, env, customers[2].ID)[1]
	orderD := hardOrders(t, env, customers[3].ID)[0]
	attacker, elsewhere := ip(1), ip(2)
	c := hardClient(t, attacker)
	var answers []hardResp

	t.Run("ToolsListIsNotCountedAsAToolCall", func(t *testing.T) {
		for range limit + 2 {
			r := hardDo(t, c, base, hardReq{key: keyA, body: hardListTools})
			if m := r.rpc(t); r.status != http.StatusOK || m.Result == nil || len(m.Result.Tools) == 0 {
				t.Fatalf("tools/list: %d %s", r.status, r.body)
			}
		}
	})

	t.Run("ToolCallsOverTheBudgetGet429", func(t *testing.T) {
		for i := 1; i <= limit; i++ {
			hardServed(t, hardDo(t, c, base, hardReq{key: keyA, body: hardGet(orderA)}), orderA)
		}
		r := hardDo(t, c, base, hardReq{key: keyA, body: hardGet(orderA)})
		answers = append(answers, r)
		hardLimited(t, r)
		if r.header.Get("X-RateLimit-Limit") != strconv.Itoa(limit) || r.header.Get("X-RateLimit-Remaining") != "0" {
			t.Fatalf("quota headers: limit %q remaining %q", r.header.Get("X-RateLimit-Limit"), r.header.Get("X-RateLimit-Remaining"))
		}
	})

	t.Run("TheBudgetFollowsTheKeyToAnotherAddress", func(t *testing.T) {
		hardLimited(t, hardDo(t, hardClient(t, elsewhere), base, hardReq{key: keyA, body: hardGet(orderA)}))
	})

	t.Run("AnotherKeyIsServed", func(t *testing.T) {
		hardServed(t, hardDo(t, c, base, hardReq{key: keyB, body: hardGet(orderB)}), orderB)
	})

	t.Run("SecondConcurrentCallOfTheSameKeyGets429", func(t *testing.T) {
		first := make(chan hardResp, 1)
		go func() {
			// hardDo may not call t.Fatal off the test goroutine: report
			// a transport failure as a status 0 answer instead.
			req, _ := http.NewRequest(http.MethodPost, base+"/mcp", strings.NewReader(hardGet(blockID)))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set("MCP-Protocol-Version", hardProtocol)
			req.Header.Set("Authorization", "Bearer "+keyC)
			resp, err := c.Do(req)
			if err != nil {
				first <- hardResp{body: err.Error()}
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			first <- hardResp{status: resp.StatusCode, header: resp.Header, body: string(b)}
		}()
		select {
		case <-gate.entered:
		case <-time.After(10 * time.Second):
			t.Fatal("the first call never reached the store")
		}
		r := hardDo(t, c, base, hardReq{key: keyC, body: hardGet(otherC)})
		answers = append(answers, r)
		hardLimited(t, r)
		if !strings.Contains(r.body, "in flight") {
			t.Fatalf("refusal does not say it is about calls in flight: %s", r.body)
		}
		hardServed(t, hardDo(t, hardClient(t, elsewhere), base, hardReq{key: keyD, body: hardGet(orderD)}), orderD)

		released = true
		close(gate.release)
		select {
		case r := <-first:
			hardServed(t, r, blockID)
		case <-time.After(10 * time.Second):
			t.Fatal("the first call never finished")
		}
		hardServed(t, hardDo(t, c, base, hardReq{key: keyC, body: hardGet(otherC)}), otherC) // the slot was given back
	})

	hardFlush(t, env)
	if got := hardRefusals(t, env, attacker)["principal_rate_limited"]; got != 2 {
		t.Errorf("%d principal_rate_limited refusals audited from %s, want 2 (budget, concurrency)", got, attacker)
	}
	if got := hardRefusals(t, env, elsewhere)["principal_rate_limited"]; got != 1 {
		t.Errorf("%d principal_rate_limited refusals audited from %s, want 1", got, elsewhere)
	}
	// The throttled calls never reached the MCP layer, and the calls that
	// did were charged once, not twice.
	if got := hardToolCalls(t, env, idA); got["get_order_status/ok"] != limit || len(got) != 1 {
		t.Errorf("tool calls of key A: %v, want exactly %d ok", got, limit)
	}
	if got := hardToolCalls(t, env, idC); got["get_order_status/ok"] != 2 || len(got) != 1 {
		t.Errorf("tool calls of key C: %v, want exactly 2 ok", got)
	}
	hardNoSecrets(t, []*testenv.Env{env}, []string{keyA, keyB, keyC, keyD}, answers...)
}

// TestCancellationBudgetsHold spends cancel_order's own budget
// (RATE_LIMIT_CANCEL) and the per-customer daily quota, which holds
// whichever key asks.
func TestCancellationBudgetsHold(t *testing.T) {
	t.Parallel()
	ip := hardIPs()
	attacker := ip(1)

	t.Run("PerKeyBudget", func(t *testing.T) {
		env := testenv.New(t, dsn, testenv.Options{
			Limits: hardLimits(func(l *limits.Config) { l.CancelPerPrincipal = perMinute(1) }),
		})
		base := hardServe(t, env.Handler())
		c := hardClient(t, attacker)
		cust, orders := hardCustomer(t, env, 3)
		other, otherOrders := hardCustomer(t, env, 1)
		key, keyID := env.Key(t, cust, auth.ScopeRead, auth.ScopeCancel)
		otherKey, _ := env.Key(t, other, auth.ScopeRead, auth.ScopeCancel)

		r := hardDo(t, c, base, hardReq{key: key, body: hardCall("cancel_order", map[string]any{"order_id": orders[0]})})
		hardServed(t, r, orders[0])
		if got := hardStatus(t, env, orders[0]); got != "cancelled" {
			t.Fatalf("first cancellation: order is %s", got)
		}

		refused := hardDo(t, c, base, hardReq{key: key, body: hardCall("cancel_order", map[string]any{"order_id": orders[1]})})
		hardRPCLimited(t, refused, "order cancellations")
		if got := hardStatus(t, env, orders[1]); got != "pending" {
			t.Fatalf("refused cancellation changed the order: %s", got)
		}

		// Reads by the same key still work, and another key can cancel.
		hardServed(t, hardDo(t, c, base, hardReq{key: key, body: hardGet(orders[1])}), orders[1])
		hardServed(t, hardDo(t, c, base, hardReq{key: otherKey, body: hardCall("cancel_order", map[string]any{"order_id": otherOrders[0]})}), otherOrders[0])

		hardFlush(t, env)
		got := hardToolCalls(t, env, keyID)
		if got["cancel_order/cancelled"] != 1 || got["cancel_order/rate_limited"] != 1 {
			t.Errorf("tool calls audited: %v, want one cancelled and one rate_limited", got)
		}
		hardNoSecrets(t, []*testenv.Env{env}, []string{key, otherKey}, refused)
	})

	t.Run("PerCustomerDailyQuota", func(t *testing.T) {
		env := testenv.New(t, dsn, testenv.Options{CancelDailyQuota: 1})
		base := hardServe(t, env.Handler())
		c := hardClient(t, attacker)
		cust, orders := hardCustomer(t, env, 3)
		other, otherOrders := hardCustomer(t, env, 1)
		first, _ := env.Key(t, cust, auth.ScopeRead, auth.ScopeCancel)
		second, secondID := env.Key(t, cust, auth.ScopeRead, auth.ScopeCancel)
		staff, staffID := env.Key(t, "", auth.ScopeRead, auth.ScopeReadAny, auth.ScopeCancel)
		otherKey, _ := env.Key(t, other, auth.ScopeRead, auth.ScopeCancel)

		hardServed(t, hardDo(t, c, base, hardReq{key: first, body: hardCall("cancel_order", map[string]any{"order_id": orders[0]})}), orders[0])

		tests := []struct {
			name, key, order string
		}{
			{"SameKeyIsRefused", first, orders[1]},
			{"AnotherKeyOfTheSameCustomerIsRefused", second, orders[1]},
			{"StaffKeyIsRefused", staff, orders[2]},
		}
		var answers []hardResp
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := hardDo(t, c, base, hardReq{key: tt.key, body: hardCall("cancel_order", map[string]any{"order_id": tt.order})})
				answers = append(answers, r)
				m := r.rpc(t)
				if r.status != http.StatusOK || m.Result == nil || !m.Result.IsError || !strings.Contains(m.text(), "daily cancellation limit") {
					t.Fatalf("want the daily-quota tool error, got %d %s", r.status, r.body)
				}
				if got := hardStatus(t, env, tt.order); got != "pending" {
					t.Fatalf("refused cancellation changed the order: %s", got)
				}
			})
		}

		t.Run("AnotherCustomerIsUnaffected", func(t *testing.T) {
			hardServed(t, hardDo(t, c, base, hardReq{key: otherKey, body: hardCall("cancel_order", map[string]any{"order_id": otherOrders[0]})}), otherOrders[0])
		})

		hardFlush(t, env)
		for _, id := range []string{secondID, staffID} {
			if got := hardToolCalls(t, env, id); got["cancel_order/quota_exceeded"] != 1 {
				t.Errorf("key %s: tool calls audited %v, want one quota_exceeded", id, got)
			}
		}
		hardNoSecrets(t, []*testenv.Env{env}, []string{first, second, staff, otherKey}, answers...)
	})
}

// hardLockoutPolicy locks a key id after 3 failures and an address after
// 6, first for 5 seconds, then 10, 20...
var hardLockoutPolicy = limits.Policy{
	Threshold: 3, AddressThreshold: 6, Window: time.Minute,
	Base: 5 * time.Second, Max: time.Minute, Decay: time.Hour,
}

// hardWrongSecret returns a credential naming keyID with a wrong secret of
// the right shape.
func hardWrongSecret(keyID string) string {
	return auth.KeyPrefix + "_" + keyID + "_" + strings.Repeat("a", 52)
}

// TestBruteForceIsLockedOut guesses secrets for one key id from one
// address, then checks who is locked out and who is not, that the lock
// holds across replicas and restarts, and that it expires and grows. It
// runs once with lockouts in Postgres (the default) and once in Redis.
func TestBruteForceIsLockedOut(t *testing.T) {
	t.Parallel()
	backends := []struct {
		name   string
		shared func(t *testing.T, prefix string) *redisstore.Counters
	}{
		{"Postgres", func(*testing.T, string) *redisstore.Counters { return nil }},
		{"Redis", func(t *testing.T, prefix string) *redisstore.Counters {
			s, err := redisstore.New(testenv.RedisURL(), prefix, hardLogger())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		}},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			prefix := "hardening-" + hardID("t")
			replica := func() (*testenv.Env, string) {
				policy := hardLockoutPolicy
				e := testenv.New(t, dsn, testenv.Options{Lockout: &policy, Shared: b.shared(t, prefix)})
				return e, hardServe(t, e.Handler())
			}
			envA, baseA := replica()
			envB, baseB := replica() // a second replica, running at the same time
			envs := []*testenv.Env{envA, envB}
			customers := demo.Customers()
			keyX, idX := envA.Key(t, customers[0].ID, auth.ScopeRead)
			keyY, _ := envA.Key(t, customers[1].ID, auth.ScopeRead)
			keyZ, idZ := envA.Key(t, customers[2].ID, auth.ScopeRead)
			orderX := hardOrders(t, envA, customers[0].ID)[0]
			orderY := hardOrders(t, envA, customers[1].ID)[0]
			orderZ := hardOrders(t, envA, customers[2].ID)[0]
			ip := hardIPs()
			attacker, neighbour, garbageSender := ip(1), ip(2), ip(3)
			c := hardClient(t, attacker)
			var answers []hardResp
			var lockedAt time.Time
			var firstLock int

			t.Run("WrongSecretsForOneKeyIDLockItOut", func(t *testing.T) {
				for i := 1; i < hardLockoutPolicy.Threshold; i++ {
					r := hardDo(t, c, baseA, hardReq{key: hardWrongSecret(idX), body: hardGet(orderX)})
					answers = append(answers, r)
					if r.status != http.StatusUnauthorized || !strings.Contains(r.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
						t.Fatalf("failure %d: status %d %q", i, r.status, r.header.Get("WWW-Authenticate"))
					}
				}
				r := hardDo(t, c, baseA, hardReq{key: hardWrongSecret(idX), body: hardGet(orderX)})
				lockedAt = time.Now()
				answers = append(answers, r)
				firstLock = hardLimited(t, r)
				if firstLock > int(hardLockoutPolicy.Base.Seconds()) {
					t.Fatalf("first lock Retry-After %d, want at most %v", firstLock, hardLockoutPolicy.Base)
				}
			})
			if lockedAt.IsZero() {
				t.FailNow()
			}

			t.Run("CorrectKeyFromTheLockedAddressIsRefused", func(t *testing.T) {
				r := hardDo(t, c, baseA, hardReq{key: keyX, body: hardGet(orderX)})
				answers = append(answers, r)
				hardLimited(t, r)
			})

			t.Run("AnotherKeyFromTheSameAddressIsServed", func(t *testing.T) {
				hardServed(t, hardDo(t, c, baseA, hardReq{key: keyY, body: hardGet(orderY)}), orderY)
			})

			t.Run("TheSameKeyFromAnotherAddressIsServed", func(t *testing.T) {
				hardServed(t, hardDo(t, hardClient(t, neighbour), baseA, hardReq{key: keyX, body: hardGet(orderX)}), orderX)
			})

			t.Run("AnotherReplicaRefusesTheLockedClient", func(t *testing.T) {
				hardLimited(t, hardDo(t, c, baseB, hardReq{key: keyX, body: hardGet(orderX)}))
			})

			t.Run("FailuresAreCountedAcrossReplicas", func(t *testing.T) {
				for i, base := range []string{baseA, baseB} {
					r := hardDo(t, c, base, hardReq{key: hardWrongSecret(idZ), body: hardGet(orderZ)})
					if r.status != http.StatusUnauthorized {
						t.Fatalf("failure %d: status %d", i+1, r.status)
					}
				}
				hardLimited(t, hardDo(t, c, baseA, hardReq{key: hardWrongSecret(idZ), body: hardGet(orderZ)}))
				hardLimited(t, hardDo(t, c, baseB, hardReq{key: keyZ, body: hardGet(orderZ)}))
			})

			t.Run("TheLockSurvivesARestart", func(t *testing.T) {
				envC, baseC := replica() // a fresh process: nothing in memory
				envs = append(envs, envC)
				hardLimited(t, hardDo(t, c, baseC, hardReq{key: keyX, body: hardGet(orderX)}))
				hardLimited(t, hardDo(t, c, baseC, hardReq{key: keyZ, body: hardGet(orderZ)}))
			})
			if time.Since(lockedAt) >= hardLockoutPolicy.Base {
				t.Fatalf("the steps above took %v, longer than the lock: the lock was not proven to hold", time.Since(lockedAt))
			}

			t.Run("GarbageCredentialsLockOnlyAtTheAddressThreshold", func(t *testing.T) {
				g := hardClient(t, garbageSender)
				for i := 1; i < hardLockoutPolicy.AddressThreshold; i++ {
					r := hardDo(t, g, baseA, hardReq{key: fmt.Sprintf("not-a-key-%d", i), body: hardGet(orderX)})
					if r.status != http.StatusUnauthorized {
						t.Fatalf("garbage %d (below the address threshold): status %d", i, r.status)
					}
				}
				r := hardDo(t, g, baseA, hardReq{key: "not-a-key-last", body: hardGet(orderX)})
				answers = append(answers, r)
				hardLimited(t, r)
				// Any credential that names no key id is now refused...
				hardLimited(t, hardDo(t, g, baseB, hardReq{key: auth.KeyPrefix + "_short", body: hardGet(orderX)}))
				// ...but valid keys from the same address are not.
				hardServed(t, hardDo(t, g, baseA, hardReq{key: keyY, body: hardGet(orderY)}), orderY)
				hardServed(t, hardDo(t, g, baseB, hardReq{key: keyX, body: hardGet(orderX)}), orderX)
			})

			t.Run("TheLockExpires", func(t *testing.T) {
				time.Sleep(time.Until(lockedAt.Add(hardLockoutPolicy.Base + 200*time.Millisecond)))
				hardServed(t, hardDo(t, c, baseA, hardReq{key: keyX, body: hardGet(orderX)}), orderX)
			})

			t.Run("ASecondStrikeLocksLonger", func(t *testing.T) {
				var r hardResp
				for range hardLockoutPolicy.Threshold {
					r = hardDo(t, c, baseB, hardReq{key: hardWrongSecret(idX), body: hardGet(orderX)})
				}
				if second := hardLimited(t, r); second <= firstLock || second > int(2*hardLockoutPolicy.Base.Seconds()) {
					t.Fatalf("second lock Retry-After %d, want more than the first (%d) and at most %v", second, firstLock, 2*hardLockoutPolicy.Base)
				}
			})

			hardFlush(t, envs...)
			got := hardRefusals(t, envA, attacker)
			// Wrong secrets: 2 for X, 2 for Z, 2 for X again; then refused as
			// locked: X's third failure, X correct, X on B, Z's third failure,
			// Z on B, X and Z after the restart, X's second strike.
			if got["invalid_credential"] != 6 || got["locked_out"] != 8 {
				t.Errorf("refusals audited for %s: %v, want 6 invalid_credential and 8 locked_out", attacker, got)
			}
			got = hardRefusals(t, envA, garbageSender)
			if got["invalid_credential"] != hardLockoutPolicy.AddressThreshold-1 || got["locked_out"] != 2 {
				t.Errorf("refusals audited for %s: %v", garbageSender, got)
			}
			hardNoSecrets(t, envs, []string{keyX, keyY, keyZ, hardWrongSecret(idX)}, answers...)
		})
	}
}

// TestBruteForceWithRotatingKeyIDsIsLockedOut presents a fresh, unknown
// key id on every attempt from one address. Counting failures per address
// and key id must not let such an attacker escape the lockout altogether:
// unknown key ids have to count against the address.
func TestBruteForceWithRotatingKeyIDsIsLockedOut(t *testing.T) {
	t.Parallel()
	ip := hardIPs()
	policy := hardLockoutPolicy
	env := testenv.New(t, dsn, testenv.Options{Lockout: &policy})
	base := hardServe(t, env.Handler())
	customer := demo.Customers()[0]
	key, _ := env.Key(t, customer.ID, auth.ScopeRead)
	order := hardOrders(t, env, customer.ID)[0]
	attacker := ip(1)
	c := hardClient(t, attacker)

	var statuses []int
	for range 2 * policy.AddressThreshold {
		k, err := auth.GenerateAPIKey() // never stored: an unknown key id
		if err != nil {
			t.Fatal(err)
		}
		r := hardDo(t, c, base, hardReq{key: k.Key, body: hardGet(order)})
		statuses = append(statuses, r.status)
		if r.status == http.StatusTooManyRequests {
			break
		}
	}
	if statuses[len(statuses)-1] != http.StatusTooManyRequests {
		t.Errorf("%d attempts with rotating unknown key ids were never locked out: statuses %v", len(statuses), statuses)
	}
	hardServed(t, hardDo(t, c, base, hardReq{key: key, body: hardGet(order)}), order)

	hardFlush(t, env)
	if got := hardRefusals(t, env, attacker); got["invalid_credential"] < 1 || got["locked_out"] != 1 {
		t.Errorf("refusals audited: %v, want the failures and the lockout", got)
	}
	hardNoSecrets(t, []*testenv.Env{env}, []string{key})
}

// TestMalformedPayloadsAreThrottled sends one malformed body after another
// from one address, with a valid key.
func TestMalformedPayloadsAreThrottled(t *testing.T) {
	t.Parallel()
	ip := hardIPs()
	policy := hardLockoutPolicy
	policy.AddressThreshold = 4
	env := testenv.New(t, dsn, testenv.Options{Lockout: &policy})
	base := hardServe(t, env.Handler())
	customers := demo.Customers()
	key, _ := env.Key(t, customers[0].ID, auth.ScopeRead)
	otherKey, _ := env.Key(t, customers[1].ID, auth.ScopeRead)
	otherOrder := hardOrders(t, env, customers[1].ID)[0]
	attacker, bystander := ip(1), ip(2)
	c := hardClient(t, attacker)
	const canary = "CANARYx7q"

	payloads := []struct {
		name, body string
	}{
		{"UnparseableJSON", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{` + canary},
		{"Batch", `[` + hardGet("ord_0000000000000000") + `,` + hardCall("cancel_order", map[string]any{"order_id": "ord_0000000000000000"}) + `]`},
		{"DuplicateKeys", `{"jsonrpc":"2.0","id":1,"method":"tools/call","method":"tools/list","params":{"name":"` + canary + `"}}`},
		{"CaseVariantKeys", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"cancel_order","NAME":"get_order_status","arguments":{}}}`},
		{"NotAnObject", `"` + canary + `"`},
		{"TooDeeplyNested", `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}}`},
	}
	var answers []hardResp
	for i, p := range payloads {
		t.Run(p.name+"IsRefused", func(t *testing.T) {
			r := hardDo(t, c, base, hardReq{key: key, body: p.body})
			answers = append(answers, r)
			if strings.Contains(r.body, canary) {
				t.Fatalf("answer echoes the payload: %s", r.body)
			}
			if i+1 < policy.AddressThreshold {
				m := r.rpc(t)
				if r.status != http.StatusBadRequest || m.Error == nil || !strings.HasPrefix(m.Error.Message, "Bad request") {
					t.Fatalf("malformed payload %d: %d %s", i+1, r.status, r.body)
				}
				return
			}
			// From the address threshold on, the sender is throttled.
			hardLimited(t, r)
		})
	}

	t.Run("TheLockedCallerIsRefusedEvenWellFormed", func(t *testing.T) {
		// The lock is the caller's, not only its malformed bodies': a
		// well-formed call is refused before its body is read.
		hardLimited(t, hardDo(t, c, base, hardReq{key: key, body: hardGet(otherOrder)}))
	})

	t.Run("AnotherCallerIsNotThrottled", func(t *testing.T) {
		b := hardClient(t, bystander)
		r := hardDo(t, b, base, hardReq{key: otherKey, body: payloads[0].body})
		if r.status != http.StatusBadRequest {
			t.Fatalf("another caller's first malformed payload: status %d, want 400", r.status)
		}
		hardServed(t, hardDo(t, b, base, hardReq{key: otherKey, body: hardGet(otherOrder)}), otherOrder)
	})

	hardFlush(t, env)
	refusals := hardRefusals(t, env, attacker)
	if got := refusals["malformed_payload"]; got != policy.AddressThreshold {
		t.Errorf("%d malformed_payload refusals audited, want %d", got, policy.AddressThreshold)
	}
	if got := refusals["locked_out"]; got != len(payloads)-policy.AddressThreshold+1 {
		t.Errorf("%d locked_out refusals audited, want %d", got, len(payloads)-policy.AddressThreshold+1)
	}
	hardNoSecrets(t, []*testenv.Env{env}, []string{key, otherKey}, answers...)
}

// TestOrderEnumerationIsThrottled looks up order ids that do not exist,
// one after another (RATE_LIMIT_NOT_FOUND), and checks that "not found"
// and "not yours" look the same.
func TestOrderEnumerationIsThrottled(t *testing.T) {
	t.Parallel()
	ip := hardIPs()
	const limit = 3
	env := testenv.New(t, dsn, testenv.Options{
		Limits: hardLimits(func(l *limits.Config) { l.NotFoundPerPrincipal = perMinute(limit) }),
	})
	base := hardServe(t, env.Handler())
	customers := demo.Customers()
	key, keyID := env.Key(t, customers[0].ID, auth.ScopeRead)
	otherKey, _ := env.Key(t, customers[1].ID, auth.ScopeRead)
	probeKey, _ := env.Key(t, customers[2].ID, auth.ScopeRead)
	own := hardOrders(t, env, customers[0].ID)[0]
	otherOrder := hardOrders(t, env, customers[1].ID)[0]
	attacker := ip(1)
	c := hardClient(t, attacker)
	var answers []hardResp

	t.Run("GuessingIDsIsThrottled", func(t *testing.T) {
		for i := 1; i <= limit; i++ {
			r := hardDo(t, c, base, hardReq{key: key, body: hardGet(hardID("ord"))})
			if m := r.rpc(t); m.Result == nil || !m.Result.IsError || !strings.HasPrefix(m.text(), "Order not found") {
				t.Fatalf("guess %d: %s", i, r.body)
			}
		}
		r := hardDo(t, c, base, hardReq{key: key, body: hardGet(hardID("ord"))})
		answers = append(answers, r)
		hardRPCLimited(t, r, "unknown orders")
	})

	t.Run("EvenAnExistingOwnOrderIsRefusedWhileThrottled", func(t *testing.T) {
		r := hardDo(t, c, base, hardReq{key: key, body: hardGet(own)})
		answers = append(answers, r)
		hardRPCLimited(t, r, "unknown orders")
		if strings.Contains(r.body, "timeline") {
			t.Fatalf("throttled caller got data: %s", r.body)
		}
	})

	t.Run("OtherPrincipalsAreUnaffected", func(t *testing.T) {
		hardServed(t, hardDo(t, c, base, hardReq{key: otherKey, body: hardGet(otherOrder)}), otherOrder)
	})

	t.Run("NotFoundAndNotYoursAreIndistinguishable", func(t *testing.T) {
		missing := hardDo(t, c, base, hardReq{key: probeKey, body: hardGet(hardID("ord"))})
		foreign := hardDo(t, c, base, hardReq{key: probeKey, body: hardGet(otherOrder)})
		if missing.status != foreign.status {
			t.Fatalf("statuses differ: %d vs %d", missing.status, foreign.status)
		}
		m, f := missing.rpc(t), foreign.rpc(t)
		if m.Result == nil || f.Result == nil || !m.Result.IsError || !f.Result.IsError {
			t.Fatalf("want tool errors: %s / %s", missing.body, foreign.body)
		}
		mj, _ := json.Marshal(m.Result)
		fj, _ := json.Marshal(f.Result)
		if string(mj) != string(fj) {
			t.Fatalf("not found and not yours differ:\n%s\n%s", mj, fj)
		}
		if strings.Contains(foreign.body, otherOrder) {
			t.Fatalf("the answer names the foreign order: %s", foreign.body)
		}
	})

	hardFlush(t, env)
	got := hardToolCalls(t, env, keyID)
	if got["get_order_status/not_found"] != limit || got["get_order_status/rate_limited"] != 2 {
		t.Errorf("tool calls audited: %v, want %d not_found and 2 rate_limited", got, limit)
	}
	hardNoSecrets(t, []*testenv.Env{env}, []string{key, otherKey, probeKey}, answers...)
}

// TestForeignOriginsAndHostsAreRefused plays a browser page on another
// origin, and a DNS-rebinding page whose name resolves to the loopback
// listener.
func TestForeignOriginsAndHostsAreRefused(t *testing.T) {
	t.Parallel()
	ip := hardIPs()
	const allowed = "https://app.example"
	env := testenv.New(t, dsn, testenv.Options{HTTP: httpserver.Config{AllowedOrigins: []string{allowed}}})
	base := hardServe(t, env.Handler())
	customer := demo.Customers()[0]
	key, _ := env.Key(t, customer.ID, auth.ScopeRead)
	order := hardOrders(t, env, customer.ID)[0]
	attacker, bystander := ip(1), ip(2)
	c := hardClient(t, attacker)
	own := base // http://127.0.0.1:port
	port := strings.TrimPrefix(base, "http://127.0.0.1:")

	refused := []struct {
		name, method, origin, host string
	}{
		{"ForeignOriginPOST", http.MethodPost, "https://evil.example", ""},
		{"ForeignOriginGET", http.MethodGet, "https://evil.example", ""},
		{"ForeignOriginDELETE", http.MethodDelete, "https://evil.example", ""},
		{"ForeignOriginPreflight", http.MethodOptions, "https://evil.example", ""},
		{"NullOrigin", http.MethodPost, "null", ""},
		{"LookalikeOrigin", http.MethodPost, "https://app.example.evil.example", ""},
		{"AllowedHostOtherScheme", http.MethodPost, "http://app.example", ""},
		{"AllowedHostOtherPort", http.MethodPost, "https://app.example:8443", ""},
		{"OwnHostOtherPort", http.MethodPost, "http://127.0.0.1:1", ""},
		{"DNSRebinding", http.MethodPost, "http://evil.example", "evil.example"},
		{"DNSRebindingWithPort", http.MethodPost, "http://evil.example:" + port, "evil.example:" + port},
		{"DNSRebindingWithoutOrigin", http.MethodPost, "", "evil.example"},
	}
	var answers []hardResp
	for _, tt := range refused {
		t.Run(tt.name+"IsRefused", func(t *testing.T) {
			h := map[string]string{}
			if tt.origin != "" {
				h["Origin"] = tt.origin
			}
			if tt.method == http.MethodOptions {
				h["Access-Control-Request-Method"] = "POST"
				h["Access-Control-Request-Headers"] = "authorization, content-type"
			}
			body := ""
			if tt.method == http.MethodPost {
				body = hardGet(order)
			}
			r := hardDo(t, c, base, hardReq{method: tt.method, key: key, body: body, header: h, host: tt.host})
			answers = append(answers, r)
			if r.status != http.StatusForbidden {
				t.Fatalf("status %d, want 403: %s", r.status, r.body)
			}
			for k := range r.header {
				if strings.HasPrefix(strings.ToLower(k), "access-control-") {
					t.Fatalf("refusal carries CORS header %s", k)
				}
			}
			if strings.Contains(r.body, "evil") || strings.Contains(r.body, "order_id") {
				t.Fatalf("refusal body echoes input or carries data: %s", r.body)
			}
		})
	}

	served := []struct {
		name, origin, host string
		wantCORS           bool
	}{
		{"NoOrigin", "", "", false},
		{"OwnOrigin", own, "", false},
		{"LocalhostHostAndOrigin", "http://localhost:" + port, "localhost:" + port, false},
		{"ConfiguredOrigin", allowed, "", true},
	}
	for _, tt := range served {
		t.Run(tt.name+"IsServed", func(t *testing.T) {
			h := map[string]string{}
			if tt.origin != "" {
				h["Origin"] = tt.origin
			}
			r := hardDo(t, c, base, hardReq{key: key, body: hardGet(order), header: h, host: tt.host})
			hardServed(t, r, order)
			acao := r.header.Get("Access-Control-Allow-Origin")
			if tt.wantCORS && acao != allowed || !tt.wantCORS && acao != "" {
				t.Fatalf("Access-Control-Allow-Origin %q", acao)
			}
		})
	}

	t.Run("ConfiguredOriginPreflightIsAnswered", func(t *testing.T) {
		r := hardDo(t, c, base, hardReq{method: http.MethodOptions, header: map[string]string{
			"Origin": allowed, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization, content-type",
		}})
		if r.status != http.StatusNoContent || r.header.Get("Access-Control-Allow-Origin") != allowed ||
			!strings.Contains(r.header.Get("Access-Control-Allow-Methods"), "POST") ||
			!strings.Contains(strings.ToLower(r.header.Get("Access-Control-Allow-Headers")), "authorization") {
			t.Fatalf("preflight: %d %v", r.status, r.header)
		}
		if r.header.Get("Access-Control-Allow-Origin") == "*" || r.header.Get("Access-Control-Allow-Credentials") != "" {
			t.Fatalf("preflight is too permissive: %v", r.header)
		}
	})

	t.Run("AnotherClientIsStillServed", func(t *testing.T) {
		hardServed(t, hardDo(t, hardClient(t, bystander), base, hardReq{key: key, body: hardGet(order)}), order)
	})

	t.Run("AllowedHostsReplaceTheLoopbackRule", func(t *testing.T) {
		henv := testenv.New(t, dsn, testenv.Options{HTTP: httpserver.Config{AllowedHosts: []string{"mcp.example.com"}}})
		hbase := hardServe(t, henv.Handler())
		hc := hardClient(t, ip(3))
		for _, host := range []string{"evil.example", "127.0.0.1:" + strings.TrimPrefix(hbase, "http://127.0.0.1:"), "localhost", "mcp.example.com.evil.example"} {
			r := hardDo(t, hc, hbase, hardReq{key: key, body: hardGet(order), host: host})
			if r.status != http.StatusForbidden || strings.Contains(r.body, "evil") {
				t.Fatalf("Host %s: status %d, want 403: %s", host, r.status, r.body)
			}
		}
		hardServed(t, hardDo(t, hc, hbase, hardReq{key: key, body: hardGet(order), host: "mcp.example.com"}), order)
		hardFlush(t, henv)
		if got := hardRefusals(t, henv, ip(3))["foreign_host"]; got != 4 {
			t.Errorf("%d foreign_host refusals audited, want 4", got)
		}
	})

	hardFlush(t, env)
	got := hardRefusals(t, env, attacker)
	if got["foreign_origin"] != 9 || got["foreign_host"] != 3 {
		t.Errorf("refusals audited: %v, want 9 foreign_origin and 3 foreign_host", got)
	}
	hardNoSecrets(t, []*testenv.Env{env}, []string{key}, answers...)
}

// TestOversizedBodiesAreRefused sends bodies over MaxBodyBytes, with and
// without Content-Length.
func TestOversizedBodiesAreRefused(t *testing.T) {
	t.Parallel()
	ip := hardIPs()
	const max = 2048
	env := testenv.New(t, dsn, testenv.Options{HTTP: httpserver.Config{MaxBodyBytes: max}})
	base := hardServe(t, env.Handler())
	customer := demo.Customers()[0]
	key, _ := env.Key(t, customer.ID, auth.ScopeRead)
	order := hardOrders(t, env, customer.ID)[0]
	attacker := ip(1)
	c := hardClient(t, attacker)
	// A valid request padded with whitespace: only its size is wrong.
	padded := func(n int) string { body := hardGet(order); return body + strings.Repeat(" ", n-len(body)) }

	tests := []struct {
		name    string
		size    int
		chunked bool
		want    int
	}{
		{"JustUnderTheLimitIsServed", max, false, http.StatusOK},
		{"JustUnderTheLimitChunkedIsServed", max, true, http.StatusOK},
		{"DeclaredLengthOverTheLimitIs413", max + 1, false, http.StatusRequestEntityTooLarge},
		{"ChunkedBodyOverTheLimitIs413", max + 1, true, http.StatusRequestEntityTooLarge},
		{"LargeChunkedBodyIs413", 64 * max, true, http.StatusRequestEntityTooLarge},
	}
	var answers []hardResp
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := hardDo(t, c, base, hardReq{key: key, body: padded(tt.size), chunked: tt.chunked})
			answers = append(answers, r)
			if tt.want == http.StatusOK {
				hardServed(t, r, order)
				return
			}
			m := r.rpc(t)
			if r.status != tt.want || m.Error == nil || m.Error.Message != "Request body too large." {
				t.Fatalf("status %d, want %d: %s", r.status, tt.want, r.body)
			}
		})
	}

	t.Run("ServerStaysHealthy", func(t *testing.T) {
		hardServed(t, hardDo(t, hardClient(t, ip(2)), base, hardReq{key: key, body: hardGet(order)}), order)
	})

	hardFlush(t, env)
	if got := hardRefusals(t, env, attacker)["body_too_large"]; got != 3 {
		t.Errorf("%d body_too_large refusals audited, want 3", got)
	}
	hardNoSecrets(t, []*testenv.Env{env}, []string{key}, answers...)
}

// TestSlowHeadersAreCutOff plays slowloris: connections that send part of
// a request and then nothing. The server must close them after its
// ReadHeaderTimeout (5s) and keep serving everyone else meanwhile.
func TestSlowHeadersAreCutOff(t *testing.T) {
	t.Parallel()
	ip := hardIPs()
	env := testenv.New(t, dsn, testenv.Options{})
	srv, err := httpserver.Listen("127.0.0.1:0", env.Handler(), "", "", env.Logger)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	addr := srv.Addr().String()
	base := "http://" + addr
	customer := demo.Customers()[0]
	key, _ := env.Key(t, customer.ID, auth.ScopeRead)
	order := hardOrders(t, env, customer.ID)[0]

	partials := []string{
		"POST /mcp HTTP/1.1\r\n",
		"POST /mcp HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: appl",
		"POST /mcp HTTP/1.1\r\nHost: " + addr + "\r\nAuthorization: Bearer " + key + "\r\nX-Padding: a",
	}
	const slowPerKind = 5
	type cut struct {
		after time.Duration
		data  string
		err   error
	}
	results := make(chan cut, len(partials)*slowPerKind)
	start := time.Now()
	for i := range len(partials) * slowPerKind {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip(1))}}
		conn, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		if _, err := io.WriteString(conn, partials[i%len(partials)]); err != nil {
			t.Fatal(err)
		}
		go func() {
			_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
			b, err := io.ReadAll(conn) // returns when the server closes the connection
			results <- cut{after: time.Since(start), data: string(b), err: err}
		}()
	}

	t.Run("OthersAreServedWhileSlowClientsHang", func(t *testing.T) {
		hc := hardClient(t, ip(2))
		hardServed(t, hardDo(t, hc, base, hardReq{key: key, body: hardGet(order)}), order)
		if r := hardDo(t, hc, base, hardReq{method: http.MethodGet, path: "/healthz"}); r.status != http.StatusOK {
			t.Fatalf("healthz: %d", r.status)
		}
	})

	t.Run("SlowConnectionsAreClosedAfterTheHeaderTimeout", func(t *testing.T) {
		for range len(partials) * slowPerKind {
			r := <-results
			if r.err != nil {
				t.Fatalf("connection not closed by the server: %v (after %v)", r.err, r.after)
			}
			if r.after < 4*time.Second || r.after > 9*time.Second {
				t.Fatalf("connection closed after %v, want about 5s", r.after)
			}
			if strings.Contains(r.data, key) || strings.Contains(r.data, "200 OK") {
				t.Fatalf("slow connection got an answer: %q", r.data)
			}
		}
	})

	t.Run("ServerStaysHealthy", func(t *testing.T) {
		hardServed(t, hardDo(t, hardClient(t, ip(2)), base, hardReq{key: key, body: hardGet(order)}), order)
	})

	// Nothing of a cut-off request reaches the handler, so nothing is
	// audited or logged for it: the access log shows only the requests
	// that completed.
	if n := strings.Count(env.Logs.String(), `"client_ip":"`+ip(1)+`"`); n != 0 {
		t.Errorf("%d handler log lines for the slow connections", n)
	}
	hardNoSecrets(t, []*testenv.Env{env}, []string{key})
}

// TestSecurityHeadersOnEveryAnswer checks the headers every answer carries,
// whatever its status.
func TestSecurityHeadersOnEveryAnswer(t *testing.T) {
	t.Parallel()
	ip := hardIPs()
	env := testenv.New(t, dsn, testenv.Options{
		Limits: hardLimits(func(l *limits.Config) { l.PerIP = perMinute(2) }),
		HTTP:   httpserver.Config{MaxBodyBytes: 4096},
	})
	base := hardServe(t, env.Handler())
	customer := demo.Customers()[0]
	key, _ := env.Key(t, customer.ID, auth.ScopeRead)
	order := hardOrders(t, env, customer.ID)[0]

	tests := []struct {
		name   string
		from   string
		req    hardReq
		repeat int // send this many times, check the last
		want   int
		reason string // the refusal audited, if any
	}{
		{"ToolResult", ip(1), hardReq{key: key, body: hardGet(order)}, 1, http.StatusOK, ""},
		{"OwnOriginToolResult", ip(2), hardReq{key: key, body: hardGet(order), header: map[string]string{"Origin": base}}, 1, http.StatusOK, ""},
		{"Healthz", ip(3), hardReq{method: http.MethodGet, path: "/healthz"}, 1, http.StatusOK, ""},
		{"MissingCredential", ip(4), hardReq{body: hardGet(order)}, 1, http.StatusUnauthorized, "missing_credential"},
		{"ForeignOrigin", ip(5), hardReq{key: key, body: hardGet(order), header: map[string]string{"Origin": "https://evil.example"}}, 1, http.StatusForbidden, "foreign_origin"},
		{"UnknownPath", ip(6), hardReq{method: http.MethodGet, path: "/admin"}, 1, http.StatusNotFound, ""},
		{"MethodNotAllowed", ip(7), hardReq{method: http.MethodGet, key: key, header: map[string]string{"Accept": "text/event-stream"}}, 1, http.StatusMethodNotAllowed, ""},
		{"BodyTooLarge", ip(8), hardReq{key: key, body: hardGet(order) + strings.Repeat(" ", 5000)}, 1, http.StatusRequestEntityTooLarge, "body_too_large"},
		{"RateLimited", ip(9), hardReq{key: key, body: hardGet(order)}, 3, http.StatusTooManyRequests, "address_rate_limited"},
	}
	var answers []hardResp
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := hardClient(t, tt.from)
			var r hardResp
			for range tt.repeat {
				r = hardDo(t, c, base, tt.req)
			}
			answers = append(answers, r)
			if r.status != tt.want {
				t.Fatalf("status %d, want %d: %s", r.status, tt.want, r.body)
			}
			h := r.header
			checks := []struct{ header, want string }{
				{"X-Content-Type-Options", "nosniff"},
				{"Cache-Control", "no-store"},
				{"X-Frame-Options", "DENY"},
			}
			for _, ch := range checks {
				if got := h.Values(ch.header); len(got) != 1 || got[0] != ch.want {
					t.Errorf("%s: %q, want %q", ch.header, got, ch.want)
				}
			}
			if !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
				t.Errorf("Content-Security-Policy %q", h.Get("Content-Security-Policy"))
			}
			for _, banned := range []string{"Server", "X-Powered-By", "Strict-Transport-Security", "Access-Control-Allow-Origin", "Access-Control-Allow-Credentials"} {
				if v := h.Get(banned); v != "" {
					t.Errorf("%s: %q, want none", banned, v)
				}
			}
		})
	}

	t.Run("HSTSOnlyOverTLS", func(t *testing.T) {
		tenv := testenv.New(t, dsn, testenv.Options{HTTP: httpserver.Config{TLS: true}})
		tbase := hardServe(t, tenv.Handler())
		c := hardClient(t, ip(10))
		for _, req := range []hardReq{
			{key: key, body: hardGet(order)},
			{body: hardGet(order)},
			{method: http.MethodGet, path: "/healthz"},
		} {
			r := hardDo(t, c, tbase, req)
			if hsts := r.header.Get("Strict-Transport-Security"); !strings.Contains(hsts, "max-age=") {
				t.Errorf("%s %s (%d): Strict-Transport-Security %q", req.method, req.path, r.status, hsts)
			}
		}
	})

	hardFlush(t, env)
	for _, tt := range tests {
		if tt.reason == "" {
			continue
		}
		if got := hardRefusals(t, env, tt.from)[tt.reason]; got != 1 {
			t.Errorf("%s: %d %s refusals audited, want 1", tt.name, got, tt.reason)
		}
	}
	hardNoSecrets(t, []*testenv.Env{env}, []string{key}, answers...)
}

// TestErrorAnswersNeverEchoInput sends requests the SDK's HTTP handler
// refuses itself, and requests the MCP layer refuses, each carrying
// attacker text where the refusal might quote it.
func TestErrorAnswersNeverEchoInput(t *testing.T) {
	t.Parallel()
	ip := hardIPs()
	env := testenv.New(t, dsn, testenv.Options{Lockout: &hardNoLockout})
	base := hardServe(t, env.Handler())
	customer := demo.Customers()[0]
	key, keyID := env.Key(t, customer.ID, auth.ScopeRead)
	attacker := ip(1)
	c := hardClient(t, attacker)
	const canary = "<script>alert('CANARY')</script>"

	const badRequest = "Bad request: send one JSON-RPC request with Content-Type application/json and Accept application/json, text/event-stream."
	tests := []struct {
		name       string
		req        hardReq
		wantStatus int
		wantCode   int
		wantMsg    string // the whole error message, or the tool error text's prefix
		toolError  bool
		transport  bool // refused by the SDK's HTTP handler, before MCP
	}{
		{"GETIsMethodNotAllowed",
			hardReq{method: http.MethodGet, key: key, header: map[string]string{"Accept": "text/event-stream", "Last-Event-ID": canary}},
			http.StatusMethodNotAllowed, -32600, "Method not allowed.", false, true},
		{"DELETEIsMethodNotAllowed",
			hardReq{method: http.MethodDelete, key: key, header: map[string]string{"Mcp-Session-Id": canary}},
			http.StatusMethodNotAllowed, -32600, "Method not allowed.", false, true},
		{"WrongContentTypeIs415",
			hardReq{key: key, body: hardListTools, header: map[string]string{"Content-Type": "text/html; charset=" + canary}},
			http.StatusUnsupportedMediaType, -32600, "Content-Type must be application/json.", false, true},
		{"WrongAcceptIs400",
			hardReq{key: key, body: hardListTools, header: map[string]string{"Accept": "text/" + canary}},
			http.StatusBadRequest, -32600, badRequest, false, true},
		{"UnsupportedProtocolVersionIs400",
			hardReq{key: key, body: hardListTools, header: map[string]string{"MCP-Protocol-Version": "1999-01-01" + canary}},
			http.StatusBadRequest, -32600, badRequest, false, true},
		{"ProtocolVersionHeaderOfMarkupIsRefused",
			hardReq{key: key, body: hardListTools, header: map[string]string{"MCP-Protocol-Version": canary}},
			http.StatusBadRequest, 0, "", false, true},
		{"UnknownMethodIsRefused",
			hardReq{key: key, body: `{"jsonrpc":"2.0","id":1,"method":` + hardJSON(canary) + `}`},
			http.StatusBadRequest, -32600, badRequest, false, true},
		{"UnknownToolIsRefused",
			hardReq{key: key, body: hardCall(canary, map[string]any{})},
			http.StatusOK, -32602, "Unknown tool. Call tools/list to see the tools this credential may use.", false, false},
		{"InvalidArgumentIsRefused",
			hardReq{key: key, body: hardGet(canary)},
			http.StatusOK, 0, "Invalid order_id", true, false},
		{"InitializeWithMarkupVersionIsAnsweredWithoutIt",
			hardReq{key: key, body: `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":` + hardJSON(canary) +
				`,"capabilities":{},"clientInfo":{"name":` + hardJSON(canary) + `,"version":"1"}}}`, header: map[string]string{"MCP-Protocol-Version": ""}},
			http.StatusOK, 0, "", false, false},
	}
	transportErrors := 0
	var answers []hardResp
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := hardDo(t, c, base, tt.req)
			answers = append(answers, r)
			lower := strings.ToLower(r.body)
			if strings.Contains(lower, "canary") || strings.Contains(lower, "<script") || strings.Contains(r.body, `\u003cscript`) {
				t.Fatalf("answer echoes the input: %s", r.body)
			}
			if tt.transport {
				transportErrors++
			}
			if tt.wantStatus != 0 && r.status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.status, tt.wantStatus, r.body)
			}
			if r.status >= 400 && !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
				t.Fatalf("error answer of type %q", r.header.Get("Content-Type"))
			}
			m := r.rpc(t)
			switch {
			case tt.toolError:
				if m.Result == nil || !m.Result.IsError || !strings.HasPrefix(m.text(), tt.wantMsg) {
					t.Fatalf("want a tool error %q...: %s", tt.wantMsg, r.body)
				}
			case tt.wantMsg != "":
				if m.Error == nil || m.Error.Code != tt.wantCode || m.Error.Message != tt.wantMsg {
					t.Fatalf("want error %d %q: %s", tt.wantCode, tt.wantMsg, r.body)
				}
			case r.status >= 400:
				if m.Error == nil || len(m.Error.Message) > 200 {
					t.Fatalf("want a short fixed error: %s", r.body)
				}
			}
		})
	}

	t.Run("ServerStaysHealthy", func(t *testing.T) {
		order := hardOrders(t, env, customer.ID)[0]
		hardServed(t, hardDo(t, hardClient(t, ip(2)), base, hardReq{key: key, body: hardGet(order)}), order)
	})

	// The access log names the JSON-RPC method and the tool of each
	// request. Names the server does not know are attacker text: they must
	// not be copied into the log (markup for whoever views it, and up to
	// MaxBodyBytes of it per request).
	t.Run("AttackerChosenNamesStayOutOfTheLog", func(t *testing.T) {
		for _, line := range strings.Split(env.Logs.String(), "\n") {
			if line == "" {
				continue
			}
			// Tool arguments are logged on purpose, redacted, bounded and
			// JSON-escaped (RedactJSON); names are logged as they came.
			if strings.Contains(line, "<script") {
				t.Errorf("unescaped attacker markup in the log: %s", line)
			}
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("log line is not JSON: %s", line)
			}
			for _, attr := range []string{"rpc_method", "tool"} {
				if v, _ := rec[attr].(string); strings.Contains(strings.ToLower(v), "canary") {
					t.Errorf("attacker-chosen %s reached the log: %q", attr, v)
				}
			}
		}
	})
	t.Run("AHugeMethodNameDoesNotBloatTheLog", func(t *testing.T) {
		before := len(env.Logs.String())
		name := strings.Repeat("m", 64<<10)
		r := hardDo(t, hardClient(t, ip(3)), base, hardReq{key: key, body: `{"jsonrpc":"2.0","id":1,"method":"` + name + `"}`})
		if r.status < 400 || strings.Contains(r.body, name[:100]) {
			t.Fatalf("status %d: %.300s", r.status, r.body)
		}
		if grew := len(env.Logs.String()) - before; grew > 8<<10 {
			t.Fatalf("one request with a 64 KiB method name added %d bytes to the log", grew)
		}
	})

	hardFlush(t, env)
	if got := hardToolCalls(t, env, keyID); got["unknown_tool/unknown_tool"] != 1 || got["get_order_status/invalid_input"] != 1 {
		t.Errorf("tool calls audited: %v, want the unknown tool and the invalid argument", got)
	}
	total := 0
	for _, n := range hardRefusals(t, env, attacker) {
		total += n
	}
	if total < transportErrors {
		t.Errorf("%d refusals audited for %s, want at least the %d requests the SDK's HTTP handler refused", total, attacker, transportErrors)
	}
	hardNoSecrets(t, []*testenv.Env{env}, []string{key}, answers...)
}

// TestDeadRedis runs the server with REDIS_URL pointing at a port where
// nothing listens: reads are still served promptly, with limits counted
// per replica, while cancel_order fails closed.
func TestDeadRedis(t *testing.T) {
	t.Parallel()
	ip := hardIPs()
	logs := &testenv.Buffer{}
	shared, err := redisstore.New("redis://127.0.0.1:1/0", "hardening-dead-"+hardID("t"), hardLoggerTo(logs))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shared.Close() })
	const limit = 5
	env := testenv.New(t, dsn, testenv.Options{
		Shared: shared,
		Limits: hardLimits(func(l *limits.Config) { l.PerIP = perMinute(limit) }),
	})
	base := hardServe(t, env.Handler())
	cust, orders := hardCustomer(t, env, 1)
	key, keyID := env.Key(t, cust, auth.ScopeRead, auth.ScopeCancel)
	reader, flooder := ip(1), ip(2)
	c := hardClient(t, reader)
	var answers []hardResp

	t.Run("ReadsAreServedPromptly", func(t *testing.T) {
		for range 3 {
			start := time.Now()
			hardServed(t, hardDo(t, c, base, hardReq{key: key, body: hardGet(orders[0])}), orders[0])
			// Each request consults Redis for lockouts; with Redis down that
			// must cost a failed dial at most, not seconds of retries.
			if d := time.Since(start); d > 500*time.Millisecond {
				t.Errorf("a read took %v with Redis down", d)
			}
		}
	})

	t.Run("CancelFailsClosed", func(t *testing.T) {
		start := time.Now()
		r := hardDo(t, c, base, hardReq{key: key, body: hardCall("cancel_order", map[string]any{"order_id": orders[0]})})
		answers = append(answers, r)
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("cancel took %v with Redis down", d)
		}
		m := r.rpc(t)
		var msg string
		switch {
		case m.Error != nil:
			msg = m.Error.Message
		case m.Result != nil && m.Result.IsError:
			msg = m.text()
		default:
			t.Fatalf("cancel_order succeeded without its shared budget: %s", r.body)
		}
		if !strings.Contains(strings.ToLower(msg), "try again") {
			t.Fatalf("the error does not tell the caller to retry: %q", msg)
		}
		for _, leak := range []string{"redis", "127.0.0.1", "refused", "dial"} {
			if strings.Contains(strings.ToLower(r.body), leak) {
				t.Fatalf("the error leaks %q: %s", leak, r.body)
			}
		}
		if got := hardStatus(t, env, orders[0]); got != "pending" {
			t.Fatalf("order is %s after a refused cancellation", got)
		}
	})

	t.Run("AddressLimitStillHolds", func(t *testing.T) {
		f := hardClient(t, flooder)
		for range limit {
			hardServed(t, hardDo(t, f, base, hardReq{key: key, body: hardGet(orders[0])}), orders[0])
		}
		hardLimited(t, hardDo(t, f, base, hardReq{key: key, body: hardGet(orders[0])}))
	})

	if !strings.Contains(logs.String(), "Redis unreachable") {
		t.Errorf("the outage was not logged")
	}
	hardFlush(t, env)
	if got := hardToolCalls(t, env, keyID); got["cancel_order/ok"] != 0 || got["cancel_order/cancelled"] != 0 || got["get_order_status/ok"] != 3+limit ||
		got["cancel_order/error"]+got["cancel_order/rate_limited"] != 1 {
		t.Errorf("tool calls audited: %v", got)
	}
	if got := hardRefusals(t, env, flooder)["address_rate_limited"]; got != 1 {
		t.Errorf("%d address_rate_limited refusals audited, want 1", got)
	}
	hardNoSecrets(t, []*testenv.Env{env}, []string{key}, answers...)
	if strings.Contains(logs.String(), key) {
		t.Errorf("the key reached the Redis logger")
	}
}
