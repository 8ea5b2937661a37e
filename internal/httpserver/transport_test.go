package httpserver_test

// Attacks on the transport itself: oversized bodies, slow headers
// (slowloris), and the headers every answer must carry whatever its
// status.

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/demo"
	"github.com/example/order-mcp/internal/httpserver"
	"github.com/example/order-mcp/internal/limits"
	"github.com/example/order-mcp/internal/refusal"
	"github.com/example/order-mcp/internal/testenv"
)

// TestOversizedBodiesAreRefused sends bodies over MaxBodyBytes, with and
// without Content-Length.
func TestOversizedBodiesAreRefused(t *testing.T) {
	t.Parallel()
	ip := addresses()
	const max = 2048
	srv := start(t, testenv.Options{HTTP: httpserver.Config{MaxBodyBytes: max}})
	customer := demo.Customers()[0]
	key, _ := srv.Key(t, customer.ID, auth.ScopeRead)
	order := ordersOf(t, dsn, customer.ID)[0]
	attacker := ip(1)
	c := clientFrom(t, attacker)
	// A valid request padded with whitespace: only its size is wrong.
	padded := func(n int) string { body := getBody(order); return body + strings.Repeat(" ", n-len(body)) }

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
	var answers []string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, c, srv.base, request{key: key, body: padded(tt.size), chunked: tt.chunked})
			answers = append(answers, r.String())
			if tt.want == http.StatusOK {
				served(t, r, order)
				return
			}
			m := r.rpc(t)
			if r.status != tt.want || m.Error == nil || m.Error.Message != refusal.BodyTooLarge.Message() {
				t.Fatalf("status %d, want %d: %s", r.status, tt.want, r.body)
			}
		})
	}

	t.Run("ServerStaysHealthy", func(t *testing.T) {
		served(t, do(t, clientFrom(t, ip(2)), srv.base, request{key: key, body: getBody(order)}), order)
	})

	flushAudit(t, srv.Env)
	if got := refusals(t, dsn, attacker)["body_too_large"]; got != 3 {
		t.Errorf("%d body_too_large refusals on record, want 3", got)
	}
	noSecrets(t, []*testenv.Env{srv.Env}, []string{key}, answers...)
}

// TestSlowHeadersAreCutOff plays slowloris: connections that send part of
// a request and then nothing. The server closes them, without an answer,
// once its header timeout (shortened here with ListenWith) passes, and
// serves everyone else meanwhile. Nothing is asserted about how long that
// took: a slow connection fails the test only if it is still open after a
// generous wait.
func TestSlowHeadersAreCutOff(t *testing.T) {
	t.Parallel()
	ip := addresses()
	env := testenv.New(t, dsn, testenv.Options{})
	timeouts := httpserver.DefaultTimeouts()
	timeouts.ReadHeader = 2 * time.Second
	srv, err := httpserver.ListenWith("127.0.0.1:0", env.Handler(), "", "", env.Logger, timeouts)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	addr := srv.Addr().String()
	base := "http://" + addr
	customer := demo.Customers()[0]
	key, _ := env.Key(t, customer.ID, auth.ScopeRead)
	order := ordersOf(t, dsn, customer.ID)[0]

	partials := []string{
		"POST /mcp HTTP/1.1\r\n",
		"POST /mcp HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: appl",
		"POST /mcp HTTP/1.1\r\nHost: " + addr + "\r\nAuthorization: Bearer " + key + "\r\nX-Padding: a",
	}
	const slowPerKind = 5
	type cut struct {
		data string
		err  error
	}
	results := make(chan cut, len(partials)*slowPerKind)
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
			// A bound on the wait, not a timing assertion: the server is
			// told to give up after two seconds.
			_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			b, err := io.ReadAll(conn) // returns when the server closes the connection
			results <- cut{data: string(b), err: err}
		}()
	}

	t.Run("OthersAreServedWhileSlowClientsHang", func(t *testing.T) {
		hc := clientFrom(t, ip(2))
		served(t, do(t, hc, base, request{key: key, body: getBody(order)}), order)
		if r := do(t, hc, base, request{method: http.MethodGet, path: "/healthz"}); r.status != http.StatusOK {
			t.Fatalf("healthz: %d", r.status)
		}
	})

	t.Run("SlowConnectionsAreClosedWithoutAnAnswer", func(t *testing.T) {
		for range len(partials) * slowPerKind {
			r := <-results
			var ne net.Error
			if errors.As(r.err, &ne) && ne.Timeout() {
				t.Fatalf("a slow connection was still open after 30s")
			}
			if r.data != "" {
				t.Fatalf("a slow connection got an answer: %q", r.data)
			}
		}
	})

	t.Run("ServerStaysHealthy", func(t *testing.T) {
		served(t, do(t, clientFrom(t, ip(3)), base, request{key: key, body: getBody(order)}), order)
	})

	// Nothing of a cut-off request reaches the handler, so nothing is on
	// record or logged for it: the access log shows only the requests that
	// completed.
	if n := strings.Count(env.Logs.String(), `"client_ip":"`+ip(1)+`"`); n != 0 {
		t.Errorf("%d handler log lines for the slow connections", n)
	}
	noSecrets(t, []*testenv.Env{env}, []string{key})
}

