package testenv

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/ulule/limiter/v3"

	"github.com/example/order-mcp/internal/app"
	"github.com/example/order-mcp/internal/audit"
	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/config"
	"github.com/example/order-mcp/internal/dbtest"
	"github.com/example/order-mcp/internal/demo"
	"github.com/example/order-mcp/internal/httpserver"
	"github.com/example/order-mcp/internal/limits"
	"github.com/example/order-mcp/internal/logging"
	"github.com/example/order-mcp/internal/mcpserver"
	"github.com/example/order-mcp/internal/redisstore"
	"github.com/example/order-mcp/internal/sdkfix"
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

// TestToolDigestSeed is the Ed25519 seed that signs the tool digest in
// test environments.
var TestToolDigestSeed = sha256.Sum256([]byte("test tool digest key, never used in production"))

// Options adjusts an environment.
type Options struct {
	Limits  *limits.Config
	Lockout *limits.Policy
	Shared  *redisstore.Counters
	// LockoutStore replaces where lockout state lives (default: the app
	// store, or Redis with Shared); fail-closed tests pass a broken one.
	LockoutStore  limits.LockoutStore
	TokenVerifier auth.TokenVerifier
	// HTTP sets the HTTP surface's configuration (the fields that are set
	// replace the configuration's).
	HTTP             httpserver.Config
	CancelDailyQuota int
	// WrapStore lets a test inject faults around the real store.
	WrapStore func(tools.Store) tools.Store
	// Clock is the lockout's clock; tests move it instead of waiting.
	Clock func() time.Time
	// Env adds environment variables to the configuration.
	Env map[string]string
}

// Env is an assembled server: the production assembly (internal/app) on
// a test database, with the handles tests inspect.
type Env struct {
	DSN     string
	Owner   *store.Store
	App     *store.Store
	Sealer  *audit.Sealer
	Audit   *audit.Writer
	Auth    *auth.Authenticator
	Lockout *limits.Lockout
	Limits  *limits.Limits
	MCP     *mcp.Server
	Logger  *slog.Logger
	Logs    *Buffer
	Queries *QueryLog
	Server  *app.App

	httpSrv *httptest.Server
	cleanup func(func()) // the creating test's Cleanup, which outlives subtests
}

// GenerousLimits never get in the way of tests of other controls.
func GenerousLimits() limits.Config {
	big := limiter.Rate{Period: time.Minute, Limit: 1_000_000}
	return limits.Config{PerIP: big, PerPrincipal: big, Concurrency: 1000, CancelPerPrincipal: big, NotFoundPerPrincipal: big}
}

// TestConfirmationSecret seals the confirmations of test environments.
// CANCEL_CONFIRMATION is left at its production default, required.
var TestConfirmationSecret = []byte("test confirmation secret: 32 bytes or more, never in production")

// Config returns the configuration of a test server on dsn: production
// mode with the test audit key, a loopback listener, and env on top.
func Config(t testing.TB, dsn string, env map[string]string) *config.Config {
	t.Helper()
	vars := map[string]string{
		"DATABASE_URL":            dsn,
		"AUDIT_HMAC_KEY":          string(TestAuditKey),
		"CONFIRMATION_SECRET":     string(TestConfirmationSecret),
		"TOOL_DIGEST_SIGNING_KEY": base64.StdEncoding.EncodeToString(TestToolDigestSeed[:]),
		"MCP_RESOURCE_URL":        "http://127.0.0.1/mcp",
		"AUDIT_SPILL_DIR":         t.TempDir(),
		// Waiting for a pooled connection is bounded by a timeout (1s in
		// production); a loaded test machine must not turn that into a
		// failure. Tests of the bound set their own.
		"DB_ACQUIRE_TIMEOUT": "30s",
	}
	for k, v := range env {
		vars[k] = v
	}
	cfg, err := config.Load(func(k string) string { return vars[k] }, os.ReadFile)
	if err != nil {
		t.Fatalf("test configuration: %v", err)
	}
	return cfg
}

