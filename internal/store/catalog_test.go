package store_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/example/order-mcp/internal/dbtest"
	"github.com/example/order-mcp/internal/store"
)

// TestCatalogRules: the migrated schema keeps every rule of
// internal/store/catalog.go, read from the database's catalog: a
// migration that adds customer data without forced row-level security, a
// whole-table grant, a staff-only column, or a table unknown to the
// start-up check fails here, naming the table and the rule.
func TestCatalogRules(t *testing.T) {
	for _, s := range []*store.Store{dbtest.Owner(t, dsn), dbtest.App(t, dsn, store.Options{})} {
		violations, err := s.CheckCatalog(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range violations {
			t.Errorf("%s", v)
		}
	}
}

// TestCatalogCheckerCatchesEveryBrokenRule plants, in a scratch database,
// one table or function breaking each rule the way a forker's migration
// could, and checks the checker names each one with its rule. A checker
// that missed one would let the next forgotten step through.
func TestCatalogCheckerCatchesEveryBrokenRule(t *testing.T) {
	scratch := dbtest.Scratch(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, scratch)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, stmt := range []string{
		// Customer data with no row-level security at all.
		`CREATE TABLE loyalty_points (customer_id text REFERENCES customers (id), points int)`,
		`GRANT SELECT (customer_id, points) ON loyalty_points TO order_mcp_app`,
		// Enabled but not forced: the owner (or a superuser-run job) reads all.
		`CREATE TABLE returns_requests (id text PRIMARY KEY, customer_id text NOT NULL, reason text)`,
		`ALTER TABLE returns_requests ENABLE ROW LEVEL SECURITY`,
		`CREATE POLICY p ON returns_requests USING (customer_id = current_setting('app.customer_id', true))`,
		// Forced but without a policy, through a foreign key only.
		`CREATE TABLE gift_cards (id text PRIMARY KEY, owner text REFERENCES customers (id))`,
		`ALTER TABLE gift_cards ENABLE ROW LEVEL SECURITY`,
		`ALTER TABLE gift_cards FORCE ROW LEVEL SECURITY`,
		// A whole-table grant on an otherwise harmless table.
		`CREATE TABLE carriers (name text PRIMARY KEY)`,
		`GRANT SELECT ON carriers TO order_mcp_app`,
		// A staff-only column granted to the server.
		`ALTER TABLE orders ADD COLUMN internal_risk_score int`,
		`GRANT SELECT (internal_risk_score) ON orders TO order_mcp_app`,
		// A SECURITY DEFINER function the server may call.
		`CREATE FUNCTION order_count() RETURNS bigint LANGUAGE sql SECURITY DEFINER AS 'SELECT count(*) FROM orders'`,
		`GRANT EXECUTE ON FUNCTION order_count() TO order_mcp_app`,
	} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	violations, err := dbtest.Owner(t, scratch).CheckCatalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, v := range violations {
		found[v.Table+" | "+v.Rule] = true
	}
	for _, want := range []string{
		"loyalty_points | " + store.RuleRowSecurity,
		"loyalty_points | " + store.RuleKnown,
		"returns_requests | " + store.RuleRowSecurity,
		"gift_cards | " + store.RuleRowSecurity,
		"carriers | " + store.RuleColumnGrant,
		"carriers | " + store.RuleKnown,
		"orders | " + store.RuleDeniedCol,
		"order_count() | " + store.RuleDefiner,
	} {
		if !found[want] {
			t.Errorf("the checker missed %q; it found:\n%s", want, strings.Join(keys(found), "\n"))
		}
	}
	// And nothing about tables that keep the rules.
	for f := range found {
		if strings.HasPrefix(f, "customers |") || strings.HasPrefix(f, "shipments |") || strings.HasPrefix(f, "audit_log |") {
			t.Errorf("a false alarm: %s", f)
		}
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