// TestSecurityHeadersOnEveryAnswer checks the headers every answer carries,
// whatever its status.
func TestSecurityHeadersOnEveryAnswer(t *testing.T) {
	t.Parallel()
	ip := addresses()
	srv := start(t, testenv.Options{
		Limits: limitsWith(func(l *limits.Config) { l.PerIP = perMinute(2) }),
		HTTP:   httpserver.Config{MaxBodyBytes: 4096},
	})
	customer := demo.Customers()[0]
	key, _ := srv.Key(t, customer.ID, auth.ScopeRead)
	order := ordersOf(t, dsn, customer.ID)[0]

	tests := []struct {
		name   string
		from   string
		req    request
		repeat int // send this many times, check the last
		want   int
		reason string // the refusal on record, if any
	}{
		{"ToolResult", ip(1), request{key: key, body: getBody(order)}, 1, http.StatusOK, ""},
		{"OwnOriginToolResult", ip(2), request{key: key, body: getBody(order), header: map[string]string{"Origin": srv.base}}, 1, http.StatusOK, ""},
		{"Healthz", ip(3), request{method: http.MethodGet, path: "/healthz"}, 1, http.StatusOK, ""},
		{"MissingCredential", ip(4), request{body: getBody(order)}, 1, http.StatusUnauthorized, "missing_credential"},
		{"ForeignOrigin", ip(5), request{key: key, body: getBody(order), header: map[string]string{"Origin": "https://evil.example"}}, 1, http.StatusForbidden, "foreign_origin"},
		{"UnknownPath", ip(6), request{method: http.MethodGet, path: "/admin"}, 1, http.StatusNotFound, ""},
		{"MethodNotAllowed", ip(7), request{method: http.MethodGet, key: key, header: map[string]string{"Accept": "text/event-stream"}}, 1, http.StatusMethodNotAllowed, "transport_405"},
		{"BodyTooLarge", ip(8), request{key: key, body: getBody(order) + strings.Repeat(" ", 5000)}, 1, http.StatusRequestEntityTooLarge, "body_too_large"},
		{"RateLimited", ip(9), request{key: key, body: getBody(order)}, 3, http.StatusTooManyRequests, "address_rate_limited"},
	}
	var answers []string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := clientFrom(t, tt.from)
			var r response
			for range tt.repeat {
				r = do(t, c, srv.base, tt.req)
			}
			answers = append(answers, r.String())
			if r.status != tt.want {
				t.Fatalf("status %d, want %d: %s", r.status, tt.want, r.body)
			}
			h := r.header
			for _, ch := range []struct{ header, want string }{
				{"X-Content-Type-Options", "nosniff"},
				{"Cache-Control", "no-store"},
				{"X-Frame-Options", "DENY"},
			} {
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
		tsrv := start(t, testenv.Options{HTTP: httpserver.Config{TLS: true}})
		c := clientFrom(t, ip(10))
		for _, req := range []request{
			{key: key, body: getBody(order)},
			{body: getBody(order)},
			{method: http.MethodGet, path: "/healthz"},
		} {
			r := do(t, c, tsrv.base, req)
			if hsts := r.header.Get("Strict-Transport-Security"); !strings.Contains(hsts, "max-age=") {
				t.Errorf("%s %s (%d): Strict-Transport-Security %q", req.method, req.path, r.status, hsts)
			}
		}
	})

	flushAudit(t, srv.Env)
	for _, tt := range tests {
		if tt.reason == "" {
			continue
		}
		if got := refusals(t, dsn, tt.from)[tt.reason]; got != 1 {
			t.Errorf("%s: %d %s refusals on record, want 1", tt.name, got, tt.reason)
		}
	}
	noSecrets(t, []*testenv.Env{srv.Env}, []string{key}, answers...)
}
