package httpserver_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/demo"
	"github.com/example/order-mcp/internal/surface"
	"github.com/example/order-mcp/internal/testenv"
)

// wellKnown is the /.well-known/mcp-tool-digest body.
type wellKnown struct {
	JWS      string           `json:"jws"`
	JWK      surface.JWK      `json:"jwk"`
	Document surface.Document `json:"document"`
}

// TestToolDigestIsPublishedAndPinned: the signed digest of the tool
// surface is served to anyone at the well-known path, verifies with the
// published key (the server's configured one), and is what every caller
// is handed in _meta on every protocol and transport: the same JWS, and
// the digest of exactly the tools/list that caller gets, which is the
// document's entry for its scopes.
func TestToolDigestIsPublishedAndPinned(t *testing.T) {
	t.Parallel()
	srv := start(t, testenv.Options{})
	ip := addresses()
	anon := clientFrom(t, ip(1))

	r := do(t, anon, srv.base, request{method: http.MethodGet, path: "/.well-known/mcp-tool-digest",
		header: map[string]string{"Origin": "https://any-client.example"}})
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") ||
		r.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("well-known: %s", r)
	}
	var published wellKnown
	if err := json.Unmarshal([]byte(r.body), &published); err != nil {
		t.Fatal(err)
	}
	keys := do(t, anon, srv.base, request{method: http.MethodGet, path: "/.well-known/mcp-tool-digest/jwks.json"})
	var set struct{ Keys []surface.JWK }
	if err := json.Unmarshal([]byte(keys.body), &set); err != nil || len(set.Keys) != 1 || set.Keys[0] != published.JWK {
		t.Fatalf("jwks.json %s does not hold the document's key", keys)
	}
	pub, err := published.JWK.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	if configured := ed25519.NewKeyFromSeed(testenv.TestToolDigestSeed[:]).Public(); !pub.Equal(configured) {
		t.Fatal("the published key is not TOOL_DIGEST_SIGNING_KEY's")
	}
	payload, err := surface.Verify(published.JWS, pub)
	if err != nil {
		t.Fatalf("the published JWS does not verify with the published key: %v", err)
	}
	var signed surface.Document
	if err := json.Unmarshal(payload, &signed); err != nil {
		t.Fatal(err)
	}
	entry := func(scopes []auth.Scope) string {
		want := strings.Join(auth.ScopeNames(scopes), " ")
		for _, s := range signed.Surfaces {
			if strings.Join(s.Scopes, " ") == want {
				return s.Digest
			}
		}
		t.Fatalf("the signed document has no entry for %q", want)
		return ""
	}

	customer := demo.Customers()[0].ID
	callers := []struct {
		name     string
		customer string
		scopes   []auth.Scope // sorted, as the document names them
	}{
		{"Reader", customer, []auth.Scope{auth.ScopeRead}},
		{"ReaderWhoCancels", customer, []auth.Scope{auth.ScopeCancel, auth.ScopeRead}},
		{"CancellerOnly", customer, []auth.Scope{auth.ScopeCancel}},
		{"Staff", "", []auth.Scope{auth.ScopeCancel, auth.ScopeRead, auth.ScopeReadAny}},
	}
	digests := map[string]string{}
	for i, caller := range callers {
		key, _ := srv.Key(t, caller.customer, caller.scopes...)
		own := entry(caller.scopes)
		digests[caller.name] = own
		check := func(t *testing.T, where string, meta mcp.Meta) {
			t.Helper()
			var m surface.Meta
			b, _ := json.Marshal(meta[surface.MetaKey])
			if err := json.Unmarshal(b, &m); err != nil || m.Digest == "" {
				t.Fatalf("%s: no tool digest under %s in _meta: %s", where, surface.MetaKey, b)
			}
			if m.JWS != published.JWS || m.KeyID != published.JWK.Kid {
				t.Errorf("%s: the JWS in _meta is not the one the well-known path serves", where)
			}
			if m.Digest != own || strings.Join(m.Scopes, " ") != strings.Join(auth.ScopeNames(caller.scopes), " ") {
				t.Errorf("%s: digest %s for scopes %v, want %s (the signed entry for %v)", where, m.Digest, m.Scopes, own, caller.scopes)
			}
		}
		// What the caller actually gets in tools/list hashes to its digest.
		recomputed := func(t *testing.T, cs *mcp.ClientSession) *mcp.ListToolsResult {
			t.Helper()
			res, err := cs.ListTools(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := surface.Digest(res.Tools); err != nil || got != own {
				t.Fatalf("the tools/list this caller got hashes to %s, its digest is %s (%v)", got, own, err)
			}
			return res
		}

		t.Run(caller.name+"/HTTP2025InInitialize", func(t *testing.T) {
			cs := connect(t, srv.base, bearerFrom(t, ip(10+i), key), testenv.Protocol20251125)
			check(t, "initialize", cs.InitializeResult().Meta)
			check(t, "tools/list", recomputed(t, cs).Meta)
		})
		t.Run(caller.name+"/HTTP2026InDiscover", func(t *testing.T) {
			rec := &recorder{next: bearerFrom(t, ip(20+i), key).Transport}
			cs := connect(t, srv.base, &http.Client{Transport: rec}, testenv.Protocol20260728)
			discover, ok := rec.result("server/discover")
			if !ok {
				t.Fatal("the client did not call server/discover")
			}
			var res struct {
				Meta mcp.Meta `json:"_meta"`
			}
			if err := json.Unmarshal(discover, &res); err != nil {
				t.Fatal(err)
			}
			check(t, "server/discover", res.Meta)
			check(t, "tools/list", recomputed(t, cs).Meta)
		})
		t.Run(caller.name+"/Stdio", func(t *testing.T) {
			cs := srv.Connect(t, key, testenv.Protocol20251125)
			check(t, "initialize", cs.InitializeResult().Meta)
			check(t, "tools/list", recomputed(t, cs).Meta)
		})
	}
	// Callers who see different tools are handed different digests.
	if digests["Reader"] == digests["ReaderWhoCancels"] || digests["Reader"] == digests["CancellerOnly"] {
		t.Errorf("different surfaces, one digest: %v", digests)
	}
}

// recorder keeps the JSON-RPC results the server sent, by method.
type recorder struct {
	next    http.RoundTripper
	mu      sync.Mutex
	results map[string]json.RawMessage
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var method string
	if req.Body != nil {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		var m struct{ Method string }
		_ = json.Unmarshal(body, &m)
		method = m.Method
	}
	resp, err := r.next.RoundTrip(req)
	if err != nil || method == "" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	var m struct{ Result json.RawMessage }
	if json.Unmarshal(body, &m) == nil && m.Result != nil {
		r.mu.Lock()
		if r.results == nil {
			r.results = map[string]json.RawMessage{}
		}
		r.results[method] = m.Result
		r.mu.Unlock()
	}
	return resp, nil
}

func (r *recorder) result(method string) (json.RawMessage, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	res, ok := r.results[method]
	return res, ok
}
