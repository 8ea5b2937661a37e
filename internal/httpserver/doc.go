// Package httpserver is the Streamable HTTP transport: every route, and in
// front of the MCP endpoint the chain of controls that can refuse a request
// before the MCP layer sees it, cheapest refusal first (routes.go lists it
// on one screen):
//
//	body size -> Host -> Origin -> per-address rate limit ->
//	lockout + authentication -> JSON-RPC inspection ->
//	per-principal rate limit and concurrency -> scope pre-check -> MCP
//
// Refusals here answer with the HTTP status the MCP authorization spec and
// RFC 6750 call for (401 with a WWW-Authenticate challenge, 403
// insufficient_scope, 429 with Retry-After), a fixed message, and one
// aggregated audit record per source, reason and minute. The SDK's own
// error answers are rewritten to fixed texts (internal/sdkfix).
//
// Imports: internal/audit, internal/auth, internal/limits, internal/logging,
// internal/mcpserver, internal/refusal, internal/sdkfix, internal/tools (for
// the scopes each tool needs) and the go-sdk. Never internal/store: the HTTP
// layer reaches the database only through the components it is given.
package httpserver
