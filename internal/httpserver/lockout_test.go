package httpserver_test

// Attacks on the brute-force lockout. Every failed credential from an
// address counts in one bucket per address, whatever key id it names; a
// locked address gets 429 before any database work, except for the API
// keys this process served lately (a client behind the same NAT as the
// attacker) and JWTs, which are still verified. The lockout runs on the
// test's clock: the tests move it instead of waiting.

import (
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/demo"
	"github.com/example/order-mcp/internal/httpserver"
	"github.com/example/order-mcp/internal/limits"
	"github.com/example/order-mcp/internal/redisstore"
	"github.com/example/order-mcp/internal/testenv"
)

// lockoutPolicy locks an address after 3 failures, first for ten minutes,
// then twenty... Its window is shorter than the first lock, so the count
// after a lock expires starts from nothing; its locks are long, so that no
// lock Redis keeps (it expires them in real time) ends while a test runs.
var lockoutPolicy = limits.Policy{Threshold: 3, Window: 5 * time.Minute, Base: 10 * time.Minute, Max: time.Hour, Decay: 24 * time.Hour}

// lockedOut is what a lockout's 429 says it is about.
const lockedOut = "failed attempts from this client"

// wrongSecret is a credential naming keyID with a wrong secret of the
// right shape.
func wrongSecret(keyID string) string {
	return auth.KeyPrefix + "_" + keyID + "_" + strings.Repeat("a", 52)
}

// madeUpKeyID is a well-formed key id no key has.
func madeUpKeyID(t testing.TB) string {
	t.Helper()
	k, err := auth.GenerateAPIKey() // never stored
	if err != nil {
		t.Fatal(err)
	}
	return k.KeyID
}

// seconds is d as a Retry-After value.
func seconds(d time.Duration) int { return int(d / time.Second) }

// lockoutBackends are where lockout state lives: Postgres (the default)
// and Redis (REDIS_URL). shared returns the Redis counters of one replica,
// all replicas of a test sharing prefix, or nil for Postgres.
var lockoutBackends = []struct {
	name   string
	shared func(t testing.TB, prefix string, clock *testenv.Clock) *redisstore.Counters
}{
	{"Postgres", func(testing.TB, string, *testenv.Clock) *redisstore.Counters { return nil }},
	{"Redis", func(t testing.TB, prefix string, clock *testenv.Clock) *redisstore.Counters {
		s, err := redisstore.New(testenv.RedisURL(), prefix, loggerTo(&testenv.Buffer{}), clock.Now)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}},
}

