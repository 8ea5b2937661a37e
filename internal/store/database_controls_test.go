package store

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// These tests attack the database-side controls directly, bypassing the
// Go-side checks, to prove the database holds on its own. They live in the
// package to reach the pool; the test database comes from dbtest.Main (run
// by store_test's TestMain) through the environment.

func appStore(t *testing.T, dsn string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn, Options{AsAppRole: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func testDSN(t *testing.T) string {
	dsn := os.Getenv("DBTEST_DATABASE_URL")
	if dsn == "" {
		t.Fatal("DBTEST_DATABASE_URL not set: dbtest.Main did not run")
	}
	return dsn
}

// TestRowLevelSecurityHoldsWithoutTheGoFilter runs statements that lack the
// "customer_id = $2" filter every real statement has, as if a developer
// forgot it. Row-level security alone must keep other customers' rows out.
func TestRowLevelSecurityHoldsWithoutTheGoFilter(t *testing.T) {
	ctx := context.Background()
	s := appStore(t, testDSN(t))
	alice, bob := seededCustomer(t, 0), seededCustomer(t, 1)

	var bobsOrder string
	err := s.inTx(ctx, CustomerAccess(bob.ID), pgx.ReadOnly, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, "SELECT id FROM orders LIMIT 1").Scan(&bobsOrder)
	})
	if err != nil {
		t.Fatal(err)
	}

	tables := map[string]string{
		"orders":       "SELECT customer_id FROM orders",
		"order_events": "SELECT customer_id FROM order_events",
		"shipments":    "SELECT customer_id FROM shipments",
		"customers":    "SELECT id FROM customers",
	}
	for table, q := range tables {
		t.Run(table+"OnlyShowsTheBoundCustomer", func(t *testing.T) {
			err := s.inTx(ctx, CustomerAccess(alice.ID), pgx.ReadOnly, func(tx pgx.Tx) error {
				rows, err := tx.Query(ctx, q)
				if err != nil {
					return err
				}
				owners, err := pgx.CollectRows(rows, pgx.RowTo[string])
				if err != nil {
					return err
				}
				if len(owners) == 0 {
					t.Errorf("%s: alice sees none of her own rows", table)
				}
				for _, o := range owners {
					if o != alice.ID {
						t.Fatalf("%s: alice sees a row of %s", table, o)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}

	t.Run("AnotherCustomersOrderByIDIsInvisible", func(t *testing.T) {
		err := s.inTx(ctx, CustomerAccess(alice.ID), pgx.ReadOnly, func(tx pgx.Tx) error {
			var id string
			err := tx.QueryRow(ctx, "SELECT id FROM orders WHERE id = $1", bobsOrder).Scan(&id)
			if !errors.Is(err, pgx.ErrNoRows) {
				t.Fatalf("alice read bob's order by id: %v", err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Run("AnotherCustomersOrderCannotBeUpdated", func(t *testing.T) {
		err := s.inTx(ctx, CustomerAccess(alice.ID), pgx.ReadWrite, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, "UPDATE orders SET status = 'cancelled' WHERE id = $1", bobsOrder)
			if err != nil {
				return err
			}
			if tag.RowsAffected() != 0 {
				t.Fatalf("alice updated bob's order")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Run("UnboundStatementSeesNothing", func(t *testing.T) {
		var n int
		if err := s.pool.QueryRow(ctx, "SELECT count(*) FROM orders").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatalf("a statement outside any binding sees %d orders", n)
		}
	})
}

// TestAppRoleCannotReachWhatNoToolNeeds tries, as the server's role, to
// read and write what the column grants withhold.
func TestAppRoleCannotReachWhatNoToolNeeds(t *testing.T) {
	ctx := context.Background()
	s := appStore(t, testDSN(t))
	attempts := map[string]string{
		"ReadInternalNote":        "SELECT internal_note FROM orders",
		"ReadFraudFlag":           "SELECT fraud_flag FROM orders",
		"ReadStreetAddress":       "SELECT address_line1 FROM customers",
		"ReadCity":                "SELECT city FROM customers",
		"ReadCost":                "SELECT cost_cents FROM orders",
		"ReadCancelReason":        "SELECT cancel_reason FROM orders",
		"ReadEventText":           "SELECT description FROM order_events",
		"ReadAPIKeys":             "SELECT secret_sha256 FROM api_keys",
		"ChangeOrderTotal":        "UPDATE orders SET total_cents = 0",
		"RewriteAuditTrail":       "UPDATE audit_log SET outcome = 'ok'",
		"DeleteAuditTrail":        "DELETE FROM audit_log",
		"ReadAuditTrailContents":  "SELECT principal FROM audit_log",
		"TurnADeclineIntoAccept":  "UPDATE confirmation_nonces SET answer = 'accept'",
		"ReadConfirmationAnswer":  "SELECT answer FROM confirmation_nonces",
		"UnmarkACanary":           "DELETE FROM canaries",
		"MarkARealCustomerCanary": "INSERT INTO canaries (id) VALUES ('cus_0000000000000000')",
		"CreateTable":             "CREATE TABLE evil (x int)",
		"DisableRLS":              "ALTER TABLE orders DISABLE ROW LEVEL SECURITY",
	}
	for name, q := range attempts {
		t.Run(name, func(t *testing.T) {
			err := s.inTx(ctx, StaffAccess(), pgx.ReadWrite, func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, q)
				return err
			})
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || (pgErr.Code != "42501" && pgErr.Code != "42P01") {
				t.Fatalf("%q: err = %v, want permission denied", q, err)
			}
		})
	}
}

// TestExtendedProtocolIsForced: with pgx's simple protocol, arguments are
// interpolated into the SQL text on the client and the text may hold several
// statements, so an argument that broke out of its quoting could stack a
// second statement ("1; DROP TABLE orders"). A connection string can ask
// for that mode; the store sets the mode in code, so every statement that
// carries a value is a single prepared statement with its values sent
// apart from the SQL.
func TestExtendedProtocolIsForced(t *testing.T) {
	ctx := context.Background()
	dsn := testDSN(t) + "&default_query_exec_mode=simple_protocol"
	const stacked = "SELECT $1::int; SELECT 2"

	// The setting is real: a plain pgx connection honours it and runs both
	// statements.
	raw, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close(ctx)
	if _, err := raw.Exec(ctx, stacked, 1); err != nil {
		t.Fatalf("control: the simple protocol should run stacked statements: %v", err)
	}

	s := appStore(t, dsn)
	_, err = s.pool.Exec(ctx, stacked, 1)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42601" {
		t.Fatalf("store ran stacked statements: err = %v", err)
	}
}

// TestStatementTimeoutHolds: a statement that runs longer than the
// configured timeout is cancelled by Postgres, even when the connection
// string tries to switch the timeout off.
func TestStatementTimeoutHolds(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, testDSN(t)+"&options=-c%20statement_timeout%3D0", Options{AsAppRole: true, StatementTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.pool.Exec(ctx, "SELECT pg_sleep($1)", 2)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "57014" { // query_canceled
		t.Fatalf("a 2s statement under a 100ms timeout: err = %v", err)
	}
	if translated := translate("sleep", err); strings.Contains(translated.Error(), "canceling statement") {
		t.Fatalf("driver text leaks through translate: %v", translated)
	}
}

// TestReadsAreBoundReadOnlyAndEndWithTheirBatch: a read is sent as one
// batch, and in it the binding holds, a write is refused by Postgres (the
// batch's transaction is read-only), and after it the pooled connection
// carries no binding into the next caller's work.
func TestReadsAreBoundReadOnlyAndEndWithTheirBatch(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, testDSN(t), Options{AsAppRole: true, MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	alice := seededCustomer(t, 0)

	var bound string
	err = s.read(ctx, CustomerAccess(alice.ID), func(b *pgx.Batch) {
		b.Queue("SELECT current_setting('app.customer_id')")
	}, func(br pgx.BatchResults) error { return br.QueryRow().Scan(&bound) })
	if err != nil || bound != alice.ID {
		t.Fatalf("binding inside the batch = %q, %v; want %q", bound, err, alice.ID)
	}

	err = s.read(ctx, CustomerAccess(alice.ID), func(b *pgx.Batch) {
		b.Queue("UPDATE orders SET status = status WHERE customer_id = $1", alice.ID)
	}, func(br pgx.BatchResults) error { _, err := br.Exec(); return err })
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "25006" { // read_only_sql_transaction
		t.Fatalf("a write inside a read: %v, want SQLSTATE 25006", err)
	}

	var after *string
	if err := s.pool.QueryRow(ctx, "SELECT current_setting('app.customer_id', true)").Scan(&after); err != nil {
		t.Fatal(err)
	}
	if after != nil && *after != "" {
		t.Fatalf("the pooled connection kept the binding %q after the read", *after)
	}
}

// TestRowLevelSecurityIsForced: FORCE makes the policies bind the tables'
// owner too, so a deployment that runs the server as the owner (a mistake
// CheckLeastPrivilege refuses, but a fork might weaken) still cannot read
// across customers.
func TestRowLevelSecurityIsForced(t *testing.T) {
	conn, err := pgx.Connect(context.Background(), testDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, table := range []string{"customers", "orders", "order_events", "shipments"} {
		var enabled, forced bool
		err := conn.QueryRow(context.Background(),
			"SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = $1::regclass", "public."+table).
			Scan(&enabled, &forced)
		if err != nil {
			t.Fatal(err)
		}
		if !enabled || !forced {
			t.Errorf("%s: row-level security enabled=%v forced=%v, want both", table, enabled, forced)
		}
	}
}

type customer struct{ ID string }

// seededCustomer returns the n-th customer of the seeded data, newest
// first. (This in-package test cannot import internal/demo, which imports
// this package.)
func seededCustomer(t *testing.T, n int) customer {
	t.Helper()
	s, err := Open(context.Background(), testDSN(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var id string
	err = s.inTx(context.Background(), StaffAccess(), pgx.ReadOnly, func(tx pgx.Tx) error {
		return tx.QueryRow(context.Background(), "SELECT id FROM customers ORDER BY created_at DESC, id LIMIT 1 OFFSET $1", n).Scan(&id)
	})
	if err != nil {
		t.Fatal(err)
	}
	return customer{ID: id}
}
