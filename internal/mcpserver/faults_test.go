package mcpserver_test

// Faults inside a call (a panicking or failing store) and what reaches
// the client: only the fixed internal error and a reference that leads to
// the log line and the audit record.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/store"
	"github.com/example/order-mcp/internal/testenv"
	"github.com/example/order-mcp/internal/tools"
)

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
