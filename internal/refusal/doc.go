// Package refusal is the one catalogue of what a client sees when the
// server refuses a request or fails: for each kind, its JSON-RPC code, its
// HTTP status when the HTTP layer refuses before the MCP layer, the name
// the audit trail and logs record, and its fixed text.
//
// Checklist: "Error handling: avoid verbose errors or stack traces". Texts
// are fixed, or formats whose arguments are the server's own words (a
// scope, a tool name, a number of seconds, a correlation id), never the
// client's input: the go-sdk puts a handler's err.Error() into the result
// verbatim and its own errors quote what the client sent, so this table is
// a security control, not a nicety.
//
// docs/ERRORS.md shows the table as clients meet it; `make docs` generates
// it from the table itself (reference.go), and a test fails when it drifts.
//
// Imports: the go-sdk (jsonrpc, mcp), for its codes only.
package refusal
