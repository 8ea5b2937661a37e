package httpserver_test

// Attacks on the customer binding over HTTP, with API keys and OAuth
// tokens, through the go-sdk client in both protocol generations.

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/demo"
	"github.com/example/order-mcp/internal/testenv"
)

// TestCustomerCannotReachAnotherCustomersOrders has a caller bound to one
// customer reach for another's: reading another customer's order by id
// fails exactly like reading an order that does not exist, cancelling one
// likewise, and listing with another customer's id is refused exactly like
// listing with an id that does not exist. Nothing of the other customer
// comes back. Run with an API key and with an OAuth token carrying the
// customer claim, in both protocol generations.
func TestCustomerCannotReachAnotherCustomersOrders(t *testing.T) {
	t.Parallel()
	srv := startOAuth(t, testenv.Options{})
	ip := addresses()
	customers := demo.Customers()
	alice, bob := customers[0], customers[1]
	bobOrders := ordersOf(t, dsn, bob.ID)
	// A copy of bob with a pending order of its own, for the cancellation.
	bobCopy, bobPending := newCustomer(t, dsn, bob, 1)
	bobOrders = append(bobOrders, bobPending...)
	key, _ := srv.Key(t, alice.ID, auth.ScopeRead, auth.ScopeCancel)
	tok := srv.issuer.Token(t, customerClaims(srv.issuer, "alice-user", alice.ID, auth.ScopeRead, auth.ScopeCancel))
	bobKey, _ := srv.Key(t, bob.ID, auth.ScopeRead)

	call := func(t *testing.T, cs *mcp.ClientSession, tool string, args map[string]any) (*mcp.CallToolResult, string) {
		t.Helper()
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: tool, Arguments: args})
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		return res, resultJSON(t, res)
	}
	noBobData := func(t *testing.T, out string) {
		t.Helper()
		for _, s := range append([]string{bob.ID, bobCopy, bob.Name, "Berlin"}, bobOrders...) {
			if strings.Contains(out, s) {
				t.Fatalf("output holds the other customer's %q: %s", s, out)
			}
		}
	}

	for _, caller := range []struct{ name, credential string }{{"APIKey", key}, {"OAuthToken", tok}} {
		for _, version := range versions {
			t.Run(caller.name+"/"+version, func(t *testing.T) {
				cs := connect(t, srv.base, bearerFrom(t, ip(1), caller.credential), version)

				nonexistent, _ := call(t, cs, "get_order_status", map[string]any{"order_id": newID("ord")})
				if !nonexistent.IsError {
					t.Fatal("a nonexistent order was found")
				}
				t.Run("OtherCustomersOrderLooksNonexistent", func(t *testing.T) {
					for _, id := range bobOrders {
						res, out := call(t, cs, "get_order_status", map[string]any{"order_id": id})
						if !res.IsError || testenv.Text(res) != testenv.Text(nonexistent) || res.StructuredContent != nil {
							t.Fatalf("another customer's order %s: %s; a nonexistent one: %q", id, out, testenv.Text(nonexistent))
						}
						noBobData(t, out)
					}
				})
				t.Run("OtherCustomersOrderCannotBeCancelled", func(t *testing.T) {
					res, out := call(t, cs, "cancel_order", map[string]any{"order_id": bobPending[0]})
					if !res.IsError || testenv.Text(res) != testenv.Text(nonexistent) {
						t.Fatalf("cancel of another customer's order: %s", out)
					}
					notCancelled(t, dsn, bobPending[0])
				})
				t.Run("ListingOtherCustomerIsRefused", func(t *testing.T) {
					unknown, _ := call(t, cs, "list_recent_orders", map[string]any{"customer_id": newID("cus")})
					for _, other := range []string{bob.ID, bobCopy} {
						res, out := call(t, cs, "list_recent_orders", map[string]any{"customer_id": other})
						if !res.IsError || res.StructuredContent != nil || testenv.Text(res) != testenv.Text(unknown) || !strings.Contains(testenv.Text(res), "Not allowed") {
							t.Fatalf("listing another customer: %s; an unknown one: %q", out, testenv.Text(unknown))
						}
						noBobData(t, out)
					}
				})
				t.Run("OwnOrdersAreListed", func(t *testing.T) {
					// The control: the same session reads its own customer.
					res, out := call(t, cs, "list_recent_orders", map[string]any{})
					if res.IsError || !strings.Contains(out, alice.ID) {
						t.Fatalf("own orders: %s", out)
					}
					noBobData(t, out)
				})
			})
		}
	}
	noSecrets(t, []*testenv.Env{srv.Env}, []string{key, bobKey, tok})
}

