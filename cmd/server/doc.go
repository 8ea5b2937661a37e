// Command server is the order-status MCP server: one binary for the
// server itself and its administration. README.md shows how to use it.
//
//   - main.go only calls run, which owns the command line, signals,
//     configuration and logging (run.go).
//   - internal/app assembles the parts in one place (the binary and the
//     tests build the same assembly): the store as the least-privilege
//     role, the audit writer, rate limits and lockout (memory or Redis),
//     the OAuth verifier, the authenticator and the MCP server with its
//     tools.
//   - serve.go runs Streamable HTTP; stdio.go runs stdio as MCP_API_KEY;
//     profile.go, built only with -tags profile, writes a CPU profile for
//     docs/PERFORMANCE.md;
//     admin.go holds migrate, seed, keys and audit verify, each recorded in
//     the audit trail; tools.go prints the signed digest of the tool
//     surface (`tools digest`), which needs no database.
//
// Imports: internal/app, internal/audit, internal/auth, internal/config, internal/demo,
// internal/httpserver, internal/logging, internal/mcpserver, internal/sdkfix,
// internal/store, internal/surface and internal/tools (`tools digest`) and the
// go-sdk: the packages it wires. Never internal/dbtest or
// internal/testenv, which only its tests use.
package main
