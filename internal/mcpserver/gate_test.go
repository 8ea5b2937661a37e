package mcpserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/example/order-mcp/internal/audit"
	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/mcpserver"
	"github.com/example/order-mcp/internal/refusal"
	"github.com/example/order-mcp/internal/sdkfix"
	"github.com/example/order-mcp/internal/store"
	"github.com/example/order-mcp/internal/testenv"
	"github.com/example/order-mcp/internal/tools"
)

// TestOneAuditRecordPerToolCall makes one call per outcome the MCP layer
// knows, allowed and denied, over stdio's path and over HTTP, and checks
// each left exactly one record that says who did what to which object and
// how it ended, with the arguments redacted.
func TestOneAuditRecordPerToolCall(t *testing.T) {
	env := testenv.New(t, dsn, testenv.Options{Lockout: &noLockout})
	maya, other := customers[0], customers[1]
	key, keyID := env.Key(t, maya.ID, auth.ScopeRead, auth.ScopeCancel)
	readOnly, readOnlyID := env.Key(t, maya.ID, auth.ScopeRead)
	revoked, revokedID := env.Key(t, maya.ID, auth.ScopeRead)
	secrets := env.Secrets(t, key, readOnly, revoked)

	own := ordersOf(t, env, maya.ID)[0]
	shipped := ordersOf(t, env, maya.ID, store.StatusShipped, store.StatusDelivered)[0]
	foreign := ordersOf(t, env, other.ID)[0]
	const missing = "ord_0000000000000000"

	cs := env.Connect(t, key, "")
	ro := env.Connect(t, readOnly, "")
	rv := env.Connect(t, revoked, "")
	overHTTP := env.ConnectHTTP(t, key, "")
	if err := env.Owner.RevokeAPIKey(context.Background(), revokedID); err != nil {
		t.Fatal(err)
	}

	type want struct {
		decision, outcome, reason, principal, credential, transport, action string
		objects                                                             []string
		arguments                                                           string // exact, "" to skip
	}
	apikey := func(id string) string { return "apikey:" + id }
	tests := []struct {
		name    string
		session *mcp.ClientSession
		tool    string
		args    map[string]any
		rpcErr  bool
		want    want
	}{
		{"OwnOrderIsOk", cs, "get_order_status", map[string]any{"order_id": own}, false,
			want{"allowed", "ok", "", apikey(keyID), keyID, "stdio", "get_order_status", []string{own}, `{"order_id":"` + own + `"}`}},
		{"ListIsOk", cs, "list_recent_orders", map[string]any{"limit": 3}, false,
			want{"allowed", "ok", "", apikey(keyID), keyID, "stdio", "list_recent_orders", []string{maya.ID}, `{"limit":3}`}},
		{"UnknownOrderIsNotFound", cs, "get_order_status", map[string]any{"order_id": missing}, false,
			want{"allowed", "not_found", "", apikey(keyID), keyID, "stdio", "get_order_status", []string{missing}, ""}},
		{"OtherCustomersOrderIsNotFound", cs, "get_order_status", map[string]any{"order_id": foreign}, false,
			want{"allowed", "not_found", "", apikey(keyID), keyID, "stdio", "get_order_status", []string{foreign}, ""}},
		{"OtherCustomersListIsDenied", cs, "list_recent_orders", map[string]any{"customer_id": other.ID}, false,
			want{"denied", "foreign_customer", "foreign_customer", apikey(keyID), keyID, "stdio", "list_recent_orders", []string{other.ID}, ""}},
		{"ShippedOrderIsNotCancellable", cs, "cancel_order", map[string]any{"order_id": shipped}, false,
			want{"allowed", "not_cancellable", "", apikey(keyID), keyID, "stdio", "cancel_order", []string{shipped}, ""}},
		{"InvalidInputIsRecordedRedacted", cs, "get_order_status",
			map[string]any{"order_id": "nope", "email": maya.Email, "comment": "call me on " + maya.Phone + " key " + key}, false,
			want{"allowed", "invalid_input", "", apikey(keyID), keyID, "stdio", "get_order_status", nil, ""}},
		{"UnknownToolIsDenied", cs, "export_all_orders", map[string]any{}, true,
			want{"denied", "unknown_tool", "unknown tool", apikey(keyID), keyID, "stdio", "unknown_tool", nil, "{}"}},
		{"MissingScopeIsDenied", ro, "cancel_order", map[string]any{"order_id": own}, true,
			want{"denied", "denied", "missing scope orders:cancel", apikey(readOnlyID), readOnlyID, "stdio", "cancel_order", nil, ""}},
		{"RevokedKeyIsUnauthenticated", rv, "get_order_status", map[string]any{"order_id": own}, true,
			want{"denied", "unauthenticated", "unauthenticated", "", "", "stdio", "get_order_status", nil, ""}},
		{"OverHTTPOwnOrderIsOk", overHTTP, "get_order_status", map[string]any{"order_id": own}, false,
			want{"allowed", "ok", "", apikey(keyID), keyID, "http", "get_order_status", []string{own}, ""}},
		{"OverHTTPOtherCustomersOrderIsNotFound", overHTTP, "get_order_status", map[string]any{"order_id": foreign}, false,
			want{"allowed", "not_found", "", apikey(keyID), keyID, "http", "get_order_status", []string{foreign}, ""}},
		{"OverHTTPInvalidInputIsRecorded", overHTTP, "list_recent_orders", map[string]any{"limit": 1000}, false,
			want{"allowed", "invalid_input", "", apikey(keyID), keyID, "http", "list_recent_orders", nil, ""}},
		{"OverHTTPUnknownToolIsDenied", overHTTP, "export_all_orders", map[string]any{}, true,
			want{"denied", "unknown_tool", "unknown tool", apikey(keyID), keyID, "http", "unknown_tool", nil, ""}},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := auditHead(t, env)
			res, err := callTool(tt.session, tt.tool, tt.args)
			if tt.rpcErr != (err != nil) {
				t.Fatalf("JSON-RPC error %v, want one: %v", err, tt.rpcErr)
			}
			// The record is committed before the result is released: it is
			// there as soon as the call returns.
			got := oneRecord(t, env, before)
			w := tt.want
			if got.Kind != "tool_call" || got.Decision != w.decision || got.Outcome != w.outcome || got.Reason != w.reason ||
				got.Principal != w.principal || got.CredentialID != w.credential || got.Transport != w.transport ||
				got.Action != w.action || !slices.Equal(got.ObjectIDs, w.objects) {
				t.Fatalf("record %+v\nwant %+v", got, w)
			}
			if w.arguments != "" && got.Arguments != w.arguments {
				t.Fatalf("arguments %q, want %q", got.Arguments, w.arguments)
			}
			var args map[string]any
			if err := json.Unmarshal([]byte(got.Arguments), &args); err != nil {
				t.Fatalf("arguments are not JSON: %q", got.Arguments)
			}
			if len(got.CorrelationID) != 13 || seen[got.CorrelationID] {
				t.Fatalf("correlation id %q missing or reused", got.CorrelationID)
			}
			seen[got.CorrelationID] = true
			if len(logged(t, env, "tool call", got.CorrelationID)) != 1 {
				t.Fatalf("no log line for correlation id %s", got.CorrelationID)
			}
			noSecrets(t, env, secrets, output(res), fmt.Sprint(err), got.Arguments)
		})
	}

	t.Run("RedactedArgumentsKeepTheirShape", func(t *testing.T) {
		before := auditHead(t, env)
		testenv.Call(t, cs, "get_order_status", map[string]any{"order_id": own, "email": maya.Email, "note": key})
		got := oneRecord(t, env, before)
		var args map[string]string
		if err := json.Unmarshal([]byte(got.Arguments), &args); err != nil {
			t.Fatal(err)
		}
		if args["order_id"] != own || args["email"] == maya.Email || args["note"] == key ||
			!strings.Contains(got.Arguments, "REDACTED") {
			t.Fatalf("arguments recorded as %q", got.Arguments)
		}
	})

	t.Run("ChainVerifies", func(t *testing.T) {
		rep, err := audit.Verify(context.Background(), env.Owner, audit.NewKeyring(env.Sealer))
		if err != nil || rep.FirstBad != 0 {
			t.Fatalf("verify: %+v %v", rep, err)
		}
	})
}

