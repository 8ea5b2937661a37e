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
//   - oauth.go: the OAuth resource server: JWT verification against the
//     issuer's JWKS, pinned issuer and audience, asymmetric algorithms only.
//   - lockout.go: brute-force lockout with exponentially growing locks,
//     and where each kind of failure is counted.
//   - ratelimit.go: rate, concurrency and per-tool limits, in memory or in
//     Redis, and what happens when Redis is down.
//   - clientip.go: the client address, from the TCP peer unless a trusted
//     proxy says otherwise (and never from the leftmost X-Forwarded-For).
//   - limiterror.go: the refusal every limit and lockout returns.
//
// Imports: internal/store (for the key and lockout records it reads),
// golang-jwt, keyfunc, ulule/limiter and go-redis. It must not import tools,
// mcpserver or httpserver: those depend on it.
package security
