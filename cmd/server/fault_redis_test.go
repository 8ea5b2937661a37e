package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/example/order-mcp/internal/dbtest"
	"github.com/example/order-mcp/internal/demo"
	"github.com/example/order-mcp/internal/faultenv"
	"github.com/example/order-mcp/internal/testenv"
	"github.com/example/order-mcp/internal/tools"
)

// TestFaultRedisKilledAndRestarted: the Redis that shares rate-limit
// state between replicas dies under a serving process and comes back.
// While it is gone, reads go on (their budgets count in memory) and
// cancel_order fails closed: it is refused, and the order is unchanged.
// Once Redis answers again, cancel_order works again, without a restart
// of the server.
func TestFaultRedisKilledAndRestarted(t *testing.T) {
	rd := faultenv.Redis(t)
	// A database of its own: the cancellation uses up a pending order and
	// a share of the customer's daily quota.
	database := dbtest.Scratch(t)
	env := faultEnv(database, t.TempDir(), "REDIS_URL="+rd.URL(),
		// The polling below calls cancel_order until it works: its budget is
		// out of the way too.
		"RATE_LIMIT_CANCEL=1000-H")
	db := ownerConn(t, database)
	customer := demo.Customers()[0].ID
	key := lastLine(cli(t, env, "keys", "create", "--name", "fault-redis", "--scopes", "orders:read,orders:cancel", "--customer", customer))
	subject := "apikey:" + strings.Split(key, "_")[1]
	order, status := pendingOrder(t, db, customer)

	url, stderr, stop := startServe(t, env)
	// Should the server ask the user to confirm a cancellation, the user
	// says yes: what is tested is the budget, not the confirmation.
	client := mcp.NewClient(&mcp.Implementation{Name: "fault-redis", Version: "1"}, &mcp.ClientOptions{
		ElicitationHandler: func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"confirm": true}}, nil
		},
	})
	cs, err := client.Connect(context.Background(),
		&mcp.StreamableClientTransport{Endpoint: url, HTTPClient: testenv.BearerClient(key), MaxRetries: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	call := func(name string, args map[string]any) (*mcp.CallToolResult, error) {
		return cs.CallTool(context.Background(), &mcp.CallToolParams{Name: name, Arguments: args})
	}
	reads := func(when string) {
		t.Helper()
		for range 5 {
			for _, c := range []struct {
				name string
				args map[string]any
			}{
				{"list_recent_orders", map[string]any{"limit": 3}},
				{"get_order_status", map[string]any{"order_id": order}},
			} {
				if res, err := call(c.name, c.args); err != nil || res.IsError {
					t.Fatalf("%s %s: %v %s", c.name, when, err, resultText(res))
				}
			}
		}
	}
	reads("with Redis up")

	rd.Kill()
	reads("with Redis dead (budgets in memory)")
	res, err := call("cancel_order", map[string]any{"order_id": order})
	switch {
	case err == nil && !res.IsError:
		t.Fatalf("cancel_order with Redis dead succeeded: %s", resultText(res))
	case err != nil:
		if leak := internalDetail([]byte(err.Error())); leak != "" {
			t.Errorf("the refusal reveals %q: %v", leak, err)
		}
	default:
		if leak := internalDetail([]byte(resultText(res))); leak != "" {
			t.Errorf("the refusal reveals %q: %s", leak, resultText(res))
		}
	}
	if s := status(); s != "pending" {
		t.Fatalf("a refused cancellation left the order %q", s)
	}

	rd.Start()
	attempts := 1
	var cancelled *mcp.CallToolResult
	waitFor(t, time.Minute, "cancel_order working again once Redis is back", func() bool {
		attempts++
		res, err := call("cancel_order", map[string]any{"order_id": order})
		if err == nil && !res.IsError {
			cancelled = res
			return true
		}
		if s := status(); s != "pending" {
			t.Fatalf("a refused cancellation left the order %q", s)
		}
		time.Sleep(200 * time.Millisecond) // pacing: the circuit breaker retries Redis after a second
		return false
	})
	var out struct {
		Status           string `json:"status"`
		AlreadyCancelled bool   `json:"already_cancelled"`
	}
	b, _ := json.Marshal(cancelled.StructuredContent)
	if err := json.Unmarshal(b, &out); err != nil || out.Status != "cancelled" || out.AlreadyCancelled {
		t.Fatalf("cancel_order returned %s", b)
	}
	if s := status(); s != "cancelled" {
		t.Fatalf("cancel_order said cancelled, the order is %q", s)
	}
	reads("with Redis back")

	// Every cancel_order round reached the MCP layer and is one record:
	// each refused call one, and the call that cancelled two (the question
	// to the user, then the answer's round, which alone cancelled). (How a
	// refusal with Redis dead is answered and recorded is
	// TestFaultRedisDeadIsUnavailableNotRateLimited.)
	var records, asked, cancels int
	if err := db.QueryRow(context.Background(), `SELECT count(*),
		       count(*) FILTER (WHERE outcome = $2),
		       count(*) FILTER (WHERE outcome = 'cancelled')
		  FROM audit_log WHERE kind = 'tool_call' AND action = 'cancel_order' AND principal = $1`,
		subject, tools.OutcomeConfirmationRequested).Scan(&records, &asked, &cancels); err != nil {
		t.Fatal(err)
	}
	if records != attempts+asked || asked < 1 || cancels != 1 {
		t.Errorf("%d cancel_order calls, %d records of which %d asked the user and %d say cancelled; "+
			"want one record each, plus the question of the one that cancelled",
			attempts, records, asked, cancels)
	}
	if code := stop(); code != 0 {
		t.Fatalf("serve exited %d after SIGTERM\n%s", code, stderr.String())
	}
}

// TestFaultRedisDeadIsUnavailableNotRateLimited: with the rate-limit
// store unreachable, cancel_order is refused (fail closed) as what it is:
// the server is temporarily unavailable (HTTP 503 with Retry-After), not a
// rate limit the caller earned and not an internal error; the call's one
// audit record says "unavailable", and the order is untouched.
func TestFaultRedisDeadIsUnavailableNotRateLimited(t *testing.T) {
	// Nothing listens on this port: a Redis that is down from the start.
	port, err := faultenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	env := faultEnv(dsn, t.TempDir(), fmt.Sprintf("REDIS_URL=redis://127.0.0.1:%d/0", port))
	db := ownerConn(t, dsn)
	customer := demo.Customers()[1].ID
	key := lastLine(cli(t, env, "keys", "create", "--name", "fault-redis-dead", "--scopes", "orders:read,orders:cancel", "--customer", customer))
	var order string
	if err := db.QueryRow(context.Background(),
		"SELECT id FROM orders WHERE customer_id = $1 AND status IN ('pending', 'processing') ORDER BY id LIMIT 1", customer).Scan(&order); err != nil {
		t.Fatalf("a cancellable order of %s: %v", customer, err)
	}
	caller := &faultCaller{subject: "apikey:" + strings.Split(key, "_")[1], key: key}
	url, stderr, stop := startServe(t, env)

	a := newFaultClient(url, 1).call(caller, faultCall{"cancel_order", map[string]any{"order_id": order}})
	if a.kind != answerRefused {
		t.Fatalf("cancel_order with Redis dead: %+v, want HTTP 503 with Retry-After", a)
	}
	var outcomes []string
	rows, err := db.Query(context.Background(), `SELECT outcome FROM audit_log
		 WHERE kind = 'tool_call' AND action = 'cancel_order' AND principal = $1`, caller.subject)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var o string
		if err := rows.Scan(&o); err != nil {
			t.Fatal(err)
		}
		outcomes = append(outcomes, o)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(outcomes) != 1 || outcomes[0] != "unavailable" {
		t.Fatalf("the refused call's records say %v, want one \"unavailable\"", outcomes)
	}
	var status string
	if err := db.QueryRow(context.Background(), "SELECT status FROM orders WHERE id = $1", order).Scan(&status); err != nil {
		t.Fatal(err)
	}
	if status == "cancelled" {
		t.Fatal("cancel_order with Redis dead cancelled the order")
	}
	if code := stop(); code != 0 {
		t.Fatalf("serve exited %d after SIGTERM\n%s", code, stderr.String())
	}
}

// resultText is the text of a tool result, for messages.
func resultText(res *mcp.CallToolResult) string {
	if res == nil {
		return ""
	}
	var texts []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			texts = append(texts, tc.Text)
		}
	}
	return strings.Join(texts, " ")
}
