package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/example/order-mcp/internal/demo"
	"github.com/example/order-mcp/internal/refusal"
	"github.com/example/order-mcp/internal/testenv"
)

// TestStdioCancellationAsksTheUser drives the real binary over stdio, as
// Claude Desktop starts it, with a 2025-11-25 client in production mode
// (CANCEL_CONFIRMATION=required): the server asks the user through
// elicitation/create before it cancels. A user who declines leaves the
// order as it was; a client that declared no elicitation cannot cancel at
// all; a user who accepts cancels it, after being asked exactly once with
// a question that names the order and nothing a customer typed.
func TestStdioCancellationAsksTheUser(t *testing.T) {
	env := prodEnv()
	cli(t, env, "migrate")
	cli(t, env, "seed")
	customer := demo.Customers()[2].ID
	key := lastLine(cli(t, env, "keys", "create", "--name", "stdio-confirm", "--scopes", "orders:read,orders:cancel", "--customer", customer))
	db := ownerConn(t, dsn)
	order, status := pendingOrder(t, db, customer)
	var questions []string
	session := func(t *testing.T, handler func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error)) *mcp.ClientSession {
		t.Helper()
		cmd := exec.Command(serverBinary(t), "stdio")
		cmd.Env = prodEnv("MCP_API_KEY=" + key)
		var opts *mcp.ClientOptions
		if handler != nil {
			opts = &mcp.ClientOptions{ElicitationHandler: func(ctx context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
				questions = append(questions, req.Params.Message)
				return handler(ctx, req)
			}}
		}
		client := mcp.NewClient(&mcp.Implementation{Name: "stdio-confirm", Version: "1"}, opts)
		cs, err := client.Connect(context.Background(), &mcp.CommandTransport{Command: cmd},
			&mcp.ClientSessionOptions{ProtocolVersion: testenv.Protocol20251125})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cs.Close() })
		return cs
	}
	cancel := func(cs *mcp.ClientSession) *mcp.CallToolResult {
		t.Helper()
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "cancel_order", Arguments: map[string]any{"order_id": order}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}

	t.Run("UserWhoDeclinesLeavesTheOrder", func(t *testing.T) {
		res := cancel(session(t, testenv.Decline))
		if !res.IsError || status() != "pending" {
			t.Fatalf("declined: %s, order %s", resultText(res), status())
		}
	})
	t.Run("ClientWithoutElicitationCannotCancel", func(t *testing.T) {
		res := cancel(session(t, nil))
		if !res.IsError || resultText(res) != refusal.ConfirmationUnavailable.Message("cancel_order") || status() != "pending" {
			t.Fatalf("no elicitation: %s, order %s", resultText(res), status())
		}
	})
	t.Run("UserWhoAcceptsCancels", func(t *testing.T) {
		questions = nil
		res := cancel(session(t, testenv.Accept))
		if res.IsError || status() != "cancelled" {
			t.Fatalf("accepted: %s, order %s", resultText(res), status())
		}
		if len(questions) != 1 || !strings.Contains(questions[0], order) {
			t.Fatalf("asked %q: want one question naming the order", questions)
		}
	})
}

// pendingOrder returns a pending order of customer, read through the
// owner's connection db, and a function that reads its status now.
func pendingOrder(t *testing.T, db *pgx.Conn, customer string) (string, func() string) {
	t.Helper()
	var order string
	if err := db.QueryRow(context.Background(),
		"SELECT id FROM orders WHERE customer_id = $1 AND status = 'pending' ORDER BY id LIMIT 1", customer).Scan(&order); err != nil {
		t.Fatalf("a pending order of %s: %v", customer, err)
	}
	return order, func() string {
		t.Helper()
		var s string
		if err := db.QueryRow(context.Background(), "SELECT status FROM orders WHERE id = $1", order).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
}
