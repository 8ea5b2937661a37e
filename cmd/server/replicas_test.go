package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/dbtest"
	"github.com/example/order-mcp/internal/demo"
	"github.com/example/order-mcp/internal/limits"
	"github.com/example/order-mcp/internal/redisstore"
	"github.com/example/order-mcp/internal/store"
	"github.com/example/order-mcp/internal/testenv"
)

// replicaLimit is RATE_LIMIT_PER_PRINCIPAL in the two-replica test, per
// hour so that no window ends while the test runs.
const replicaLimit = 16

// The client addresses of the two-replica test. The replicas trust
// 127.0.0.1 as a proxy (as replicas behind a load balancer do), so a call
// says which client it comes from in X-Forwarded-For: each part of the
// test has a lockout bucket of its own. Documentation addresses (RFC 5737).
const (
	lockedAddress   = "198.51.100.7" // earns the lockout
	revokingAddress = "198.51.100.8" // polls for revocations (each refusal is a failure)
)

// TestTwoReplicas runs two `serve` processes of the real binary, in
// production mode, on one database, and checks that the controls a caller
// meets do not depend on which replica answers:
//
//   - WithRedis (REDIS_URL set, as docs/SCALING.md recommends): the
//     per-principal rate limit holds across both (calls alternate between
//     them, and the total allowed is the limit);
//   - PostgresOnly: rate-limit counters are per process, as documented
//     (each replica allows the limit), and everything else below holds
//     through Postgres and its change notifications;
//   - both: a lockout earned on one replica applies on the other; a key
//     each replica answers from memory is refused by both once revoked,
//     with `server keys revoke` or by a plain SQL UPDATE; and both append
//     to one audit chain, which `server audit verify` finds intact, holding
//     exactly one record per tool call either replica answered and the
//     count of every refusal.
//
// Propagation is waited for by polling with a generous bound, never
// timed: a bound reached is a failure, not a measurement. The bound for a
// revocation (two minutes) is below CREDENTIAL_CACHE_TTL (five), so a
// replica that refuses in time learnt of it from the notification, not
// from its cache expiring.
func TestTwoReplicas(t *testing.T) {
	for _, mode := range []struct {
		name  string
		redis bool
	}{{"WithRedis", true}, {"PostgresOnly", false}} {
		t.Run(mode.name, func(t *testing.T) { twoReplicas(t, mode.redis) })
	}
}