// TestBruteForceIsLockedOut plays an attacker behind the same address as
// a client (one NAT), guessing secrets for the client's public key id. The
// guesses lock the address; the client, which this server had served
// before, is still served; anything else from the address gets 429, a
// made-up key id without even a lookup. The lock is shared by replicas on
// one store and survives a restart, expires when the clock passes it, and
// a second strike locks twice as long. Run with lockouts in Postgres and
// in Redis.
func TestBruteForceIsLockedOut(t *testing.T) {
	t.Parallel()
	for _, b := range lockoutBackends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			clock := testenv.NewClock()
			prefix := "lockout-" + newID("t")
			replica := func(t testing.TB) *server {
				policy := lockoutPolicy
				return start(t, testenv.Options{Lockout: &policy, Clock: clock.Now, Shared: b.shared(t, prefix, clock)})
			}
			a, other := replica(t), replica(t) // two replicas, running at the same time
			customers := demo.Customers()
			keyX, idX := a.Key(t, customers[0].ID, auth.ScopeRead)
			keyY, _ := a.Key(t, customers[1].ID, auth.ScopeRead)
			orderX, orderY := ordersOf(t, dsn, customers[0].ID)[0], ordersOf(t, dsn, customers[1].ID)[0]
			ip := addresses()
			shared, elsewhere := ip(1), ip(2) // the NAT the client and the attacker share; another address
			c := clientFrom(t, shared)
			clientServed := func(t *testing.T, srv *server) {
				t.Helper()
				served(t, do(t, c, srv.base, request{key: keyX, body: getBody(orderX)}), orderX)
			}
			refused := func(t *testing.T, srv *server, credential string) int {
				t.Helper()
				return limited(t, do(t, c, srv.base, request{key: credential, body: getBody(orderX)}), lockedOut)
			}
			failUntilLocked := func(t *testing.T, srv *server) int {
				t.Helper()
				for i := 1; i < lockoutPolicy.Threshold; i++ {
					r := do(t, c, srv.base, request{key: wrongSecret(idX), body: getBody(orderX)})
					if r.status != http.StatusUnauthorized || challenge(t, r.header.Get("WWW-Authenticate"))["error"] != "invalid_token" {
						t.Fatalf("failure %d: status %d %q", i, r.status, r.header.Get("WWW-Authenticate"))
					}
				}
				return refused(t, srv, wrongSecret(idX))
			}

			t.Run("TheClientIsServedBeforeTheAttack", func(t *testing.T) { clientServed(t, a) })
			if t.Failed() {
				t.FailNow()
			}

			t.Run("WrongSecretsForTheClientsKeyIDLockTheAddress", func(t *testing.T) {
				if got, want := failUntilLocked(t, a), seconds(lockoutPolicy.Base); got != want {
					t.Fatalf("first lock: Retry-After %d, want %d", got, want)
				}
			})
			t.Run("TheClientIsStillServed", func(t *testing.T) { clientServed(t, a) })
			t.Run("MoreGuessesAtItsKeyIDAreRefused", func(t *testing.T) { refused(t, a, wrongSecret(idX)) })
			t.Run("AMadeUpKeyIDIsRefusedWithoutALookup", func(t *testing.T) {
				a.Queries.Reset()
				refused(t, a, wrongSecret(madeUpKeyID(t)))
				if got := statements(a.Env); slices.Contains(got, "lookup_api_key") {
					t.Fatalf("the refused credential was looked up: %v", got)
				}
			})
			t.Run("AKeyThisServerNeverServedIsRefused", func(t *testing.T) {
				// Valid, but nothing tells it from the attacker's guesses.
				refused(t, a, keyY)
			})
			t.Run("OtherAddressesAreNotLocked", func(t *testing.T) {
				e := clientFrom(t, elsewhere)
				served(t, do(t, e, a.base, request{key: keyY, body: getBody(orderY)}), orderY)
				served(t, do(t, e, a.base, request{key: keyX, body: getBody(orderX)}), orderX)
			})

			t.Run("AnotherReplicaSeesTheLock", func(t *testing.T) {
				seesLock(t, other, c, customers[1].ID, orderY)
				refused(t, other, wrongSecret(madeUpKeyID(t)))
				refused(t, other, wrongSecret(idX))
				// This replica never served the client, so it cannot tell
				// its key from a guess either, until the lock ends.
				refused(t, other, keyX)
			})
			t.Run("TheLockSurvivesARestart", func(t *testing.T) {
				restarted := replica(t) // a new process: nothing in memory
				seesLock(t, restarted, c, customers[1].ID, orderY)
				refused(t, restarted, wrongSecret(madeUpKeyID(t)))
				refused(t, restarted, keyX)
			})
			t.Run("FailuresAreCountedAcrossReplicas", func(t *testing.T) {
				f := clientFrom(t, ip(3))
				for i := 1; i < lockoutPolicy.Threshold; i++ {
					srv := []*server{a, other}[i%2]
					if r := do(t, f, srv.base, request{key: wrongSecret(madeUpKeyID(t)), body: getBody(orderX)}); r.status != http.StatusUnauthorized {
						t.Fatalf("failure %d: status %d", i, r.status)
					}
				}
				limited(t, do(t, f, a.base, request{key: wrongSecret(madeUpKeyID(t)), body: getBody(orderX)}), lockedOut)
				seesLock(t, other, f, customers[1].ID, orderY)
				limited(t, do(t, f, other.base, request{key: keyY, body: getBody(orderY)}), lockedOut)
			})

			t.Run("TheLockEndsWhenTheClockPassesIt", func(t *testing.T) {
				clock.Advance(lockoutPolicy.Base - time.Second)
				if got := refused(t, a, wrongSecret(madeUpKeyID(t))); got != 1 {
					t.Fatalf("a second before the end: Retry-After %d, want 1", got)
				}
				clock.Advance(time.Second)
				served(t, do(t, c, a.base, request{key: keyY, body: getBody(orderY)}), orderY)
				served(t, do(t, c, other.base, request{key: keyX, body: getBody(orderX)}), orderX)
			})
			t.Run("ASecondStrikeLocksTwiceAsLong", func(t *testing.T) {
				if got, want := failUntilLocked(t, other), seconds(2*lockoutPolicy.Base); got != want {
					t.Fatalf("second lock: Retry-After %d, want %d", got, want)
				}
				clock.Advance(2 * lockoutPolicy.Base)
				served(t, do(t, c, a.base, request{key: keyY, body: getBody(orderY)}), orderY)
			})

			flushAudit(t, a.Env, other.Env)
			// Failures: two strikes of Threshold-1 answered 401, then the
			// locking one. Refused as locked: the two locking failures, the
			// further guess, the made-up key id, the unserved key, the probe
			// and three more on the other replica, the probe and two more
			// after the restart, and the one a second before the end.
			want := map[string]int{"invalid_credential": 2 * (lockoutPolicy.Threshold - 1), "locked_out": 2 + 1 + 1 + 1 + 4 + 3 + 1}
			if got := refusals(t, dsn, shared); got["invalid_credential"] != want["invalid_credential"] || got["locked_out"] != want["locked_out"] {
				t.Errorf("refusals on record for %s: %v, want %v", shared, got, want)
			}
			noSecrets(t, []*testenv.Env{a.Env, other.Env}, []string{keyX, keyY, wrongSecret(idX)})
		})
	}
}

