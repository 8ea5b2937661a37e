// Package redisstore holds the Redis adapters: rate-limit counters and
// lockout state shared by every replica when REDIS_URL is set. Their
// Postgres counterparts live in internal/store; the policies that use
// both live in internal/limits.
//
// Checklist: "Rate limiting". What a dead Redis does is decided here: the
// client connects lazily, times out after 250 ms and never retries, and a
// one-second circuit breaker skips it after a failure, so a dead Redis
// neither stops the server starting nor stalls requests; read budgets and
// lockouts then count per replica in memory (and the log says so), while
// the destructive tools' budget fails closed.
//
// Imports: internal/limits, internal/store (the lockout state record),
// go-redis and ulule/limiter.
package redisstore
