package httpserver_test

// Attacks on the scopes each tool declares, run against every tool of
// tools.All(): a new tool gets them without anyone editing a test. A
// refused call must be refused before any of the tool's work (no
// customer-data transaction, whose first statement is always set_access)
// and be on record by name.

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/demo"
	"github.com/example/order-mcp/internal/testenv"
	"github.com/example/order-mcp/internal/tools"
)

// toolScopes is every scope some tool requires.
func toolScopes() []auth.Scope {
	var all []auth.Scope
	for _, tool := range tools.All() {
		for _, s := range tool.Scopes() {
			if !slices.Contains(all, s) {
				all = append(all, s)
			}
		}
	}
	return all
}

// scopesWithout is every scope some tool requires, except those of tool: a
// caller that may use everything else.
func scopesWithout(tool tools.Tool) []auth.Scope {
	var out []auth.Scope
	for _, s := range toolScopes() {
		if !slices.Contains(tool.Scopes(), s) {
			out = append(out, s)
		}
	}
	return out
}

// argsFor returns arguments a call of tool accepts, aimed at orderID when
// the tool takes an order. A tool whose schema requires anything more
// fails its control call below, which is the cue to teach this function.
func argsFor(tool tools.Tool, orderID string) map[string]any {
	args := map[string]any{}
	if schema, ok := tool.Def().InputSchema.(*jsonschema.Schema); ok {
		if _, takesOrder := schema.Properties["order_id"]; takesOrder {
			args["order_id"] = orderID
		}
	}
	return args
}

// dataWork reports whether env ran any customer-data statement since its
// query log was reset: every tool's transaction starts with set_access.
func dataWork(env *testenv.Env) bool { return slices.Contains(statements(env), "set_access") }