// TestCancelCommitsWithItsRecord checks that a cancellation and its audit
// record are one transaction: both or neither.
func TestCancelCommitsWithItsRecord(t *testing.T) {
	env := testenv.New(t, dsn, testenv.Options{})
	jonas := customers[1]
	key, keyID := env.Key(t, jonas.ID, auth.ScopeRead, auth.ScopeCancel)
	cs := env.Connect(t, key, "")
	cancellable := ordersOf(t, env, jonas.ID, store.StatusPending, store.StatusProcessing)
	if len(cancellable) < 2 {
		t.Fatalf("need two cancellable orders, have %v", cancellable)
	}
	id, kept := cancellable[0], cancellable[1]
	restoreOrders(t, env, cancellable...)

	t.Run("CancelAndItsRecordCommitInOneTransaction", func(t *testing.T) {
		before := auditHead(t, env)
		got := testenv.Decode[cancelResult](t, testenv.Call(t, cs, "cancel_order", map[string]any{"order_id": id, "reason": "duplicate_order"}))
		if got.Status != "cancelled" || got.AlreadyCancelled {
			t.Fatalf("cancel: %+v", got)
		}
		rec := oneRecord(t, env, before)
		if rec.Outcome != "cancelled" || rec.Decision != "allowed" || rec.Action != "cancel_order" ||
			!slices.Equal(rec.ObjectIDs, []string{id}) || rec.Principal != "apikey:"+keyID ||
			rec.Arguments != `{"order_id":"`+id+`","reason":"duplicate_order"}` {
			t.Fatalf("record %+v", rec)
		}
		xmin, err := env.OwnerQueryStrings(t, "SELECT xmin::text FROM orders WHERE id = $1 AND cancelled_at IS NOT NULL", id)
		if err != nil || len(xmin) != 1 {
			t.Fatalf("order not cancelled: %v %v", xmin, err)
		}
		if xmin[0] != rec.Xmin {
			t.Fatalf("order written by transaction %s, its record by %s: not one transaction", xmin[0], rec.Xmin)
		}
	})

	t.Run("RetryIsOneRecord", func(t *testing.T) {
		before := auditHead(t, env)
		got := testenv.Decode[cancelResult](t, testenv.Call(t, cs, "cancel_order", map[string]any{"order_id": id}))
		if !got.AlreadyCancelled {
			t.Fatalf("retry: %+v", got)
		}
		if rec := oneRecord(t, env, before); rec.Outcome != "ok" || !slices.Equal(rec.ObjectIDs, []string{id}) {
			t.Fatalf("record %+v", rec)
		}
	})

	t.Run("FailedCancelIsOneRecordAndNoChange", func(t *testing.T) {
		shipped := ordersOf(t, env, jonas.ID, store.StatusShipped)[0]
		state := orderState(t, env, shipped)
		before := auditHead(t, env)
		res := testenv.Call(t, cs, "cancel_order", map[string]any{"order_id": shipped})
		if !res.IsError || !strings.Contains(testenv.Text(res), "can no longer be cancelled") {
			t.Fatalf("got %s", output(res))
		}
		if rec := oneRecord(t, env, before); rec.Outcome != "not_cancellable" || !slices.Equal(rec.ObjectIDs, []string{shipped}) {
			t.Fatalf("record %+v", rec)
		}
		if orderState(t, env, shipped) != state {
			t.Fatal("a refused cancellation changed the order")
		}
	})

	// The database refuses the record (a broken grant, a full disk): the
	// cancellation must not commit without it.
	t.Run("CancelRollsBackWhenItsRecordCannotBeWritten", func(t *testing.T) {
		state := orderState(t, env, kept)
		before := auditHead(t, env)
		revokeAuditInsert(t, env)
		res, err := callTool(cs, "cancel_order", map[string]any{"order_id": kept})
		if err != nil {
			t.Fatal(err)
		}
		ref := internalReference(t, res)
		if got := orderState(t, env, kept); got != state {
			t.Fatalf("order changed without its audit record: %s -> %s", state, got)
		}
		if rows := toolCallRecords(t, env, before); len(rows) != 0 {
			t.Fatalf("records written with inserts revoked: %+v", rows)
		}
		// The failed call's record could not be written either (inserts are
		// revoked): the log says so under the same reference.
		if len(logged(t, env, "audit record of a refused call not committed", ref)) == 0 {
			t.Fatalf("reference %s not in the log", ref)
		}
		noSecrets(t, env, env.Secrets(t, key), output(res))
	})

	// The quota refusal is an access decision: one record, denied, and
	// the order unchanged.
	t.Run("QuotaExceededIsOneDeniedRecord", func(t *testing.T) {
		quotaEnv := testenv.New(t, dsn, testenv.Options{CancelDailyQuota: 1}) // id was cancelled above
		qcs := quotaEnv.Connect(t, key, "")
		state := orderState(t, quotaEnv, kept)
		before := auditHead(t, quotaEnv)
		res := testenv.Call(t, qcs, "cancel_order", map[string]any{"order_id": kept})
		if !res.IsError || !strings.Contains(testenv.Text(res), "daily cancellation limit") {
			t.Fatalf("got %s", output(res))
		}
		rec := oneRecord(t, quotaEnv, before)
		if rec.Outcome != "quota_exceeded" || rec.Decision != "denied" || !slices.Equal(rec.ObjectIDs, []string{kept}) {
			t.Fatalf("record %+v", rec)
		}
		if orderState(t, quotaEnv, kept) != state {
			t.Fatal("the order changed past the quota")
		}
	})

	t.Run("ChainVerifies", func(t *testing.T) {
		rep, err := audit.Verify(context.Background(), env.Owner, audit.NewKeyring(env.Sealer))
		if err != nil || rep.FirstBad != 0 {
			t.Fatalf("verify: %+v %v", rep, err)
		}
	})
}

