package mcpserver_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/demo"
	"github.com/example/order-mcp/internal/refusal"
	"github.com/example/order-mcp/internal/store"
	"github.com/example/order-mcp/internal/testenv"
	"github.com/example/order-mcp/internal/tools"
)

// Attacks on the customer binding: one customer's callers never reach
// another customer's orders, whichever tool they use, and staff see what
// the customer sees.

// TestTenantIsolationUnderConcurrency has two customers read at the same
// time, interleaved, at high concurrency, over the stdio path and over
// HTTP, each also probing the other's order ids. Nobody ever receives the
// other's data: a principal or binding leaking between concurrent
// requests (a shared variable, a pooled connection keeping the previous
// transaction's customer setting) would show here.
func TestTenantIsolationUnderConcurrency(t *testing.T) {
	env := testenv.New(t, dsn, testenv.Options{Lockout: &noLockout})
	type tenant struct {
		customer demo.Customer
		key      string
		orders   []string
		name     string // the masked name the customer's own lookups show
	}
	tenants := []*tenant{{customer: customers[2]}, {customer: customers[3]}}
	var secrets []string
	for _, tn := range tenants {
		tn.key, _ = env.Key(t, tn.customer.ID, auth.ScopeRead)
		tn.orders = ordersOf(t, env, tn.customer.ID)
		cs := env.Connect(t, tn.key, "")
		tn.name = testenv.Decode[orderStatus](t, testenv.Call(t, cs, "get_order_status", map[string]any{"order_id": tn.orders[0]})).Customer.Name
		secrets = append(secrets, tn.key)
	}
	if tenants[0].name == tenants[1].name || tenants[0].name == "" {
		t.Fatalf("masked names do not tell the tenants apart: %q %q", tenants[0].name, tenants[1].name)
	}
	secrets = env.Secrets(t, secrets...)
	notFound := "" // the text for an order that does not exist
	{
		cs := env.Connect(t, tenants[0].key, "")
		notFound = testenv.Text(testenv.Call(t, cs, "get_order_status", map[string]any{"order_id": "ord_0000000000000000"}))
	}

	transports := []struct {
		name    string
		connect func(key string) *mcp.ClientSession
	}{
		{"InMemory", func(key string) *mcp.ClientSession { return env.Connect(t, key, "") }},
		{"HTTP", func(key string) *mcp.ClientSession { return env.ConnectHTTP(t, key, "") }},
	}
	const goroutines = 50
	var (
		wg       sync.WaitGroup
		failures = make(chan string, 20) // the first few are enough to diagnose
		calls    sync.Map
	)
	fail := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		if len(msg) > 400 {
			msg = msg[:400] + "..."
		}
		select {
		case failures <- msg:
		default:
		}
	}
	start := make(chan struct{})
	for _, tr := range transports {
		for ti, me := range tenants {
			them := tenants[1-ti]
			cs := tr.connect(me.key) // one session shared by all of this tenant's goroutines
			for g := range goroutines {
				wg.Go(func() {
					<-start
					mine := me.orders[g%len(me.orders)]
					theirs := them.orders[g%len(them.orders)]
					// Order of calls varies per goroutine so the two tenants'
					// requests interleave differently.
					steps := []func(){
						func() {
							res, err := callTool(cs, "get_order_status", map[string]any{"order_id": mine})
							if err != nil || res.IsError {
								fail("%s: own order: %v %s", tr.name, err, output(res))
								return
							}
							var got orderStatus
							b, _ := json.Marshal(res.StructuredContent)
							_ = json.Unmarshal(b, &got)
							if got.OrderID != mine || got.Customer.Name != me.name {
								fail("%s: %s asked for %s and got %s of %q", tr.name, me.customer.ID, mine, got.OrderID, got.Customer.Name)
							}
							if strings.Contains(output(res), them.name) {
								fail("%s: %s's result names the other tenant", tr.name, me.customer.ID)
							}
						},
						func() {
							res, err := callTool(cs, "list_recent_orders", map[string]any{"limit": 25})
							if err != nil || res.IsError {
								fail("%s: list: %v %s", tr.name, err, output(res))
								return
							}
							var got orderList
							b, _ := json.Marshal(res.StructuredContent)
							_ = json.Unmarshal(b, &got)
							if got.CustomerID != me.customer.ID || len(got.Orders) != len(me.orders) {
								fail("%s: %s listed %d orders of %s", tr.name, me.customer.ID, len(got.Orders), got.CustomerID)
							}
							for _, o := range got.Orders {
								if !slices.Contains(me.orders, o.OrderID) {
									fail("%s: %s received order %s of another customer", tr.name, me.customer.ID, o.OrderID)
								}
							}
						},
						func() {
							res, err := callTool(cs, "get_order_status", map[string]any{"order_id": theirs})
							if err != nil || !res.IsError || testenv.Text(res) != notFound {
								fail("%s: %s reading %s of the other tenant: %v %s", tr.name, me.customer.ID, theirs, err, output(res))
							}
						},
						func() {
							res, err := callTool(cs, "list_recent_orders", map[string]any{"customer_id": them.customer.ID})
							if err != nil || !res.IsError || strings.Contains(output(res), theirs) {
								fail("%s: %s listing the other tenant: %v %s", tr.name, me.customer.ID, err, output(res))
							}
						},
					}
					for i := range steps {
						steps[(i+g)%len(steps)]()
					}
					calls.Store(fmt.Sprintf("%s/%d/%d", tr.name, ti, g), true)
				})
			}
		}
	}
	close(start)
	wg.Wait()
	close(failures)
	for f := range failures {
		t.Error(f)
	}
	n := 0
	calls.Range(func(any, any) bool { n++; return true })
	if n != len(transports)*len(tenants)*goroutines {
		t.Fatalf("%d goroutines finished", n)
	}
	noSecrets(t, env, secrets)
}

