package httpserver_test

// Attacks on the server's dependencies: a lockout store that cannot
// answer, a Redis that never answers, a database whose every pooled
// connection is busy, a handler that panics. Each must fail closed, tell
// the client only that it may retry, and keep serving whoever it can.

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/dbtest"
	"github.com/example/order-mcp/internal/demo"
	"github.com/example/order-mcp/internal/httpserver"
	"github.com/example/order-mcp/internal/limits"
	"github.com/example/order-mcp/internal/redisstore"
	"github.com/example/order-mcp/internal/store"
	"github.com/example/order-mcp/internal/testenv"
)

// internals are words a refusal must not carry: they would tell a client
// which dependency failed, and how.
var internals = []string{"redis", "postgres", "pool", "connection", "busy", "dial", "refused", "timeout", "127.0.0.1",
	"auth_lockouts", "reference", "sql", "goroutine"}

// noInternals asserts that no word of internals is in an answer.
func noInternals(t testing.TB, r response) {
	t.Helper()
	for _, w := range internals {
		if strings.Contains(strings.ToLower(r.body), w) {
			t.Fatalf("the answer carries %q: %s", w, r.body)
		}
	}
}

// TestLockoutStoreFailureFailsClosed: when the lockout state cannot be read
// or written (its database is gone), no request is served and no
// credential is tried: every caller gets 503 with Retry-After, so an
// outage can neither open the server to brute force nor let a locked-out
// caller in. Nothing of the store's error reaches the client.
func TestLockoutStoreFailureFailsClosed(t *testing.T) {
	t.Parallel()
	broken, err := store.Open(context.Background(), dsn, store.Options{AsAppRole: true})
	if err != nil {
		t.Fatal(err)
	}
	broken.Close() // every statement now fails
	srv := start(t, testenv.Options{LockoutStore: broken})
	customer, orders := newCustomer(t, dsn, demo.Customers()[0], 1)
	key, keyID := srv.Key(t, customer, auth.ScopeRead)
	attacker := addresses()(1)
	c := clientFrom(t, attacker)

	tests := map[string]string{
		"AValidKey":      key,
		"AWrongSecret":   key[:len(key)-4] + "aaaa",
		"GarbageInstead": "not-a-credential",
		"AnUnknownKeyID": "osmcp_zzzzzzzzzzzz_" + strings.Repeat("a", 52),
	}
	for name, credential := range tests {
		t.Run(name, func(t *testing.T) {
			r := do(t, c, srv.base, request{key: credential, body: getBody(orders[0])})
			unavailable(t, r)
			noInternals(t, r)
			if strings.Contains(r.body, orders[0]) {
				t.Fatalf("the answer carries the order: %s", r.body)
			}
		})
	}
	flushAudit(t, srv.Env)
	if calls := toolCalls(t, dsn, keyID); len(calls) != 0 {
		t.Fatalf("the MCP layer ran for a request that should have stopped at the lockout: %v", calls)
	}
	if got := refusals(t, dsn, attacker)["limit_store_unavailable"]; got != len(tests) {
		t.Fatalf("%d refusals on record as limit_store_unavailable, want %d", got, len(tests))
	}
}

// silentServer accepts TCP connections and never answers on them, as a
// Redis that hangs would; it counts the connections, each one an attempt
// to reach Redis.
type silentServer struct {
	addr     string
	accepted atomic.Int64
}

func listenSilently(t testing.TB) *silentServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &silentServer{addr: ln.Addr().String()}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return s
}

