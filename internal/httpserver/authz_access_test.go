package httpserver_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/demo"
	"github.com/example/order-mcp/internal/httpserver"
	"github.com/example/order-mcp/internal/testenv"
)

// TestReadOnlyCallerCannotCancel has a caller holding orders:read only try
// cancel_order on one of its own pending orders: the tool is absent from
// its tools/list, a raw tools/call gets 403 with an insufficient_scope
// challenge naming orders:cancel (the step-up a client can act on), the
// go-sdk client's call fails, and the order never changes. The last case is
// the control: the same request with orders:cancel does cancel.
func TestReadOnlyCallerCannotCancel(t *testing.T) {
	for _, mode := range []struct {
		name  string
		oauth bool
	}{{"APIKeysOnly", false}, {"OAuthConfigured", true}} {
		t.Run(mode.name, func(t *testing.T) {
			env := authzNewEnv(t, mode.oauth, httpserver.Config{})
			customerID, orders := authzCustomer(t, env.Env, demo.Customers()[3], 2)
			target := orders[0]
			readOnly, _ := env.Key(t, customerID, auth.ScopeRead)
			canCancel, _ := env.Key(t, customerID, auth.ScopeRead, auth.ScopeCancel)
			callers := []struct{ name, credential string }{{"APIKey", readOnly}}
			var secrets []string
			if mode.oauth {
				tok := env.issuer.Token(t, authzCustomerClaims(env.issuer, "read-only-user", customerID, auth.ScopeRead))
				callers = append(callers, struct{ name, credential string }{"OAuthToken", tok})
				secrets = authzTokenSecrets(tok)
			}
			cancel := authzToolCall(1, "cancel_order", map[string]any{"order_id": target, "reason": "ordered_by_mistake"})
			wantChallenge := map[string]string{"realm": "order-mcp", "error": "insufficient_scope", "scope": auth.ScopeCancel}
			if mode.oauth {
				wantChallenge["resource_metadata"] = authzMetadataURL
			}

			for _, c := range callers {
				t.Run(c.name, func(t *testing.T) {
					for _, version := range []string{testenv.Protocol20251125, testenv.Protocol20260728} {
						t.Run("CancelOrderIsNotListed/"+version, func(t *testing.T) {
							cs := authzConnect(t, env.url, testenv.BearerClient(c.credential), version)
							if got, want := authzToolNames(t, cs), []string{"get_order_status", "list_recent_orders"}; !slices.Equal(got, want) {
								t.Fatalf("tools %v, want %v", got, want)
							}
						})
						t.Run("GoSDKClientCallFails/"+version, func(t *testing.T) {
							cs := authzConnect(t, env.url, testenv.BearerClient(c.credential), version)
							res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{
								Name: "cancel_order", Arguments: map[string]any{"order_id": target}})
							if err == nil && !res.IsError {
								t.Fatalf("cancel_order succeeded: %s", authzResultJSON(t, res))
							}
							authzNotCancelled(t, env.Env, target)
						})
					}
					t.Run("RawToolsCallIsForbidden", func(t *testing.T) {
						r := authzPost(t, env.url, c.credential, cancel, authzProtocol...)
						if r.status != http.StatusForbidden {
							t.Fatalf("status %d, want 403: %s", r.status, r.body)
						}
						authzWantChallenge(t, r, wantChallenge)
						if msg := authzDecode(t, r); msg.Result != nil || msg.Error == nil {
							t.Fatalf("answer %s", r.body)
						}
						authzNotCancelled(t, env.Env, target)
					})
					// The same tool name, spelled so that a parser other
					// than the SDK's could miss it, is still cancel_order.
					for _, tt := range []struct{ name, body string }{
						{"EscapedToolNameIsForbidden", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"cancel\u005forder","arguments":{"order_id":"` + target + `"}}}`},
						{"EscapedNameKeyIsForbidden", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"n\u0061me":"cancel_order","arguments":{"order_id":"` + target + `"}}}`},
						{"EscapedMethodIsForbidden", `{"jsonrpc":"2.0","id":1,"method":"tools\/call","params":{"name":"cancel_order","arguments":{"order_id":"` + target + `"}}}`},
					} {
						t.Run(tt.name, func(t *testing.T) {
							r := authzPost(t, env.url, c.credential, tt.body, authzProtocol...)
							if r.status != http.StatusForbidden {
								t.Fatalf("status %d, want 403: %s", r.status, r.body)
							}
							authzWantChallenge(t, r, wantChallenge)
							authzNotCancelled(t, env.Env, target)
						})
					}
				})
			}
			authzNoSecrets(t, env.Env, nil, []string{readOnly, canCancel}, secrets...)

			t.Run("CallerWithCancelScopeCancels", func(t *testing.T) {
				// The control: the request refused above is a valid
				// cancellation of a cancellable order.
				r := authzPost(t, env.url, canCancel, cancel, authzProtocol...)
				if msg := authzDecode(t, r); r.status != http.StatusOK || msg.Result == nil || msg.Result.IsError {
					t.Fatalf("status %d: %s", r.status, r.body)
				}
				if st := authzOrderState(t, env.Env, target); !strings.HasPrefix(st, "cancelled|") {
					t.Fatalf("order %s", st)
				}
				if n := authzCancelled(t, env.Env, target); n != "1" {
					t.Fatalf("%s audit records of the cancellation", n)
				}
			})
		})
	}
}