// TestNoResultBeforeItsRecord checks that a tool result is released only
// after its record is committed, and that a call whose record cannot be
// committed returns an internal error instead of the data (fail closed).
func TestNoResultBeforeItsRecord(t *testing.T) {
	olivia := customers[5]
	own := func(env *testenv.Env) string { return ordersOf(t, env, olivia.ID)[0] }

	t.Run("ResultWaitsForTheCommit", func(t *testing.T) {
		env := testenv.New(t, dsn, testenv.Options{})
		key, _ := env.Key(t, olivia.ID, auth.ScopeRead)
		cs := env.Connect(t, key, "")
		id := own(env)
		before := auditHead(t, env)
		release := testenv.HoldAuditChainLock(t, env.DSN)
		done := make(chan *mcp.CallToolResult, 1)
		go func() {
			res, _ := callTool(cs, "get_order_status", map[string]any{"order_id": id})
			done <- res
		}()
		testenv.WaitForAuditChainWaiter(t, env.DSN)
		select {
		case res := <-done:
			t.Fatalf("result released while its record could not commit: %s", output(res))
		case <-time.After(100 * time.Millisecond):
		}
		release()
		res := <-done
		if got := testenv.Decode[orderStatus](t, res); got.OrderID != id {
			t.Fatalf("got %+v", got)
		}
		if rec := oneRecord(t, env, before); rec.Outcome != "ok" {
			t.Fatalf("record %+v", rec)
		}
	})

	cases := []struct {
		name   string
		break_ func(t *testing.T, env *testenv.Env)
	}{
		{"ClosedWriterWithholdsTheResult", func(t *testing.T, env *testenv.Env) {
			if err := env.Audit.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
		}},
		{"DatabaseRefusingTheRecordWithholdsTheResult", revokeAuditInsert},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := testenv.New(t, dsn, testenv.Options{})
			key, _ := env.Key(t, olivia.ID, auth.ScopeRead)
			cs := env.Connect(t, key, "")
			overHTTP := env.ConnectHTTP(t, key, testenv.Protocol20251125)
			id := own(env)
			before := auditHead(t, env)
			tc.break_(t, env)
			for _, s := range []*mcp.ClientSession{cs, overHTTP} {
				for _, c := range []struct {
					tool string
					args map[string]any
				}{
					{"get_order_status", map[string]any{"order_id": id}},
					{"list_recent_orders", map[string]any{}},
				} {
					res, err := callTool(s, c.tool, c.args)
					if err != nil {
						t.Fatalf("%s: %v", c.tool, err)
					}
					ref := internalReference(t, res)
					out := output(res)
					for _, data := range []string{id, olivia.ID, "Olivia", "placed_at", "timeline", "orders"} {
						if strings.Contains(out, data) {
							t.Fatalf("%s released data (%q) without its record: %s", c.tool, data, out)
						}
					}
					if len(logged(t, env, "audit record not committed; result withheld", ref)) != 1 {
						t.Fatalf("reference %s not logged", ref)
					}
				}
			}
			if rows := toolCallRecords(t, env, before); len(rows) != 0 {
				t.Fatalf("records written: %+v", rows)
			}
			noSecrets(t, env, env.Secrets(t, key))
		})
	}
}

