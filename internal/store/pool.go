package store

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// AppRole is the login-less, least-privilege role the server's queries run
// as. migrations/00005_least_privilege.sql says what it may do.
const AppRole = "order_mcp_app"

// Options configures a connection pool.
type Options struct {
	// AsAppRole switches every pooled connection to AppRole with SET ROLE as
	// soon as the pool opens it. `serve` and `stdio` always set it; the
	// administrative commands (migrate, seed, keys, audit verify) run as the
	// user in DATABASE_URL, which owns the schema.
	AsAppRole bool
	// StatementTimeout bounds every statement on the server side. Zero means
	// 5 seconds; there is deliberately no way to say "no limit".
	StatementTimeout time.Duration
	// MaxConns caps the pool. Zero means 10.
	MaxConns int32
	// AcquireTimeout bounds how long a call waits for a pooled connection
	// when all of them are busy; past it the call fails with ErrBusy
	// (the client is told "temporarily unavailable" and when to retry)
	// instead of queueing behind every other caller. statement_timeout
	// does not cover this wait. Zero means 1 second.
	AcquireTimeout time.Duration
	// Logger receives the query tracer's lines (statement name and duration
	// at debug level, failures at warn). Nil means no logging.
	Logger *slog.Logger
	// Observe, when set, is told about every statement the pool runs. Tests
	// use it to prove which statements ran; see QueryEvent.
	Observe func(QueryEvent)
}

// Store is the database. It is safe for concurrent use.
type Store struct {
	pool           *pgxpool.Pool
	acquireTimeout time.Duration
}

// Open connects to dsn and returns a Store. It does not check the role's
// privileges: call CheckLeastPrivilege for that.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's parse errors can echo the connection string, password
		// included: say only what is wrong in general.
		return nil, fmt.Errorf("DATABASE_URL is not a valid Postgres connection string")
	}
	configure(cfg, opts)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, translate("open pool", err)
	}
	acquire := opts.AcquireTimeout
	if acquire <= 0 {
		acquire = time.Second
	}
	return &Store{pool: pool, acquireTimeout: acquire}, nil
}

// conn takes a pooled connection for one unit of work, waiting at most
// the acquire timeout. The caller releases it.
func (s *Store) conn(ctx context.Context) (*pgxpool.Conn, error) {
	actx, cancel := context.WithTimeout(ctx, s.acquireTimeout)
	defer cancel()
	c, err := s.pool.Acquire(actx)
	if err != nil {
		if ctx.Err() == nil && actx.Err() != nil {
			return nil, ErrBusy // every connection busy for the whole wait
		}
		return nil, err
	}
	return c, nil
}

// run runs fn on one pooled connection (see conn).
func (s *Store) run(ctx context.Context, fn func(*pgxpool.Conn) error) error {
	c, err := s.conn(ctx)
	if err != nil {
		return err
	}
	defer c.Release()
	return fn(c)
}

// configure applies the settings that must not depend on the connection
// string. They are set in code after parsing so that DATABASE_URL cannot
// override them.
func configure(cfg *pgxpool.Config, opts Options) {
	// Extended protocol for every statement that carries a value: values
	// travel separately from the SQL text and a prepared statement holds
	// exactly one command, so no value can ever stack a second statement.
	// (pgx sends statements without arguments, whose text is a constant of
	// this package, with the simple protocol; nothing of a caller's is in
	// them.)
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheStatement

	timeout := opts.StatementTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	rp := cfg.ConnConfig.RuntimeParams
	rp["statement_timeout"] = strconv.FormatInt(timeout.Milliseconds(), 10)
	rp["lock_timeout"] = strconv.FormatInt(timeout.Milliseconds(), 10)
	rp["idle_in_transaction_session_timeout"] = strconv.FormatInt((2 * timeout).Milliseconds(), 10)
	rp["search_path"] = "public"
	// The audit chain reads its head after taking its lock; under
	// REPEATABLE READ that read would see the snapshot from before the
	// wait. The code relies on READ COMMITTED, so it says so.
	rp["default_transaction_isolation"] = "read committed"
	rp["application_name"] = "order-mcp"

	cfg.ConnConfig.Tracer = &tracer{logger: opts.Logger, observe: opts.Observe}

	cfg.MaxConns = opts.MaxConns
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 10
	}
	cfg.MaxConnIdleTime = 5 * time.Minute
	cfg.HealthCheckPeriod = 30 * time.Second

	if opts.AsAppRole {
		cfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
			// The role name is a constant, not input; identifiers cannot be
			// parameters, so it is quoted with pgx's own identifier quoting.
			_, err := conn.Exec(ctx, "SET ROLE "+pgx.Identifier{AppRole}.Sanitize())
			return err
		}
	}
}