// TestDeadRedis runs the server with REDIS_URL naming a Redis that accepts
// connections and never answers. Reads are still served, with limits and
// lockouts counted per replica meanwhile; cancel_order, whose budget must
// be shared, fails closed; and once Redis has failed, requests stop trying
// it until the circuit breaker's second has passed on its clock (held
// still here, and then moved), so a hung Redis cannot stall every request.
func TestDeadRedis(t *testing.T) {
	t.Parallel()
	ip := addresses()
	redis := listenSilently(t)
	clock := testenv.NewClock()
	logs := &testenv.Buffer{}
	shared, err := redisstore.New("redis://"+redis.addr+"/0", "dead-"+newID("t"), loggerTo(logs), clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shared.Close() })
	const limit = 5
	srv := start(t, testenv.Options{
		Shared: shared, Clock: clock.Now,
		Limits: limitsWith(func(l *limits.Config) { l.PerIP = perMinute(limit) }),
	})
	cust, orders := newCustomer(t, dsn, demo.Customers()[0], 1)
	key, keyID := srv.Key(t, cust, auth.ScopeRead, auth.ScopeCancel)
	reader, flooder := ip(1), ip(2)
	c := clientFrom(t, reader)
	var answers []string

	t.Run("ReadsAreServed", func(t *testing.T) {
		served(t, do(t, c, srv.base, request{key: key, body: getBody(orders[0])}), orders[0])
		eventually(t, "the first request tried Redis", 10*time.Millisecond, func() bool { return redis.accepted.Load() > 0 })
	})

	t.Run("CancelFailsClosed", func(t *testing.T) {
		// A client that can be asked: it is refused before the question,
		// since the budget the answer would be charged to cannot be read.
		r := confirmed(t, c, srv.base, request{key: key, body: callBody("cancel_order", map[string]any{"order_id": orders[0]})})
		answers = append(answers, r.String())
		m := r.rpc(t)
		var msg string
		switch {
		case m.Error != nil:
			msg = m.Error.Message
		case m.Result != nil && m.Result.IsError:
			msg = m.text()
		default:
			t.Fatalf("cancel_order succeeded without its shared budget: %s", r.body)
		}
		if !strings.Contains(strings.ToLower(msg), "try again") && !strings.Contains(strings.ToLower(msg), "retry") {
			t.Fatalf("the error does not tell the caller to retry: %q", msg)
		}
		for _, leak := range []string{"redis", redis.addr, "refused", "dial", "timeout"} {
			if strings.Contains(strings.ToLower(r.body), leak) {
				t.Fatalf("the error leaks %q: %s", leak, r.body)
			}
		}
		notCancelled(t, dsn, orders[0])
	})

	t.Run("AddressLimitStillHolds", func(t *testing.T) {
		f := clientFrom(t, flooder)
		for range limit {
			served(t, do(t, f, srv.base, request{key: key, body: getBody(orders[0])}), orders[0])
		}
		limited(t, do(t, f, srv.base, request{key: key, body: getBody(orders[0])}), addressLimit)
	})

	// Every attempt so far was made by the first request, which opened the
	// breaker; the clock has not moved since.
	tried := redis.accepted.Load()
	t.Run("RedisIsNotTriedAgainWhileTheBreakerIsOpen", func(t *testing.T) {
		for range 3 {
			served(t, do(t, c, srv.base, request{key: key, body: getBody(orders[0])}), orders[0])
		}
		if got := redis.accepted.Load(); got != tried {
			t.Fatalf("%d connections to Redis after the first failure, with the breaker open", got-tried)
		}
	})

	t.Run("RedisIsTriedAgainOnceTheBreakerCloses", func(t *testing.T) {
		// The control: the silent server does count attempts, and the
		// breaker, not a dead client, is what kept them away.
		clock.Advance(2 * time.Second)
		served(t, do(t, clientFrom(t, ip(3)), srv.base, request{key: key, body: getBody(orders[0])}), orders[0])
		eventually(t, "the next request tried Redis", 10*time.Millisecond, func() bool { return redis.accepted.Load() > tried })
	})

	if !strings.Contains(logs.String(), "Redis unreachable") {
		t.Errorf("the outage was not logged")
	}
	flushAudit(t, srv.Env)
	// The refused cancellation is on record once, as whatever refused it,
	// and nothing says it went through.
	got := toolCalls(t, dsn, keyID)
	cancels := 0
	for k, n := range got {
		if strings.HasPrefix(k, "cancel_order/") {
			cancels += n
		}
	}
	if got["cancel_order/ok"] != 0 || got["cancel_order/cancelled"] != 0 || cancels != 1 || got["get_order_status/ok"] != 1+limit+3+1 {
		t.Errorf("tool calls on record: %v", got)
	}
	if got := refusals(t, dsn, flooder)["address_rate_limited"]; got != 1 {
		t.Errorf("%d address_rate_limited refusals on record, want 1", got)
	}
	noSecrets(t, []*testenv.Env{srv.Env}, []string{key}, answers...)
	if strings.Contains(logs.String(), key) {
		t.Errorf("the key reached the Redis logger")
	}
}

