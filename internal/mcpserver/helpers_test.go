package mcpserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/dbtest"
	"github.com/example/order-mcp/internal/demo"
	"github.com/example/order-mcp/internal/limits"
	"github.com/example/order-mcp/internal/refusal"
	"github.com/example/order-mcp/internal/store"
	"github.com/example/order-mcp/internal/testenv"
	"github.com/example/order-mcp/internal/tools"
)

var dsn string

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m, &dsn)) }

// The tests of this package share one database. They do not run in
// parallel: several count the audit rows a call adds after the head they
// found. Each test works on demo customers of its own, so that one test's
// cancellations never change another's data:
//
//	customers[0]: audit records of every outcome
//	customers[1]: cancel_order and its record in one transaction
//	customers[2], customers[3]: tenant isolation
//	customers[4]: scopes, unbound credentials, staff masking
//	customers[5]: panics, error mapping, fail-closed audit, limits
//
// Tests that attack "every tool" iterate tools.All() and build each
// call's arguments from the tool's schema (testenv.Args), so that a new
// tool is attacked without anyone editing them.

var customers = demo.Customers()

// noLockout keeps the invalid-input and not-found throttles out of tests
// that make such calls on purpose; they have tests of their own.
var noLockout = func() limits.Policy {
	p := limits.DefaultPolicy()
	p.Threshold = 1_000_000
	return p
}()

// internalErrorText is the whole of what a client may see when something
// unexpected fails.
var internalErrorText = regexp.MustCompile(`^Internal error, reference ([a-z2-7]{13})\. Please try again later\.$`)

// callTool calls a tool and returns the result or the JSON-RPC error.
func callTool(cs *mcp.ClientSession, name string, args any) (*mcp.CallToolResult, error) {
	return cs.CallTool(context.Background(), &mcp.CallToolParams{Name: name, Arguments: args})
}

// output is everything a result carries, as one string.
func output(res *mcp.CallToolResult) string {
	if res == nil {
		return ""
	}
	b, _ := json.Marshal(res)
	return string(b)
}

// rpcError returns err as a JSON-RPC error, failing the test if it is not one.
func rpcError(t *testing.T, err error) *jsonrpc.Error {
	t.Helper()
	var we *jsonrpc.Error
	if !errors.As(err, &we) {
		t.Fatalf("want a JSON-RPC error, got %T %v", err, err)
	}
	return we
}

// internalReference checks res is exactly the fixed internal error and
// returns its reference.
func internalReference(t *testing.T, res *mcp.CallToolResult) string {
	t.Helper()
	m := internalErrorText.FindStringSubmatch(testenv.Text(res))
	if res == nil || !res.IsError || m == nil || len(res.Content) != 1 || res.StructuredContent != nil {
		t.Fatalf("want only the fixed internal error, got %s", output(res))
	}
	return m[1]
}

type orderStatus struct {
	OrderID     string `json:"order_id"`
	Status      string `json:"status"`
	CancelledAt string `json:"cancelled_at"`
	Customer    struct {
		Name, Email, Phone, Location string
	} `json:"customer"`
}

type orderList struct {
	CustomerID string `json:"customer_id"`
	Orders     []struct {
		OrderID string `json:"order_id"`
		Status  string `json:"status"`
	} `json:"orders"`
}

type cancelResult struct {
	OrderID          string `json:"order_id"`
	Status           string `json:"status"`
	AlreadyCancelled bool   `json:"already_cancelled"`
}

// ordersOf returns a customer's order ids with the given statuses (all
// when none are given), as the owner.
func ordersOf(t *testing.T, env *testenv.Env, customerID string, statuses ...string) []string {
	t.Helper()
	if len(statuses) == 0 {
		statuses = store.Statuses()
	}
	ids, err := env.OwnerQueryStrings(t,
		"SELECT id FROM orders WHERE customer_id = $1 AND status = ANY($2) ORDER BY id", customerID, statuses)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) == 0 {
		t.Fatalf("customer %s has no order in %v", customerID, statuses)
	}
	return ids
}

