package testenv

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/ulule/limiter/v3"

	"github.com/example/order-mcp/internal/audit"
	"github.com/example/order-mcp/internal/dbtest"
	"github.com/example/order-mcp/internal/httpserver"
	"github.com/example/order-mcp/internal/logging"
	"github.com/example/order-mcp/internal/mcpserver"
	"github.com/example/order-mcp/internal/security"
	"github.com/example/order-mcp/internal/store"
	"github.com/example/order-mcp/internal/tools"
)

// Protocol versions the tests drive.
const (
	Protocol20251125 = "2025-11-25" // Claude Desktop, mcp-remote, TypeScript SDK v1
	Protocol20260728 = "2026-07-28" // sessionless; the go-sdk client's default
)

// TestAuditKey is the audit HMAC key of test environments.
var TestAuditKey = []byte("test audit key: 32 bytes or more, never used in production")

// Options adjusts an environment.
type Options struct {
	Limits  *security.LimitsConfig
	Lockout *security.LockoutPolicy
	Shared  *security.SharedCounters
	// LockoutStore replaces where lockout state lives (default: the app
	// store, or Redis with Shared); fail-closed tests pass a broken one.
	LockoutStore     security.LockoutStore
	TokenVerifier    security.TokenVerifier
	HTTP             httpserver.Config
	CancelDailyQuota int
	// WrapStore lets a test inject faults around the real store.
	WrapStore func(tools.Store) tools.Store
}

// Env is an assembled server.
type Env struct {
	DSN     string
	Owner   *store.Store
	App     *store.Store
	Sealer  *audit.Sealer
	Audit   *audit.Writer
	Auth    *security.Authenticator
	Lockout *security.Lockout
	Limits  *security.Limits
	MCP     *mcp.Server
	Logger  *slog.Logger
	Logs    *Buffer
	Queries *QueryLog

	opts    Options
	httpSrv *httptest.Server
	cleanup func(func()) // the creating test's Cleanup, which outlives subtests
}

// GenerousLimits never get in the way of tests of other controls.
func GenerousLimits() security.LimitsConfig {
	big := limiter.Rate{Period: time.Minute, Limit: 1_000_000}
	return security.LimitsConfig{PerIP: big, PerPrincipal: big, Concurrency: 1000, CancelPerPrincipal: big, NotFoundPerPrincipal: big}
}

// New assembles a server on the database at dsn.
func New(t testing.TB, dsn string, opts Options) *Env {
	t.Helper()
	e := &Env{DSN: dsn, Logs: &Buffer{}, Queries: &QueryLog{}, opts: opts, cleanup: t.Cleanup}
	e.Logger = logging.New(slog.LevelDebug, e.Logs)
	e.Owner = dbtest.Owner(t, dsn)
	e.App = dbtest.App(t, dsn, store.Options{Logger: e.Logger, Observe: e.Queries.add})

	var err error
	e.Sealer, err = audit.NewSealer(TestAuditKey)
	if err != nil {
		t.Fatal(err)
	}
	e.Audit = audit.NewWriter(e.App, e.Sealer, e.Logger)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.Audit.Close(ctx); err != nil {
			t.Errorf("audit drain: %v", err)
		}
	})

	policy := security.DefaultLockoutPolicy()
	if opts.Lockout != nil {
		policy = *opts.Lockout
	}
	var lockoutStore security.LockoutStore = e.App
	if opts.Shared != nil {
		lockoutStore = security.NewRedisLockoutStore(opts.Shared)
	}
	if opts.LockoutStore != nil {
		lockoutStore = opts.LockoutStore
	}
	e.Lockout = security.NewLockout(policy, lockoutStore)
	limits := GenerousLimits()
	if opts.Limits != nil {
		limits = *opts.Limits
	}
	e.Limits = security.NewLimits(limits, opts.Shared, e.Lockout)
	e.Auth = security.NewAuthenticator(e.App, opts.TokenVerifier, e.Logger)

	var st tools.Store = e.App
	if opts.WrapStore != nil {
		st = opts.WrapStore(st)
	}
	quota := opts.CancelDailyQuota
	if quota == 0 {
		quota = 100
	}
	e.MCP = mcpserver.New(mcpserver.Deps{
		Tools:         tools.Deps{Store: st, CancelDailyQuota: quota},
		Authenticator: e.Auth,
		Audit:         e.Audit,
		Limits:        e.Limits,
		Logger:        e.Logger,
		Version:       "test",
	})
	return e
}

