// Package config reads the server's configuration from the environment into
// one typed struct, validates it, and describes the resulting security
// posture without revealing a secret.
//
// Checklist: "Secrets management: use env vars or vaults, never hardcode".
//
//   - Every variable is read here (the healthcheck command, which only
//     finds the local port, aside) and documented once, in vars.go: Load
//     takes each name and default from Vars and refuses a name Vars lacks,
//     and docs/CONFIGURATION.md is generated from Vars (docs.go, `make
//     docs`), so the documentation cannot drift from the loader without a
//     test failing.
//   - Every secret X may also be given as X_FILE, a path to a file holding
//     it, which is how Docker and Kubernetes secrets and vault agents
//     (HashiCorp Vault Agent, the cloud secret managers' CSI drivers)
//     deliver secrets without code changes.
//   - A .env file is read only in development (MCP_ENV=development), and
//     variables already in the environment win over it.
//   - Outside development the server refuses to start with a known-weak or
//     example secret (the values in .env.example), with a database password
//     missing for a remote database, or with a remote database reached
//     without certificate verification (sslmode=verify-full).
//
// Imports: godotenv, ulule/limiter (for the rate format) and pgx (its pgconn,
// to read DATABASE_URL exactly as the driver will). Never internal/store or
// any other package of this module: everything else reads its configuration.
package config