// orderState is what a cancellation changes, read as the owner.
func orderState(t *testing.T, env *testenv.Env, id string) string {
	t.Helper()
	rows, err := env.OwnerQueryStrings(t, `SELECT status || '|' || coalesce(cancelled_at::text, '-') || '|' || updated_at::text
		|| '|' || (SELECT count(*) FROM order_events e WHERE e.order_id = o.id)::text FROM orders o WHERE id = $1`, id)
	if err != nil || len(rows) != 1 {
		t.Fatalf("order %s: %v %v", id, rows, err)
	}
	return rows[0]
}

// auditRow is one audit_log row as the owner reads it, with the id of the
// transaction that wrote it.
type auditRow struct {
	Seq           int64
	Kind          string
	Principal     string
	CredentialID  string
	Transport     string
	Action        string
	ObjectIDs     []string
	Decision      string
	Outcome       string
	Reason        string
	CorrelationID string
	Arguments     string
	Xmin          string
}

func ownerConn(t *testing.T, env *testenv.Env) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), env.DSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// auditHead is the seq of the newest audit row.
func auditHead(t *testing.T, env *testenv.Env) int64 {
	t.Helper()
	var seq int64
	if err := ownerConn(t, env).QueryRow(context.Background(),
		"SELECT coalesce(max(seq), 0) FROM audit_log").Scan(&seq); err != nil {
		t.Fatal(err)
	}
	return seq
}

// toolCallRecords returns the tool-call rows after seq. Refusal rows (the
// HTTP layer's aggregated counters, flushed in the background) are left
// out.
func toolCallRecords(t *testing.T, env *testenv.Env, after int64) []auditRow {
	t.Helper()
	rows, err := ownerConn(t, env).Query(context.Background(), `
		SELECT seq, kind, principal, credential_id, transport, action, object_ids, decision, outcome,
		       reason, correlation_id, arguments, xmin::text
		  FROM audit_log WHERE seq > $1 AND kind = 'tool_call' ORDER BY seq`, after)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (auditRow, error) {
		var a auditRow
		err := r.Scan(&a.Seq, &a.Kind, &a.Principal, &a.CredentialID, &a.Transport, &a.Action, &a.ObjectIDs,
			&a.Decision, &a.Outcome, &a.Reason, &a.CorrelationID, &a.Arguments, &a.Xmin)
		return a, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// oneRecord returns the single tool-call record written after seq.
func oneRecord(t *testing.T, env *testenv.Env, after int64) auditRow {
	t.Helper()
	rows := toolCallRecords(t, env, after)
	if len(rows) != 1 {
		t.Fatalf("%d audit records for one call, want exactly 1: %+v", len(rows), rows)
	}
	return rows[0]
}

// confirmedRecords returns the two records of a destructive call the user
// confirmed (its question's round, then its answer's), failing unless the
// first is the question, asked and nothing else.
func confirmedRecords(t *testing.T, env *testenv.Env, after int64) (question, answer auditRow) {
	t.Helper()
	rows := toolCallRecords(t, env, after)
	if len(rows) != 2 {
		t.Fatalf("%d audit records for one confirmed call, want 2 (the question's round, the answer's): %+v", len(rows), rows)
	}
	if q := rows[0]; q.Outcome != tools.OutcomeConfirmationRequested || q.Decision != "allowed" || q.Action != rows[1].Action ||
		q.Arguments != rows[1].Arguments || q.Principal != rows[1].Principal {
		t.Fatalf("first record is not the question of the second: %+v", rows)
	}
	return rows[0], rows[1]
}

// logLines returns the captured JSON log lines.
func logLines(t *testing.T, env *testenv.Env) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.SplitSeq(env.Logs.String(), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		out = append(out, m)
	}
	return out
}

// logged returns the log lines with message msg that carry ref as their
// correlation id or error reference.
func logged(t *testing.T, env *testenv.Env, msg, ref string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range logLines(t, env) {
		if l["msg"] == msg && (l["correlation_id"] == ref || l["error_reference"] == ref) {
			out = append(out, l)
		}
	}
	return out
}

// noSecrets fails if any secret appears in the given outputs or in the log.
func noSecrets(t *testing.T, env *testenv.Env, secrets []string, outputs ...string) {
	t.Helper()
	logs := env.Logs.String()
	for _, s := range secrets {
		if s == "" {
			continue
		}
		for i, out := range outputs {
			if strings.Contains(out, s) {
				t.Fatalf("output %d contains secret %q: %s", i, s, out)
			}
		}
		if strings.Contains(logs, s) {
			t.Fatalf("log contains secret %q", s)
		}
	}
}

// noLeak fails if a client-visible text carries anything of the internals.
func noLeak(t *testing.T, what string, forbidden ...string) {
	t.Helper()
	lower := strings.ToLower(what)
	for _, f := range append(forbidden, "select ", " from ", "sqlstate", "postgres", ".go", "goroutine",
		"panic", "/home", "/srv", "runtime", "stack") {
		if strings.Contains(lower, strings.ToLower(f)) {
			t.Fatalf("client-visible text leaks %q: %q", f, what)
		}
	}
}

// revokeAuditInsert makes the database refuse the server's audit appends,
// as a broken grant or a full disk would, until the test ends.
func revokeAuditInsert(t *testing.T, env *testenv.Env) {
	t.Helper()
	env.OwnerExec(t, "REVOKE INSERT ON audit_log FROM "+store.AppRole)
	t.Cleanup(func() { env.OwnerExec(t, "GRANT INSERT ON audit_log TO "+store.AppRole) })
}

// restoreOrders puts the given orders back as they are now when the test
// ends (status, cancellation, timeline), so that tests which cancel
// orders can run again on the same database (go test -count=N).
func restoreOrders(t *testing.T, env *testenv.Env, ids ...string) {
	t.Helper()
	ctx := context.Background()
	type saved struct {
		status, reason *string
		cancelledAt    *time.Time
		updatedAt      time.Time
	}
	conn := ownerConn(t, env)
	var since time.Time
	if err := conn.QueryRow(ctx, "SELECT now()").Scan(&since); err != nil {
		t.Fatal(err)
	}
	before := map[string]saved{}
	for _, id := range ids {
		var s saved
		if err := conn.QueryRow(ctx, "SELECT status, cancel_reason, cancelled_at, updated_at FROM orders WHERE id = $1", id).
			Scan(&s.status, &s.reason, &s.cancelledAt, &s.updatedAt); err != nil {
			t.Fatal(err)
		}
		before[id] = s
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, env.DSN)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close(ctx)
		for id, s := range before {
			if _, err := conn.Exec(ctx, "UPDATE orders SET status = $2, cancel_reason = $3, cancelled_at = $4, updated_at = $5 WHERE id = $1",
				id, s.status, s.reason, s.cancelledAt, s.updatedAt); err != nil {
				t.Error(err)
			}
			if _, err := conn.Exec(ctx, "DELETE FROM order_events WHERE order_id = $1 AND status = 'cancelled' AND occurred_at >= $2",
				id, since); err != nil {
				t.Error(err)
			}
		}
	})
}