// seesLock waits until srv, a replica that did not make the lock, refuses
// from c's locked address a valid key it never served. Replicas learn of
// each other's locks from database notifications, a moment after the
// commit; meanwhile a failing credential is still refused (its failure is
// counted in the table, which holds the lock) but a valid one is served.
// Every probe is a fresh key, so that none is remembered as served.
func seesLock(t *testing.T, srv *server, c *http.Client, customerID, orderID string) {
	t.Helper()
	eventually(t, "the replica learns of the lock", 20*time.Millisecond, func() bool {
		probe, _ := srv.Key(t, customerID, auth.ScopeRead)
		r := do(t, c, srv.base, request{key: probe, body: getBody(orderID)})
		if r.status == http.StatusOK {
			return false
		}
		limited(t, r, lockedOut)
		return true
	})
}

// TestFailuresRevealNoKeyIDs: an attacker must not learn from the lockout
// which key ids exist. From fresh addresses, the same run of failures with
// an existing key id (one this server served lately, and one it never
// served) and with a made-up one gets the very same answers, Retry-After
// included, and the same audit trail. The run goes on past the lock for a
// whole further threshold of attempts.
func TestFailuresRevealNoKeyIDs(t *testing.T) {
	t.Parallel()
	clock := testenv.NewClock()
	policy := lockoutPolicy
	srv := start(t, testenv.Options{Lockout: &policy, Clock: clock.Now})
	customer := demo.Customers()[0]
	order := ordersOf(t, dsn, customer.ID)[0]
	servedKey, servedID := srv.Key(t, customer.ID, auth.ScopeRead)
	_, unusedID := srv.Key(t, customer.ID, auth.ScopeRead)
	ip := addresses()
	served(t, do(t, clientFrom(t, ip(9)), srv.base, request{key: servedKey, body: getBody(order)}), order)

	type answer struct {
		status                int
		retryAfter, challenge string
		body                  string
	}
	runs := []struct{ name, keyID, from string }{
		{"MadeUpKeyID", madeUpKeyID(t), ip(1)},
		{"ExistingKeyIDNeverServed", unusedID, ip(2)},
		{"ExistingKeyIDServedLately", servedID, ip(3)},
	}
	attempts := 2*policy.Threshold + 1
	seqs := make([][]answer, len(runs))
	for i, run := range runs {
		c := clientFrom(t, run.from)
		for range attempts {
			r := do(t, c, srv.base, request{key: wrongSecret(run.keyID), body: getBody(order)})
			seqs[i] = append(seqs[i], answer{r.status, r.header.Get("Retry-After"), r.header.Get("WWW-Authenticate"), r.body})
		}
	}
	for n, a := range seqs[0] {
		wantStatus := http.StatusUnauthorized
		if n+1 >= policy.Threshold {
			wantStatus = http.StatusTooManyRequests
		}
		if a.status != wantStatus {
			t.Fatalf("%s, attempt %d: status %d, want %d", runs[0].name, n+1, a.status, wantStatus)
		}
		if wantStatus == http.StatusTooManyRequests && a.retryAfter != strconv.Itoa(seconds(policy.Base)) {
			t.Fatalf("%s, attempt %d: Retry-After %s, want %d (the lock did not move)", runs[0].name, n+1, a.retryAfter, seconds(policy.Base))
		}
	}
	for i := 1; i < len(runs); i++ {
		for n := range seqs[i] {
			if seqs[i][n] != seqs[0][n] {
				t.Errorf("attempt %d: %s is answered %+v, %s %+v", n+1, runs[i].name, seqs[i][n], runs[0].name, seqs[0][n])
			}
		}
	}

	flushAudit(t, srv.Env)
	for i := 1; i < len(runs); i++ {
		if a, b := refusals(t, dsn, runs[0].from), refusals(t, dsn, runs[i].from); !maps.Equal(a, b) {
			t.Errorf("refusals on record: %s %v, %s %v", runs[0].name, a, runs[i].name, b)
		}
	}
	for _, run := range runs {
		if rows := ownerQuery(t, dsn, `SELECT bucket FROM auth_lockouts WHERE bucket LIKE '%' || $1 || '%'`, run.keyID); len(rows) > 0 {
			t.Errorf("%s: a lockout bucket names the key id: %v", run.name, rows)
		}
	}
}