// faultStore wraps the real store and injects a panic or an error into
// GetOrder. Everything else reaches the real database.
type faultStore struct {
	tools.Store
	mu    sync.Mutex
	panic any
	err   error
}

func (f *faultStore) set(p any, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.panic, f.err = p, err
}

func (f *faultStore) GetOrder(ctx context.Context, a store.Access, id string) (*store.Order, error) {
	f.mu.Lock()
	p, err := f.panic, f.err
	f.mu.Unlock()
	if p != nil {
		panic(p)
	}
	if err != nil {
		return nil, err
	}
	return f.Store.GetOrder(ctx, a, id)
}

func faultEnv(t *testing.T) (*testenv.Env, *faultStore) {
	t.Helper()
	fs := &faultStore{}
	env := testenv.New(t, dsn, testenv.Options{WrapStore: func(s tools.Store) tools.Store {
		fs.Store = s
		return fs
	}})
	return env, fs
}

// TestPanicRecovery makes the store panic in the middle of a call, with
// a panic value carrying SQL, a path and personal data. The client gets
// the fixed internal error and a reference, the log has the panic and the
// stack under that reference, the call is audited, and the server keeps
// serving.
func TestPanicRecovery(t *testing.T) {
	env, fs := faultEnv(t)
	olivia := customers[5]
	key, _ := env.Key(t, olivia.ID, auth.ScopeRead)
	id := ordersOf(t, env, olivia.ID)[0]
	panicValue := fmt.Sprintf("boom: SELECT internal_note FROM orders WHERE email = '%s' (/srv/order-mcp/internal/store/orders.go:118)", olivia.Email)
	secrets := env.Secrets(t, key)

	sessions := []struct {
		name string
		cs   *mcp.ClientSession
	}{
		{"InMemory", env.Connect(t, key, "")},
		{"HTTP", env.ConnectHTTP(t, key, "")},
	}
	for _, s := range sessions {
		t.Run(s.name, func(t *testing.T) {
			fs.set(panicValue, nil)
			before := auditHead(t, env)
			res, err := callTool(s.cs, "get_order_status", map[string]any{"order_id": id})
			if err != nil {
				t.Fatalf("panic ended the request with a protocol error: %v", err)
			}
			ref := internalReference(t, res)
			noLeak(t, output(res), "boom", "internal_note", "orders.go")
			noSecrets(t, env, secrets, output(res))

			rec := oneRecord(t, env, before)
			if rec.Outcome != "panic" || rec.CorrelationID != ref {
				t.Fatalf("record %+v, want outcome panic under %s", rec, ref)
			}
			lines := logged(t, env, "panic in tool call", ref)
			if len(lines) != 1 {
				t.Fatalf("%d panic log lines under %s", len(lines), ref)
			}
			stack, _ := lines[0]["stack"].(string)
			if !strings.Contains(stack, "goroutine") || !strings.Contains(stack, "faultStore") {
				t.Fatalf("stack not logged: %q", stack)
			}
			if p, _ := lines[0]["panic"].(string); !strings.Contains(p, "boom") {
				t.Fatalf("panic value not logged: %v", lines[0]["panic"])
			}

			// The server (and this session) keeps serving.
			fs.set(nil, nil)
			if got := testenv.Decode[orderStatus](t, testenv.Call(t, s.cs, "get_order_status", map[string]any{"order_id": id})); got.OrderID != id {
				t.Fatalf("after the panic: %+v", got)
			}
			if got := testenv.Decode[orderList](t, testenv.Call(t, s.cs, "list_recent_orders", map[string]any{})); got.CustomerID != olivia.ID {
				t.Fatalf("after the panic: %+v", got)
			}
		})
	}
}

