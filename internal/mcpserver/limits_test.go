package mcpserver_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/ulule/limiter/v3"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/demo"
	"github.com/example/order-mcp/internal/limits"
	"github.com/example/order-mcp/internal/refusal"
	"github.com/example/order-mcp/internal/store"
	"github.com/example/order-mcp/internal/testenv"
	"github.com/example/order-mcp/internal/tools"
)

// TestLimitsHoldOverStdio floods the tools over the stdio code path, where
// no HTTP layer charges the calls: the MCP layer must. Each limit refuses
// with a JSON-RPC error carrying the rate-limit code and a retry hint, and
// other callers are unaffected.
func TestLimitsHoldOverStdio(t *testing.T) {
	ctx := context.Background()
	rate := func(n int64) limiter.Rate { return limiter.Rate{Period: time.Hour, Limit: n} }
	limits := testenv.GenerousLimits()
	limits.PerPrincipal = rate(4)
	limits.CancelPerPrincipal = rate(1)
	env := testenv.New(t, dsn, testenv.Options{Limits: &limits})
	customer := demo.Customers()[5].ID
	key, keyID := env.Key(t, customer, auth.ScopeRead, auth.ScopeCancel)
	other, _ := env.Key(t, customer, auth.ScopeRead)
	var asked testenv.Questions
	cs := env.ConnectClient(t, key, testenv.Client{Questions: &asked})
	pending := ordersOf(t, env, customer, store.StatusPending, store.StatusProcessing)
	if len(pending) < 2 {
		t.Fatalf("need two cancellable orders, have %v", pending)
	}
	restoreOrders(t, env, pending...)

	refused := func(t *testing.T, err error) {
		t.Helper()
		var rpcErr *jsonrpc.Error
		if !errors.As(err, &rpcErr) || rpcErr.Code != refusal.CodeRateLimited ||
			!strings.Contains(rpcErr.Message, "Retry in") {
			t.Fatalf("want a rate-limit error, got %v", err)
		}
	}
	call := func(cs *mcp.ClientSession, name string, args map[string]any) error {
		_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
		return err
	}

	t.Run("CancelBudgetRunsOutFirst", func(t *testing.T) {
		// The budget is charged by the round that cancels, after the user
		// confirmed; the next cancellation is refused before anyone is
		// asked.
		if err := call(cs, "cancel_order", map[string]any{"order_id": pending[0]}); err != nil {
			t.Fatalf("first cancel: %v", err)
		}
		refused(t, call(cs, "cancel_order", map[string]any{"order_id": pending[1]}))
		if n := len(asked.All()); n != 1 {
			t.Fatalf("the user was asked %d times, want once: never for a call the budget refuses", n)
		}
	})
	t.Run("ToolCallsPerPrincipalAreCounted", func(t *testing.T) {
		// Three calls above count (the confirmed cancellation's question
		// and answer are a call each); tools/list does not.
		for range 3 {
			if _, err := cs.ListTools(ctx, nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := call(cs, "list_recent_orders", map[string]any{}); err != nil {
			t.Fatalf("third call: %v", err)
		}
		refused(t, call(cs, "list_recent_orders", map[string]any{}))
	})
	t.Run("OtherCallersAreUnaffected", func(t *testing.T) {
		if err := call(env.Connect(t, other, ""), "list_recent_orders", map[string]any{}); err != nil {
			t.Fatalf("another key was throttled: %v", err)
		}
	})
	t.Run("RefusalsAreAudited", func(t *testing.T) {
		rows, err := env.OwnerQueryStrings(t, `SELECT action FROM audit_log
			WHERE kind = 'tool_call' AND outcome = 'rate_limited' AND credential_id = $1 ORDER BY seq`, keyID)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 2 || rows[0] != "cancel_order" || rows[1] != "list_recent_orders" {
			t.Fatalf("rate-limited records: %v", rows)
		}
	})
}

// TestRepeatedInvalidArgumentsLockTheCallerOut: a caller that keeps sending
// malformed arguments over stdio is locked out like a failing login, and
// the lock is lifted for nobody else.
func TestRepeatedInvalidArgumentsLockTheCallerOut(t *testing.T) {
	ctx := context.Background()
	policy := limits.DefaultPolicy()
	policy.Threshold = 3
	env := testenv.New(t, dsn, testenv.Options{Lockout: &policy})
	customer := demo.Customers()[5].ID
	key, _ := env.Key(t, customer, auth.ScopeRead)
	other, _ := env.Key(t, customer, auth.ScopeRead)
	cs := env.Connect(t, key, "")
	for i := range 3 {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "get_order_status", Arguments: map[string]any{"order_id": "nope"}})
		if err != nil || !res.IsError {
			t.Fatalf("invalid call %d: %v", i, err)
		}
	}
	_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "list_recent_orders", Arguments: map[string]any{}})
	var rpcErr *jsonrpc.Error
	if !errors.As(err, &rpcErr) || rpcErr.Code != refusal.CodeRateLimited {
		t.Fatalf("after repeated invalid calls a valid call was not refused: %v", err)
	}
	if _, err := env.Connect(t, other, "").CallTool(ctx, &mcp.CallToolParams{Name: "list_recent_orders", Arguments: map[string]any{}}); err != nil {
		t.Fatalf("another key was locked out: %v", err)
	}
}