// TestBruteForceWithRotatingKeyIDsIsLockedOut presents a fresh, made-up
// key id with every attempt from one address: the attempts count against
// the address all the same, and it is locked at the threshold. A client at
// that address that had been served before is still served.
func TestBruteForceWithRotatingKeyIDsIsLockedOut(t *testing.T) {
	t.Parallel()
	policy := lockoutPolicy
	srv := start(t, testenv.Options{Lockout: &policy, Clock: testenv.NewClock().Now})
	customer := demo.Customers()[0]
	key, _ := srv.Key(t, customer.ID, auth.ScopeRead)
	order := ordersOf(t, dsn, customer.ID)[0]
	attacker := addresses()(1)
	c := clientFrom(t, attacker)
	served(t, do(t, c, srv.base, request{key: key, body: getBody(order)}), order)

	for i := 1; i <= policy.Threshold; i++ {
		r := do(t, c, srv.base, request{key: wrongSecret(madeUpKeyID(t)), body: getBody(order)})
		if i < policy.Threshold && r.status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: status %d, want 401", i, r.status)
		}
		if i == policy.Threshold {
			limited(t, r, lockedOut)
		}
	}
	served(t, do(t, c, srv.base, request{key: key, body: getBody(order)}), order)

	flushAudit(t, srv.Env)
	if got := refusals(t, dsn, attacker); got["invalid_credential"] != policy.Threshold-1 || got["locked_out"] != 1 {
		t.Errorf("refusals on record: %v, want %d invalid_credential and 1 locked_out", got, policy.Threshold-1)
	}
	noSecrets(t, []*testenv.Env{srv.Env}, []string{key})
}

// TestInventedKeyIDsWithMalformedSecretsAreCountedPerAddress: key-shaped
// credentials with a made-up key id and a malformed secret name no key
// that exists. They are counted per address (and so locked there), and they
// leave one lockout row for the address, not one per invented id.
func TestInventedKeyIDsWithMalformedSecretsAreCountedPerAddress(t *testing.T) {
	t.Parallel()
	policy := lockoutPolicy
	policy.Threshold = 5
	srv := start(t, testenv.Options{Lockout: &policy, Clock: testenv.NewClock().Now})
	attacker := addresses()(1)
	c := clientFrom(t, attacker)
	locked := -1
	for i := range 10 {
		invented := "osmcp_" + strings.Repeat(string(rune('a'+i)), 12) + "_x" // a fresh key id each time
		r := do(t, c, srv.base, request{key: invented, body: listToolsBody})
		if r.status == http.StatusTooManyRequests {
			locked = i + 1
			break
		}
		if r.status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: status %d", i+1, r.status)
		}
	}
	if locked != policy.Threshold {
		t.Fatalf("locked at attempt %d, want %d", locked, policy.Threshold)
	}
	if rows := ownerQuery(t, dsn, `SELECT bucket FROM auth_lockouts WHERE bucket LIKE $1`, "auth:"+attacker+"%"); len(rows) != 1 {
		t.Fatalf("%d lockout rows for one address: %v", len(rows), rows)
	}
}