// Close closes every connection in the pool.
func (s *Store) Close() { s.pool.Close() }

// Ping reports whether the database answers; /readyz uses it.
func (s *Store) Ping(ctx context.Context) error {
	return translate("ping", s.pool.Ping(ctx))
}

// CheckMigrated verifies that the objects the server uses exist, so that a
// server pointed at an empty or unmigrated database stops at start-up with
// ErrNotMigrated instead of failing on its first request.
func (s *Store) CheckMigrated(ctx context.Context) error {
	const q = `-- name: check_migrated
SELECT bool_and(to_regclass('public.' || t) IS NOT NULL)
   AND to_regprocedure('public.lookup_api_key(text)') IS NOT NULL
   AND to_regprocedure('public.api_keys_active()') IS NOT NULL
   AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
                WHERE attrelid = to_regclass('public.audit_log') AND attname = 'record_id')
   -- The in-memory key cache and lock mirror are only correct while these
   -- triggers notify them (00010_change_notifications.sql).
   AND (SELECT count(*) FROM pg_catalog.pg_trigger
         WHERE tgname IN ('api_keys_notify', 'auth_lockouts_notify') AND tgenabled <> 'D') = 2
   -- The trail takes correction records (00011_audit_corrections.sql).
   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint
                    WHERE conrelid = to_regclass('public.audit_log') AND conname = 'audit_log_kind_check'
                      AND pg_catalog.pg_get_constraintdef(oid) NOT LIKE '%correction%')
  FROM unnest($1::text[]) AS t`
	var ok bool
	if err := s.pool.QueryRow(ctx, q, Tables()).Scan(&ok); err != nil {
		return translate("check migrated", err)
	}
	if !ok {
		return ErrNotMigrated
	}
	return nil
}

// CheckLeastPrivilege verifies that the role the pool's statements run as
// cannot bypass the database's own controls: it must not be a superuser,
// must not have BYPASSRLS, and must not own (or be a member of a role that
// owns) any table in the public schema, since owners can disable row-level
// security and grant themselves any column. `serve` and `stdio` refuse to
// start when this fails.
func (s *Store) CheckLeastPrivilege(ctx context.Context) error {
	const q = `-- name: check_least_privilege
SELECT current_user::text,
       r.rolsuper,
       r.rolbypassrls,
       EXISTS (SELECT 1
                 FROM pg_catalog.pg_class c
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'public'
                  AND c.relkind IN ('r', 'p')
                  AND pg_catalog.pg_has_role(current_user, c.relowner, 'MEMBER'))
  FROM pg_catalog.pg_roles r
 WHERE r.rolname = current_user`
	var (
		role                        string
		super, bypassRLS, ownsTable bool
	)
	if err := s.pool.QueryRow(ctx, q).Scan(&role, &super, &bypassRLS, &ownsTable); err != nil {
		return translate("check least privilege", err)
	}
	switch {
	case super:
		return fmt.Errorf("%w: queries run as %q, a superuser", ErrUnsafeRole, role)
	case bypassRLS:
		return fmt.Errorf("%w: queries run as %q, which has BYPASSRLS", ErrUnsafeRole, role)
	case ownsTable:
		return fmt.Errorf("%w: queries run as %q, which owns tables and so could lift row-level security", ErrUnsafeRole, role)
	}
	return nil
}

// PoolStats describe the connection pool, for metrics.
type PoolStats struct {
	Acquired, Idle, Total, Max int32
	// Acquires counts connections taken; Waited those that had to wait
	// for one; Busy those refused after the acquire timeout (ErrBusy).
	Acquires, Waited, Busy int64
	// AcquireWait is the time spent waiting for connections, in all.
	AcquireWait time.Duration
}

// Stats returns the pool's statistics.
func (s *Store) Stats() PoolStats {
	st := s.pool.Stat()
	return PoolStats{
		Acquired: st.AcquiredConns(), Idle: st.IdleConns(), Total: st.TotalConns(), Max: st.MaxConns(),
		Acquires: st.AcquireCount(), Waited: st.EmptyAcquireCount(), Busy: st.CanceledAcquireCount(),
		AcquireWait: st.AcquireDuration(),
	}
}