// TestOtherCustomersOrderLooksNonexistent checks, for every tool of
// tools.All() that looks an order up by id, over both transports, that a
// customer naming another customer's order (of any status) gets exactly
// the answer for an id that does not exist, so ids cannot be confirmed by
// probing, and that the order does not change. The control: the caller's
// own order is found (the answer differs).
func TestOtherCustomersOrderLooksNonexistent(t *testing.T) {
	env := testenv.New(t, dsn, testenv.Options{Lockout: &noLockout})
	a, b := customers[2], customers[3]
	key, _ := env.Key(t, a.ID, toolScopes()...)
	theirs := ordersOf(t, env, b.ID)
	// Shipped: a destructive tool's control finds it and changes nothing.
	own := ordersOf(t, env, a.ID, store.StatusShipped, store.StatusDelivered)[0]
	restoreOrders(t, env, append(slices.Clone(theirs), own)...)
	secrets := env.Secrets(t, key)
	for _, tool := range lookups(t) {
		for _, tr := range transports {
			t.Run(tool.Name()+"/"+tr.name, func(t *testing.T) {
				cs := tr.connect(t, env, key)
				// call returns the answer, and its text with the order id
				// replaced, so that answers about two ids can be compared.
				call := func(id string) (*mcp.CallToolResult, string) {
					res := testenv.Call(t, cs, tool.Name(), argsFor(t, tool, testenv.Fixture{OrderID: id, CustomerID: a.ID}))
					return res, strings.ReplaceAll(output(res), id, "<order id>")
				}
				nonexistent, want := call(missingOrder)
				if !refusedAs(refusal.NotFound, nonexistent, nil) {
					t.Fatalf("nonexistent order: %s", output(nonexistent))
				}
				for _, id := range theirs {
					state := orderState(t, env, id)
					res, got := call(id)
					if got != want {
						t.Fatalf("other customer's %s: %s\nnonexistent: %s", id, got, want)
					}
					if orderState(t, env, id) != state {
						t.Fatalf("%s changed another customer's order %s", tool.Name(), id)
					}
					noSecrets(t, env, secrets, output(res))
				}
				t.Run("OwnOrderIsFound", func(t *testing.T) {
					if _, got := call(own); got == want {
						t.Fatalf("the caller's own order %s answers like a missing one: %s", own, got)
					}
				})
			})
		}
	}
}

