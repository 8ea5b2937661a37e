// Package limits bounds what callers can make the server do: rate limits
// per address and per caller, concurrency, the budget of destructive
// tools, the enumeration throttle, and the brute-force lockout.
//
// Checklist: "Rate limiting: prevent abuse and brute-force attacks" and
// "block repeated failed requests or malformed payloads". One concern per
// file:
//
//   - limits.go: rate, concurrency and per-tool budgets over ulule/limiter
//     stores (memory here, Redis in internal/redisstore);
//   - memory.go: the in-memory store of those counters, capped at
//     MaxCounters;
//   - lockout.go: the lockout policy, its buckets (per address, whatever
//     key id a credential names: see AddressBucket for why), the
//     in-memory store and RecentKeys;
//   - error.go: the refusal every limit and lockout returns.
//
// Imports: internal/auth (the principal a budget is charged to),
// internal/refusal, internal/store (the lockout state record) and
// ulule/limiter. Never internal/redisstore, which depends on it.
package limits
