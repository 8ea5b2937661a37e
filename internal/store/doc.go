// Package store is the only code that talks to Postgres.
//
// It provides concrete types (Store, Order, APIKey, AuditEntry...) and
// translates every driver error into its own sentinels (ErrNotFound,
// ErrNotCancellable...) or a *DBError that carries only the SQLSTATE code and
// constraint name: Postgres detail text can quote personal data ("Failing row
// contains ..."), so it never leaves this package. No pgx type leaves it
// either.
//
// Security properties enforced here, each in one place:
//
//   - pool.go: every pooled connection switches to the least-privilege role
//     order_mcp_app, sends every statement that carries a value through the
//     extended protocol (so a default_query_exec_mode=simple_protocol in
//     DATABASE_URL cannot reopen multi-statement injection), and carries a
//     statement_timeout.
//   - access.go: every customer-data statement runs in a transaction bound to
//     one customer (or to staff) with set_config(..., true), which Postgres
//     row-level security enforces; the same binding is repeated in each
//     statement's WHERE clause, so a missed check reads as "not found".
//   - tracer.go: the query tracer logs statement names and durations, never
//     arguments, which are personal data here.
//
// Imports: migrations, pgx and goose. Never another internal package: the
// store is the bottom layer.
package store