// TestSmuggledCancelCallsAreRefused hides a cancel_order call where a check
// that parses the body differently from the SDK would miss it: a key that
// differs only in case, a duplicate key, a JSON-RPC batch (sent without
// MCP-Protocol-Version, when the SDK would execute it), or a body that does
// not parse. Each is refused with 400 before the MCP layer, for a caller
// without orders:cancel and for one with it (which the SDK would have let
// cancel), and the order never changes.
func TestSmuggledCancelCallsAreRefused(t *testing.T) {
	env := authzNewEnv(t, false, httpserver.Config{})
	args := func(id string) string { return `{"order_id":"` + id + `","reason":"ordered_by_mistake"}` }
	get := func(id string) string {
		return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_order_status","arguments":{"order_id":"` + id + `"}}}`
	}
	cancel := func(id string) string {
		return `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"cancel_order","arguments":` + args(id) + `}}`
	}
	noVersion := []string{}

	tests := []struct {
		name    string
		body    func(order string) string
		headers []string
	}{
		{"CaseVariantNameKeyIsRefused", func(id string) string {
			return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"cancel_order","NAME":"get_order_status","arguments":` + args(id) + `}}`
		}, authzProtocol},
		{"CaseVariantNameKeyFirstIsRefused", func(id string) string {
			return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"Name":"get_order_status","name":"cancel_order","arguments":` + args(id) + `}}`
		}, authzProtocol},
		{"DuplicateNameKeyIsRefused", func(id string) string {
			return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_order_status","name":"cancel_order","arguments":` + args(id) + `}}`
		}, authzProtocol},
		{"CaseVariantMethodKeyIsRefused", func(id string) string {
			return `{"jsonrpc":"2.0","id":1,"Method":"tools/list","method":"tools/call","params":{"name":"cancel_order","arguments":` + args(id) + `}}`
		}, authzProtocol},
		{"CaseVariantParamsKeyIsRefused", func(id string) string {
			return `{"jsonrpc":"2.0","id":1,"method":"tools/call","PARAMS":{"name":"get_order_status","arguments":{"order_id":"` + id + `"}},"params":{"name":"cancel_order","arguments":` + args(id) + `}}`
		}, authzProtocol},
		{"BatchHidingCancelBehindAReadIsRefused", func(id string) string { return "[" + get(id) + "," + cancel(id) + "]" }, noVersion},
		{"BatchOfOneCancelIsRefused", func(id string) string { return "[" + cancel(id) + "]" }, noVersion},
		{"BatchAfterWhitespaceIsRefused", func(id string) string { return " \r\n\t[" + get(id) + "," + cancel(id) + "]" }, noVersion},
		{"BatchWithProtocolHeaderIsRefused", func(id string) string { return "[" + get(id) + "," + cancel(id) + "]" }, authzProtocol},
		{"TruncatedBodyIsRefused", func(id string) string { return strings.TrimSuffix(cancel(id), "}}") }, authzProtocol},
		{"CancelFollowedByTrailingDataIsRefused", func(id string) string { return cancel(id) + `,"x"` }, authzProtocol},
		{"ReadFollowedByCancelIsRefused", func(id string) string { return get(id) + cancel(id) }, noVersion},
		{"NonJSONBodyIsRefused", func(id string) string { return `tools/call cancel_order ` + id }, authzProtocol},
		{"NullBodyIsRefused", func(string) string { return `null` }, authzProtocol},
		{"StringBodyIsRefused", func(id string) string { return `"` + strings.ReplaceAll(cancel(id), `"`, `\"`) + `"` }, authzProtocol},
		{"ToolNameOfWrongTypeIsRefused", func(id string) string {
			return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":["cancel_order"],"arguments":` + args(id) + `}}`
		}, authzProtocol},
	}
	// One pending order per case and caller: a case that wrongly cancels
	// shows up in that case alone.
	customerID, orders := authzCustomer(t, env.Env, demo.Customers()[4], 2*len(tests)+1)
	readOnly, _ := env.Key(t, customerID, auth.ScopeRead)
	canCancel, _ := env.Key(t, customerID, auth.ScopeRead, auth.ScopeCancel)
	for c, caller := range []struct{ name, key string }{{"ReadOnlyCaller", readOnly}, {"CallerWithCancelScope", canCancel}} {
		t.Run(caller.name, func(t *testing.T) {
			for i, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					target := orders[c*len(tests)+i]
					r := authzPost(t, env.url, caller.key, tt.body(target), tt.headers...)
					if r.status != http.StatusBadRequest {
						t.Errorf("status %d, want 400: %.300s", r.status, r.body)
					}
					if strings.Contains(r.body, `"result"`) {
						t.Errorf("a refused body got a result: %.300s", r.body)
					}
					authzNotCancelled(t, env.Env, target)
				})
			}
		})
	}
	authzNoSecrets(t, env.Env, nil, []string{readOnly, canCancel})

	t.Run("PlainCancelByCallerWithCancelScopeCancels", func(t *testing.T) {
		// The control: the orders were cancellable, and this caller could
		// cancel one with a request nobody could misread.
		target := orders[len(orders)-1]
		r := authzPost(t, env.url, canCancel, cancel(target), authzProtocol...)
		if msg := authzDecode(t, r); r.status != http.StatusOK || msg.Result == nil || msg.Result.IsError {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		if n := authzCancelled(t, env.Env, target); n != "1" {
			t.Fatalf("%s audit records of the cancellation", n)
		}
	})
}