// TestErrorMapping makes the store fail with the kind of text a driver
// produces: SQL, SQLSTATE, hosts, file paths. The client sees only the
// fixed internal error and a reference; the log has the details under it.
func TestErrorMapping(t *testing.T) {
	env, fs := faultEnv(t)
	olivia := customers[5]
	key, _ := env.Key(t, olivia.ID, auth.ScopeRead)
	id := ordersOf(t, env, olivia.ID)[0]
	secrets := env.Secrets(t, key)
	cs := env.Connect(t, key, "")
	overHTTP := env.ConnectHTTP(t, key, "")

	errs := []struct {
		name string
		err  error
	}{
		{"DBErrorIsAnInternalError", fmt.Errorf("get order: %w",
			&store.DBError{Op: "get order", Code: "42P01", Constraint: "orders_customer_id_fkey"})},
		{"SQLTextIsAnInternalError", errors.New(`ERROR: column "internal_note" does not exist (SQLSTATE 42703): ` +
			`SELECT o.internal_note, c.email FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.id = '` + id +
			`' at /home/build/order-mcp/internal/store/orders.go:118 (` + olivia.Email + `)`)},
		{"ConnectionErrorIsAnInternalError", fmt.Errorf("get order: %w", errors.New(
			"failed to connect to `host=10.20.30.40 user=order_mcp database=orders`: dial tcp 10.20.30.40:5432: connect: connection refused"))},
		{"TimeoutIsAnInternalError", fmt.Errorf("get order: %w", context.DeadlineExceeded)},
	}
	for _, e := range errs {
		for _, s := range []struct {
			name string
			cs   *mcp.ClientSession
		}{{"InMemory", cs}, {"HTTP", overHTTP}} {
			t.Run(e.name+"/"+s.name, func(t *testing.T) {
				fs.set(nil, e.err)
				before := auditHead(t, env)
				res, err := callTool(s.cs, "get_order_status", map[string]any{"order_id": id})
				if err != nil {
					t.Fatal(err)
				}
				ref := internalReference(t, res)
				noLeak(t, output(res), "42P01", "42703", "10.20.30.40", "internal_note", "connection", "deadline", "constraint")
				noSecrets(t, env, secrets, output(res))
				lines := logged(t, env, "tool failed", ref)
				if len(lines) != 1 {
					t.Fatalf("reference %s: %d log lines", ref, len(lines))
				}
				if msg, _ := lines[0]["error"].(string); msg == "" {
					t.Fatalf("error not logged under %s: %v", ref, lines[0])
				}
				if rec := oneRecord(t, env, before); rec.CorrelationID != ref || rec.Outcome != "error" {
					t.Fatalf("record %+v, want outcome error under %s", rec, ref)
				}
			})
		}
	}
	fs.set(nil, nil)
}

