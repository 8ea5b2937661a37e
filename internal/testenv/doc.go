// Package testenv assembles the whole server for tests: a real database
// (from dbtest), the least-privilege store, the audit writer, the
// authenticator, limits, the MCP server and, on demand, the real HTTP
// handler on a loopback port. Tests drive it through real MCP clients.
//
// Its wiring mirrors cmd/server's wire.go with test knobs (generous limits
// unless a test asks otherwise, captured logs, a query observer); the
// end-to-end test in cmd/server runs the real wiring.
//
// Only tests import this package. It imports the internal packages it
// assembles (not config: tests set their knobs directly), dbtest, pgx, the
// go-sdk, golang-jwt (the test OAuth issuer) and ulule/limiter.
package testenv