// TestCustomerCannotReachAnotherCustomersOrders has a caller bound to one
// customer reach for another's: reading another customer's order by id
// fails exactly like reading an order that does not exist, and listing with
// another customer's id is refused exactly like listing with an id that
// does not exist. Nothing of the other customer comes back. Run with an API
// key and with an OAuth token carrying the customer claim, in both protocol
// generations.
func TestCustomerCannotReachAnotherCustomersOrders(t *testing.T) {
	env := authzNewEnv(t, true, httpserver.Config{})
	demo := demo.Customers()
	alice, bob := demo[0], demo[1]
	bobOrders, err := env.OwnerQueryStrings(t, `SELECT id FROM orders WHERE customer_id = $1 ORDER BY id`, bob.ID)
	if err != nil || len(bobOrders) == 0 {
		t.Fatalf("bob's orders: %v %v", bobOrders, err)
	}
	// A copy of bob with pending orders of its own, for the cancellation.
	bobCopy, bobPending := authzCustomer(t, env.Env, bob, 1)
	bobOrders = append(bobOrders, bobPending...)
	key, _ := env.Key(t, alice.ID, auth.ScopeRead, auth.ScopeCancel)
	tok := env.issuer.Token(t, authzCustomerClaims(env.issuer, "alice-user", alice.ID, auth.ScopeRead, auth.ScopeCancel))
	bobKey, _ := env.Key(t, bob.ID, auth.ScopeRead)

	call := func(t *testing.T, cs *mcp.ClientSession, tool string, args map[string]any) (*mcp.CallToolResult, string) {
		t.Helper()
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: tool, Arguments: args})
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		return res, authzResultJSON(t, res)
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
		for _, version := range []string{testenv.Protocol20251125, testenv.Protocol20260728} {
			t.Run(caller.name+"/"+version, func(t *testing.T) {
				cs := authzConnect(t, env.url, testenv.BearerClient(caller.credential), version)

				nonexistent, _ := call(t, cs, "get_order_status", map[string]any{"order_id": authzID("ord")})
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
					authzNotCancelled(t, env.Env, bobPending[0])
				})
				t.Run("ListingOtherCustomerIsRefused", func(t *testing.T) {
					unknown, _ := call(t, cs, "list_recent_orders", map[string]any{"customer_id": authzID("cus")})
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
	authzNoSecrets(t, env.Env, nil, []string{key, bobKey}, authzTokenSecrets(tok)...)
}

// TestOAuthCallersEndToEnd uses tokens from the trusted issuer with the
// go-sdk client, in both protocol generations: a customer token reads its
// own orders and sees the tools its scopes allow; a staff token (no
// customer claim, orders:read:any) reads any customer's order, with
// personal data masked.
func TestOAuthCallersEndToEnd(t *testing.T) {
	env := authzNewEnv(t, true, httpserver.Config{})
	demo := demo.Customers()
	maya := demo[0]
	customerID, orders := authzCustomer(t, env.Env, demo[5], 2)
	customerTok := env.issuer.Token(t, authzCustomerClaims(env.issuer, "customer-e2e", customerID,
		auth.ScopeRead, auth.ScopeCancel))
	staffTok := env.issuer.Token(t, env.issuer.Claims(authzAudience, "staff-e2e", auth.ScopeRead, auth.ScopeReadAny))
	mayaOrders, err := env.OwnerQueryStrings(t, `SELECT id FROM orders WHERE customer_id = $1 ORDER BY id`, maya.ID)
	if err != nil || len(mayaOrders) == 0 {
		t.Fatalf("maya's orders: %v %v", mayaOrders, err)
	}
	var outputs []string

	for i, version := range []string{testenv.Protocol20251125, testenv.Protocol20260728} {
		t.Run("CustomerToken/"+version, func(t *testing.T) {
			cs := authzConnect(t, env.url, testenv.BearerClient(customerTok), version)
			if got := cs.InitializeResult().ProtocolVersion; got != version {
				t.Fatalf("negotiated %s, want %s", got, version)
			}
			if got, want := authzToolNames(t, cs), []string{"cancel_order", "get_order_status", "list_recent_orders"}; !slices.Equal(got, want) {
				t.Fatalf("tools %v, want %v", got, want)
			}
			res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "list_recent_orders", Arguments: map[string]any{}})
			if err != nil || res.IsError {
				t.Fatalf("list: %v %s", err, testenv.Text(res))
			}
			out := authzResultJSON(t, res)
			outputs = append(outputs, out)
			for _, id := range orders {
				if !strings.Contains(out, id) {
					t.Fatalf("own order %s not listed: %s", id, out)
				}
			}
			res, err = cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "cancel_order",
				Arguments: map[string]any{"order_id": orders[i], "reason": "ordered_by_mistake"}})
			if err != nil || res.IsError {
				t.Fatalf("cancel: %v %s", err, testenv.Text(res))
			}
			if st := authzOrderState(t, env.Env, orders[i]); !strings.HasPrefix(st, "cancelled|") {
				t.Fatalf("order %s", st)
			}
		})
		t.Run("StaffToken/"+version, func(t *testing.T) {
			cs := authzConnect(t, env.url, testenv.BearerClient(staffTok), version)
			if got, want := authzToolNames(t, cs), []string{"get_order_status", "list_recent_orders"}; !slices.Equal(got, want) {
				t.Fatalf("tools %v, want %v", got, want)
			}
			for _, id := range []string{mayaOrders[0], orders[0]} {
				res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "get_order_status",
					Arguments: map[string]any{"order_id": id}})
				if err != nil || res.IsError {
					t.Fatalf("staff read of %s: %v %s", id, err, testenv.Text(res))
				}
				out := authzResultJSON(t, res)
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
	authzNoSecrets(t, env.Env, outputs, nil, append(authzTokenSecrets(customerTok), authzTokenSecrets(staffTok)...)...)
}

