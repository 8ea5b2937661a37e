// Package security decides who a caller is and what the caller may reach.
//
// It holds the access-control half of the checklist, one control per file:
//
//   - principal.go: the Principal every request runs as, the scopes, and
//     the fail-closed mapping from a principal to a data binding
//     (customer or staff).
//   - apikey.go: API key format, generation and hashing.
//   - authenticate.go: turning a presented credential (API key or OAuth
//     JWT) into a Principal, with the reason for a refusal kept for the log.
//
// Imports: internal/store (for the key and lockout records it reads). It must
// not import tools, mcpserver or httpserver: those depend on it.
package security
