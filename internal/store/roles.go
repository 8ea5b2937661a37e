package store

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// roleName is the shape of a login role this server creates: an unquoted
// Postgres identifier, so nothing needs quoting beyond pgx's own.
var roleName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// passwordAlphabet is what a login role's password may contain: the
// characters of random passwords generated the usual ways (base64, hex,
// URL-safe). The password is a literal in a utility statement, which
// cannot take parameters; refusing anything else means it never needs
// more quoting than doubling a quote it cannot contain.
var passwordAlphabet = regexp.MustCompile(`^[A-Za-z0-9+/=._~-]{16,200}$`)

// ErrBadLoginRole refuses a login role name or password of the wrong
// shape, before anything is sent.
var ErrBadLoginRole = errors.New("bad login role or password")

// EnsureLoginRole makes name a role that can log in with password and can
// do nothing but become AppRole: a NOINHERIT member of it and of nothing
// else, with no other attribute. The server connects as this role
// (DATABASE_URL) and switches every pooled connection to AppRole itself;
// owning nothing and inheriting nothing, the login role on its own can
// read and write nothing. Run by `server migrate` as the schema owner when
// DB_LOGIN_ROLE is set; idempotent (an existing role is brought back to
// this shape and gets the password), and safe when several run at once.
func (s *Store) EnsureLoginRole(ctx context.Context, name, password string) error {
	if !roleName.MatchString(name) || name == AppRole || strings.HasPrefix(name, "pg_") {
		return fmt.Errorf("%w: DB_LOGIN_ROLE must be a lower-case identifier other than %s", ErrBadLoginRole, AppRole)
	}
	if !passwordAlphabet.MatchString(password) {
		return fmt.Errorf("%w: DB_LOGIN_PASSWORD must be 16 to 200 characters of A-Z, a-z, 0-9 and + / = . _ ~ -", ErrBadLoginRole)
	}
	ident := pgx.Identifier{name}.Sanitize()
	attrs := "LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD '" + password + "'"
	_, err := s.pool.Exec(ctx, "CREATE ROLE "+ident+" "+attrs)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "42710" || pgErr.Code == "23505") { // duplicate_object, or a concurrent twin
		_, err = s.pool.Exec(ctx, "ALTER ROLE "+ident+" "+attrs)
	}
	if err != nil {
		return translate("ensure login role", err)
	}
	if _, err := s.pool.Exec(ctx, "GRANT "+pgx.Identifier{AppRole}.Sanitize()+" TO "+ident); err != nil {
		return translate("ensure login role", err)
	}
	const others = `-- name: login_role_memberships
SELECT count(*) FROM pg_catalog.pg_auth_members m
  JOIN pg_catalog.pg_roles r ON r.oid = m.member
  JOIN pg_catalog.pg_roles g ON g.oid = m.roleid
 WHERE r.rolname = $1 AND g.rolname <> $2`
	var n int
	if err := s.pool.QueryRow(ctx, others, name, AppRole).Scan(&n); err != nil {
		return translate("ensure login role", err)
	}
	if n > 0 {
		return fmt.Errorf("%w: %s is also a member of other roles; revoke them, it must only be able to become %s", ErrBadLoginRole, name, AppRole)
	}
	return nil
}