// TestSDKErrorsDoNotEchoInput sends requests the SDK itself would refuse
// with a message quoting the request (an unknown tool or method name, a
// malformed parameter) and checks nothing of the input comes back.
func TestSDKErrorsDoNotEchoInput(t *testing.T) {
	env := testenv.New(t, dsn, testenv.Options{Lockout: &noLockout})
	key, _ := env.Key(t, customers[5].ID, auth.ScopeRead)
	const evil = "<script>evil</script>"
	sessions := []struct {
		name string
		cs   *mcp.ClientSession
	}{
		{"InMemory", env.Connect(t, key, "")},
		{"HTTP-2025-11-25", env.ConnectHTTP(t, key, testenv.Protocol20251125)},
		{"HTTP-2026-07-28", env.ConnectHTTP(t, key, testenv.Protocol20260728)},
	}
	for _, s := range sessions {
		t.Run(s.name, func(t *testing.T) {
			t.Run("UnknownToolNameIsNotEchoed", func(t *testing.T) {
				res, err := callTool(s.cs, evil, map[string]any{"order_id": evil})
				we := rpcError(t, err)
				if we.Code != jsonrpc.CodeInvalidParams || strings.Contains(we.Message, "script") || strings.Contains(err.Error(), "evil") {
					t.Fatalf("error %d %q", we.Code, err)
				}
				if res != nil {
					t.Fatalf("result %s", output(res))
				}
			})
			t.Run("ArgumentsThatAreNotAnObjectAreNotEchoed", func(t *testing.T) {
				res, err := callTool(s.cs, "get_order_status", evil)
				if err == nil && !res.IsError {
					t.Fatalf("accepted: %s", output(res))
				}
				if strings.Contains(output(res)+fmt.Sprint(err), "evil") {
					t.Fatalf("echoed: %s %v", output(res), err)
				}
			})
			t.Run("UnofferedMethodIsNotEchoed", func(t *testing.T) {
				_, err := s.cs.GetPrompt(context.Background(), &mcp.GetPromptParams{Name: evil})
				we := rpcError(t, err)
				if we.Code != jsonrpc.CodeMethodNotFound || strings.Contains(err.Error(), "evil") {
					t.Fatalf("error %d %q", we.Code, err)
				}
			})
		})
	}

	// Over stdio the client writes JSON-RPC itself: these requests never
	// reach the gate's middleware, and the SDK's own error text is what
	// the client gets back.
	t.Run("InMemoryRaw", func(t *testing.T) {
		raw := []struct {
			name   string
			method string
			params string
		}{
			{"UnknownMethodNameIsNotEchoed", evil, `{}`},
			{"MalformedToolCallParamsAreNotEchoed", "tools/call", `{"name":{"` + evil + `":1},"arguments":{}}`},
		}
		for _, r := range raw {
			t.Run(r.name, func(t *testing.T) {
				resp := rawRequest(t, env, key, r.method, r.params)
				if resp.Error == nil {
					t.Fatalf("no error: %s", resp.Result)
				}
				if strings.Contains(resp.Error.Error(), "evil") || strings.Contains(resp.Error.Error(), "script") {
					t.Fatalf("the SDK's error echoes the request over stdio: %q", resp.Error.Error())
				}
			})
		}
	})
}