// TestEveryToolRefusesCallersWithoutItsScopes has, for each tool, a caller
// holding every scope but the tool's own try it: the tool is absent from
// its tools/list; the go-sdk client's call fails; a raw tools/call, however
// the name is spelled, gets 403 with an insufficient_scope challenge
// naming the scopes the tool requires (the step-up a client can act on);
// each attempt is recorded as a denied call of that tool by that caller;
// and the tool does no work. Run with API keys only (the challenge points
// nowhere) and with OAuth configured (it points to the metadata), where an
// OAuth token is refused alike. The control: a caller holding the scopes
// makes the same call and is served.
func TestEveryToolRefusesCallersWithoutItsScopes(t *testing.T) {
	t.Parallel()
	for _, mode := range []struct {
		name  string
		oauth bool
	}{{"APIKeysOnly", false}, {"OAuthConfigured", true}} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			var srv *server
			if mode.oauth {
				srv = startOAuth(t, testenv.Options{Lockout: &noLockout})
			} else {
				srv = start(t, testenv.Options{Lockout: &noLockout})
			}
			ip := addresses()
			c := clientFrom(t, ip(1))
			all := tools.All()
			customerID, orders := newCustomer(t, dsn, demo.Customers()[3], len(all))
			full, _ := srv.Key(t, customerID, toolScopes()...)
			credentials := []string{full}
			for i, tool := range all {
				t.Run(tool.Name(), func(t *testing.T) {
					target := orders[i]
					args := argsFor(tool, target)
					lacking := scopesWithout(tool)
					key, keyID := srv.Key(t, customerID, lacking...)
					callers := []struct{ name, credential string }{{"APIKey", key}}
					subject := "lacking-" + newID("sub")
					if mode.oauth {
						tok := srv.issuer.Token(t, customerClaims(srv.issuer, subject, customerID, lacking...))
						callers = append(callers, struct{ name, credential string }{"OAuthToken", tok})
					}
					for _, caller := range callers {
						credentials = append(credentials, caller.credential)
					}
					required := strings.Join(auth.ScopeNames(tool.Scopes()), " ")
					want := map[string]string{"realm": "order-mcp", "error": "insufficient_scope", "scope": required}
					if mode.oauth {
						want["resource_metadata"] = oauthMetadata
					}
					rawArgs := jsonOf(args)
					// The same call, spelled so that a parser other than the
					// SDK's could miss which tool it names.
					escaped := fmt.Sprintf(`\u%04x`, tool.Name()[0]) + tool.Name()[1:]
					spellings := map[string]string{
						"Plain":           callBody(tool.Name(), args),
						"EscapedToolName": `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + escaped + `","arguments":` + rawArgs + `}}`,
						"EscapedNameKey":  `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"n\u0061me":"` + tool.Name() + `","arguments":` + rawArgs + `}}`,
						"EscapedMethod":   `{"jsonrpc":"2.0","id":1,"method":"tools\/call","params":{"name":"` + tool.Name() + `","arguments":` + rawArgs + `}}`,
					}
					srv.Queries.Reset()
					refused := map[string]int{} // caller -> refused calls
					for _, caller := range callers {
						t.Run(caller.name, func(t *testing.T) {
							for _, version := range versions {
								t.Run("IsNotListed/"+version, func(t *testing.T) {
									cs := connect(t, srv.base, bearerFrom(t, ip(2), caller.credential), version)
									if got := listedTools(t, cs); slices.Contains(got, tool.Name()) {
										t.Fatalf("tools %v list %s", got, tool.Name())
									}
								})
								t.Run("GoSDKClientCallFails/"+version, func(t *testing.T) {
									cs := connect(t, srv.base, bearerFrom(t, ip(2), caller.credential), version)
									res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: tool.Name(), Arguments: args})
									refused[caller.name]++
									if err == nil && !res.IsError {
										t.Fatalf("%s succeeded: %s", tool.Name(), resultJSON(t, res))
									}
								})
							}
							for name, body := range spellings {
								t.Run(name+"IsForbidden", func(t *testing.T) {
									r := do(t, c, srv.base, request{key: caller.credential, body: body})
									refused[caller.name]++
									if r.status != http.StatusForbidden {
										t.Fatalf("status %d, want 403: %s", r.status, r.body)
									}
									wantChallenge(t, r, want)
									if m := r.rpc(t); m.Result != nil || m.Error == nil || !strings.Contains(m.Error.Message, required) {
										t.Fatalf("want an error naming %q: %s", required, r.body)
									}
								})
							}
						})
					}

					t.Run("TheToolDidNoWork", func(t *testing.T) {
						if dataWork(srv.Env) {
							t.Fatalf("customer-data statements ran for refused calls: %v", statements(srv.Env))
						}
						notCancelled(t, dsn, target)
					})
					t.Run("EachAttemptIsOnRecordByName", func(t *testing.T) {
						rows := ownerQuery(t, dsn, `SELECT concat_ws('|', kind, principal, credential_id, transport, action, decision, outcome, reason, arguments)
							FROM audit_log WHERE credential_id = $1 ORDER BY seq`, keyID)
						prefix := "tool_call|apikey:" + keyID + "|" + keyID + "|http|" + tool.Name() + "|denied|denied|missing scope " + required + "|"
						if len(rows) != refused["APIKey"] {
							t.Fatalf("%d audit records for the key, want %d: %q", len(rows), refused["APIKey"], rows)
						}
						for _, row := range rows {
							if !strings.HasPrefix(row, prefix) || (len(args) > 0 && !strings.Contains(row, target)) {
								t.Fatalf("audit record %q, want one starting %q and naming %s", row, prefix, target)
							}
						}
						n := ownerQuery(t, dsn, `SELECT count(*)::text FROM audit_log WHERE kind = 'tool_call' AND action = $1
							AND decision = 'denied' AND reason = $2 AND principal LIKE '%' || $3`, tool.Name(), "missing scope "+required, "#"+subject)
						if n[0] != fmt.Sprint(refused["OAuthToken"]) {
							t.Fatalf("%s denied records for the token, want %d", n[0], refused["OAuthToken"])
						}
					})

					t.Run("CallerWithTheScopesIsServed", func(t *testing.T) {
						// The control: the calls refused above were valid
						// calls of the tool, refused for the scopes alone,
						// and a call that runs does leave customer-data
						// statements (and, for a destructive tool, a
						// change) behind.
						srv.Queries.Reset()
						ok(t, confirmed(t, c, srv.base, request{key: full, body: callBody(tool.Name(), args)}))
						if !dataWork(srv.Env) {
							t.Fatalf("the served call ran no customer-data statement: %v", statements(srv.Env))
						}
						if tool.Destructive() && len(args) > 0 {
							if st := orderStatus(t, dsn, target); st == "pending" {
								t.Fatalf("the served %s left its order %s", tool.Name(), st)
							}
						}
					})
				})
			}
			noSecrets(t, []*testenv.Env{srv.Env}, credentials)
		})
	}
}