func twoReplicas(t *testing.T, withRedis bool) {
	database := dbtest.Scratch(t)
	env := prodEnv(
		"DATABASE_URL="+database,
		fmt.Sprintf("RATE_LIMIT_PER_PRINCIPAL=%d-H", replicaLimit),
		"RATE_LIMIT_PER_IP=100000-M",
		"CONCURRENCY_PER_PRINCIPAL=100",
		"CREDENTIAL_CACHE_TTL=5m",
		"TRUSTED_PROXIES=127.0.0.1",
		"LOG_LEVEL=debug", // the statement lines show when a key is answered from memory
	)
	if withRedis {
		env = append(env, "REDIS_URL="+testenv.RedisURL(), "REDIS_PREFIX="+redisPrefix(t))
	}
	p := &replicaPair{t: t, env: env, database: database, owner: dbtest.Owner(t, database),
		db: ownerConn(t, database), client: &http.Client{Timeout: time.Minute}, ok: map[string]string{}}
	p.replicas[0] = p.start("A")
	p.replicas[1] = p.start("B")
	a, b := p.replicas[0], p.replicas[1]
	customer := demo.Customers()[0].ID

	if withRedis {
		t.Run("PerPrincipalLimitHoldsAcrossBoth", func(t *testing.T) { p.checkLimit(t, customer, replicaLimit) })
	} else {
		t.Run("PerPrincipalLimitIsCountedPerReplica", func(t *testing.T) { p.checkLimit(t, customer, 2*replicaLimit) })
	}

	t.Run("LockoutEarnedOnOneAppliesOnTheOther", func(t *testing.T) {
		// Before: B serves a valid key from the address.
		if ans := p.send(t, b, p.mint(t, customer), lockedAddress, "tools/list", nil); ans.status != http.StatusOK {
			t.Fatalf("before the lockout, B answered %d: %s", ans.status, ans.body)
		}
		// Failures on A until A locks the address.
		threshold := limits.DefaultPolicy().Threshold
		for i := 1; ; i++ {
			madeUp, err := auth.GenerateAPIKey() // well-formed, never stored
			if err != nil {
				t.Fatal(err)
			}
			ans := p.send(t, a, madeUp.Key, lockedAddress, "tools/list", nil)
			if ans.status == http.StatusTooManyRequests {
				checkRetryAfter(t, ans)
				break
			}
			if ans.status != http.StatusUnauthorized {
				t.Fatalf("failure %d on A: status %d: %s", i, ans.status, ans.body)
			}
			if i > threshold {
				t.Fatalf("A did not lock the address after %d failures (threshold %d)", i, threshold)
			}
		}
		// B refuses the address: a valid key B has never served (a fresh one
		// each time, since B keeps serving a key it has served) gets 429
		// before any database work once B knows of the lock.
		waitFor(t, 2*time.Minute, "B refusing the address A locked", func() bool {
			ans := p.send(t, b, p.mint(t, customer), lockedAddress, "tools/list", nil)
			switch ans.status {
			case http.StatusTooManyRequests:
				checkRetryAfter(t, ans)
				return true
			case http.StatusOK:
				return false
			}
			t.Fatalf("B answered %d: %s", ans.status, ans.body)
			return false
		})
	})

	revocations := []struct {
		name   string
		revoke func(t *testing.T, keyID string)
	}{
		{"RevokedWithTheCLIIsRefusedByBoth", func(t *testing.T, keyID string) {
			if out := cli(t, env, "keys", "revoke", keyID); !strings.Contains(out, "revoked "+keyID) {
				t.Fatalf("keys revoke printed %q", out)
			}
		}},
		{"RevokedBySQLIsRefusedByBoth", func(t *testing.T, keyID string) {
			tag, err := p.db.Exec(context.Background(), "UPDATE api_keys SET revoked_at = now() WHERE key_id = $1", keyID)
			if err != nil || tag.RowsAffected() != 1 {
				t.Fatalf("UPDATE: %v, %d rows", err, tag.RowsAffected())
			}
		}},
	}
	for _, rv := range revocations {
		t.Run(rv.name, func(t *testing.T) {
			key := p.mint(t, customer)
			keyID := strings.Split(key, "_")[1]
			for _, r := range p.replicas {
				p.waitServedFromMemory(t, r, key, keyID)
			}
			rv.revoke(t, keyID)
			for _, r := range p.replicas {
				waitFor(t, 2*time.Minute, r.name+" refusing the revoked key", func() bool {
					ans := p.send(t, r, key, revokingAddress, "tools/list", nil)
					switch ans.status {
					case http.StatusUnauthorized:
						if !strings.Contains(ans.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
							t.Fatalf("401 without invalid_token: %q", ans.header.Get("WWW-Authenticate"))
						}
						return true
					case http.StatusOK:
						return false
					}
					t.Fatalf("%s answered %d: %s", r.name, ans.status, ans.body)
					return false
				})
			}
		})
	}

	t.Run("BothAppendToOneIntactAuditChain", func(t *testing.T) {
		// Both replicas at once, so that their appends contend for the
		// chain: replicaLimit calls of one principal, within its limit.
		key := p.mint(t, customer)
		var wg sync.WaitGroup
		for g := range 4 {
			r := p.replicas[g%2]
			wg.Go(func() {
				for range replicaLimit / 4 {
					if ans := p.send(t, r, key, "", "tools/call", listArgs); ans.status != http.StatusOK || ans.rpcError {
						t.Errorf("%s: status %d: %s", r.name, ans.status, ans.body)
					}
				}
			})
		}
		wg.Wait()

		// Stopped, the replicas have drained their writers: every record,
		// the per-minute refusal counts included, is in the trail.
		for _, r := range p.replicas {
			if code := r.stop(); code != 0 {
				t.Fatalf("%s exited %d after SIGTERM:\n%s", r.name, code, r.stderr.String())
			}
			checkLogs(t, r.stderr.String(), key)
		}
		out := cli(t, env, "audit", "verify")
		var records int
		if _, err := fmt.Sscanf(out, "audit trail intact: %d records", &records); err != nil {
			t.Fatalf("audit verify printed %q", out)
		}
		p.checkTrail(t, records)
	})
}

// listArgs is the tool call of the test: cheap, and allowed to every key.
var listArgs = map[string]any{"name": "list_recent_orders", "arguments": map[string]any{"limit": 1}}

