package httpserver

import (
	"net/http"

	sdkauth "github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/example/order-mcp/internal/auth"
)

// protectedResourceMetadata serves RFC 9728 Protected Resource Metadata:
// which authorization server issues tokens for this resource, and which
// scopes exist. Clients find it through the resource_metadata parameter of
// a 401 challenge. It is public by design (any origin may read it); it is
// served only when OAuth is configured, since with API keys alone there is
// no authorization server to point to.
func (s *server) protectedResourceMetadata() http.Handler {
	return sdkauth.ProtectedResourceMetadataHandler(&oauthex.ProtectedResourceMetadata{
		Resource:               s.Config.ResourceURL,
		AuthorizationServers:   []string{s.Config.OAuthIssuer},
		ScopesSupported:        auth.ScopeNames(auth.KnownScopes()),
		BearerMethodsSupported: []string{"header"},
		ResourceName:           "Order status MCP server",
	})
}