// TestFloodFromALockedAddressCostsNoDatabaseWork: once an address is
// locked, a flood of failing credentials from it (made-up key ids,
// guesses at a key this server never served, garbage of every shape) is
// refused with 429 before any lookup or lockout write: with lockouts in
// Postgres each request costs at most the indexed read of the lock, with
// lockouts in Redis not a single statement.
func TestFloodFromALockedAddressCostsNoDatabaseWork(t *testing.T) {
	t.Parallel()
	for _, b := range lockoutBackends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			clock := testenv.NewClock()
			policy := lockoutPolicy
			srv := start(t, testenv.Options{Lockout: &policy, Clock: clock.Now, Shared: b.shared(t, "flood-"+newID("t"), clock)})
			customer := demo.Customers()[0]
			_, unusedID := srv.Key(t, customer.ID, auth.ScopeRead)
			order := ordersOf(t, dsn, customer.ID)[0]
			attacker := addresses()(1)
			c := clientFrom(t, attacker)
			for i := 1; i <= policy.Threshold; i++ {
				r := do(t, c, srv.base, request{key: "garbage", body: getBody(order)})
				if i < policy.Threshold && r.status != http.StatusUnauthorized {
					t.Fatalf("failure %d: status %d, want 401", i, r.status)
				}
				if i == policy.Threshold {
					limited(t, r, lockedOut)
				}
			}

			flood := map[string]func() string{
				"MadeUpKeyIDs":          func() string { return wrongSecret(madeUpKeyID(t)) },
				"GuessesAtAnUnusedKey":  func() string { return wrongSecret(unusedID) },
				"MalformedKeys":         func() string { return auth.KeyPrefix + "_" + newID("x") },
				"Garbage":               func() string { return "garbage-" + newID("g") },
				"GarbageShapedLikeAJWT": func() string { return newID("a") + "." + newID("b") + "." + newID("c") },
			}
			const perKind = 10
			for name, credential := range flood {
				t.Run(name, func(t *testing.T) {
					srv.Queries.Reset()
					for range perKind {
						limited(t, do(t, c, srv.base, request{key: credential(), body: getBody(order)}), lockedOut)
					}
					got := statements(srv.Env)
					if b.name == "Redis" && len(got) > 0 || slices.ContainsFunc(got, func(s string) bool { return s != "locked_until" }) {
						t.Fatalf("statements run for %d refused requests: %v, want none but reads of the lock itself", perKind, got)
					}
				})
			}

			flushAudit(t, srv.Env)
			if got := refusals(t, dsn, attacker)["locked_out"]; got != 1+perKind*len(flood) {
				t.Errorf("%d locked_out refusals on record, want %d", got, 1+perKind*len(flood))
			}
		})
	}
}

// TestGarbageCannotLockOutJWTCallersBehindTheSameAddress: OAuth callers
// behind one address (an office, a proxy) share the address bucket.
// Garbage sent by one of them locks the garbage out, and forged tokens,
// but not the others' valid tokens, which are verified by their signature
// first.
func TestGarbageCannotLockOutJWTCallersBehindTheSameAddress(t *testing.T) {
	t.Parallel()
	issuer := testenv.NewIssuer(t)
	aud := "http://127.0.0.1/mcp"
	policy := lockoutPolicy
	env := testenv.New(t, dsn, testenv.Options{
		Lockout: &policy, Clock: testenv.NewClock().Now, TokenVerifier: issuer.Verifier(t, aud),
		HTTP: httpserver.Config{ResourceURL: aud, OAuthIssuer: issuer.ID},
	})
	base := serve(t, env.Handler())
	c := clientFrom(t, addresses()(1))
	claims := issuer.Claims(aud, "colleague", auth.ScopeRead)
	claims["customer_id"] = demo.Customers()[2].ID
	valid := issuer.Token(t, claims)
	order := ordersOf(t, dsn, demo.Customers()[2].ID)[0]

	for i := 1; i <= policy.Threshold; i++ {
		r := do(t, c, base, request{key: "garbage", body: listToolsBody})
		if i == policy.Threshold {
			limited(t, r, lockedOut)
		}
	}
	limited(t, do(t, c, base, request{key: "more-garbage", body: listToolsBody}), lockedOut)
	forged := strings.TrimSuffix(valid, valid[len(valid)-4:]) + "AAAA"
	limited(t, do(t, c, base, request{key: forged, body: listToolsBody}), lockedOut)
	served(t, do(t, c, base, request{key: valid, body: getBody(order)}), order)
}

