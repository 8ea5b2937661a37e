// Package auth decides who a caller is: it turns a presented credential
// into a Principal, and a principal into the data binding every statement
// runs under.
//
// Checklist: "Authentication: restrict access to authorized clients" and
// "Role-based capabilities". One concern per file:
//
//   - principal.go: the Principal every request runs as, the typed scopes,
//     and the fail-closed mapping from a principal to a data binding
//     (customer or staff);
//   - apikey.go: API key format, generation and hashing;
//   - authenticate.go: a presented credential (API key or OAuth JWT) to a
//     Principal, with the reason for a refusal kept for the log;
//   - oauth.go: the OAuth resource server: JWT verification against the
//     issuer's JWKS, pinned issuer and audience, asymmetric algorithms
//     only, header rules (crit, typ, embedded keys), a lifetime bound.
//
// Limits and lockouts are internal/limits' job, not this package's.
//
// Imports: internal/store (the key records it reads and the binding it
// produces), golang-jwt and keyfunc. Never internal/limits: limits depend on
// principals, not the other way round.
package auth
