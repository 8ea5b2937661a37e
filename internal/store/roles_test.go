package store_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/example/order-mcp/internal/dbtest"
	"github.com/example/order-mcp/internal/store"
)

// TestLoginRoleCanOnlyBecomeTheAppRole: the role `server migrate` creates
// for the server to log in as (DB_LOGIN_ROLE) can log in, cannot read or
// write a single row on its own, and can become order_mcp_app and nothing
// else; a server connected as it passes the least-privilege check.
func TestLoginRoleCanOnlyBecomeTheAppRole(t *testing.T) {
	ctx := context.Background()
	owner := dbtest.Owner(t, dsn)
	name := fmt.Sprintf("test_login_%s", strings.ToLower(randomSuffix(t)))
	password := "Zq8" + strings.Repeat("x7_", 6)
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, dsn)
		if err == nil {
			_, _ = conn.Exec(ctx, "DROP ROLE IF EXISTS "+pgx.Identifier{name}.Sanitize())
			conn.Close(ctx)
		}
	})
	if err := owner.EnsureLoginRole(ctx, name, password); err != nil {
		t.Fatal(err)
	}
	if err := owner.EnsureLoginRole(ctx, name, password); err != nil {
		t.Fatalf("a second run (idempotent) failed: %v", err)
	}
	u, _ := url.Parse(dsn)
	u.User = url.UserPassword(name, password)
	login := u.String()

	t.Run("OnItsOwnItReadsNothing", func(t *testing.T) {
		conn, err := pgx.Connect(ctx, login)
		if err != nil {
			t.Fatalf("the login role cannot log in: %v", err)
		}
		defer conn.Close(ctx)
		for _, table := range []string{"customers", "orders", "api_keys", "audit_log"} {
			var n int
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err == nil {
				t.Errorf("the login role read %s without becoming the app role", table)
			}
		}
		var super, inherit, createRole, bypass bool
		if err := conn.QueryRow(ctx, `SELECT rolsuper, rolinherit, rolcreaterole, rolbypassrls FROM pg_roles WHERE rolname = $1`, name).
			Scan(&super, &inherit, &createRole, &bypass); err != nil {
			t.Fatal(err)
		}
		if super || inherit || createRole || bypass {
			t.Errorf("attributes: super %v inherit %v createrole %v bypassrls %v", super, inherit, createRole, bypass)
		}
	})
	t.Run("TheServerConnectedAsItPassesTheLeastPrivilegeCheck", func(t *testing.T) {
		s, err := store.Open(ctx, login, store.Options{AsAppRole: true})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.CheckLeastPrivilege(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.CheckMigrated(ctx); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ShapesThatCouldInjectAreRefusedBeforeAnythingRuns", func(t *testing.T) {
		for _, tt := range []struct{ name, password string }{
			{"x; DROP ROLE postgres", password},
			{`"quoted"`, password},
			{store.AppRole, password},
			{"pg_monitor", password},
			{name, "short"},
			{name, "it's' PASSWORD 'x' SUPERUSER --"},
			{name, strings.Repeat("a", 15) + "\\"},
		} {
			if err := owner.EnsureLoginRole(ctx, tt.name, tt.password); !errors.Is(err, store.ErrBadLoginRole) {
				t.Errorf("EnsureLoginRole(%q, %q) = %v, want ErrBadLoginRole", tt.name, tt.password, err)
			}
		}
	})
}

// randomSuffix returns 8 random hex characters.
func randomSuffix(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
