package mcpserver

import (
	"context"
	"maps"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/surface"
)

// Every caller is handed the digest of the tools it sees (internal/surface),
// under surface.MetaKey in the _meta of the results that describe the
// server: initialize (2025-11-25), server/discover (2026-07-28) and
// tools/list. Beside it is the signed document of every scope set's
// digest, the same text /.well-known/mcp-tool-digest serves, so a client
// can check its own tools/list against a digest the server signed, and
// notice when either changes.

// handOutDigest answers initialize and server/discover, adding the
// caller's digest when the caller is known. Neither method is refused
// here: an unknown caller is refused at its first tools/list or
// tools/call, as before, and simply gets no digest now.
func (g *gate) handOutDigest(ctx context.Context, next mcp.MethodHandler, method string, req mcp.Request) (mcp.Result, error) {
	res, err := next(ctx, method, req)
	if err != nil || res == nil || g.pin == nil {
		return res, err
	}
	if p := g.quietPrincipal(ctx, req); p != nil {
		g.attachDigest(res, p.Scopes)
	}
	return res, nil
}

// quietPrincipal is the caller, if it can be known without a refusal: the
// principal the HTTP layer authenticated for this request, or over stdio
// the session's key, checked without logging a failure (that is logged,
// and refused, when the key is used).
func (g *gate) quietPrincipal(ctx context.Context, req mcp.Request) *auth.Principal {
	if extra := req.GetExtra(); extra != nil && extra.TokenInfo != nil {
		p, _ := extra.TokenInfo.Extra[principalExtraKey].(*auth.Principal)
		return p
	}
	c, ok := ctx.Value(credentialKey{}).(credential)
	if !ok {
		return nil
	}
	p, err := g.auth.Authenticate(ctx, c.secret)
	if err != nil {
		return nil
	}
	return p
}

// attachDigest puts the digest of what a caller with scopes sees in res's
// _meta, beside whatever else is there.
func (g *gate) attachDigest(res mcp.Result, scopes []auth.Scope) {
	if g.pin == nil {
		return
	}
	meta := maps.Clone(res.GetMeta())
	if meta == nil {
		meta = map[string]any{}
	}
	meta[surface.MetaKey] = g.pin.Meta(scopes)
	res.SetMeta(meta)
}
