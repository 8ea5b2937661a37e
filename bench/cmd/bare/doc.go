// Command bare is the "B" of the benchmark's A/B comparison: a go-sdk
// v1.8.0 Streamable HTTP server (stateless, JSON responses, as the real
// server runs) with exactly one tool, get_order_status, and no security at
// all: no authentication, no limits, no lockout, no request inspection, no
// audit trail, no access log, no row-level security, no sanitizing. It is
// what the same lookup costs when nothing else is done, so that
// "the real server's throughput is at least 0.9x bare" means the controls
// cost at most 10%.
//
// To keep the comparison honest it does the same work the real server must
// do to answer, and no less:
//
//   - the tool's definition (name, description, input and output schemas,
//     annotations) is read at start-up from the real server's golden file,
//     internal/tools/testdata/get_order_status.json (-tool), so the SDK
//     validates the same input and output schemas and tools/list would
//     advertise the same tool;
//   - each call reads the same rows of the same database: the order joined
//     with its customer and shipment, and the order's status events, in
//     one statement on the extended protocol (pgx's default) through a
//     pool of 10 connections, like the real server's default DB_MAX_CONNS;
//   - it returns the same output shape, field for field, with a trivial
//     version of the masking, so the answers are about the same size.
//
// It connects with DATABASE_URL as given (a superuser is fine: row-level
// security is not what this server measures).
//
// Routes:
//
//	POST /mcp           the MCP endpoint
//	GET  /readyz        200 when the database answers
//	GET  /debug/allocs  {"mallocs_total": N}: heap allocations so far, from
//	                    runtime/metrics (/gc/heap/allocs:objects plus
//	                    /gc/heap/tiny/allocs:objects, which together are what
//	                    runtime.MemStats.Mallocs and Prometheus's
//	                    go_memstats_mallocs_total count), so the runner can
//	                    compute allocations per call as it does for the
//	                    real server's /metrics
//
// Usage:
//
//	DATABASE_URL=postgres://... bare -tool ../internal/tools/testdata/get_order_status.json [-addr 127.0.0.1:0]
//
// It prints "listening on http://<addr>/mcp" on stdout once it accepts
// connections, and stops gracefully on SIGINT or SIGTERM.
//
// Imports: the standard library, go-sdk (mcp), jsonschema-go (to hold the
// golden schemas) and pgx (pgxpool).
package main