// New assembles a server on the database at dsn with the production
// assembly, app.New.
func New(t testing.TB, dsn string, opts Options) *Env {
	t.Helper()
	e := &Env{DSN: dsn, Logs: &Buffer{}, Queries: &QueryLog{}, cleanup: t.Cleanup}
	e.Logger = logging.New(slog.LevelDebug, e.Logs)
	e.Owner = dbtest.Owner(t, dsn)

	cfg := Config(t, dsn, opts.Env)
	applyHTTP(cfg, opts.HTTP)
	limitsCfg := GenerousLimits()
	if opts.Limits != nil {
		limitsCfg = *opts.Limits
	}
	quota := opts.CancelDailyQuota
	if quota == 0 {
		quota = 100
	}
	appOpts := []app.Option{
		app.WithVersion("test"), app.WithLimits(limitsCfg), app.WithCancelDailyQuota(quota),
		app.WithQueryObserver(e.Queries.add), app.WithClock(opts.Clock),
	}
	if opts.Lockout != nil {
		appOpts = append(appOpts, app.WithLockoutPolicy(*opts.Lockout))
	}
	if opts.Shared != nil {
		appOpts = append(appOpts, app.WithCounters(opts.Shared))
	}
	if opts.LockoutStore != nil {
		appOpts = append(appOpts, app.WithLockoutStore(opts.LockoutStore))
	}
	if opts.TokenVerifier != nil {
		appOpts = append(appOpts, app.WithTokenVerifier(opts.TokenVerifier))
	}
	if opts.WrapStore != nil {
		appOpts = append(appOpts, app.WithToolStore(opts.WrapStore))
	}
	a, err := app.New(context.Background(), cfg, e.Logger, appOpts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	e.Server = a
	e.App, e.Sealer, e.Audit, e.Auth = a.Store, a.Sealer, a.Audit, a.Auth
	e.Lockout, e.Limits, e.MCP = a.Lockout, a.Limits, a.MCP
	return e
}

// applyHTTP sets the fields of h that are set on cfg.
func applyHTTP(cfg *config.Config, h httpserver.Config) {
	if h.ResourceURL != "" {
		cfg.ResourceURL = h.ResourceURL
	}
	if h.OAuthIssuer != "" {
		cfg.OAuthIssuer = h.OAuthIssuer
	}
	if len(h.AllowedOrigins) > 0 {
		cfg.AllowedOrigins = h.AllowedOrigins
	}
	if len(h.AllowedHosts) > 0 {
		cfg.AllowedHosts = h.AllowedHosts
	}
	if len(h.TrustedProxies) > 0 {
		cfg.TrustedProxies = h.TrustedProxies
	}
	if h.MaxBodyBytes > 0 {
		cfg.MaxBodyBytes = h.MaxBodyBytes
	}
	if h.TLS {
		cfg.TLSTerminatedByProxy = true
	}
	if h.Stateful {
		cfg.Stateful = true
	}
	if h.SessionIdleTimeout > 0 {
		cfg.SessionIdleTimeout = h.SessionIdleTimeout
	}
	if h.MaxSessionsPerPrincipal > 0 {
		cfg.MaxSessionsPerPrincipal = h.MaxSessionsPerPrincipal
	}
}

// Key mints an API key on this environment's database.
func (e *Env) Key(t testing.TB, customerID string, scopes ...auth.Scope) (key, keyID string) {
	t.Helper()
	return dbtest.MintKey(t, e.Owner, dbtest.KeyOptions{Scopes: scopes, CustomerID: customerID})
}

// Connect opens an MCP client session in memory, with the server side built
// exactly as `server stdio` builds it (an IOTransport whose output goes
// through mcpserver.SafeWriter, and the key re-checked on every call), over
// a net.Pipe instead of stdin and stdout. version "" means the client's
// default. The client's user accepts every confirmation (see Client).
func (e *Env) Connect(t testing.TB, key, version string) *mcp.ClientSession {
	t.Helper()
	return e.ConnectClient(t, key, Client{Version: version})
}

// ConnectClient is Connect with the client c describes.
func (e *Env) ConnectClient(t testing.TB, key string, c Client) *mcp.ClientSession {
	t.Helper()
	ctx := context.Background()
	clientEnd, serverEnd := net.Pipe()
	ct := &mcp.IOTransport{Reader: clientEnd, Writer: clientEnd}
	st := &mcp.IOTransport{Reader: serverEnd, Writer: sdkfix.SafeWriter(serverEnd)}
	ss, err := e.MCP.Connect(mcpserver.WithCredential(ctx, "stdio", key), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ss.Close() })
	return e.connect(t, ct, c)
}

func (e *Env) connect(t testing.TB, transport mcp.Transport, c Client) *mcp.ClientSession {
	t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "testenv-client", Version: "1"}, c.options())
	cs, err := client.Connect(context.Background(), transport, &mcp.ClientSessionOptions{ProtocolVersion: c.Version})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

// Handler returns the HTTP surface, as the server builds it.
func (e *Env) Handler() http.Handler { return e.Server.HTTPHandler() }

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
// as the bearer credential. The client's user accepts every confirmation
// (see Client).
func (e *Env) ConnectHTTP(t testing.TB, key, version string) *mcp.ClientSession {
	t.Helper()
	return e.ConnectHTTPClient(t, key, Client{Version: version})
}

// ConnectHTTPClient is ConnectHTTP with the client c describes.
func (e *Env) ConnectHTTPClient(t testing.TB, key string, c Client) *mcp.ClientSession {
	t.Helper()
	return e.connect(t, &mcp.StreamableClientTransport{
		Endpoint:   e.URL(t),
		HTTPClient: BearerClient(key),
		MaxRetries: -1,
	}, c)
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
	for _, c := range demo.Customers() {
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
