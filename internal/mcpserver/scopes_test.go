package mcpserver_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/store"
	"github.com/example/order-mcp/internal/testenv"
)

// TestScopesAtTheMCPLayer checks that tools/list shows a caller only the
// tools its scopes allow, and that calling a hidden tool anyway over the
// stdio path (where no HTTP layer checked anything) is refused with an
// error naming the missing scope, before any statement runs.
func TestScopesAtTheMCPLayer(t *testing.T) {
	env := testenv.New(t, dsn, testenv.Options{})
	aiko := customers[4]
	readOnly, _ := env.Key(t, aiko.ID, auth.ScopeRead)
	cancelOnly, _ := env.Key(t, aiko.ID, auth.ScopeCancel)
	both, _ := env.Key(t, aiko.ID, auth.ScopeRead, auth.ScopeCancel)
	staff, _ := env.Key(t, "", auth.ScopeRead, auth.ScopeReadAny)
	unknownScope, _ := env.Key(t, aiko.ID, "orders:admin", "orders:*")
	secrets := env.Secrets(t, readOnly, cancelOnly, both, staff, unknownScope)

	t.Run("ToolsListShowsOnlyAllowedTools", func(t *testing.T) {
		tests := []struct {
			name string
			key  string
			want []string
		}{
			{"ReadOnlyKeySeesNoCancel", readOnly, []string{"get_order_status", "list_recent_orders"}},
			{"CancelOnlyKeySeesOnlyCancel", cancelOnly, []string{"cancel_order"}},
			{"ReadAndCancelKeySeesAll", both, []string{"cancel_order", "get_order_status", "list_recent_orders"}},
			{"StaffKeySeesReadTools", staff, []string{"get_order_status", "list_recent_orders"}},
			{"UnknownScopesGrantNothing", unknownScope, nil},
		}
		for _, tt := range tests {
			for _, tr := range []struct {
				name    string
				connect func() *mcp.ClientSession
			}{
				{"InMemory", func() *mcp.ClientSession { return env.Connect(t, tt.key, "") }},
				{"HTTP", func() *mcp.ClientSession { return env.ConnectHTTP(t, tt.key, "") }},
			} {
				t.Run(tt.name+"/"+tr.name, func(t *testing.T) {
					res, err := tr.connect().ListTools(context.Background(), nil)
					if err != nil {
						t.Fatal(err)
					}
					var names []string
					for _, tool := range res.Tools {
						names = append(names, tool.Name)
					}
					slices.Sort(names)
					if !slices.Equal(names, tt.want) {
						t.Fatalf("tools %v, want %v", names, tt.want)
					}
				})
			}
		}
	})

	pending := ordersOf(t, env, aiko.ID, store.StatusPending, store.StatusProcessing)[0]
	tests := []struct {
		name    string
		key     string
		tool    string
		args    map[string]any
		missing auth.Scope
	}{
		{"ReadOnlyKeyCannotCancel", readOnly, "cancel_order", map[string]any{"order_id": pending}, auth.ScopeCancel},
		{"StaffReadKeyCannotCancel", staff, "cancel_order", map[string]any{"order_id": pending}, auth.ScopeCancel},
		{"CancelOnlyKeyCannotRead", cancelOnly, "get_order_status", map[string]any{"order_id": pending}, auth.ScopeRead},
		{"CancelOnlyKeyCannotList", cancelOnly, "list_recent_orders", map[string]any{}, auth.ScopeRead},
		{"UnknownScopesCannotCancel", unknownScope, "cancel_order", map[string]any{"order_id": pending}, auth.ScopeCancel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := env.Connect(t, tt.key, "")
			state := orderState(t, env, pending)
			env.Queries.Reset()
			before := auditHead(t, env)
			res, err := callTool(cs, tt.tool, tt.args)
			if err == nil || res != nil {
				t.Fatalf("call not refused: %s", output(res))
			}
			if !strings.Contains(err.Error(), "Forbidden: this credential lacks the scope "+string(tt.missing)) {
				t.Fatalf("error %q, want forbidden naming %s", err, tt.missing)
			}
			for _, q := range env.Queries.Events() {
				if slices.Contains(orderStatements, q.Name) {
					t.Fatalf("statement %s ran for a refused call", q.Name)
				}
			}
			if orderState(t, env, pending) != state {
				t.Fatal("the order changed")
			}
			if rec := oneRecord(t, env, before); rec.Decision != "denied" || rec.Reason != "missing scope "+string(tt.missing) {
				t.Fatalf("record %+v", rec)
			}
			noSecrets(t, env, secrets, err.Error())
			if _, err := cs.ListTools(context.Background(), nil); err != nil {
				t.Fatalf("session unusable after the refusal: %v", err)
			}
			// Last, so that the checks above run whatever the code: the
			// refusal must reach a client as a JSON-RPC error with the
			// documented code.
			forbiddenCode(t, err)
		})
	}
}

// orderStatements are the store's statements that touch order data.
var orderStatements = []string{"get_order", "list_recent_orders", "lock_order_for_cancel",
	"lock_customer_cancels", "count_recent_cancels", "cancel_order", "insert_cancel_event"}
