// Command devenv finds or starts a Postgres for development and tests, so
// that `make run`, `make test` and `make interop` work on a fresh clone with
// no manual step.
//
// The database is found in this order:
//
//  1. DATABASE_URL (for run) or TEST_DATABASE_URL / DATABASE_URL (for exec),
//     when set;
//  2. a Postgres answering on 127.0.0.1:5432 (user postgres, as on the
//     development and CI machines);
//  3. an embedded Postgres (github.com/fergusstrange/embedded-postgres),
//     pointed at the Postgres binaries already installed, when there are
//     any, so nothing needs downloading, with its version set to theirs.
//     Its files live in devenv/.pgdata (git-ignored).
//
// DEVENV_POSTGRES=embedded skips steps 1 and 2 (to try the embedded path on
// a machine that has a Postgres running).
//
// Postgres refuses to run as root; as root, step 3 stops with a message
// naming the alternatives instead of failing obscurely.
//
// For exec it also makes a Redis available: TEST_REDIS_URL, else the one
// on 127.0.0.1:6379, else a redis-server it starts when one is installed.
//
// It lives in a module of its own so that embedded-postgres and its
// dependencies stay out of the server's go.mod.
//
// Usage:
//
//	devenv run <server binary>   check MCP_HTTP_ADDR's port is free, migrate,
//	                             seed, mint a demo key (revoking the previous
//	                             run's: --replace), print how to call the
//	                             server, then serve; the set-up commands'
//	                             stderr is shown only when one fails, so the
//	                             server gives each start-up warning once
//	devenv exec -- <command...>  run command with TEST_DATABASE_URL set
//	devenv interop [-only suite,...] <binary>
//	                             drive the real server with MCP clients and
//	                             suites nobody here wrote (the TypeScript
//	                             SDKs v1 and v2, mcp-remote, the MCP
//	                             Inspector, the official conformance suite),
//	                             installed with npm from the lockfiles in
//	                             interop/; see interop.go
//	devenv conformance <binary>  the same, with only the conformance suite
//
// Imports: the standard library, fergusstrange/embedded-postgres and pgx.
package main