// TestRefusedCallsCountAgainstTheLimit: calls refused for their scope or
// for naming no tool still cost the caller budget, so a flood of them is
// throttled like any other (and cannot flood the audit trail).
func TestRefusedCallsCountAgainstTheLimit(t *testing.T) {
	ctx := context.Background()
	budget := testenv.GenerousLimits()
	budget.PerPrincipal = limiter.Rate{Period: time.Hour, Limit: 3}
	policy := limits.DefaultPolicy()
	policy.Threshold = 1_000_000
	env := testenv.New(t, dsn, testenv.Options{Limits: &budget, Lockout: &policy})
	key, _ := env.Key(t, demo.Customers()[5].ID, auth.ScopeRead)
	cs := env.Connect(t, key, "")
	var rateLimited int
	for i := range 10 {
		name := "cancel_order" // refused: the key lacks orders:cancel
		if i%2 == 1 {
			name = "no_such_tool"
		}
		_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: map[string]any{"order_id": "ord_0000000000000000"}})
		var rpcErr *jsonrpc.Error
		if errors.As(err, &rpcErr) && rpcErr.Code == refusal.CodeRateLimited {
			rateLimited++
		}
	}
	if rateLimited != 7 {
		t.Fatalf("%d of 10 refused calls were rate limited under a limit of 3, want 7", rateLimited)
	}
}

// TestEveryLookupByIDIsThrottledForEnumeration guesses order ids with each
// tool of tools.All() that looks an order up by id. Each miss answers "not
// found" until the caller's budget for misses is spent; the miss over it
// is refused with the rate-limit code; from then on every lookup by id,
// with any such tool and even of the caller's own order, is refused before
// any of its work and recorded as rate limited, while tools that look
// nothing up still serve the caller. The control: another caller makes the
// same lookups and gets past the throttle.
func TestEveryLookupByIDIsThrottledForEnumeration(t *testing.T) {
	const budget = 2
	rates := testenv.GenerousLimits()
	rates.NotFoundPerPrincipal = limiter.Rate{Period: time.Hour, Limit: budget}
	env := testenv.New(t, dsn, testenv.Options{Limits: &rates, Lockout: &noLockout})
	olivia := customers[5]
	// Shipped: a destructive tool finds it and changes nothing.
	own := ordersOf(t, env, olivia.ID, store.StatusShipped, store.StatusDelivered)[0]
	restoreOrders(t, env, own)
	fixture := testenv.Fixture{OrderID: own, CustomerID: olivia.ID}
	rateLimited := func(t *testing.T, res *mcp.CallToolResult, err error) {
		t.Helper()
		if !refusedAs(refusal.RateLimited, res, err) || res != nil {
			t.Fatalf("want the rate-limit refusal, got %v %s", err, output(res))
		}
	}
	for _, guesser := range lookups(t) {
		t.Run("GuessingWith/"+guesser.Name(), func(t *testing.T) {
			key, _ := env.Key(t, olivia.ID, toolScopes()...)
			other, _ := env.Key(t, olivia.ID, toolScopes()...) // the control's
			cs := env.Connect(t, key, "")
			guess := func(i int) (*mcp.CallToolResult, error) {
				return callTool(cs, guesser.Name(), argsFor(t, guesser, testenv.Fixture{OrderID: fmt.Sprintf("ord_%016d", i+1), CustomerID: olivia.ID}))
			}
			for i := range budget {
				if res, err := guess(i); !refusedAs(refusal.NotFound, res, err) {
					t.Fatalf("guess %d: %v %s, want not found", i+1, err, output(res))
				}
			}
			res, err := guess(budget)
			rateLimited(t, res, err)

			for _, tool := range tools.All() {
				if !tool.LooksUpByID() {
					t.Run(tool.Name()+"StillServes", func(t *testing.T) {
						res, err := callTool(cs, tool.Name(), controlArgs(t, tool, fixture))
						if refusedAs(refusal.RateLimited, res, err) {
							t.Fatalf("a tool that looks nothing up is throttled: %v", err)
						}
					})
					continue
				}
				t.Run(tool.Name()+"IsRefusedBeforeItRuns", func(t *testing.T) {
					env.Queries.Reset()
					before := auditHead(t, env)
					res, err := callTool(cs, tool.Name(), argsFor(t, tool, fixture))
					rateLimited(t, res, err)
					noWork(t, env, tool.Name())
					if rec := oneRecord(t, env, before); rec.Decision != "denied" || rec.Outcome != refusal.RateLimited.Name() {
						t.Fatalf("record %+v", rec)
					}
				})
				t.Run(tool.Name()+"ServesAnotherCaller", func(t *testing.T) {
					env.Queries.Reset()
					res, err := callTool(env.Connect(t, other, ""), tool.Name(), controlArgs(t, tool, fixture))
					gotPast(t, env, tool, refusal.RateLimited, res, err)
				})
			}
		})
	}
}
