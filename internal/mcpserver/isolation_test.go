package mcpserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/demo"
	"github.com/example/order-mcp/internal/mcpserver"
	"github.com/example/order-mcp/internal/refusal"
	"github.com/example/order-mcp/internal/store"
	"github.com/example/order-mcp/internal/testenv"
	"github.com/example/order-mcp/internal/tools"
)

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

// TestOtherCustomersOrderLooksNonexistent checks that a customer asking
// for another customer's order id gets exactly the answer for an id that
// does not exist, so ids cannot be confirmed by probing.
func TestOtherCustomersOrderLooksNonexistent(t *testing.T) {
	env := testenv.New(t, dsn, testenv.Options{Lockout: &noLockout})
	a, b := customers[2], customers[3]
	key, _ := env.Key(t, a.ID, auth.ScopeRead, auth.ScopeCancel)
	theirs := ordersOf(t, env, b.ID)
	theirPending := ordersOf(t, env, b.ID, store.StatusPending, store.StatusProcessing)[0]
	secrets := env.Secrets(t, key)
	for _, tr := range []struct {
		name string
		cs   *mcp.ClientSession
	}{{"InMemory", env.Connect(t, key, "")}, {"HTTP", env.ConnectHTTP(t, key, "")}} {
		for _, tool := range []string{"get_order_status", "cancel_order"} {
			t.Run(tr.name+"/"+tool, func(t *testing.T) {
				nonexistent := testenv.Call(t, tr.cs, tool, map[string]any{"order_id": "ord_0000000000000000"})
				if !nonexistent.IsError {
					t.Fatalf("nonexistent order: %s", output(nonexistent))
				}
				for _, id := range append(slices.Clone(theirs), theirPending) {
					state := orderState(t, env, id)
					res := testenv.Call(t, tr.cs, tool, map[string]any{"order_id": id})
					if !res.IsError || output(res) != output(nonexistent) {
						t.Fatalf("other customer's %s: %s\nnonexistent: %s", id, output(res), output(nonexistent))
					}
					if orderState(t, env, id) != state {
						t.Fatalf("%s changed another customer's order %s", tool, id)
					}
					noSecrets(t, env, secrets, output(res))
				}
			})
		}
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

// TestUnboundCredentialIsRefused covers a credential bound to no customer
// and not staff (orders:read without orders:read:any). It must not be
// treated as staff by omission: every call is refused before any order
// statement runs, and nothing changes.
func TestUnboundCredentialIsRefused(t *testing.T) {
	env := testenv.New(t, dsn, testenv.Options{})
	aiko := customers[4]
	pending := ordersOf(t, env, aiko.ID, store.StatusPending, store.StatusProcessing)[0]
	unboundKey, unboundID := env.Key(t, "", auth.ScopeRead, auth.ScopeCancel)
	secrets := env.Secrets(t, unboundKey)

	calls := []struct {
		tool string
		args map[string]any
	}{
		{"get_order_status", map[string]any{"order_id": pending}},
		{"list_recent_orders", map[string]any{"customer_id": aiko.ID}},
		{"list_recent_orders", map[string]any{}},
		{"cancel_order", map[string]any{"order_id": pending}},
	}
	check := func(t *testing.T, cs *mcp.ClientSession, wantCode int64, wantText, wantOutcome string) {
		t.Helper()
		for _, c := range calls {
			state := orderState(t, env, pending)
			env.Queries.Reset()
			before := auditHead(t, env)
			res, err := callTool(cs, c.tool, c.args)
			if err == nil || res != nil {
				t.Fatalf("%s: not refused: %s", c.tool, output(res))
			}
			if !strings.Contains(err.Error(), wantText) {
				t.Fatalf("%s: error %q, want %q", c.tool, err, wantText)
			}
			for _, q := range env.Queries.Events() {
				if slices.Contains(orderStatements, q.Name) {
					t.Fatalf("%s: statement %s ran", c.tool, q.Name)
				}
			}
			if orderState(t, env, pending) != state {
				t.Fatalf("%s changed the order", c.tool)
			}
			if rec := oneRecord(t, env, before); rec.Decision != "denied" || rec.Outcome != wantOutcome {
				t.Fatalf("%s: record %+v", c.tool, rec)
			}
			noSecrets(t, env, secrets, err.Error())
			if wantCode == refusal.CodeForbidden {
				forbiddenCode(t, err)
			} else if we := rpcError(t, err); we.Code != wantCode {
				t.Fatalf("%s: code %d, want %d", c.tool, we.Code, wantCode)
			}
		}
	}

	// Authentication itself refuses such a key.
	t.Run("KeyIsRefusedAtAuthentication", func(t *testing.T) {
		cs := env.Connect(t, unboundKey, "")
		if _, err := cs.ListTools(context.Background(), nil); rpcError(t, err).Code != refusal.CodeUnauthenticated {
			t.Fatalf("tools/list: %v", err)
		}
		check(t, cs, refusal.CodeUnauthenticated, "Unauthenticated: ", "unauthenticated")
		if !strings.Contains(env.Logs.String(), unboundID) {
			t.Fatal("the refusal is not logged with the key id")
		}
	})

	// Should an authenticator ever let such a principal through (a new
	// credential type, a bug), the gate refuses it on its own.
	t.Run("GateRefusesAnUnboundPrincipal", func(t *testing.T) {
		srv := mcpserver.New(mcpserver.Deps{
			Tools:         tools.Deps{Store: env.App, CancelDailyQuota: 100},
			Authenticator: passThrough{&auth.Principal{Subject: "apikey:" + unboundID, Method: "api_key", CredentialID: unboundID, Scopes: []auth.Scope{auth.ScopeRead, auth.ScopeCancel}}},
			Audit:         env.Audit,
			Limits:        env.Limits,
			Logger:        env.Logger,
			Version:       "test",
		})
		ct, st := mcp.NewInMemoryTransports()
		ss, err := srv.Connect(mcpserver.WithCredential(context.Background(), "stdio", unboundKey), st, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ss.Close() })
		cs, err := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil).Connect(context.Background(), ct, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cs.Close() })
		check(t, cs, refusal.CodeForbidden, "Forbidden: this credential is bound to no customer and is not staff.", "denied")
	})
}

// passThrough is an authenticator that accepts any credential as one
// fixed principal: it stands for a faulty authenticator in front of the
// gate.
type passThrough struct{ p *auth.Principal }

func (a passThrough) Authenticate(context.Context, string) (*auth.Principal, error) {
	p := *a.p
	return &p, nil
}
