package mcpserver_test

// Attacks on the scopes each tool declares, at the MCP layer, run against
// every tool of tools.All(): a new tool gets them without anyone editing
// a test. Over stdio nothing but the MCP layer stands between a caller and
// a tool; the HTTP layer's own pre-check is attacked in internal/httpserver.

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/refusal"
	"github.com/example/order-mcp/internal/store"
	"github.com/example/order-mcp/internal/testenv"
	"github.com/example/order-mcp/internal/tools"
)

// scopeCaller is a key holding some scopes.
type scopeCaller struct {
	name   string
	key    string
	scopes []auth.Scope
}

// scopeCallers mints the keys the scope attacks use, bound to customerID:
// one per scope some tool requires, one per set lacking one of them, one
// holding them all, a staff key (orders:read and orders:read:any, no
// customer), and one whose scopes no tool knows.
func scopeCallers(t *testing.T, env *testenv.Env, customerID string) []scopeCaller {
	t.Helper()
	all := toolScopes()
	sets := [][]auth.Scope{all}
	for _, s := range all {
		sets = append(sets, []auth.Scope{s})
		var without []auth.Scope
		for _, o := range all {
			if o != s {
				without = append(without, o)
			}
		}
		sets = append(sets, without)
	}
	var out []scopeCaller
	seen := map[string]bool{}
	for _, set := range sets {
		name := "Scopes=" + strings.Join(auth.ScopeNames(set), "+")
		if len(set) == 0 || seen[name] {
			continue
		}
		seen[name] = true
		key, _ := env.Key(t, customerID, set...)
		out = append(out, scopeCaller{name, key, set})
	}
	staff := []auth.Scope{auth.ScopeRead, auth.ScopeReadAny}
	staffKey, _ := env.Key(t, "", staff...)
	unknown := []auth.Scope{"orders:admin", "orders:*"}
	unknownKey, _ := env.Key(t, customerID, unknown...)
	return append(out, scopeCaller{"Staff", staffKey, staff}, scopeCaller{"UnknownScopes", unknownKey, unknown})
}

// missingScopes returns the scopes of tool that have lacks, in the tool's
// order.
func missingScopes(tool tools.Tool, have []auth.Scope) []auth.Scope {
	var out []auth.Scope
	for _, s := range tool.Scopes() {
		if !slices.Contains(have, s) {
			out = append(out, s)
		}
	}
	return out
}

// holdsAll reports whether have holds every scope some tool requires.
func holdsAll(have []auth.Scope) bool {
	for _, s := range toolScopes() {
		if !slices.Contains(have, s) {
			return false
		}
	}
	return true
}

// TestScopesAtTheMCPLayer, for every tool of tools.All() and callers
// holding every combination of scopes that matters: tools/list shows a
// caller exactly the tools whose scopes it holds; calling one it lacks a
// scope for anyway, over the stdio path (where no HTTP layer checked
// anything), is refused with an error naming the missing scopes, before
// any of the tool's work, leaves one denied record, changes nothing, and
// leaves the session usable. The control: a caller holding every scope
// makes the same call and gets past the check.
func TestScopesAtTheMCPLayer(t *testing.T) {
	env := testenv.New(t, dsn, testenv.Options{})
	aiko := customers[4]
	callers := scopeCallers(t, env, aiko.ID)
	keys := make([]string, 0, len(callers))
	for _, c := range callers {
		keys = append(keys, c.key)
	}
	secrets := env.Secrets(t, keys...)
	all := tools.All()

	t.Run("ToolsListShowsOnlyAllowedTools", func(t *testing.T) {
		for _, c := range callers {
			var want []string
			for _, tool := range all {
				if len(missingScopes(tool, c.scopes)) == 0 {
					want = append(want, tool.Name())
				}
			}
			slices.Sort(want)
			if holdsAll(c.scopes) && len(want) != len(all) {
				t.Fatalf("%s: a caller with every tool scope would see %v of %d tools", c.name, want, len(all))
			}
			for _, tr := range transports {
				t.Run(c.name+"/"+tr.name, func(t *testing.T) {
					res, err := tr.connect(t, env, c.key).ListTools(context.Background(), nil)
					if err != nil {
						t.Fatal(err)
					}
					var names []string
					for _, tool := range res.Tools {
						names = append(names, tool.Name)
					}
					slices.Sort(names)
					if !slices.Equal(names, want) {
						t.Fatalf("tools %v, want %v", names, want)
					}
				})
			}
		}
	})

	pending := ordersOf(t, env, aiko.ID, store.StatusPending, store.StatusProcessing)[0]
	restoreOrders(t, env, pending)
	fixture := testenv.Fixture{OrderID: pending, CustomerID: aiko.ID}
	full, _ := env.Key(t, aiko.ID, toolScopes()...)
	for _, tool := range all {
		t.Run(tool.Name(), func(t *testing.T) {
			args := argsFor(t, tool, fixture)
			refusedCallers := 0
			for _, c := range callers {
				missing := missingScopes(tool, c.scopes)
				if len(missing) == 0 {
					continue
				}
				refusedCallers++
				t.Run(c.name+"IsRefused", func(t *testing.T) {
					names := strings.Join(auth.ScopeNames(missing), " ")
					cs := env.Connect(t, c.key, "")
					state := orderState(t, env, pending)
					env.Queries.Reset()
					before := auditHead(t, env)
					res, err := callTool(cs, tool.Name(), args)
					if err == nil || res != nil {
						t.Fatalf("call not refused: %s", output(res))
					}
					if want := refusal.MissingScope.Message(names, tool.Name()); !strings.Contains(err.Error(), want) {
						t.Fatalf("error %q, want %q", err, want)
					}
					noWork(t, env, tool.Name())
					if orderState(t, env, pending) != state {
						t.Fatal("the order changed")
					}
					if rec := oneRecord(t, env, before); rec.Decision != "denied" || rec.Action != tool.Name() || rec.Reason != "missing scope "+names {
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
			if refusedCallers == 0 {
				t.Fatal("no caller lacks this tool's scopes: the attack has no attacker")
			}
			t.Run("CallerWithItsScopesGetsPast", func(t *testing.T) {
				env.Queries.Reset()
				res, err := callTool(env.Connect(t, full, ""), tool.Name(), controlArgs(t, tool, fixture))
				gotPast(t, env, tool, refusal.MissingScope, res, err)
			})
		})
	}
}