// TestMalformedPayloadsAreThrottled sends one malformed body after another
// with a valid key: the caller is locked out like a failing login, before
// its bodies are read, while another caller is not.
func TestMalformedPayloadsAreThrottled(t *testing.T) {
	t.Parallel()
	policy := lockoutPolicy
	policy.Threshold = 4
	srv := start(t, testenv.Options{Lockout: &policy, Clock: testenv.NewClock().Now})
	customers := demo.Customers()
	key, _ := srv.Key(t, customers[0].ID, auth.ScopeRead)
	otherKey, _ := srv.Key(t, customers[1].ID, auth.ScopeRead)
	otherOrder := ordersOf(t, dsn, customers[1].ID)[0]
	ip := addresses()
	attacker, bystander := ip(1), ip(2)
	c := clientFrom(t, attacker)
	const canary = "CANARYx7q"

	payloads := []struct {
		name, body string
	}{
		{"UnparseableJSON", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{` + canary},
		{"Batch", `[` + getBody("ord_0000000000000000") + `,` + callBody("cancel_order", map[string]any{"order_id": "ord_0000000000000000"}) + `]`},
		{"DuplicateKeys", `{"jsonrpc":"2.0","id":1,"method":"tools/call","method":"tools/list","params":{"name":"` + canary + `"}}`},
		{"CaseVariantKeys", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"cancel_order","NAME":"get_order_status","arguments":{}}}`},
		{"NotAnObject", `"` + canary + `"`},
		{"TooDeeplyNested", `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}}`},
	}
	var answers []string
	for i, p := range payloads {
		t.Run(p.name+"IsRefused", func(t *testing.T) {
			r := do(t, c, srv.base, request{key: key, body: p.body})
			answers = append(answers, r.String())
			if strings.Contains(r.body, canary) {
				t.Fatalf("answer echoes the payload: %s", r.body)
			}
			if i+1 < policy.Threshold {
				m := r.rpc(t)
				if r.status != http.StatusBadRequest || m.Error == nil || !strings.HasPrefix(m.Error.Message, "Bad request") {
					t.Fatalf("malformed payload %d: %d %s", i+1, r.status, r.body)
				}
				return
			}
			// From the threshold on, the sender is throttled.
			limited(t, r, lockedOut)
		})
	}

	t.Run("TheLockedCallerIsRefusedEvenWellFormed", func(t *testing.T) {
		// The lock is the caller's, not only its malformed bodies': a
		// well-formed call is refused before its body is read.
		limited(t, do(t, c, srv.base, request{key: key, body: getBody(otherOrder)}), lockedOut)
	})

	t.Run("AnotherCallerIsNotThrottled", func(t *testing.T) {
		b := clientFrom(t, bystander)
		if r := do(t, b, srv.base, request{key: otherKey, body: payloads[0].body}); r.status != http.StatusBadRequest {
			t.Fatalf("another caller's first malformed payload: status %d, want 400", r.status)
		}
		served(t, do(t, b, srv.base, request{key: otherKey, body: getBody(otherOrder)}), otherOrder)
	})

	flushAudit(t, srv.Env)
	got := refusals(t, dsn, attacker)
	if got["malformed_payload"] != policy.Threshold {
		t.Errorf("%d malformed_payload refusals on record, want %d", got["malformed_payload"], policy.Threshold)
	}
	if want := len(payloads) - policy.Threshold + 1; got["locked_out"] != want {
		t.Errorf("%d locked_out refusals on record, want %d", got["locked_out"], want)
	}
	noSecrets(t, []*testenv.Env{srv.Env}, []string{key, otherKey}, answers...)
}
