// Package metrics is what an operator sees of the running server:
// Prometheus metrics, served only on their own listener (MCP_METRICS_ADDR),
// never on the MCP port.
//
// Checklist: "Logging" and "audit everything" leave a record of each
// event; metrics show the rates: how long MCP operations take (named after
// the OpenTelemetry conventions for MCP), refusals by reason, what became
// of audit records (committed, spilled, replayed, lost), the audit queue
// and commit latency, the database pool, canary hits, and the Go runtime.
// Every label value comes from a closed set the server defines, never from
// a request.
//
// Imports: internal/store (pool statistics) and prometheus.
package metrics
