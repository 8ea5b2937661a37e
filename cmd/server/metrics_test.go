package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/example/order-mcp/internal/demo"
	"github.com/example/order-mcp/internal/testenv"
)

// TestMetricsAreOnTheirOwnListenerOnly: with MCP_METRICS_ADDR set, the
// metrics are served there and nowhere else (not on the MCP port, where
// every MCP caller could read them), they count what the server did, and
// no label carries an id, a key or anything a client chose.
func TestMetricsAreOnTheirOwnListenerOnly(t *testing.T) {
	env := prodEnv("MCP_METRICS_ADDR=127.0.0.1:0")
	cli(t, env, "migrate")
	cli(t, env, "seed")
	customer := demo.Customers()[0].ID
	key := lastLine(cli(t, env, "keys", "create", "--name", "metrics", "--scopes", "orders:read", "--customer", customer))
	url, stderr, stop := startServe(t, env)
	defer stop()
	// The line is logged before "listening on" is printed, but stderr is
	// copied from the process by another goroutine: wait for it.
	var m []string
	waitFor(t, 10*time.Second, "the metrics endpoint in the log", func() bool {
		m = regexp.MustCompile(`"endpoint":"(http://[^"]+/metrics)"`).FindStringSubmatch(stderr.String())
		return m != nil
	})
	metricsURL := m[1]

	// 2025-11-25: under 2026-07-28 the SDK's transport refuses an unknown
	// tool name before the MCP layer (it is counted as a refusal instead).
	cs := connect(t, &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: testenv.BearerClient(key), MaxRetries: -1},
		testenv.Protocol20251125)
	orders := testenv.Call(t, cs, "list_recent_orders", map[string]any{})
	if orders.IsError {
		t.Fatalf("list: %s", testenv.Text(orders))
	}
	_, _ = cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "no_such_tool_" + key[6:18], Arguments: map[string]any{}})
	get := func(u string) (int, string) {
		t.Helper()
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	status, body := get(metricsURL)
	if status != http.StatusOK {
		t.Fatalf("metrics: %d", status)
	}
	for _, want := range []string{
		`mcp_server_operation_duration_seconds_count{error_type="",gen_ai_tool_name="list_recent_orders",mcp_method_name="tools/call"}`,
		`gen_ai_tool_name="unknown"`,
		`order_mcp_audit_records_total{result="committed"}`,
		`order_mcp_db_pool_connections{state="max"}`,
		"order_mcp_canary_hits_total 0",
		"order_mcp_rate_limit_evictions_total 0",
		`go_memstats_mallocs_total`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for _, leak := range []string{key[6:18], customer, "no_such_tool", "127.0.0.1"} {
		if strings.Contains(body, leak) {
			t.Errorf("a metric carries %q", leak)
		}
	}
	if status, _ := get(strings.TrimSuffix(url, "/mcp") + "/metrics"); status != http.StatusNotFound && status != http.StatusMethodNotAllowed {
		t.Errorf("the MCP port answers /metrics with %d", status)
	}
}
