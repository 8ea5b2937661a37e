package tools_test

import (
	"encoding/json"
	"testing"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/dbtest"
	"github.com/example/order-mcp/internal/demo"
	"github.com/example/order-mcp/internal/store"
	"github.com/example/order-mcp/internal/testenv"
	"github.com/example/order-mcp/internal/tools"
)

// TestEveryResultMatchesItsOutputSchema calls every tool on every seeded
// order, as a staff caller and as the order's customer, and validates each
// structured result against the tool's published output schema. The
// server does not validate its results at run time (see tools.Define):
// that they match is a property of the output types, held here, so a
// field that could be null, or a new field the schema does not allow,
// fails this test instead of a client.
func TestEveryResultMatchesItsOutputSchema(t *testing.T) {
	env := testenv.New(t, dbtest.Scratch(t), testenv.Options{Lockout: &noLockout})
	staffKey, _ := env.Key(t, "", auth.ScopeRead, auth.ScopeReadAny, auth.ScopeCancel)
	staff := env.ConnectHTTP(t, staffKey, testenv.Protocol20260728)

	var orders []store.OrderSummary
	owner := map[string]string{}
	for _, c := range demo.Customers() {
		list, err := env.App.ListRecentOrders(t.Context(), store.StaffAccess(), c.ID, "", 25)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range list {
			owner[o.ID] = c.ID
		}
		orders = append(orders, list...)
	}
	customerSessions := map[string]*mcp.ClientSession{}
	checked := 0
	for _, tool := range tools.All() {
		resolved, err := tool.Def().OutputSchema.(*jsonschema.Schema).Resolve(nil)
		if err != nil {
			t.Fatalf("%s: output schema does not resolve: %v", tool.Name(), err)
		}
		for _, o := range orders {
			args, ok := testenv.Args(tool, testenv.Fixture{OrderID: o.ID, CustomerID: owner[o.ID]})
			if !ok {
				t.Fatalf("%s: testenv.Args cannot build arguments for this tool; teach it the new property", tool.Name())
			}
			cs := staff
			if tool.Destructive() { // as the order's customer, so both bindings run
				s, ok := customerSessions[owner[o.ID]]
				if !ok {
					key, _ := env.Key(t, owner[o.ID], auth.ScopeRead, auth.ScopeCancel)
					s = env.ConnectHTTP(t, key, testenv.Protocol20260728)
					customerSessions[owner[o.ID]] = s
				}
				cs = s
			}
			res := testenv.Call(t, cs, tool.Name(), args)
			if res.IsError {
				continue // refusals (not cancellable, say) carry no structured result
			}
			b, err := json.Marshal(res.StructuredContent)
			if err != nil {
				t.Fatal(err)
			}
			var v any
			if err := json.Unmarshal(b, &v); err != nil {
				t.Fatal(err)
			}
			if err := resolved.Validate(v); err != nil {
				t.Errorf("%s on %s: the result does not match the output schema: %v", tool.Name(), o.ID, err)
			}
			checked++
		}
	}
	if checked < len(orders) {
		t.Fatalf("only %d results checked for %d orders", checked, len(orders))
	}
}
