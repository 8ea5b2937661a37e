// Package app assembles the server: the one place where the database, the
// audit writer, authentication, limits and lockout, the tools and the MCP
// and HTTP layers are wired together. `server serve` and `server stdio`
// call New, and so do the tests (internal/testenv), with options for the
// limits, lockout policy, clock and faults they need: the tests exercise
// the production assembly, never a copy of it.
//
// Imports: internal/audit, internal/auth, internal/config, internal/confirm, internal/httpserver,
// internal/limits, internal/mcpserver, internal/metrics, internal/redisstore,
// internal/store, internal/surface, internal/tools and the go-sdk: every
// package that builds a component.
package app
