// Package testenv assembles the server for tests, with the production
// assembly (internal/app) on a test database: a real MCP client over
// stdio-like pipes or real HTTP, a clock tests move by hand, an OAuth
// issuer, and helpers to inspect what the server logged and audited.
//
// Imports: internal/app, internal/audit, internal/auth, internal/config,
// internal/dbtest, internal/demo, internal/httpserver, internal/limits,
// internal/logging, internal/mcpserver, internal/redisstore, internal/sdkfix,
// internal/store, internal/tools, golang-jwt, jsonschema-go, pgx,
// ulule/limiter and the go-sdk.
package testenv
