package httpserver_test

// Attacks on the budgets the MCP layer keeps per tool: the small budget of
// destructive calls, the per-customer daily cancellation quota and the
// enumeration throttle. The MCP layer decides these on the request it
// decoded itself; over HTTP its rate-limit refusals still leave as a 429
// with Retry-After, the JSON-RPC error in the body.

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/demo"
	"github.com/example/order-mcp/internal/limits"
	"github.com/example/order-mcp/internal/testenv"
)

// Budget refusals name the budget they hit.
const (
	cancelBudget     = "order cancellations for this credential"
	enumerationLimit = "lookups of unknown orders"
)

// TestCancellationBudgetsHold spends cancel_order's own budget
// (RATE_LIMIT_CANCEL) and the per-customer daily quota, which holds
// whichever key asks.
func TestCancellationBudgetsHold(t *testing.T) {
	t.Parallel()
	ip := addresses()
	attacker := ip(1)

	t.Run("PerKeyBudget", func(t *testing.T) {
		t.Parallel()
		srv := start(t, testenv.Options{Limits: limitsWith(func(l *limits.Config) { l.CancelPerPrincipal = perMinute(1) })})
		c := clientFrom(t, attacker)
		cust, orders := newCustomer(t, dsn, demo.Customers()[0], 3)
		other, otherOrders := newCustomer(t, dsn, demo.Customers()[1], 1)
		key, keyID := srv.Key(t, cust, auth.ScopeRead, auth.ScopeCancel)
		otherKey, _ := srv.Key(t, other, auth.ScopeRead, auth.ScopeCancel)

		served(t, confirmed(t, c, srv.base, request{key: key, body: callBody("cancel_order", map[string]any{"order_id": orders[0]})}), orders[0])
		if got := orderStatus(t, dsn, orders[0]); got != "cancelled" {
			t.Fatalf("first cancellation: order is %s", got)
		}

		refused := confirmed(t, c, srv.base, request{key: key, body: callBody("cancel_order", map[string]any{"order_id": orders[1]})})
		if ra := limited(t, refused, cancelBudget); ra > 60 {
			t.Fatalf("Retry-After %d exceeds the budget's window", ra)
		}
		notCancelled(t, dsn, orders[1])

		// Reads by the same key still work, and another key can cancel.
		served(t, do(t, c, srv.base, request{key: key, body: getBody(orders[1])}), orders[1])
		served(t, confirmed(t, c, srv.base, request{key: otherKey, body: callBody("cancel_order", map[string]any{"order_id": otherOrders[0]})}), otherOrders[0])

		if got := toolCalls(t, dsn, keyID); got["cancel_order/cancelled"] != 1 || got["cancel_order/rate_limited"] != 1 {
			t.Errorf("tool calls on record: %v, want one cancelled and one rate_limited", got)
		}
		noSecrets(t, []*testenv.Env{srv.Env}, []string{key, otherKey}, refused.String())
	})

	t.Run("PerCustomerDailyQuota", func(t *testing.T) {
		t.Parallel()
		srv := start(t, testenv.Options{CancelDailyQuota: 1})
		c := clientFrom(t, attacker)
		cust, orders := newCustomer(t, dsn, demo.Customers()[0], 3)
		other, otherOrders := newCustomer(t, dsn, demo.Customers()[1], 1)
		first, _ := srv.Key(t, cust, auth.ScopeRead, auth.ScopeCancel)
		second, secondID := srv.Key(t, cust, auth.ScopeRead, auth.ScopeCancel)
		staff, staffID := srv.Key(t, "", auth.ScopeRead, auth.ScopeReadAny, auth.ScopeCancel)
		otherKey, _ := srv.Key(t, other, auth.ScopeRead, auth.ScopeCancel)

		served(t, confirmed(t, c, srv.base, request{key: first, body: callBody("cancel_order", map[string]any{"order_id": orders[0]})}), orders[0])

		tests := []struct {
			name, key, order string
		}{
			{"SameKeyIsRefused", first, orders[1]},
			{"AnotherKeyOfTheSameCustomerIsRefused", second, orders[1]},
			{"StaffKeyIsRefused", staff, orders[2]},
		}
		var answers []string
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := confirmed(t, c, srv.base, request{key: tt.key, body: callBody("cancel_order", map[string]any{"order_id": tt.order})})
				answers = append(answers, r.String())
				// A quota the model can explain to the user: a tool
				// result, not a rate limit to retry.
				m := r.rpc(t)
				if r.status != http.StatusOK || m.Result == nil || !m.Result.IsError || !strings.Contains(m.text(), "daily cancellation limit") {
					t.Fatalf("want the daily-quota tool error, got %d %s", r.status, r.body)
				}
				notCancelled(t, dsn, tt.order)
			})
		}

		t.Run("AnotherCustomerIsUnaffected", func(t *testing.T) {
			served(t, confirmed(t, c, srv.base, request{key: otherKey, body: callBody("cancel_order", map[string]any{"order_id": otherOrders[0]})}), otherOrders[0])
		})

		for _, id := range []string{secondID, staffID} {
			if got := toolCalls(t, dsn, id); got["cancel_order/quota_exceeded"] != 1 {
				t.Errorf("key %s: tool calls on record %v, want one quota_exceeded", id, got)
			}
		}
		noSecrets(t, []*testenv.Env{srv.Env}, []string{first, second, staff, otherKey}, answers...)
	})
}