// TestTokenInsideTheClockSkewIsServed: a token that expired a few seconds
// ago is within the verifier's 30-second skew and must be served like any
// valid token (not refused by a second, skew-less check further down).
func TestTokenInsideTheClockSkewIsServed(t *testing.T) {
	issuer := testenv.NewIssuer(t)
	aud := "http://127.0.0.1/mcp"
	env := testenv.New(t, dsn, testenv.Options{TokenVerifier: issuer.Verifier(t, aud),
		HTTP: httpserver.Config{ResourceURL: aud, OAuthIssuer: issuer.ID}})
	claims := issuer.Claims(aud, "skewed", auth.ScopeRead)
	claims["customer_id"] = demo.Customers()[1].ID
	claims["exp"] = time.Now().Add(-10 * time.Second).Unix()
	claims["iat"] = time.Now().Add(-time.Minute).Unix()
	claims["nbf"] = time.Now().Add(-time.Minute).Unix()
	cs := env.ConnectHTTP(t, issuer.Token(t, claims), testenv.Protocol20251125)
	res := testenv.Call(t, cs, "list_recent_orders", map[string]any{"limit": 1})
	if res.IsError {
		t.Fatalf("a token 10s past exp (inside the 30s skew) was refused: %s", testenv.Text(res))
	}
}
