package httpserver

import "net/http"

// ToolDigest is the signed digest of the tool surface (internal/surface):
// what /.well-known/mcp-tool-digest serves.
type ToolDigest interface {
	// Document is the signed document: the compact JWS, the public key
	// as a JWK, and the payload in readable form.
	Document() []byte
	// KeySet is the public key as a JWK Set.
	KeySet() []byte
}

// The tool digest's paths. The document is public by design, like the
// protected resource metadata: it names scopes and digests, never a tool
// or a caller, and a client needs it before it may call anything. It is
// the same bytes for every request, computed at start-up.
const (
	toolDigestPath = "/.well-known/mcp-tool-digest"
	toolDigestKeys = "/.well-known/mcp-tool-digest/jwks.json"
)

// staticJSON serves body, the same for every request, to any origin.
func staticJSON(body []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Access-Control-Allow-Origin", "*")
		_, _ = w.Write(body)
	})
}
