// Package mcpserver builds the MCP server: the tools of internal/tools
// behind one security middleware, the gate (gate.go), which every MCP
// request passes on every transport.
//
// Decisions that depend on which tool is called are made here, on the
// request the SDK itself decoded, so they hold over stdio as over HTTP and
// cannot be fooled by a body that parses differently elsewhere. The HTTP
// layer (internal/httpserver) adds earlier, cheaper refusals in front of it,
// but this layer stays the authority.
//
// errors.go is the one place that decides what a client sees when
// something fails.
//
// Imports: internal/audit, internal/auth, internal/confirm (its refusals),
// internal/limits, internal/logging,
// internal/refusal, internal/sdkfix, internal/store (error sentinels),
// internal/surface (the tool digest it hands out), internal/tools and the
// go-sdk. Never internal/httpserver, which wraps it.
package mcpserver
