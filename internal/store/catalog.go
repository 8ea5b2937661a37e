package store

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The rules every migration must keep, checked against the database's own
// catalog rather than a list someone has to remember to extend: a new
// table holding customer data without forced row-level security, a new
// grant of a whole table, a staff-only column granted to the server, or a
// table the start-up check does not know about is found here, by name and
// rule. `serve` and `stdio` refuse to start while any rule is broken, and
// `make test` fails (TestCatalogRules).
//
// The exceptions are explicit, each with its reason, in the maps below.

// Tables are the tables the server's database holds. CheckMigrated checks
// they exist; a table not listed here breaks the rule "known".
func Tables() []string {
	return []string{"customers", "orders", "order_events", "shipments", "api_keys", "api_key_usage",
		"auth_lockouts", "audit_log", "confirmation_nonces", "canaries"}
}

// untrackedTables are tables of the schema that are not the server's.
var untrackedTables = map[string]string{
	"goose_db_version": "goose's record of applied migrations; the server's role has no privilege on it",
}

// withoutRowSecurity are customer-data tables allowed to lack forced
// row-level security, and why.
var withoutRowSecurity = map[string]string{
	"api_keys": "the server's role holds no privilege on it: keys are reached only through the SECURITY DEFINER " +
		"functions lookup_api_key (one row by public key id) and api_keys_active (yes or no)",
}

// wholeTableGrants are tables the server's role may hold table-level
// privileges on (every column, including any added later), and why.
var wholeTableGrants = map[string]string{
	"shipments":     "every column is one get_order_status returns; new columns must be reviewed here",
	"api_key_usage": "bookkeeping the server writes (a key's last use): no customer data, no secret",
	"auth_lockouts": "bookkeeping the server writes (lockout buckets): no customer data, no secret",
	"audit_log":     "INSERT only (append-only); the server reads back only seq, hmac and record_id",
	"confirmation_nonces": "DELETE only, to prune expired rows (DELETE cannot be granted by column); the rest by column: " +
		"bookkeeping the server writes (answered confirmation nonces), no customer data, no secret",
}

// definerFunctions are the SECURITY DEFINER functions the server's role
// may execute, and why. Any other function it may execute runs with its
// own rights: a superuser-owned definer function bypasses even forced
// row-level security.
var definerFunctions = map[string]string{
	"lookup_api_key":  "returns the one key row named by its public key id",
	"api_keys_active": "answers whether any key is active, yes or no",
}

// deniedColumn reports whether a column name marks staff-only or secret
// data the server's role must never be granted.
func deniedColumn(name string) bool {
	for _, p := range []string{"secret", "password", "token", "_sha256", "_hash", "hmac_key"} {
		if strings.Contains(name, p) {
			return true
		}
	}
	return strings.HasPrefix(name, "internal_") || strings.HasSuffix(name, "_note") || name == "note"
}

// Violation is one broken rule.
type Violation struct {
	Table, Rule, Detail string
}

func (v Violation) String() string { return fmt.Sprintf("%s: %s (%s)", v.Table, v.Rule, v.Detail) }

// The rules, by name.
const (
	RuleRowSecurity = "customer data needs row-level security, enabled, forced and with a policy"
	RuleColumnGrant = "the server's role is granted columns one by one, never a whole table"
	RuleDeniedCol   = "the server's role is never granted a staff-only or secret column"
	RuleKnown       = "every table is known to the start-up check (store.Tables)"
	RuleDefiner     = "a function the server's role may execute runs with its own rights (SECURITY INVOKER)"
)

const catalogTablesSQL = `-- name: catalog_tables
SELECT c.relname::text, c.relrowsecurity, c.relforcerowsecurity,
       EXISTS (SELECT 1 FROM pg_catalog.pg_policy p WHERE p.polrelid = c.oid),
       c.relname = 'customers'
         OR EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                     WHERE a.attrelid = c.oid AND a.attname = 'customer_id' AND NOT a.attisdropped)
         OR EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k
                     WHERE k.conrelid = c.oid AND k.contype = 'f' AND k.confrelid = 'public.customers'::regclass)
  FROM pg_catalog.pg_class c
 WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
 ORDER BY 1`

const catalogTableGrantsSQL = `-- name: catalog_table_grants
SELECT table_name::text, string_agg(privilege_type, ', ' ORDER BY privilege_type)
  FROM information_schema.table_privileges
 WHERE grantee = $1 AND table_schema = 'public'
 GROUP BY 1`

const catalogColumnGrantsSQL = `-- name: catalog_column_grants
SELECT table_name::text, column_name::text
  FROM information_schema.column_privileges
 WHERE grantee = $1 AND table_schema = 'public'`

const catalogDefinersSQL = `-- name: catalog_definers
SELECT p.proname::text
  FROM pg_catalog.pg_proc p
 WHERE p.pronamespace = 'public'::regnamespace AND p.prosecdef
   AND pg_catalog.has_function_privilege($1, p.oid, 'EXECUTE')`

// CheckCatalog checks the rules above against the database and returns
// every violation, in order of table.
func (s *Store) CheckCatalog(ctx context.Context) ([]Violation, error) {
	var out []Violation
	err := s.run(ctx, func(c *pgxpool.Conn) error {
		rows, err := c.Query(ctx, catalogTablesSQL)
		if err != nil {
			return err
		}
		type table struct {
			name                          string
			rls, forced, policy, customer bool
		}
		tables, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (table, error) {
			var t table
			err := r.Scan(&t.name, &t.rls, &t.forced, &t.policy, &t.customer)
			return t, err
		})
		if err != nil {
			return err
		}
		for _, t := range tables {
			if _, other := untrackedTables[t.name]; !other && !slices.Contains(Tables(), t.name) {
				out = append(out, Violation{t.name, RuleKnown, "add it to store.Tables, or to untrackedTables with the reason"})
			}
			if _, excused := withoutRowSecurity[t.name]; t.customer && !excused && !(t.rls && t.forced && t.policy) {
				out = append(out, Violation{t.name, RuleRowSecurity,
					fmt.Sprintf("enabled %v, forced %v, policy %v", t.rls, t.forced, t.policy)})
			}
		}

		rows, err = c.Query(ctx, catalogTableGrantsSQL, AppRole)
		if err != nil {
			return err
		}
		grants, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]string, error) {
			var g [2]string
			err := r.Scan(&g[0], &g[1])
			return g, err
		})
		if err != nil {
			return err
		}
		for _, g := range grants {
			if _, excused := wholeTableGrants[g[0]]; !excused {
				out = append(out, Violation{g[0], RuleColumnGrant, "granted " + g[1] + " on the whole table"})
			}
		}

		rows, err = c.Query(ctx, catalogColumnGrantsSQL, AppRole)
		if err != nil {
			return err
		}
		cols, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]string, error) {
			var g [2]string
			err := r.Scan(&g[0], &g[1])
			return g, err
		})
		if err != nil {
			return err
		}
		for _, col := range cols {
			if deniedColumn(col[1]) {
				out = append(out, Violation{col[0], RuleDeniedCol, "column " + col[1]})
			}
		}

		rows, err = c.Query(ctx, catalogDefinersSQL, AppRole)
		if err != nil {
			return err
		}
		definers, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, f := range definers {
			if _, excused := definerFunctions[f]; !excused {
				out = append(out, Violation{f + "()", RuleDefiner, "SECURITY DEFINER and executable by " + AppRole})
			}
		}
		return nil
	})
	if err != nil {
		return nil, translate("check catalog", err)
	}
	slices.SortStableFunc(out, func(a, b Violation) int { return strings.Compare(a.Table, b.Table) })
	return out, nil
}