// TestOtherCustomerIsRefusedByEveryToolNamingOne checks, for every tool of
// tools.All() that takes a customer id, over both transports, that a
// caller bound to one customer naming another gets exactly the refusal
// for a customer that does not exist (so customer ids cannot be confirmed
// either), before any of the tool's work, on record as denied with the
// customer it named. The control: naming its own customer, the same call
// gets past the check.
func TestOtherCustomerIsRefusedByEveryToolNamingOne(t *testing.T) {
	env := testenv.New(t, dsn, testenv.Options{Lockout: &noLockout})
	a, b := customers[2], customers[3]
	key, keyID := env.Key(t, a.ID, toolScopes()...)
	own := ordersOf(t, env, a.ID, store.StatusShipped, store.StatusDelivered)[0]
	restoreOrders(t, env, own)
	secrets := env.Secrets(t, key)
	const unknown = "cus_0000000000000000"
	named := 0
	for _, tool := range tools.All() {
		if !testenv.NamesCustomer(tool) {
			continue
		}
		named++
		for _, tr := range transports {
			t.Run(tool.Name()+"/"+tr.name, func(t *testing.T) {
				cs := tr.connect(t, env, key)
				call := func(customer string) (*mcp.CallToolResult, string, auditRow) {
					env.Queries.Reset()
					before := auditHead(t, env)
					res := testenv.Call(t, cs, tool.Name(), argsFor(t, tool, testenv.Fixture{OrderID: own, CustomerID: customer}))
					return res, strings.ReplaceAll(output(res), customer, "<customer id>"), oneRecord(t, env, before)
				}
				answers := map[string]string{}
				for _, other := range []string{b.ID, unknown} {
					res, got, rec := call(other)
					if !refusedAs(refusal.ForeignCustomer, res, nil) {
						t.Fatalf("naming customer %s: %s", other, output(res))
					}
					noWork(t, env, tool.Name())
					if rec.Decision != "denied" || rec.Outcome != refusal.ForeignCustomer.Name() ||
						rec.CredentialID != keyID || !slices.Contains(rec.ObjectIDs, other) {
						t.Fatalf("record %+v, want a denied %s naming %s", rec, refusal.ForeignCustomer.Name(), other)
					}
					noSecrets(t, env, secrets, output(res))
					answers[other] = got
				}
				if answers[b.ID] != answers[unknown] {
					t.Fatalf("another customer: %s\nan unknown one: %s", answers[b.ID], answers[unknown])
				}
				t.Run("OwnCustomerGetsPast", func(t *testing.T) {
					env.Queries.Reset()
					res, err := callTool(cs, tool.Name(), controlArgs(t, tool, testenv.Fixture{OrderID: own, CustomerID: a.ID}))
					gotPast(t, env, tool, refusal.ForeignCustomer, res, err)
				})
			})
		}
	}
	if named == 0 {
		t.Fatal("no tool of tools.All() takes a customer id (a ^cus_ pattern): the attack has no target (delete it if that is right)")
	}
}

// TestStaffSeesWhatTheCustomerSees checks that a staff key reads any
// customer's orders, masked exactly like the customer's own view, and
// that a customer key with orders:read:any is still not staff.
func TestStaffSeesWhatTheCustomerSees(t *testing.T) {
	env := testenv.New(t, dsn, testenv.Options{Lockout: &noLockout})
	aiko, other := customers[4], customers[0]
	customerKey, _ := env.Key(t, aiko.ID, auth.ScopeRead)
	staffKey, _ := env.Key(t, "", auth.ScopeRead, auth.ScopeReadAny)
	greedyKey, _ := env.Key(t, aiko.ID, auth.ScopeRead, auth.ScopeReadAny)
	secrets := env.Secrets(t, customerKey, staffKey, greedyKey)
	customer := env.Connect(t, customerKey, "")
	staff := env.Connect(t, staffKey, "")
	staffHTTP := env.ConnectHTTP(t, staffKey, "")

	for _, id := range ordersOf(t, env, aiko.ID) {
		t.Run("SameOutputFor/"+id, func(t *testing.T) {
			own := testenv.Call(t, customer, "get_order_status", map[string]any{"order_id": id})
			got := testenv.Decode[orderStatus](t, own)
			if got.Customer.Email == aiko.Email || !strings.Contains(got.Customer.Email, "*") {
				t.Fatalf("customer's own view not masked: %+v", got.Customer)
			}
			for _, s := range []*mcp.ClientSession{staff, staffHTTP} {
				res := testenv.Call(t, s, "get_order_status", map[string]any{"order_id": id})
				if output(res) != output(own) {
					t.Fatalf("staff sees\n%s\ncustomer sees\n%s", output(res), output(own))
				}
				noSecrets(t, env, secrets, output(res))
			}
		})
	}
	t.Run("StaffListsTheCustomersOrdersMasked", func(t *testing.T) {
		got := testenv.Decode[orderList](t, testenv.Call(t, staff, "list_recent_orders", map[string]any{"customer_id": aiko.ID, "limit": 25}))
		own := testenv.Decode[orderList](t, testenv.Call(t, customer, "list_recent_orders", map[string]any{"limit": 25}))
		a, _ := json.Marshal(got)
		b, _ := json.Marshal(own)
		if string(a) != string(b) {
			t.Fatalf("staff list %s, customer list %s", a, b)
		}
	})
	t.Run("CustomerKeyWithReadAnyIsNotStaff", func(t *testing.T) {
		cs := env.Connect(t, greedyKey, "")
		nonexistent := testenv.Call(t, cs, "get_order_status", map[string]any{"order_id": "ord_0000000000000000"})
		res := testenv.Call(t, cs, "get_order_status", map[string]any{"order_id": ordersOf(t, env, other.ID)[0]})
		if !res.IsError || output(res) != output(nonexistent) {
			t.Fatalf("customer key with orders:read:any read another customer's order: %s", output(res))
		}
		res = testenv.Call(t, cs, "list_recent_orders", map[string]any{"customer_id": other.ID})
		if !res.IsError || strings.Contains(output(res), other.ID[4:]) && !strings.Contains(testenv.Text(res), "Not allowed") {
			t.Fatalf("customer key with orders:read:any listed another customer: %s", output(res))
		}
		noSecrets(t, env, secrets, output(res))
	})
}