// rawRequest initializes a raw in-memory connection to the server, built
// as `server stdio` builds it (an IOTransport whose output goes through
// sdkfix.SafeWriter), sends one request and returns its response.
func rawRequest(t *testing.T, env *testenv.Env, key, method, params string) *jsonrpc.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	clientEnd, serverEnd := net.Pipe()
	ct := &mcp.IOTransport{Reader: clientEnd, Writer: clientEnd}
	st := &mcp.IOTransport{Reader: serverEnd, Writer: sdkfix.SafeWriter(serverEnd)}
	ss, err := env.MCP.Connect(mcpserver.WithCredential(context.Background(), "stdio", key), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	conn, err := ct.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	send := func(id int64, method string, params string) *jsonrpc.Response {
		req := &jsonrpc.Request{Method: method}
		if id != 0 {
			req.ID, _ = jsonrpc.MakeID(float64(id))
		}
		if params != "" {
			req.Params = json.RawMessage(params)
		}
		if err := conn.Write(ctx, req); err != nil {
			t.Fatal(err)
		}
		if id == 0 {
			return nil
		}
		for {
			msg, err := conn.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if resp, ok := msg.(*jsonrpc.Response); ok {
				return resp
			}
		}
	}
	init := send(1, "initialize", `{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}`)
	if init.Error != nil {
		t.Fatalf("initialize: %v", init.Error)
	}
	send(0, "notifications/initialized", `{}`)
	return send(2, method, params)
}

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

// forbiddenCode checks err is the JSON-RPC error CodeForbidden, as the
// README documents it, in the form a go-sdk client receives it.
func forbiddenCode(t *testing.T, err error) {
	t.Helper()
	if errors.Is(err, mcp.ErrConnectionClosed) {
		t.Errorf("a go-sdk client reads the refusal as %q: refusal.CodeForbidden (%d) is the code the go-sdk's "+
			"jsonrpc2 reserves for ErrClientClosing, so the client reports the connection as closed and the "+
			"JSON-RPC error (and its code) is lost", mcp.ErrConnectionClosed, refusal.CodeForbidden)
		return
	}
	var we *jsonrpc.Error
	if !errors.As(err, &we) || we.Code != refusal.CodeForbidden {
		t.Errorf("error %T %v, want JSON-RPC error %d", err, err, refusal.CodeForbidden)
	}
}
