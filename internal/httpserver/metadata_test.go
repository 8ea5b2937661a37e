package httpserver_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/httpserver"
	"github.com/example/order-mcp/internal/testenv"
)

// TestProtectedResourceMetadata fetches the RFC 9728 metadata a client
// discovers through a 401 challenge: it names this resource, the one
// issuer trusted and the scopes; any origin may read it; and the challenge
// points to it. With API keys only there is no authorization server to
// advertise, and the paths do not exist.
func TestProtectedResourceMetadata(t *testing.T) {
	t.Parallel()
	paths := []string{"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"}
	ip := addresses()
	c := clientFrom(t, ip(1))
	get := func(t *testing.T, base, path string, header map[string]string) response {
		t.Helper()
		return do(t, c, base, request{method: http.MethodGet, path: path, header: header})
	}

	t.Run("OAuthConfigured", func(t *testing.T) {
		srv := startOAuth(t, testenv.Options{})
		for _, path := range paths {
			t.Run("GET"+path, func(t *testing.T) {
				r := get(t, srv.base, path, map[string]string{"Origin": "https://any-client.example"})
				if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
					t.Fatalf("status %d %s: %s", r.status, r.header.Get("Content-Type"), r.body)
				}
				var meta struct {
					Resource             string   `json:"resource"`
					AuthorizationServers []string `json:"authorization_servers"`
					ScopesSupported      []string `json:"scopes_supported"`
					BearerMethods        []string `json:"bearer_methods_supported"`
				}
				if err := json.Unmarshal([]byte(r.body), &meta); err != nil {
					t.Fatal(err)
				}
				if meta.Resource != oauthResource {
					t.Fatalf("resource %q, want %q", meta.Resource, oauthResource)
				}
				if !slices.Equal(meta.AuthorizationServers, []string{srv.issuer.ID}) {
					t.Fatalf("authorization_servers %v, want [%s]", meta.AuthorizationServers, srv.issuer.ID)
				}
				got := slices.Sorted(slices.Values(meta.ScopesSupported))
				want := slices.Sorted(slices.Values(auth.ScopeNames(auth.KnownScopes())))
				if !slices.Equal(got, want) {
					t.Fatalf("scopes_supported %v, want %v", got, want)
				}
				if !slices.Equal(meta.BearerMethods, []string{"header"}) {
					t.Fatalf("bearer_methods_supported %v: only the header may carry tokens", meta.BearerMethods)
				}
				if acao := r.header.Get("Access-Control-Allow-Origin"); acao != "*" {
					t.Fatalf("Access-Control-Allow-Origin %q: any origin may read the metadata", acao)
				}
			})
			t.Run("CORSPreflight"+path, func(t *testing.T) {
				r := do(t, c, srv.base, request{method: http.MethodOptions, path: path, header: map[string]string{
					"Origin": "https://any-client.example", "Access-Control-Request-Method": "GET"}})
				if r.status >= 300 || r.header.Get("Access-Control-Allow-Origin") != "*" ||
					!strings.Contains(r.header.Get("Access-Control-Allow-Methods"), "GET") {
					t.Fatalf("preflight: %d %v", r.status, r.header)
				}
			})
		}

		t.Run("ChallengePointsToTheMetadata", func(t *testing.T) {
			r := do(t, c, srv.base, request{body: callBody("list_recent_orders", map[string]any{})})
			if r.status != http.StatusUnauthorized {
				t.Fatalf("status %d", r.status)
			}
			pointer := challenge(t, r.header.Get("WWW-Authenticate"))["resource_metadata"]
			u, err := url.Parse(pointer)
			if err != nil {
				t.Fatal(err)
			}
			res, _ := url.Parse(oauthResource)
			if u.Scheme != res.Scheme || u.Host != res.Host || !slices.Contains(paths, u.Path) || u.RawQuery != "" {
				t.Fatalf("resource_metadata %q is not this resource's metadata", pointer)
			}
			// The test server stands in for mcp.example.test.
			if m := get(t, srv.base, u.Path, nil); m.status != http.StatusOK || !strings.Contains(m.body, `"resource":"`+oauthResource+`"`) {
				t.Fatalf("%s: %d %s", u.Path, m.status, m.body)
			}
		})
	})

	// Behind a proxy that adds a path prefix the resource URL's path is not
	// /mcp; the challenge must still point to a document that exists.
	t.Run("ResourceURLWithAPrefix", func(t *testing.T) {
		const resource = "https://mcp.example.test/orders/mcp"
		issuer := testenv.NewIssuer(t)
		env := testenv.New(t, dsn, testenv.Options{
			TokenVerifier: issuer.Verifier(t, resource),
			HTTP:          httpserver.Config{ResourceURL: resource, OAuthIssuer: issuer.ID},
		})
		base := serve(t, env.Handler())
		r := do(t, c, base, request{body: callBody("list_recent_orders", map[string]any{})})
		pointer, err := url.Parse(challenge(t, r.header.Get("WWW-Authenticate"))["resource_metadata"])
		if err != nil || pointer.Path != "/.well-known/oauth-protected-resource/orders/mcp" {
			t.Fatalf("resource_metadata %v (%v)", pointer, err)
		}
		if m := get(t, base, pointer.Path, nil); m.status != http.StatusOK || !strings.Contains(m.body, `"resource":"`+resource+`"`) {
			t.Fatalf("%s: %d %s", pointer.Path, m.status, m.body)
		}
	})

	t.Run("APIKeysOnly", func(t *testing.T) {
		srv := start(t, testenv.Options{})
		for _, path := range paths {
			t.Run("NoMetadataAt"+path, func(t *testing.T) {
				r := get(t, srv.base, path, nil)
				if r.status != http.StatusNotFound {
					t.Fatalf("status %d, want 404: %s", r.status, r.body)
				}
				if strings.Contains(r.body, "authorization_servers") {
					t.Fatalf("metadata served without OAuth: %s", r.body)
				}
			})
		}
	})
}
