package httpserver_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/testenv"
)

// TestUnknownRoutesAreNotLoggedByPath: the path of a request no route
// matched is whatever the client typed. A misconfigured client puts its key
// there, a probe puts anything; the access log records "unmatched" and the
// method only if it is a real one.
func TestUnknownRoutesAreNotLoggedByPath(t *testing.T) {
	t.Parallel()
	srv := start(t, testenv.Options{})
	key, _ := srv.Key(t, "", auth.ScopeRead, auth.ScopeReadAny)
	c := clientFrom(t, addresses()(1))
	for _, path := range []string{
		"/" + key,
		"/mcp/" + key,
		"/orders/maya.lindqvist@example.com",
		"/call/+46701234567",
	} {
		r := do(t, c, srv.base, request{method: http.MethodGet, path: path})
		if r.status != http.StatusNotFound && r.status != http.StatusMethodNotAllowed {
			t.Fatalf("GET %s: status %d", path, r.status)
		}
	}
	do(t, c, srv.base, request{method: "CANCELALLORDERS", path: "/healthz"})
	logs := srv.Logs.String()
	for _, leak := range []string{key[len(key)-20:], "maya.lindqvist", "example.com", "46701234567", "CANCELALLORDERS", "/orders/", "/call/"} {
		if strings.Contains(logs, leak) {
			t.Errorf("the access log holds %q:\n%s", leak, logs)
		}
	}
	if !strings.Contains(logs, `"path":"unmatched"`) {
		t.Errorf("no access log line says unmatched:\n%s", logs)
	}
}