// forbiddenCode checks err is the JSON-RPC error CodeForbidden, as the
// docs/ERRORS.md documents it, in the form a go-sdk client receives it.
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

// missingOrder is an order id no customer has.
const missingOrder = "ord_0000000000000000"

// transports are the two ways a client reaches the MCP layer: stdio's
// path (in memory, where the MCP layer is the only control) and
// Streamable HTTP.
var transports = []struct {
	name    string
	connect func(t *testing.T, env *testenv.Env, key string) *mcp.ClientSession
}{
	{"InMemory", func(t *testing.T, env *testenv.Env, key string) *mcp.ClientSession { return env.Connect(t, key, "") }},
	{"HTTP", func(t *testing.T, env *testenv.Env, key string) *mcp.ClientSession {
		return env.ConnectHTTP(t, key, "")
	}},
}

// toolScopes is every scope some tool requires, in tools.All() order: a
// caller holding them may call every tool.
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

// lookups are the tools that look an order up by id: those under the
// enumeration throttle, and those whose answer must not tell another
// customer's order from one that does not exist. The test fails when
// there are none, since every attack on them would then pass vacuously.
func lookups(t *testing.T) []tools.Tool {
	t.Helper()
	var out []tools.Tool
	for _, tool := range tools.All() {
		if tool.LooksUpByID() {
			out = append(out, tool)
		}
	}
	if len(out) == 0 {
		t.Fatal("no tool of tools.All() looks anything up by id: the attack has no target (delete it if that is right)")
	}
	return out
}

