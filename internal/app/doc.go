// Package app assembles the server: the one place where the database, the
// audit writer, authentication, limits and lockout, the tools and the MCP
// and HTTP layers are wired together. `server serve` and `server stdio`
// call New, and so do the tests (internal/testenv), with options for the
// limits, lockout policy, clock and faults they need: the tests exercise
// the production assembly, never a copy of it.
//
// Imports: every internal package that builds a component (audit, auth,
// config, httpserver, limits, mcpserver, redisstore, store, tools) and the
// go-sdk's mcp package.
package app