// replicaPair is the two replicas and the ledger of every answer they gave.
type replicaPair struct {
	t        *testing.T
	env      []string
	database string
	owner    *store.Store
	db       *pgx.Conn
	client   *http.Client
	replicas [2]*replica

	mu sync.Mutex
	// ok maps the trace id of every tool call answered with a result to the
	// replica that answered it: each must be one record of the trail.
	ok map[string]string
	// refused counts the requests refused before the MCP layer: the
	// trail's per-minute refusal records must add up to it.
	refused int
}

type replica struct {
	name   string
	url    string
	stderr *testenv.Buffer
	stop   func() int
}

func (p *replicaPair) start(name string) *replica {
	url, stderr, stop := startServe(p.t, append(p.env[:len(p.env):len(p.env)], "AUDIT_SPILL_DIR="+p.t.TempDir()))
	return &replica{name: name, url: url, stderr: stderr, stop: stop}
}

// mint creates a read key for customer.
func (p *replicaPair) mint(t *testing.T, customer string) string {
	key, _ := dbtest.MintKey(t, p.owner, dbtest.KeyOptions{Name: "replicas", Scopes: []auth.Scope{auth.ScopeRead}, CustomerID: customer})
	return key
}

// replicaAnswer is what one request got.
type replicaAnswer struct {
	status   int
	header   http.Header
	body     []byte
	rpcError bool // a JSON-RPC error rather than a result
}

