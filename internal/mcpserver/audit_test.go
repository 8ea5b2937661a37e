package mcpserver_test

// Attacks on the audit trail's promise: exactly one record per tool call,
// a change committed with its record or not at all, and no result
// released before its record is committed.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/example/order-mcp/internal/audit"
	"github.com/example/order-mcp/internal/auth"
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
// record are one transaction: both or neither. The user confirms every
// cancellation (the production default): the question's round has a
// record of its own, which changes nothing.
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
		_, rec := confirmedRecords(t, env, before)
		if rec.Outcome != "cancelled" || rec.Decision != "allowed" || rec.Reason != "confirmed by the user" || rec.Action != "cancel_order" ||
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

	// The database refuses the record (a broken grant, a full disk) after
	// the user confirmed: the cancellation must not commit without it.
	t.Run("CancelRollsBackWhenItsRecordCannotBeWritten", func(t *testing.T) {
		state := orderState(t, env, kept)
		before := auditHead(t, env)
		revokeWhileAsked := env.ConnectClient(t, key, testenv.Client{Answer: func(ctx context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			revokeAuditInsert(t, env)
			return testenv.Accept(ctx, req)
		}})
		res, err := callTool(revokeWhileAsked, "cancel_order", map[string]any{"order_id": kept})
		if err != nil {
			t.Fatal(err)
		}
		ref := internalReference(t, res)
		if got := orderState(t, env, kept); got != state {
			t.Fatalf("order changed without its audit record: %s -> %s", state, got)
		}
		if rows := toolCallRecords(t, env, before); len(rows) != 1 || rows[0].Outcome != tools.OutcomeConfirmationRequested {
			t.Fatalf("want only the question's record (written before inserts were revoked), got %+v", rows)
		}
		// The failed call's record could not be written either (inserts are
		// revoked): the log says so under the same reference.
		if len(logged(t, env, "audit record of a refused call not committed", ref)) == 0 {
			t.Fatalf("reference %s not in the log", ref)
		}
		noSecrets(t, env, env.Secrets(t, key), output(res))
	})

	// The quota refusal is an access decision: denied, and the order
	// unchanged. The quota is decided in the cancellation's own
	// transaction, after the user's answer: the question's round comes
	// first.
	t.Run("QuotaExceededIsOneDeniedRecord", func(t *testing.T) {
		quotaEnv := testenv.New(t, dsn, testenv.Options{CancelDailyQuota: 1}) // id was cancelled above
		qcs := quotaEnv.Connect(t, key, "")
		state := orderState(t, quotaEnv, kept)
		before := auditHead(t, quotaEnv)
		res := testenv.Call(t, qcs, "cancel_order", map[string]any{"order_id": kept})
		if !res.IsError || !strings.Contains(testenv.Text(res), "daily cancellation limit") {
			t.Fatalf("got %s", output(res))
		}
		_, rec := confirmedRecords(t, quotaEnv, before)
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

// TestNoResultBeforeItsRecord checks, for every tool of tools.All() that
// only reads, that a result is released only after its record is
// committed, and that a call whose record cannot be committed returns an
// internal error instead of the data (fail closed). Destructive tools
// commit their record with their change (TestCancelCommitsWithItsRecord).
func TestNoResultBeforeItsRecord(t *testing.T) {
	olivia := customers[5]
	var readers []tools.Tool
	for _, tool := range tools.All() {
		if !tool.Destructive() {
			readers = append(readers, tool)
		}
	}
	if len(readers) == 0 {
		t.Fatal("no tool of tools.All() only reads: the attack has no target")
	}
	fixture := func(env *testenv.Env) testenv.Fixture {
		return testenv.Fixture{OrderID: ordersOf(t, env, olivia.ID)[0], CustomerID: olivia.ID}
	}

	t.Run("ResultWaitsForTheCommit", func(t *testing.T) {
		env := testenv.New(t, dsn, testenv.Options{})
		key, _ := env.Key(t, olivia.ID, toolScopes()...)
		cs := env.Connect(t, key, "")
		f := fixture(env)
		for _, tool := range readers {
			t.Run(tool.Name(), func(t *testing.T) {
				args := argsFor(t, tool, f)
				before := auditHead(t, env)
				release := testenv.HoldAuditChainLock(t, env.DSN)
				type answer struct {
					res      *mcp.CallToolResult
					recorded []string // the call's records when its result arrived
					err      error
				}
				done := make(chan answer, 1)
				go func() {
					res, err := callTool(cs, tool.Name(), args)
					recorded, qerr := env.OwnerQueryStrings(t,
						"SELECT outcome FROM audit_log WHERE seq > $1 AND kind = 'tool_call'", before)
					done <- answer{res, recorded, errors.Join(err, qerr)}
				}()
				// The committer is now blocked with the call's record. A
				// result released before its record commits would be on its
				// way: give it a moment to show up. (The wait only gives a
				// faulty server the chance to fail; a correct one passes
				// however long it is.)
				testenv.WaitForAuditChainWaiter(t, env.DSN)
				select {
				case a := <-done:
					t.Fatalf("result released while its record could not commit: %s", output(a.res))
				case <-time.After(100 * time.Millisecond):
				}
				release()
				a := <-done
				if a.err != nil || a.res == nil || a.res.IsError {
					t.Fatalf("after the commit: %v %s", a.err, output(a.res))
				}
				if !slices.Equal(a.recorded, []string{"ok"}) {
					t.Fatalf("the result arrived when the trail held %v of its record: released before the commit", a.recorded)
				}
				if rec := oneRecord(t, env, before); rec.Outcome != "ok" {
					t.Fatalf("record %+v", rec)
				}
			})
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
			key, _ := env.Key(t, olivia.ID, toolScopes()...)
			cs := env.Connect(t, key, "")
			overHTTP := env.ConnectHTTP(t, key, testenv.Protocol20251125)
			f := fixture(env)
			before := auditHead(t, env)
			tc.break_(t, env)
			for _, s := range []*mcp.ClientSession{cs, overHTTP} {
				for _, tool := range readers {
					res, err := callTool(s, tool.Name(), argsFor(t, tool, f))
					if err != nil {
						t.Fatalf("%s: %v", tool.Name(), err)
					}
					ref := internalReference(t, res)
					out := output(res)
					for _, data := range []string{f.OrderID, olivia.ID, "Olivia", "placed_at", "timeline", "orders"} {
						if strings.Contains(out, data) {
							t.Fatalf("%s released data (%q) without its record: %s", tool.Name(), data, out)
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
