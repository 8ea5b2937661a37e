// Command runner is `make bench`: the A/B benchmark that proves, or
// disproves, that the real server with every security control on keeps up
// with a bare go-sdk server doing the same lookup. The targets:
// throughput at least 0.90x bare, p99 latency at most 1.25x, peak RSS at
// most 2.0x, and a crowd of 100,000 distinct callers growing the server by
// at most 64 MiB.
//
// Usage (from the bench module; make bench does exactly this after make
// build):
//
//	cd bench && go run ./cmd/runner -server ../bin/server [flags]
//	make bench BENCHFLAGS='-duration 20s -runs 5'
//	make bench-smoke                  # CI: -smoke
//
// Flags:
//
//	-server PATH        the real server's binary (required; built by make build)
//	-duration 10s       measured window of each A/B run
//	-warmup 2s          unmeasured warm-up before each A/B run
//	-runs 3             A/B runs per side
//	-clients 16         concurrent clients in the A/B runs
//	-scaling-clients 1,4,16,64 and -scaling-duration 4s   the scaling section
//	-memory-callers 100000, -memory-workers 32, -memory-timeout 2m
//	                    the memory section: callers, requests in flight, and
//	                    when to stop sending (the report says how many went)
//	-replicas 2         serve processes of the replicas section
//	-skip-scaling, -skip-memory, -skip-replicas
//	-smoke              one 2 s run per side at 4 clients, plus the
//	                    revocation check; no scaling, replicas or memory
//	                    section. CI runs it so the runner cannot rot; it
//	                    checks validity, never timing.
//	-tool-def PATH      the golden get_order_status definition (default:
//	                    ../internal/tools/testdata/get_order_status.json)
//	-go go              the go command that builds the bare server
//
// What it does, in order:
//
//  1. builds the bare server (./cmd/bare) into a temporary directory; the
//     real server is the binary it is given, never rebuilt;
//  2. creates a fresh database bench_<random> on the Postgres at
//     TEST_DATABASE_URL, DATABASE_URL or
//     postgres://postgres@127.0.0.1:5432/postgres (dropped at the end,
//     after a failure or Ctrl-C too);
//  3. runs `server migrate`, `server seed` and `server keys create` (a
//     staff key: orders:read,orders:read:any) in production mode with a
//     random AUDIT_HMAC_KEY, exactly as an operator would;
//  4. starts `server serve` in production mode with every control on and
//     only the rate limits and the per-caller concurrency raised out of the
//     way (the load comes from one key on one address), without REDIS_URL,
//     and with MCP_METRICS_ADDR, whose /metrics is read for allocations
//     when the server offers it (n/a otherwise); then the bare server on the
//     same database; checks that both answer every order with answers of
//     about the same size;
//  5. A/B: alternates the sides (which one goes first changes every run),
//     one at a time, each run a warm-up and then a measured window;
//  6. scaling: one short run per side at 1, 4, 16 and 64 clients;
//  7. replicas (the figure of docs/SCALING.md): -replicas `server serve`
//     processes on the same database, each started as in step 4 plus
//     REDIS_URL=redis://127.0.0.1:6379 and a REDIS_PREFIX of this
//     invocation's own (the database's name), so that they share their
//     counters as a multi-replica deployment does; the A/B load (same
//     clients, warm-up, window and runs) against all of them, clients
//     spread round-robin over the replicas, alternating with the same load
//     against the first replica alone. CPU per call is summed over the
//     replicas, Redis's is reported beside Postgres's, and afterwards the
//     runner counts the replicas' keys in Redis and warns when there are
//     none or when a replica logged a warning or an error. A Redis that
//     does not answer PING stops the runner at once, before anything else
//     runs, unless -skip-replicas. On one machine the replicas share its
//     cores: the figure is the cost of sharing state, not scale-out
//     capacity;
//  8. revocation: a second key called in a loop while it is revoked, once
//     with `server keys revoke` and once with a plain SQL UPDATE; prints
//     how long it kept working, and any audit fallback metric;
//  9. memory: a fresh real server, its idle RSS, then one request from each
//     of 100,000 distinct 127.x.y.z addresses with made-up keys (every
//     tenth with the valid key), and its RSS again;
//  10. prints a summary to paste into docs/PERFORMANCE.md (and the
//     replicas table into docs/SCALING.md).
//
// What each column means, and why it can be trusted:
//
//   - calls/s: successful calls completed in the window over its length.
//     Every answer is classified (see package loadgen): one refusal, error
//     or unparseable answer anywhere in a run, warm-up included, makes the
//     run INVALID and the runner exit non-zero, so a server can never look
//     fast by refusing. Throughput's ratio is the mean of the runs' calls/s.
//   - p50, p99: latency of those calls from send to last byte, from a
//     log-linear histogram (under 1% error). The summary takes the median
//     of the runs' values, so one run disturbed by something else on the
//     machine moves it little.
//   - srv ms CPU/call: the server process's utime+stime from /proc over the
//     window, per call (summed over the replicas in the replicas section).
//     pg ms CPU/call: the same summed over every process
//     named postgres (WAL writer and checkpointer included, which is where
//     an audit trail's commits cost); the summary adds this database's
//     backends alone. Both servers share the Postgres, and only one side
//     runs at a time. /proc counts CPU in 10 ms ticks: keep windows long.
//   - allocs/call: heap allocations over the window per call, from the real
//     server's go_memstats_mallocs_total and the bare server's
//     /debug/allocs (the same counter).
//   - peak RSS: VmHWM during the run (reset through /proc/<pid>/clear_refs
//     before each run; marked * when that is not allowed and the peak is
//     since start); RSS now: VmRSS after the run.
//   - logs/call: lines the server wrote to stderr per call (the runner
//     reads them, as a log collector would).
//   - others CPU: what the rest of the machine used during the window, in
//     percent of one core (all CPU time minus the server, Postgres and the
//     runner). Above 10% the run's line names the biggest other processes
//     (and what processes that exited meanwhile used, such as a compiler
//     run by a build), and the summary warns: the machine was not quiet.
//
// The runner itself is the load generator, on the same machine: its CPU
// per call is in the summary.
//
// Exit status: 0 when every run was valid, whatever the timings (CI must
// not fail on a slow machine); non-zero for an INVALID run or for anything
// that failed to start.
//
// Imports: the standard library, pgx (to create, inspect and drop the
// database) and this module's loadgen and procstat. The few Redis commands
// the runner sends (PING, SCAN) are spoken directly (redis.go).
package main