// TestOAuthCallersEndToEnd uses tokens from the trusted issuer with the
// go-sdk client, in both protocol generations: a customer token reads its
// own orders, cancels one, and sees the tools its scopes allow; a staff
// token (no customer claim, orders:read:any) reads any customer's order,
// with personal data masked.
func TestOAuthCallersEndToEnd(t *testing.T) {
	t.Parallel()
	srv := startOAuth(t, testenv.Options{})
	ip := addresses()
	customers := demo.Customers()
	maya := customers[0]
	customerID, orders := newCustomer(t, dsn, customers[5], 2)
	customerTok := srv.issuer.Token(t, customerClaims(srv.issuer, "customer-e2e", customerID, auth.ScopeRead, auth.ScopeCancel))
	staffTok := srv.issuer.Token(t, srv.issuer.Claims(oauthResource, "staff-e2e", auth.ScopeRead, auth.ScopeReadAny))
	mayaOrders := ordersOf(t, dsn, maya.ID)
	var outputs []string

	for i, version := range versions {
		t.Run("CustomerToken/"+version, func(t *testing.T) {
			cs := connect(t, srv.base, bearerFrom(t, ip(1), customerTok), version)
			if got := cs.InitializeResult().ProtocolVersion; got != version {
				t.Fatalf("negotiated %s, want %s", got, version)
			}
			if got, want := listedTools(t, cs), []string{"cancel_order", "get_order_status", "list_recent_orders"}; !slices.Equal(got, want) {
				t.Fatalf("tools %v, want %v", got, want)
			}
			res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "list_recent_orders", Arguments: map[string]any{}})
			if err != nil || res.IsError {
				t.Fatalf("list: %v %s", err, testenv.Text(res))
			}
			out := resultJSON(t, res)
			outputs = append(outputs, out)
			for _, id := range orders {
				if !strings.Contains(out, id) {
					t.Fatalf("own order %s not listed: %s", id, out)
				}
			}
			res, err = cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "cancel_order",
				Arguments: map[string]any{"order_id": orders[i], "reason": "ordered_by_mistake"}})
			if version == testenv.Protocol20251125 {
				// Stateless 2025-11-25: the server cannot ask this client to
				// confirm, so it may not cancel (CANCEL_CONFIRMATION=required).
				if err != nil || !res.IsError || !strings.Contains(testenv.Text(res), "CANCEL_CONFIRMATION=required") {
					t.Fatalf("cancel without a way to confirm: %v %s", err, testenv.Text(res))
				}
				notCancelled(t, dsn, orders[i])
				return
			}
			if err != nil || res.IsError {
				t.Fatalf("cancel: %v %s", err, testenv.Text(res))
			}
			if st := orderStatus(t, dsn, orders[i]); st != "cancelled" {
				t.Fatalf("order %s", st)
			}
		})
		t.Run("StaffToken/"+version, func(t *testing.T) {
			cs := connect(t, srv.base, bearerFrom(t, ip(1), staffTok), version)
			if got, want := listedTools(t, cs), []string{"get_order_status", "list_recent_orders"}; !slices.Equal(got, want) {
				t.Fatalf("tools %v, want %v", got, want)
			}
			for _, id := range []string{mayaOrders[0], orders[0]} {
				res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "get_order_status",
					Arguments: map[string]any{"order_id": id}})
				if err != nil || res.IsError {
					t.Fatalf("staff read of %s: %v %s", id, err, testenv.Text(res))
				}
				out := resultJSON(t, res)
				outputs = append(outputs, out)
				var got struct {
					OrderID  string `json:"order_id"`
					Customer struct {
						Name, Email, Phone string
					} `json:"customer"`
				}
				b, _ := json.Marshal(res.StructuredContent)
				if err := json.Unmarshal(b, &got); err != nil {
					t.Fatal(err)
				}
				if got.OrderID != id || got.Customer.Email != "m***@e***.com" && got.Customer.Email != "o***@e***.com" ||
					!strings.HasPrefix(got.Customer.Phone, "***") {
					t.Fatalf("staff sees %+v: personal data must be masked", got)
				}
			}
		})
	}
	noSecrets(t, []*testenv.Env{srv.Env}, []string{customerTok, staffTok}, outputs...)
}
