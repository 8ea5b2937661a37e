package httpserver_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/demo"
	"github.com/example/order-mcp/internal/httpserver"
	"github.com/example/order-mcp/internal/testenv"
)

// TestForeignOriginsAndHostsAreRefused plays a browser page on another
// origin, and a DNS-rebinding page whose name resolves to the loopback
// listener.
func TestForeignOriginsAndHostsAreRefused(t *testing.T) {
	t.Parallel()
	ip := addresses()
	const allowed = "https://app.example"
	srv := start(t, testenv.Options{HTTP: httpserver.Config{AllowedOrigins: []string{allowed}}})
	customer := demo.Customers()[0]
	key, _ := srv.Key(t, customer.ID, auth.ScopeRead)
	order := ordersOf(t, dsn, customer.ID)[0]
	attacker, bystander := ip(1), ip(2)
	c := clientFrom(t, attacker)
	own := srv.base // http://127.0.0.1:port
	port := strings.TrimPrefix(srv.base, "http://127.0.0.1:")

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
	var answers []string
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
				body = getBody(order)
			}
			r := do(t, c, srv.base, request{method: tt.method, key: key, body: body, header: h, host: tt.host})
			answers = append(answers, r.String())
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

	accepted := []struct {
		name, origin, host string
		wantCORS           bool
	}{
		{"NoOrigin", "", "", false},
		{"OwnOrigin", own, "", false},
		{"LocalhostHostAndOrigin", "http://localhost:" + port, "localhost:" + port, false},
		{"ConfiguredOrigin", allowed, "", true},
	}
	for _, tt := range accepted {
		t.Run(tt.name+"IsServed", func(t *testing.T) {
			h := map[string]string{}
			if tt.origin != "" {
				h["Origin"] = tt.origin
			}
			r := do(t, c, srv.base, request{key: key, body: getBody(order), header: h, host: tt.host})
			served(t, r, order)
			acao := r.header.Get("Access-Control-Allow-Origin")
			if tt.wantCORS && acao != allowed || !tt.wantCORS && acao != "" {
				t.Fatalf("Access-Control-Allow-Origin %q", acao)
			}
		})
	}

	t.Run("ConfiguredOriginPreflightIsAnswered", func(t *testing.T) {
		r := do(t, c, srv.base, request{method: http.MethodOptions, header: map[string]string{
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
		served(t, do(t, clientFrom(t, bystander), srv.base, request{key: key, body: getBody(order)}), order)
	})

	t.Run("AllowedHostsReplaceTheLoopbackRule", func(t *testing.T) {
		hsrv := start(t, testenv.Options{HTTP: httpserver.Config{AllowedHosts: []string{"mcp.example.com"}}})
		hc := clientFrom(t, ip(3))
		for _, host := range []string{"evil.example", strings.TrimPrefix(hsrv.base, "http://"), "localhost", "mcp.example.com.evil.example"} {
			r := do(t, hc, hsrv.base, request{key: key, body: getBody(order), host: host})
			if r.status != http.StatusForbidden || strings.Contains(r.body, "evil") {
				t.Fatalf("Host %s: status %d, want 403: %s", host, r.status, r.body)
			}
		}
		served(t, do(t, hc, hsrv.base, request{key: key, body: getBody(order), host: "mcp.example.com"}), order)
		flushAudit(t, hsrv.Env)
		if got := refusals(t, dsn, ip(3))["foreign_host"]; got != 4 {
			t.Errorf("%d foreign_host refusals on record, want 4", got)
		}
	})

	flushAudit(t, srv.Env)
	if got := refusals(t, dsn, attacker); got["foreign_origin"] != 9 || got["foreign_host"] != 3 {
		t.Errorf("refusals on record: %v, want 9 foreign_origin and 3 foreign_host", got)
	}
	noSecrets(t, []*testenv.Env{srv.Env}, []string{key}, answers...)
}