// Key mints an API key on this environment's database.
func (e *Env) Key(t testing.TB, customerID string, scopes ...string) (key, keyID string) {
	t.Helper()
	return dbtest.MintKey(t, e.Owner, dbtest.KeyOptions{Scopes: scopes, CustomerID: customerID})
}

// Connect opens an MCP client session in memory, with the server side built
// exactly as `server stdio` builds it (an IOTransport whose output goes
// through mcpserver.SafeWriter, and the key re-checked on every call), over
// a net.Pipe instead of stdin and stdout. version "" means the client's
// default.
func (e *Env) Connect(t testing.TB, key, version string) *mcp.ClientSession {
	t.Helper()
	ctx := context.Background()
	clientEnd, serverEnd := net.Pipe()
	ct := &mcp.IOTransport{Reader: clientEnd, Writer: clientEnd}
	st := &mcp.IOTransport{Reader: serverEnd, Writer: mcpserver.SafeWriter(serverEnd)}
	ss, err := e.MCP.Connect(mcpserver.WithCredential(ctx, "stdio", key), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ss.Close() })
	return e.connect(t, ct, version)
}

func (e *Env) connect(t testing.TB, transport mcp.Transport, version string) *mcp.ClientSession {
	t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "testenv-client", Version: "1"}, nil)
	cs, err := client.Connect(context.Background(), transport, &mcp.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

// Handler returns the HTTP surface.
func (e *Env) Handler() http.Handler {
	cfg := e.opts.HTTP
	if cfg.ResourceURL == "" {
		cfg.ResourceURL = "http://127.0.0.1/mcp"
	}
	return httpserver.New(httpserver.Deps{
		Config: cfg, MCP: e.MCP, Authenticator: e.Auth, Lockout: e.Lockout, Limits: e.Limits,
		Audit: e.Audit, Logger: e.Logger, Ready: e.App.Ping,
	})
}

// URL starts the HTTP surface on a loopback port (once) and returns the
// MCP endpoint's URL.
func (e *Env) URL(t testing.TB) string {
	t.Helper()
	if e.httpSrv == nil {
		e.httpSrv = httptest.NewServer(e.Handler())
		e.cleanup(e.httpSrv.Close)
	}
	return e.httpSrv.URL + "/mcp"
}

// ConnectHTTP opens an MCP client session over Streamable HTTP, sending key
// as the bearer credential.
func (e *Env) ConnectHTTP(t testing.TB, key, version string) *mcp.ClientSession {
	t.Helper()
	return e.connect(t, &mcp.StreamableClientTransport{
		Endpoint:   e.URL(t),
		HTTPClient: BearerClient(key),
		MaxRetries: -1,
	}, version)
}

// BearerClient is an HTTP client that sends key as a bearer credential.
func BearerClient(key string) *http.Client {
	return &http.Client{Transport: bearer{key: key}, Timeout: 30 * time.Second}
}

type bearer struct{ key string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.key)
	return http.DefaultTransport.RoundTrip(r)
}

// Buffer collects log output safely across goroutines.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything logged so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// QueryLog records the statements the app store ran.
type QueryLog struct {
	mu     sync.Mutex
	events []store.QueryEvent
}

func (q *QueryLog) add(e store.QueryEvent) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.events = append(q.events, store.QueryEvent{Name: e.Name, Rows: e.Rows, Code: e.Code})
}

// Reset forgets recorded statements.
func (q *QueryLog) Reset() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.events = nil
}

// Names returns the names of the recorded statements in order, without the
// transaction bookkeeping and the audit trail's own statements.
func (q *QueryLog) Events() []store.QueryEvent {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.events)
}

// Secrets returns every value that must never appear in tool output or
// logs: all internal notes, all full emails and phone numbers, and the
// given keys.
func (e *Env) Secrets(t testing.TB, keys ...string) []string {
	t.Helper()
	var out []string
	for _, c := range store.DemoCustomers() {
		out = append(out, c.Email, c.Phone, c.Address)
	}
	rows, err := e.OwnerQueryStrings(t, "SELECT internal_note FROM orders WHERE internal_note <> ''")
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, rows...)
	for _, k := range keys {
		out = append(out, k)
		if i := strings.LastIndex(k, "_"); i > 0 {
			out = append(out, k[i+1:]) // the secret part alone
		}
	}
	return out
}

// OwnerQueryStrings runs a query as the database owner, outside the store,
// and returns its first column. For test setup and inspection only.
func (e *Env) OwnerQueryStrings(t testing.TB, sql string, args ...any) ([]string, error) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, e.DSN)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// OwnerExec runs a statement as the database owner.
func (e *Env) OwnerExec(t testing.TB, sql string, args ...any) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, e.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatal(err)
	}
}
