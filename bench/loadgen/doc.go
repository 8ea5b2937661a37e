// Package loadgen is the benchmark's load generator: N clients, each on a
// kept-alive HTTP connection, calling get_order_status over MCP Streamable
// HTTP as fast as the server answers, for a warm-up and then a measured
// window. It is a package rather than only a command so that the runner
// can read the servers' counters exactly at the window's edges (Config.Mark)
// and so that its classification of answers can be tested over real HTTP.
//
// Trustworthiness comes first. A server that refuses quickly would look
// fast, so every answer is classified (Classify) and any answer that is not
// a successful tool result makes the whole run invalid (Result.Valid): an
// HTTP status other than 200, a JSON-RPC error, a tool result with
// isError: true, or a body that cannot be parsed. Failures count during the
// warm-up too. Only successful calls that complete inside the window count
// towards throughput and latency.
//
// The generator shares the machine with the server and Postgres, so it is
// kept cheap: request bodies are serialised once, each client reuses one
// read buffer, answers are decoded only as far as the JSON-RPC envelope and
// the result's isError, and latency goes into a fixed-size log-linear
// histogram per client (Histogram) instead of a growing slice.
//
// Imports: the standard library only.
package loadgen
