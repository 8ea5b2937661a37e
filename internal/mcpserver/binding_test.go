package mcpserver_test

// Attacks with a credential that binds nothing: bound to no customer and
// not staff. It must never be treated as staff by omission.

import (
	"context"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/mcpserver"
	"github.com/example/order-mcp/internal/refusal"
	"github.com/example/order-mcp/internal/store"
	"github.com/example/order-mcp/internal/testenv"
	"github.com/example/order-mcp/internal/tools"
)

// TestUnboundCredentialIsRefused covers a credential bound to no customer
// and not staff (every scope a tool requires, but not orders:read:any).
// Every tool of tools.All() refuses it, called with valid arguments and
// with its required arguments only (a tool whose customer id is optional
// must not read "none" as "any"): refused before any of the tool's work,
// one denied record, nothing changed. The authenticator refuses such a key
// itself; should one ever let it through, the gate refuses it on its own.
// The control: a key bound to the customer, holding the same scopes, gets
// past both with the same calls.
func TestUnboundCredentialIsRefused(t *testing.T) {
	env := testenv.New(t, dsn, testenv.Options{})
	aiko := customers[4]
	pending := ordersOf(t, env, aiko.ID, store.StatusPending, store.StatusProcessing)[0]
	restoreOrders(t, env, pending)
	fixture := testenv.Fixture{OrderID: pending, CustomerID: aiko.ID}
	unboundKey, unboundID := env.Key(t, "", toolScopes()...)
	boundKey, _ := env.Key(t, aiko.ID, toolScopes()...)
	secrets := env.Secrets(t, unboundKey, boundKey)

	type call struct {
		name string
		tool tools.Tool
		args func(t *testing.T, f testenv.Fixture) map[string]any
	}
	var calls []call
	for _, tool := range tools.All() {
		calls = append(calls, call{tool.Name(), tool, func(t *testing.T, f testenv.Fixture) map[string]any {
			return argsFor(t, tool, f)
		}})
		if full, _ := testenv.Args(tool, fixture); len(testenv.Required(tool, full)) < len(full) {
			calls = append(calls, call{tool.Name() + "/RequiredArgumentsOnly", tool, func(t *testing.T, f testenv.Fixture) map[string]any {
				return testenv.Required(tool, argsFor(t, tool, f))
			}})
		}
	}
	check := func(t *testing.T, cs *mcp.ClientSession, kind refusal.Kind, wantText string) {
		t.Helper()
		for _, c := range calls {
			t.Run(c.name, func(t *testing.T) {
				state := orderState(t, env, pending)
				env.Queries.Reset()
				before := auditHead(t, env)
				res, err := callTool(cs, c.tool.Name(), c.args(t, fixture))
				if err == nil || res != nil {
					t.Fatalf("not refused: %s", output(res))
				}
				if !strings.Contains(err.Error(), wantText) {
					t.Fatalf("error %q, want %q", err, wantText)
				}
				noWork(t, env, c.tool.Name())
				if orderState(t, env, pending) != state {
					t.Fatal("the order changed")
				}
				if rec := oneRecord(t, env, before); rec.Decision != "denied" || rec.Outcome != kind.Name() || rec.Action != c.tool.Name() {
					t.Fatalf("record %+v", rec)
				}
				noSecrets(t, env, secrets, err.Error())
				if kind == refusal.NoBinding {
					forbiddenCode(t, err)
				} else if we := rpcError(t, err); we.Code != kind.Code() {
					t.Fatalf("code %d, want %d", we.Code, kind.Code())
				}
			})
		}
	}
	// control makes every call with a bound key: none is refused as kind.
	control := func(t *testing.T, cs *mcp.ClientSession, kind refusal.Kind) {
		t.Helper()
		for _, c := range calls {
			t.Run(c.name, func(t *testing.T) {
				env.Queries.Reset()
				args := c.args(t, fixture)
				if c.tool.Destructive() {
					args = c.args(t, testenv.Fixture{OrderID: missingOrder, CustomerID: aiko.ID})
				}
				res, err := callTool(cs, c.tool.Name(), args)
				gotPast(t, env, c.tool, kind, res, err)
			})
		}
	}

	// Authentication itself refuses such a key.
	t.Run("KeyIsRefusedAtAuthentication", func(t *testing.T) {
		cs := env.Connect(t, unboundKey, "")
		if _, err := cs.ListTools(context.Background(), nil); rpcError(t, err).Code != refusal.CodeUnauthenticated {
			t.Fatalf("tools/list: %v", err)
		}
		check(t, cs, refusal.Unauthenticated, "Unauthenticated: ")
		if !strings.Contains(env.Logs.String(), unboundID) {
			t.Fatal("the refusal is not logged with the key id")
		}
	})
	t.Run("BoundKeyIsAuthenticated", func(t *testing.T) {
		control(t, env.Connect(t, boundKey, ""), refusal.Unauthenticated)
	})

	// Should an authenticator ever let such a principal through (a new
	// credential type, a bug), the gate refuses it on its own.
	gate := func(t *testing.T, p *auth.Principal, secret string) *mcp.ClientSession {
		t.Helper()
		srv := mcpserver.New(mcpserver.Deps{
			Tools:         tools.Deps{Store: env.App, CancelDailyQuota: 100},
			Authenticator: passThrough{p},
			Audit:         env.Audit,
			Limits:        env.Limits,
			Logger:        env.Logger,
			Version:       "test",
		})
		ct, st := mcp.NewInMemoryTransports()
		ss, err := srv.Connect(mcpserver.WithCredential(context.Background(), "stdio", secret), st, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ss.Close() })
		cs, err := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil).Connect(context.Background(), ct, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cs.Close() })
		return cs
	}
	t.Run("GateRefusesAnUnboundPrincipal", func(t *testing.T) {
		p := &auth.Principal{Subject: "apikey:" + unboundID, Method: "api_key", CredentialID: unboundID, Scopes: toolScopes()}
		check(t, gate(t, p, unboundKey), refusal.NoBinding, refusal.NoBinding.Message())
	})
	t.Run("GateAdmitsABoundPrincipal", func(t *testing.T) {
		p := &auth.Principal{Subject: "apikey:" + unboundID, Method: "api_key", CredentialID: unboundID, Scopes: toolScopes(), CustomerID: aiko.ID}
		control(t, gate(t, p, unboundKey), refusal.NoBinding)
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