// TestSmuggledToolCallsAreRefused hides a call of each tool where a check
// that parses the body differently from the SDK would miss it or mistake
// it for another tool: a key that differs only in case, a duplicate key, a
// JSON-RPC batch (sent without MCP-Protocol-Version, when the SDK would
// execute it), or a body that does not parse. Each is refused with 400
// before the MCP layer, for a caller without the tool's scopes and for one
// with them (whom the SDK would have served), and nothing runs: no call is
// recorded and no order changes. The control: the same caller's plain call
// is served.
func TestSmuggledToolCallsAreRefused(t *testing.T) {
	t.Parallel()
	srv := start(t, testenv.Options{Lockout: &noLockout})
	c := clientFrom(t, addresses()(1))
	all := tools.All()
	params := func(name string, args map[string]any) string { // the params object of a call
		return jsonOf(map[string]any{"name": name, "arguments": args})
	}
	call := func(id int, name string, args map[string]any) string {
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":%s}`, id, params(name, args))
	}
	noVersion := map[string]string{"MCP-Protocol-Version": ""}
	type smuggle struct {
		name   string
		header map[string]string
		// body hides a call of target behind decoy, both with their
		// arguments.
		body func(target, decoy string, targetArgs, decoyArgs map[string]any) string
	}
	cases := []smuggle{
		{"CaseVariantNameKey", nil, func(tg, dc string, ta, _ map[string]any) string {
			return strings.Replace(call(1, tg, ta), `"name":"`+tg+`"`, `"name":"`+tg+`","NAME":"`+dc+`"`, 1)
		}},
		{"CaseVariantNameKeyFirst", nil, func(tg, dc string, ta, _ map[string]any) string {
			return strings.Replace(call(1, tg, ta), `"name":"`+tg+`"`, `"Name":"`+dc+`","name":"`+tg+`"`, 1)
		}},
		{"DuplicateNameKey", nil, func(tg, dc string, ta, _ map[string]any) string {
			return strings.Replace(call(1, tg, ta), `"name":"`+tg+`"`, `"name":"`+dc+`","name":"`+tg+`"`, 1)
		}},
		{"CaseVariantMethodKey", nil, func(tg, _ string, ta, _ map[string]any) string {
			return strings.Replace(call(1, tg, ta), `"method":"tools/call"`, `"Method":"tools/list","method":"tools/call"`, 1)
		}},
		{"CaseVariantParamsKey", nil, func(tg, dc string, ta, da map[string]any) string {
			return `{"jsonrpc":"2.0","id":1,"method":"tools/call","PARAMS":` + params(dc, da) + `,"params":` + params(tg, ta) + `}`
		}},
		{"BatchHidingItBehindAnother", noVersion, func(tg, dc string, ta, da map[string]any) string {
			return "[" + call(1, dc, da) + "," + call(2, tg, ta) + "]"
		}},
		{"BatchOfOne", noVersion, func(tg, _ string, ta, _ map[string]any) string { return "[" + call(1, tg, ta) + "]" }},
		{"BatchAfterWhitespace", noVersion, func(tg, dc string, ta, da map[string]any) string {
			return " \r\n\t[" + call(1, dc, da) + "," + call(2, tg, ta) + "]"
		}},
		{"BatchWithProtocolHeader", nil, func(tg, dc string, ta, da map[string]any) string {
			return "[" + call(1, dc, da) + "," + call(2, tg, ta) + "]"
		}},
		{"TruncatedBody", nil, func(tg, _ string, ta, _ map[string]any) string { return strings.TrimSuffix(call(1, tg, ta), "}}") }},
		{"TrailingData", nil, func(tg, _ string, ta, _ map[string]any) string { return call(1, tg, ta) + `,"x"` }},
		{"AnotherCallFollowedByIt", noVersion, func(tg, dc string, ta, da map[string]any) string { return call(1, dc, da) + call(2, tg, ta) }},
		{"NonJSONBody", nil, func(tg, _ string, ta, _ map[string]any) string { return "tools/call " + tg + " " + fmt.Sprint(ta) }},
		{"NullBody", nil, func(string, string, map[string]any, map[string]any) string { return `null` }},
		{"StringBody", nil, func(tg, _ string, ta, _ map[string]any) string {
			return `"` + strings.ReplaceAll(call(1, tg, ta), `"`, `\"`) + `"`
		}},
		{"ToolNameOfTheWrongType", nil, func(tg, _ string, ta, _ map[string]any) string {
			return strings.Replace(call(1, tg, ta), `"name":"`+tg+`"`, `"name":["`+tg+`"]`, 1)
		}},
	}
	// One pending order per tool, caller and case: a case that wrongly
	// cancels shows up in that case alone.
	customerID, orders := newCustomer(t, dsn, demo.Customers()[4], 2*len(all)*len(cases))
	fullKey, fullID := srv.Key(t, customerID, toolScopes()...)
	credentials := []string{fullKey}
	next := 0
	for _, tool := range all {
		t.Run(tool.Name(), func(t *testing.T) {
			restricted, restrictedID := srv.Key(t, customerID, scopesWithout(tool)...)
			credentials = append(credentials, restricted)
			// The decoy is a tool the restricted caller may call, where
			// there is one: the call a naive check would judge.
			decoy := ""
			for _, d := range all {
				if d.Name() == tool.Name() {
					continue
				}
				if decoy == "" || allIn(d.Scopes(), scopesWithout(tool)) {
					decoy = d.Name()
				}
			}
			srv.Queries.Reset()
			targets := map[string]string{} // order -> the case aimed at it
			for _, caller := range []struct{ name, key string }{{"CallerWithoutItsScopes", restricted}, {"CallerWithItsScopes", fullKey}} {
				t.Run(caller.name, func(t *testing.T) {
					for _, sm := range cases {
						target := orders[next]
						next++
						targets[target] = caller.name + "/" + sm.name
						t.Run(sm.name+"IsRefused", func(t *testing.T) {
							body := sm.body(tool.Name(), decoy, argsFor(tool, target), argsFor(toolNamed(decoy), target))
							r := do(t, c, srv.base, request{key: caller.key, body: body, header: sm.header})
							if r.status != http.StatusBadRequest {
								t.Errorf("status %d, want 400: %.300s", r.status, r.body)
							}
							if strings.Contains(r.body, `"result"`) {
								t.Errorf("a refused body got a result: %.300s", r.body)
							}
						})
					}
				})
			}

			t.Run("NothingRan", func(t *testing.T) {
				for _, id := range []string{restrictedID, fullID} {
					if calls := toolCalls(t, dsn, id); len(calls) > 0 {
						t.Errorf("calls reached the MCP layer: %v", calls)
					}
				}
				if dataWork(srv.Env) {
					t.Errorf("customer-data statements ran for refused bodies: %v", statements(srv.Env))
				}
				ids := slices.Collect(maps.Keys(targets))
				for _, id := range ownerQuery(t, dsn, `SELECT id FROM orders WHERE id = ANY($1) AND status <> 'pending'
					UNION SELECT unnest(object_ids) FROM audit_log WHERE action = 'cancel_order' AND object_ids && $1`, ids) {
					t.Errorf("%s: order %s changed or its cancellation is on record", targets[id], id)
				}
			})
		})
	}
	noSecrets(t, []*testenv.Env{srv.Env}, credentials)

	t.Run("PlainCallsOfTheCallerWithTheScopesAreServed", func(t *testing.T) {
		// The control: the orders were there to act on, and the caller
		// could call every tool with a request nobody could misread.
		for i, tool := range all {
			ok(t, confirmed(t, c, srv.base, request{key: fullKey, body: callBody(tool.Name(), argsFor(tool, orders[i]))}))
		}
		got := toolCalls(t, dsn, fullID)
		for _, tool := range all {
			if got[tool.Name()+"/ok"]+got[tool.Name()+"/cancelled"] != 1 {
				t.Fatalf("tool calls on record: %v, want one of each tool served", got)
			}
		}
	})
}

// allIn reports whether every scope of want is in have.
func allIn(want, have []auth.Scope) bool {
	for _, s := range want {
		if !slices.Contains(have, s) {
			return false
		}
	}
	return true
}

// toolNamed returns the tool of that name.
func toolNamed(name string) tools.Tool {
	for _, tool := range tools.All() {
		if tool.Name() == name {
			return tool
		}
	}
	panic("no tool " + name)
}