// TestOrderEnumerationIsThrottled looks up order ids that do not exist,
// one after another (RATE_LIMIT_NOT_FOUND), and checks that "not found"
// and "not yours" look the same.
func TestOrderEnumerationIsThrottled(t *testing.T) {
	t.Parallel()
	const limit = 3
	srv := start(t, testenv.Options{Limits: limitsWith(func(l *limits.Config) { l.NotFoundPerPrincipal = perMinute(limit) })})
	customers := demo.Customers()
	key, keyID := srv.Key(t, customers[0].ID, auth.ScopeRead)
	otherKey, _ := srv.Key(t, customers[1].ID, auth.ScopeRead)
	probeKey, _ := srv.Key(t, customers[2].ID, auth.ScopeRead)
	own := ordersOf(t, dsn, customers[0].ID)[0]
	otherOrder := ordersOf(t, dsn, customers[1].ID)[0]
	c := clientFrom(t, addresses()(1))
	var answers []string

	t.Run("GuessingIDsIsThrottled", func(t *testing.T) {
		for i := 1; i <= limit; i++ {
			r := do(t, c, srv.base, request{key: key, body: getBody(newID("ord"))})
			if m := r.rpc(t); m.Result == nil || !m.Result.IsError || !strings.HasPrefix(m.text(), "Order not found") {
				t.Fatalf("guess %d: %s", i, r.body)
			}
		}
		r := do(t, c, srv.base, request{key: key, body: getBody(newID("ord"))})
		answers = append(answers, r.String())
		if ra := limited(t, r, enumerationLimit); ra > 60 {
			t.Fatalf("Retry-After %d exceeds the throttle's window", ra)
		}
	})

	t.Run("EvenAnExistingOwnOrderIsRefusedWhileThrottled", func(t *testing.T) {
		r := do(t, c, srv.base, request{key: key, body: getBody(own)})
		answers = append(answers, r.String())
		limited(t, r, enumerationLimit)
		if strings.Contains(r.body, "timeline") {
			t.Fatalf("throttled caller got data: %s", r.body)
		}
	})

	t.Run("OtherPrincipalsAreUnaffected", func(t *testing.T) {
		served(t, do(t, c, srv.base, request{key: otherKey, body: getBody(otherOrder)}), otherOrder)
	})

	t.Run("NotFoundAndNotYoursAreIndistinguishable", func(t *testing.T) {
		missing := do(t, c, srv.base, request{key: probeKey, body: getBody(newID("ord"))})
		foreign := do(t, c, srv.base, request{key: probeKey, body: getBody(otherOrder)})
		if missing.status != foreign.status {
			t.Fatalf("statuses differ: %d vs %d", missing.status, foreign.status)
		}
		m, f := missing.rpc(t), foreign.rpc(t)
		if m.Result == nil || f.Result == nil || !m.Result.IsError || !f.Result.IsError {
			t.Fatalf("want tool errors: %s / %s", missing.body, foreign.body)
		}
		mj, _ := json.Marshal(m.Result)
		fj, _ := json.Marshal(f.Result)
		if string(mj) != string(fj) {
			t.Fatalf("not found and not yours differ:\n%s\n%s", mj, fj)
		}
		if strings.Contains(foreign.body, otherOrder) {
			t.Fatalf("the answer names the foreign order: %s", foreign.body)
		}
	})

	if got := toolCalls(t, dsn, keyID); got["get_order_status/not_found"] != limit || got["get_order_status/rate_limited"] != 2 {
		t.Errorf("tool calls on record: %v, want %d not_found and 2 rate_limited", got, limit)
	}
	noSecrets(t, []*testenv.Env{srv.Env}, []string{key, otherKey, probeKey}, answers...)
}