// send makes one JSON-RPC request to r as key, from client address from
// ("" for the proxy itself), and keeps the ledger: a tool call carries a
// trace id of its own (W3C traceparent), which its audit record keeps.
func (p *replicaPair) send(t *testing.T, r *replica, key, from, method string, params any) replicaAnswer {
	t.Helper()
	if params == nil {
		params = map[string]any{}
	}
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	req, err := http.NewRequest(http.MethodPost, r.url, bytes.NewReader(body))
	if err != nil {
		panic(err) // a constant method and a URL the replica printed
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", testenv.Protocol20251125)
	if from != "" {
		req.Header.Set("X-Forwarded-For", from)
	}
	var trace string
	if method == "tools/call" {
		trace = randomHex(t, 16)
		req.Header.Set("traceparent", "00-"+trace+"-"+randomHex(t, 8)+"-01")
	}
	// Errors are reported with Errorf and an answer of status 0, which no
	// caller accepts: send runs in goroutines too, where Fatal must not.
	resp, err := p.client.Do(req)
	if err != nil {
		t.Errorf("%s %s: %v", r.name, method, err)
		return replicaAnswer{body: []byte(err.Error())}
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	var msg struct {
		Error *json.RawMessage `json:"error"`
	}
	if err == nil {
		err = json.Unmarshal(data, &msg)
	}
	if err != nil {
		t.Errorf("%s %s: status %d, not a JSON answer (%v): %q", r.name, method, resp.StatusCode, err, data)
		return replicaAnswer{body: data}
	}
	ans := replicaAnswer{status: resp.StatusCode, header: resp.Header, body: data, rpcError: msg.Error != nil}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case resp.StatusCode != http.StatusOK:
		p.refused++
	case ans.rpcError:
		// Nothing in this test is refused inside the MCP layer: such a call
		// would be a tool-call record the ledger does not expect.
		t.Errorf("%s %s: a JSON-RPC error with status 200: %s", r.name, method, data)
	case trace != "":
		p.ok[trace] = r.name
	}
	return ans
}

// checkLimit sends twice the limit's worth of calls of one principal,
// alternating between the replicas, and checks that exactly allowed of
// them are served, the first ones, each replica serving some, and that
// every other is refused with 429 and Retry-After by either replica.
func (p *replicaPair) checkLimit(t *testing.T, customer string, allowed int) {
	key := p.mint(t, customer)
	served := map[string]int{}
	refused := map[string]int{}
	for i := range 2 * allowed {
		r := p.replicas[i%2]
		ans := p.send(t, r, key, "", "tools/call", listArgs)
		switch {
		case ans.status == http.StatusOK && !ans.rpcError && i < allowed:
			served[r.name]++
		case ans.status == http.StatusTooManyRequests && i >= allowed:
			checkRetryAfter(t, ans)
			refused[r.name]++
		default:
			t.Fatalf("call %d (of %d allowed) on %s: status %d: %s", i+1, allowed, r.name, ans.status, ans.body)
		}
	}
	for _, r := range p.replicas {
		if served[r.name] == 0 || refused[r.name] == 0 {
			t.Fatalf("%s served %d and refused %d: both replicas must do both", r.name, served[r.name], refused[r.name])
		}
	}
}

// waitServedFromMemory waits until r answers key without reading it from
// the database: a request whose lines in r's log (the statements it ran,
// then its access line) hold no lookup_api_key. Only this test's requests
// reach r, one at a time.
func (p *replicaPair) waitServedFromMemory(t *testing.T, r *replica, key, keyID string) {
	t.Helper()
	waitFor(t, time.Minute, r.name+" answering the key from memory", func() bool {
		before := strings.Count(r.stderr.String(), "\n")
		if ans := p.send(t, r, key, revokingAddress, "tools/list", nil); ans.status != http.StatusOK {
			t.Fatalf("%s refused a valid key: %d %s", r.name, ans.status, ans.body)
		}
		var lines []string
		waitFor(t, time.Minute, r.name+"'s access line", func() bool {
			all := strings.Split(r.stderr.String(), "\n")
			lines = all[before : len(all)-1] // complete lines written since
			for i, l := range lines {
				var rec struct{ Msg, Principal string }
				if json.Unmarshal([]byte(l), &rec) == nil && rec.Msg == "http request" && rec.Principal == "apikey:"+keyID {
					lines = lines[:i+1]
					return true
				}
			}
			return false
		})
		for _, l := range lines {
			if strings.Contains(l, `"statement":"lookup_api_key"`) {
				return false
			}
		}
		return true
	})
}

// checkTrail reads the trail back as the owner: it holds records records
// (what audit verify counted), one tool-call record for each result either
// replica gave and no other, and refusal counts adding up to the requests
// refused before the MCP layer.
func (p *replicaPair) checkTrail(t *testing.T, records int) {
	ctx := context.Background()
	var total, refusals int
	if err := p.db.QueryRow(ctx, `SELECT count(*), coalesce(sum(count) FILTER (WHERE kind = 'refusal'), 0) FROM audit_log`).
		Scan(&total, &refusals); err != nil {
		t.Fatal(err)
	}
	if total != records {
		t.Errorf("audit verify counted %d records, the table holds %d", records, total)
	}
	if refusals != p.refused {
		t.Errorf("the refusal records count %d refusals, the replicas refused %d requests", refusals, p.refused)
	}
	rows, err := p.db.Query(ctx, `SELECT trace_id, count(*) FROM audit_log WHERE kind = 'tool_call' GROUP BY trace_id`)
	if err != nil {
		t.Fatal(err)
	}
	recorded := map[string]int{}
	for rows.Next() {
		var trace string
		var n int
		if err := rows.Scan(&trace, &n); err != nil {
			t.Fatal(err)
		}
		recorded[trace] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	byReplica := map[string]int{}
	for trace, r := range p.ok {
		if recorded[trace] != 1 {
			t.Errorf("a result %s gave has %d records, want 1", r, recorded[trace])
		}
		byReplica[r]++
		delete(recorded, trace)
	}
	for trace, n := range recorded {
		t.Errorf("%d tool-call records (trace id %q) for no result the replicas gave", n, trace)
	}
	for _, r := range p.replicas {
		if byReplica[r.name] == 0 {
			t.Errorf("no record of %s in the trail", r.name)
		}
	}
	t.Logf("one chain of %d records: %d tool calls (%d answered by A, %d by B), %d refusals counted",
		total, len(p.ok), byReplica["A"], byReplica["B"], refusals)
}

func checkRetryAfter(t *testing.T, ans replicaAnswer) {
	t.Helper()
	if ans.header.Get("Retry-After") == "" || !ans.rpcError || !bytes.Contains(ans.body, []byte("-31429")) {
		t.Fatalf("429 without Retry-After or code -31429: %v %s", ans.header, ans.body)
	}
}

// redisPrefix is a Redis key prefix of the test's own; Redis must answer
// (a missing Redis fails the test), and the prefix's keys are deleted
// afterwards.
func redisPrefix(t *testing.T) string {
	prefix := "replicas-" + randomHex(t, 8)
	c, err := redisstore.New(testenv.RedisURL(), prefix, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Client().Ping(ctx).Err(); err != nil {
		t.Fatalf("Redis at %s does not answer (%v): start it or set TEST_REDIS_URL", testenv.RedisURL(), err)
	}
	t.Cleanup(func() {
		defer c.Close()
		var keys []string
		for iter := c.Client().Scan(ctx, 0, prefix+"*", 100).Iterator(); iter.Next(ctx); {
			keys = append(keys, iter.Val())
		}
		if len(keys) > 0 {
			_ = c.Client().Del(ctx, keys...).Err()
		}
	})
	return prefix
}

func randomHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
