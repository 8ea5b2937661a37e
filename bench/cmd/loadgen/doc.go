// Command loadgen runs the benchmark's load generator against a server
// that is already running: yours, while you profile it. It calls
// get_order_status over Streamable HTTP with N closed-loop clients, order
// ids round-robin, for a warm-up and a measured window, and prints calls
// per second, latency percentiles and whether every answer was a success
// (any failure makes the run INVALID and the exit status 1).
//
// Usage:
//
//	loadgen -url http://127.0.0.1:8080/mcp -key "$KEY" -database "$DATABASE_URL" [-clients 16] [-duration 10s] [-warmup 2s]
//	loadgen -url http://127.0.0.1:9090/mcp -ids ord_...,ord_...          # no -key: no Authorization header
//
// With -database it reads the order ids with SELECT id FROM orders (the
// user must be able to read every order: the owner or a superuser); the
// key must then be able to read them all too (a staff key). For example,
// against `make run`'s development server, with a profile of it:
//
//	go run ./cmd/loadgen -url http://127.0.0.1:8080/mcp -key "$KEY" -database "$DATABASE_URL" -duration 30s &
//	perf record -g -p "$(pgrep -n server)" -- sleep 20
//
// Imports: the standard library, pgx (for -database) and this module's
// loadgen.
package main
