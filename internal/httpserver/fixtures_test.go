package httpserver_test

// The database fixtures and audit-trail queries every test of this
// package shares, beside the HTTP helpers of helpers_test.go: the tests'
// own customers and orders, what the database owner sees of them, and
// what is on record.

import (
	"context"
	"crypto/rand"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/example/order-mcp/internal/demo"
	"github.com/example/order-mcp/internal/testenv"
)

// ownerQuery runs a query as the database owner and returns its first
// column as text.
func ownerQuery(t testing.TB, dsn, sql string, args ...any) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// ordersOf returns the ids of a customer's orders, as the database owner
// sees them (also before any server exists).
func ordersOf(t testing.TB, dsn, customerID string) []string {
	t.Helper()
	ids := ownerQuery(t, dsn, `SELECT id FROM orders WHERE customer_id = $1 ORDER BY id`, customerID)
	if len(ids) == 0 {
		t.Fatalf("customer %s has no orders", customerID)
	}
	return ids
}

// newID returns a fresh id of the shape prefix_ + 16 Crockford base32
// characters (valid, and almost surely unused).
func newID(prefix string) string {
	const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	var b [16]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = crockford[int(b[i])%len(crockford)]
	}
	return prefix + "_" + string(b[:])
}

// newCustomer creates a customer of the calling test's own: a copy of the
// demo customer from (the same personal data, so the same secrets) under a
// fresh id, with n pending orders copied from one of from's. Tests that
// cancel, or check that nothing was cancelled, use these orders, which no
// other test can touch.
func newCustomer(t testing.TB, dsn string, from demo.Customer, n int) (customerID string, orders []string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	customerID = newID("cus")
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		// Row-level security binds the owner too, unless it is a
		// superuser: act as staff for this setup.
		if _, err := tx.Exec(ctx, `SELECT set_config('app.any_customer', 'on', true)`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO customers
			SELECT (jsonb_populate_record(NULL::customers, to_jsonb(c) || jsonb_build_object('id', $1::text))).*
			FROM customers c WHERE c.id = $2`, customerID, from.ID); err != nil {
			return err
		}
		for i := range n {
			id := newID("ord")
			tag, err := tx.Exec(ctx, `INSERT INTO orders
				SELECT (jsonb_populate_record(NULL::orders, to_jsonb(o) || jsonb_build_object(
					'id', $1::text, 'customer_id', $2::text, 'status', 'pending', 'placed_at', now() - make_interval(mins => $4::int),
					'cancelled_at', NULL, 'cancel_reason', NULL))).*
				FROM orders o WHERE o.customer_id = $3 ORDER BY o.id LIMIT 1`, id, customerID, from.ID, i+1)
			if err != nil {
				return err
			}
			if tag.RowsAffected() != 1 {
				return fmt.Errorf("could not copy an order of %s", from.ID)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO order_events (order_id, customer_id, status, occurred_at, description)
				VALUES ($1, $2, 'pending', now(), 'Order placed.')`, id, customerID); err != nil {
				return err
			}
			orders = append(orders, id)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return customerID, orders
}

// orderStatus returns an order's status as the database owner sees it.
func orderStatus(t testing.TB, dsn, orderID string) string {
	t.Helper()
	rows := ownerQuery(t, dsn, `SELECT status FROM orders WHERE id = $1`, orderID)
	if len(rows) != 1 {
		t.Fatalf("order %s: %d rows", orderID, len(rows))
	}
	return rows[0]
}

// cancellations counts the audit records of a cancellation of orderID.
func cancellations(t testing.TB, dsn, orderID string) int {
	t.Helper()
	n, _ := strconv.Atoi(ownerQuery(t, dsn, `SELECT count(*)::text FROM audit_log
		WHERE action = 'cancel_order' AND outcome = 'cancelled' AND $1 = ANY(object_ids)`, orderID)[0])
	return n
}

// notCancelled asserts that orderID is still pending and that no
// cancellation of it was ever recorded.
func notCancelled(t testing.TB, dsn, orderID string) {
	t.Helper()
	if st := orderStatus(t, dsn, orderID); st != "pending" {
		t.Fatalf("order %s is %s", orderID, st)
	}
	if n := cancellations(t, dsn, orderID); n != 0 {
		t.Fatalf("order %s: %d audit records of a cancellation", orderID, n)
	}
}

// flushAudit drains the audit writers of envs: refusals are counted in
// memory and written when the writer closes. The environments serve no
// tool call afterwards.
func flushAudit(t testing.TB, envs ...*testenv.Env) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, e := range envs {
		if err := e.Audit.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// refusals returns the refusals on record for a client address, by
// reason. Call flushAudit first.
func refusals(t testing.TB, dsn, source string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, r := range ownerQuery(t, dsn, `SELECT reason || '=' || sum(count)::text FROM audit_log
		WHERE kind = 'refusal' AND source = $1 GROUP BY reason`, source) {
		reason, n, _ := strings.Cut(r, "=")
		out[reason], _ = strconv.Atoi(n)
	}
	return out
}

// toolCalls returns the tool calls on record for an API key, by
// "tool/outcome". Tool calls are recorded before their answer leaves.
func toolCalls(t testing.TB, dsn, keyID string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, r := range ownerQuery(t, dsn, `SELECT action || '/' || outcome || '=' || count(*)::text FROM audit_log
		WHERE kind = 'tool_call' AND credential_id = $1 GROUP BY action, outcome`, keyID) {
		k, n, _ := strings.Cut(r, "=")
		out[k], _ = strconv.Atoi(n)
	}
	return out
}

// statements returns the names of the statements env ran since its query
// log was last reset, without the audit trail's own (appends can happen at
// any time: refusals are flushed in the background) and without
// transaction bookkeeping.
func statements(env *testenv.Env) []string {
	var out []string
	for _, e := range env.Queries.Events() {
		switch {
		case strings.Contains(e.Name, "audit"), e.Name == "begin", e.Name == "commit", e.Name == "rollback":
		default:
			out = append(out, e.Name)
		}
	}
	return out
}
