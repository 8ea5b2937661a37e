// Package bench is the home of the A/B benchmark behind `make bench`: the
// real server with every security control on, against a bare go-sdk
// server doing the same lookup on the same database. It holds no code of
// its own; this file is the map.
//
//	cmd/runner   what make bench and make bench-smoke run: sets up a fresh
//	             database, starts both servers, measures, prints the report
//	             (its doc comment is the usage and explains every column)
//	cmd/bare     the bare server: one tool, no controls
//	cmd/loadgen  the load generator on its own, against any running server
//	             (for profiling a server while it is under load)
//	loadgen      the load generator: closed-loop clients, classification of
//	             every answer, latency histogram
//	procstat     CPU time and memory of processes, from /proc
//
// It is a module of its own (github.com/example/order-mcp/bench) so that
// the benchmark's code never links into the server and the server's
// go.mod does not change for it. It does not import the server's packages
// either: the bare server reads the real tool definition from the golden
// file at run time, and the runner drives the real server only as a
// binary, through its command line and HTTP, as an operator and a client
// would. Its dependencies are pinned to the root module's versions (see
// go.mod), so both servers run the same SDK, JSON and driver code.
//
// Linux only: the measurements read /proc.
//
// Imports: nothing (documentation only).
package bench