// TestDatabaseSaturationIsAnsweredWithRetryAfter occupies the only pooled
// connection (DB_MAX_CONNS=1) with a cancellation (the user's confirmed
// answer) whose transaction waits on the audit chain's lock, and calls a
// tool meanwhile. The call waits at
// most DB_ACQUIRE_TIMEOUT for a connection and is then answered 503 with
// Retry-After and the catalogue's text, nothing about the database in it:
// refused at authentication for an API key (looking it up needs the
// database), and by the tool layer for an OAuth token (verified by its
// signature). Once the connection is free, the cancellation completes and
// the same calls are served.
func TestDatabaseSaturationIsAnsweredWithRetryAfter(t *testing.T) {
	t.Parallel()
	// A database of its own: holding the audit chain's lock stalls every
	// audit append on a database, other tests' included.
	db := dbtest.Scratch(t)
	issuer := testenv.NewIssuer(t)
	shared, err := redisstore.New(testenv.RedisURL(), "saturation-"+newID("t"), loggerTo(&testenv.Buffer{}), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shared.Close() })
	env := testenv.New(t, db, testenv.Options{
		// Lockouts and limits in Redis: the tools are then what needs
		// Postgres. A generous statement timeout: the cancellation waits on
		// a lock for as long as the test holds it.
		Env:           map[string]string{"DB_MAX_CONNS": "1", "DB_ACQUIRE_TIMEOUT": "100ms", "DB_STATEMENT_TIMEOUT": "1m"},
		Shared:        shared,
		TokenVerifier: issuer.Verifier(t, oauthResource),
		HTTP:          httpserver.Config{ResourceURL: oauthResource, OAuthIssuer: issuer.ID},
	})
	base := serve(t, env.Handler())
	customerID, orders := newCustomer(t, db, demo.Customers()[0], 2)
	key, _ := env.Key(t, customerID, auth.ScopeRead, auth.ScopeCancel)
	tok := issuer.Token(t, customerClaims(issuer, "saturating-"+newID("sub"), customerID, auth.ScopeRead))
	c := clientFrom(t, addresses()(1))

	// The question first, as any cancellation: the user's answer is the
	// round that cancels.
	cancel := callBody("cancel_order", map[string]any{"order_id": orders[0]})
	body, header := as2026(t, cancel, "", nil)
	state, asked := askedToConfirm(do(t, c, base, request{key: key, body: body, header: header}))
	if !asked {
		t.Fatal("the cancellation did not ask the user")
	}
	answer, header := as2026(t, cancel, state, accept)

	release := testenv.HoldAuditChainLock(t, db)
	first := make(chan response, 1)
	go func() {
		// Not do: a helper that fails the test must not run off the test's
		// goroutine. A transport failure is a status 0 answer.
		req, _ := http.NewRequest(http.MethodPost, base+"/mcp", strings.NewReader(answer))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		for k, v := range header {
			req.Header.Set(k, v)
		}
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := c.Do(req)
		if err != nil {
			first <- response{body: err.Error()}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		first <- response{status: resp.StatusCode, header: resp.Header, body: string(b)}
	}()
	testenv.WaitForAuditChainWaiter(t, db) // the cancellation holds the connection, waiting

	for _, caller := range []struct{ name, credential string }{{"APIKeyCaller", key}, {"OAuthCaller", tok}} {
		t.Run(caller.name+"IsToldToRetry", func(t *testing.T) {
			r := do(t, c, base, request{key: caller.credential, body: getBody(orders[1])})
			unavailable(t, r)
			noInternals(t, r)
		})
	}

	release()
	t.Run("TheOccupyingCallCompletes", func(t *testing.T) {
		select {
		case r := <-first:
			served(t, r, orders[0])
		case <-time.After(30 * time.Second):
			t.Fatal("the cancellation never finished")
		}
		if st := orderStatus(t, db, orders[0]); st != "cancelled" {
			t.Fatalf("order %s", st)
		}
		if n := cancellations(t, db, orders[0]); n != 1 {
			t.Fatalf("%d audit records of the cancellation", n)
		}
	})
	t.Run("TheSameCallsAreServedAgain", func(t *testing.T) {
		// The control: the 503s were the saturation's doing.
		for _, credential := range []string{key, tok} {
			served(t, do(t, c, base, request{key: credential, body: getBody(orders[1])}), orders[1])
		}
	})
	noSecrets(t, []*testenv.Env{env}, []string{key, tok})
}

// TestHandlerPanicsAreContained: a panic in any HTTP handler (here the
// readiness probe's, as a bug in a fork's dependency might) answers a fixed
// 500; the panic's text and stack, which name code paths and may carry
// data, go to the log only, and the server keeps serving.
func TestHandlerPanicsAreContained(t *testing.T) {
	t.Parallel()
	const secret = "panic text with /srv/app/internal/secret.go:42 and a card 4111111111111111"
	env := testenv.New(t, dsn, testenv.Options{})
	base := serve(t, httpserver.New(httpserver.Deps{
		Config: httpserver.Config{ResourceURL: "http://127.0.0.1/mcp"}, MCP: env.MCP, Authenticator: env.Auth,
		Lockout: env.Lockout, Limits: env.Limits, Audit: env.Audit, Logger: env.Logger,
		Ready: func(context.Context) error { panic(secret) },
	}))
	c := clientFrom(t, addresses()(1))

	r := do(t, c, base, request{method: http.MethodGet, path: "/readyz"})
	if r.status != http.StatusInternalServerError || strings.Contains(r.body, "secret") || strings.Contains(r.body, "goroutine") {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if !strings.Contains(env.Logs.String(), "panic in http handler") {
		t.Fatal("the panic was not logged")
	}
	if strings.Contains(env.Logs.String(), "4111111111111111") {
		t.Fatal("the log carries the card number the panic quoted")
	}
	if again := do(t, c, base, request{method: http.MethodGet, path: "/healthz"}); again.status != http.StatusOK {
		t.Fatalf("after the panic /healthz answers %d", again.status)
	}
}