// argsFor returns valid arguments for tool aimed at f, read off its
// schema (testenv.Args).
func argsFor(t *testing.T, tool tools.Tool, f testenv.Fixture) map[string]any {
	t.Helper()
	args, ok := testenv.Args(tool, f)
	if !ok {
		t.Fatalf("%s: testenv.Args cannot build arguments for this tool; teach it the new property", tool.Name())
	}
	return args
}

// controlArgs are the arguments of a control call of tool: a call that
// must get past the control under test. They are argsFor's, except that a
// destructive tool is aimed at an order that does not exist, so that the
// control changes nothing and needs nobody's confirmation, and still
// passes every check made before the tool looks the order up.
func controlArgs(t *testing.T, tool tools.Tool, f testenv.Fixture) map[string]any {
	t.Helper()
	if tool.Destructive() {
		f.OrderID = missingOrder
	}
	return argsFor(t, tool, f)
}

// bookkeeping are the statements a tool call may run however it ends: its
// audit record, the credential's lookup and last use, and lockout state,
// with the transactions they run in. Anything else is work done for the
// caller, and a refused call does none: the tests assert "nothing but
// bookkeeping ran" rather than "no order statement ran", so that a new
// tool's statements are watched without being listed here. A new kind of
// bookkeeping goes on this list, with its reason.
var bookkeeping = []string{
	"begin", "commit", "rollback",
	"lock_audit_chain", "audit_chain_head", "audit_records_present", "insert_audit", // the call's audit record
	"lookup_api_key", "touch_api_key", // authentication (stdio re-checks its key on every call)
	"locked_until", "ensure_lockout", "select_lockout", "upsert_lockout", "prune_lockouts", // lockouts
}

// work returns the statements env ran since its query log was last reset
// that are not bookkeeping.
func work(env *testenv.Env) []string {
	var out []string
	for _, q := range env.Queries.Events() {
		if !slices.Contains(bookkeeping, q.Name) {
			out = append(out, q.Name)
		}
	}
	return out
}

// noWork fails the test if env ran anything but bookkeeping since its
// query log was reset: a refused call is refused before any of the tool's
// work.
func noWork(t *testing.T, env *testenv.Env, what string) {
	t.Helper()
	if w := work(env); len(w) > 0 {
		t.Fatalf("%s: statements ran for a refused call: %v", what, w)
	}
}

// didWork fails the test unless env ran a customer-data statement since
// its query log was reset (every one runs under the caller's binding,
// set_access, first): the control showing that noWork watches calls that
// would otherwise have worked.
func didWork(t *testing.T, env *testenv.Env, what string) {
	t.Helper()
	if !slices.Contains(work(env), "set_access") {
		t.Fatalf("%s: the control call ran no customer-data statement: %v", what, work(env))
	}
}

// refusedAs reports whether a call's answer is a refusal of kind: a
// JSON-RPC error with its code, or, for a kind answered as a tool result
// (whose text takes no arguments), that result.
func refusedAs(kind refusal.Kind, res *mcp.CallToolResult, err error) bool {
	var we *jsonrpc.Error
	if errors.As(err, &we) {
		return kind.Code() != 0 && we.Code == kind.Code()
	}
	return kind.Code() == 0 && res != nil && res.IsError && testenv.Text(res) == kind.Message()
}

// gotPast checks the answer to a control call (see controlArgs): it is
// not a refusal of kind, and the tool did customer-data work. A
// destructive tool's control may stop before that work (to ask the user
// to confirm, say) and is then held to the first check alone; once it
// answers "not found", it has looked the order up.
func gotPast(t *testing.T, env *testenv.Env, tool tools.Tool, kind refusal.Kind, res *mcp.CallToolResult, err error) {
	t.Helper()
	if refusedAs(kind, res, err) {
		t.Fatalf("the control call was refused too: %v %s", err, output(res))
	}
	if !tool.Destructive() || refusedAs(refusal.NotFound, res, err) {
		didWork(t, env, tool.Name())
	}
}
