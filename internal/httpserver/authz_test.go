package httpserver_test

// Tests of who may call what over HTTP: authentication (this file), OAuth
// protected resource metadata (this file), authorization
// (authz_access_test.go) and stateful sessions (authz_session_test.go).
// Every test performs an attack against the real HTTP handler on a loopback
// port, backed by real Postgres, and checks that it fails with the status
// and challenge the contract promises, that the answer does not say why,
// and that no secret reaches the answer or the logs.
//
// Helpers here are prefixed authz: another file of this package has helpers
// of its own.

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/dbtest"
	"github.com/example/order-mcp/internal/demo"
	"github.com/example/order-mcp/internal/httpserver"
	"github.com/example/order-mcp/internal/limits"
	"github.com/example/order-mcp/internal/testenv"
)

// authzAudience is MCP_RESOURCE_URL in the OAuth environments: the canonical
// URL of /mcp behind a TLS-terminating proxy, and the audience tokens must
// carry.
const authzAudience = "https://mcp.example.test/mcp"

// authzMetadataURL is where RFC 9728 puts the metadata of authzAudience.
const authzMetadataURL = "https://mcp.example.test/.well-known/oauth-protected-resource/mcp"

// authzNoLockout keeps the brute-force lockout out of these tests, which
// present many bad credentials on purpose; the lockout has tests of its own.
var authzNoLockout = func() limits.Policy {
	p := limits.DefaultPolicy()
	p.Threshold = 1_000_000
	return p
}()

// authzEnv is an assembled server listening on a loopback port.
type authzEnv struct {
	*testenv.Env
	url    string          // the /mcp endpoint
	base   string          // scheme://host of the test server
	issuer *testenv.Issuer // nil with API keys only
}

// authzNewEnv assembles a server. With oauth it also trusts a test issuer
// for authzAudience and advertises it; otherwise it accepts API keys only.
func authzNewEnv(t *testing.T, oauth bool, cfg httpserver.Config) *authzEnv {
	t.Helper()
	opts := testenv.Options{Lockout: &authzNoLockout}
	var issuer *testenv.Issuer
	if oauth {
		issuer = testenv.NewIssuer(t)
		opts.TokenVerifier = issuer.Verifier(t, authzAudience)
		cfg.ResourceURL, cfg.OAuthIssuer = authzAudience, issuer.ID
	}
	opts.HTTP = cfg
	env := testenv.New(t, dsn, opts)
	// Lockout state lives in the shared test database, keyed by address:
	// start from a clean slate and leave one behind, so that the failures
	// presented here never count against another test of this package.
	authzClearLockouts(t, env)
	t.Cleanup(func() { authzClearLockouts(t, env) })
	u := env.URL(t)
	return &authzEnv{Env: env, url: u, base: strings.TrimSuffix(u, "/mcp"), issuer: issuer}
}

func authzClearLockouts(t *testing.T, env *testenv.Env) {
	t.Helper()
	env.OwnerExec(t, `DELETE FROM auth_lockouts WHERE bucket IN ('auth:127.0.0.1', 'malformed:127.0.0.1', 'auth:::1', 'malformed:::1')
		OR bucket LIKE 'auth:127.0.0.1|%' OR bucket LIKE 'auth:::1|%'`)
}

// authzResponse is one HTTP answer, read in full.
type authzResponse struct {
	status int
	header http.Header
	body   string
}

var authzHTTP = &http.Client{Timeout: 20 * time.Second}

// authzDo sends req and reads the whole answer.
func authzDo(t *testing.T, req *http.Request) authzResponse {
	t.Helper()
	resp, err := authzHTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return authzResponse{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// authzPost POSTs body to u as an MCP client does. credential, when not
// empty, is sent as "Authorization: Bearer <credential>"; headers are
// further name/value pairs, added (so a name may repeat).
func authzPost(t *testing.T, u, credential, body string, headers ...string) authzResponse {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if credential != "" {
		req.Header.Set("Authorization", "Bearer "+credential)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	return authzDo(t, req)
}

// authzProtocol is the header a single request without initialize carries.
var authzProtocol = []string{"MCP-Protocol-Version", testenv.Protocol20251125}

// authzToolCall is a tools/call request body.
func authzToolCall(id int, tool string, args map[string]any) string {
	b, err := json.Marshal(map[string]any{
		"jsonrpc": "2.0", "id": id, "method": "tools/call",
		"params": map[string]any{"name": tool, "arguments": args},
	})
	if err != nil {
		panic(err)
	}
	return string(b)
}

// authzRPC is a decoded JSON-RPC answer.
type authzRPC struct {
	Result *struct {
		IsError           bool            `json:"isError"`
		RawContent        json.RawMessage `json:"content"`
		StructuredContent json.RawMessage `json:"structuredContent"`
		Tools             []struct {
			Name string `json:"name"`
		} `json:"tools"`
	} `json:"result"`
	Error *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// authzDecode reads the JSON-RPC message of an answer, whether it came as
// application/json or as a server-sent event stream (stateful mode).
func authzDecode(t *testing.T, r authzResponse) authzRPC {
	t.Helper()
	body := r.body
	if strings.HasPrefix(r.header.Get("Content-Type"), "text/event-stream") {
		body = ""
		for _, line := range strings.Split(r.body, "\n") {
			if data, ok := strings.CutPrefix(line, "data:"); ok && strings.TrimSpace(data) != "" {
				body = strings.TrimSpace(data)
				break
			}
		}
	}
	var msg authzRPC
	if err := json.Unmarshal([]byte(body), &msg); err != nil {
		t.Fatalf("answer %d is not a JSON-RPC message: %v\n%s", r.status, err, r.body)
	}
	return msg
}

// authzChallenge parses a WWW-Authenticate header of the Bearer scheme.
func authzChallenge(t *testing.T, h string) map[string]string {
	t.Helper()
	scheme, rest, _ := strings.Cut(h, " ")
	if scheme != "Bearer" {
		t.Fatalf("WWW-Authenticate %q: want the Bearer scheme", h)
	}
	params := map[string]string{}
	for _, m := range regexp.MustCompile(`([a-z_]+)="([^"]*)"`).FindAllStringSubmatch(rest, -1) {
		if _, dup := params[m[1]]; dup {
			t.Fatalf("WWW-Authenticate %q repeats %s", h, m[1])
		}
		params[m[1]] = m[2]
	}
	return params
}

// authzWantChallenge checks a challenge has exactly the parameters want.
func authzWantChallenge(t *testing.T, r authzResponse, want map[string]string) {
	t.Helper()
	values := r.header.Values("WWW-Authenticate")
	if len(values) != 1 {
		t.Fatalf("status %d: want one WWW-Authenticate header, got %q", r.status, values)
	}
	got := authzChallenge(t, values[0])
	if len(got) != len(want) {
		t.Fatalf("challenge %q: want exactly %v", values[0], want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("challenge %q: %s=%q, want %q", values[0], k, got[k], v)
		}
	}
}

// authzReasonWords are words that would tell a caller why its credential
// was refused. They belong in the log only.
var authzReasonWords = []string{"expire", "revoke", "audience", "aud", "issuer", "iss", "signature", "sign",
	"alg", "none", "hs256", "rs256", "kid", "claim", "customer", "staff", "unknown", "malformed", "jwt",
	"secret", "scope", "subject", "not valid", "mismatch"}

// authzSaysNothingWhy fails if the answer explains a refusal.
func authzSaysNothingWhy(t *testing.T, r authzResponse) {
	t.Helper()
	text := strings.ToLower(r.body + " " + strings.Join(r.header.Values("WWW-Authenticate"), " "))
	text = strings.ReplaceAll(text, "resource_metadata", "") // the parameter's name, not a reason
	text = strings.ReplaceAll(text, "oauth-protected-resource", "")
	text = strings.ReplaceAll(text, `scope="orders:read"`, "") // the scope to ask for, not a reason
	for _, w := range authzReasonWords {
		if strings.Contains(text, w) {
			t.Fatalf("the answer says why (%q): %s %q", w, r.body, r.header.Values("WWW-Authenticate"))
		}
	}
	if strings.Contains(r.body, `"result"`) {
		t.Fatalf("a refused request got a result: %s", r.body)
	}
}

// authzTokenSecrets are the parts of a JWT that must never be written
// anywhere: the token, its claims and its signature.
func authzTokenSecrets(tok string) []string {
	out := []string{tok}
	for _, part := range strings.Split(tok, ".")[1:] {
		if len(part) >= 16 {
			out = append(out, part)
		}
	}
	return out
}

// authzNoSecrets fails if any secret of the environment (personal data,
// internal notes, the given keys) or any of extra appears in out or in the
// logs.
func authzNoSecrets(t *testing.T, env *testenv.Env, outs []string, keys []string, extra ...string) {
	t.Helper()
	secrets := append(env.Secrets(t, keys...), extra...)
	logs := env.Logs.String()
	for _, s := range secrets {
		if s == "" {
			continue
		}
		for _, out := range outs {
			if strings.Contains(out, s) {
				t.Fatalf("a secret reached the answer: %q", s)
			}
		}
		if strings.Contains(logs, s) {
			t.Fatalf("a secret reached the logs: %q", s)
		}
	}
}

// authzLogged fails unless the log written since mark (a length of
// env.Logs.String() taken before the request) records a credential refusal
// for reason.
func authzLogged(t *testing.T, env *testenv.Env, mark int, reason string) {
	t.Helper()
	want := fmt.Sprintf(`"reason":%q`, reason)
	if logs := env.Logs.String()[mark:]; !strings.Contains(logs, want) {
		t.Fatalf("the log does not record the refusal reason %s:\n%s", want, logs)
	}
}

// authzID returns a fresh id of the shape prefix_ + 16 Crockford base32
// characters.
func authzID(prefix string) string {
	const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	var b [16]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = crockford[int(b[i])%len(crockford)]
	}
	return prefix + "_" + string(b[:])
}

// authzCustomer creates a customer of the calling test's own: a copy of the
// demo customer from (same personal data, so the same secrets) under a
// fresh id, with n pending orders. Tests that check an order was not
// cancelled use these orders, which no other test can cancel.
func authzCustomer(t *testing.T, env *testenv.Env, from demo.Customer, n int) (customerID string, orders []string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, env.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	// Row-level security is forced on the owner as well, unless it is a
	// superuser: act as staff for this setup.
	if _, err := tx.Exec(ctx, `SELECT set_config('app.any_customer', 'on', true)`); err != nil {
		t.Fatal(err)
	}
	customerID = authzID("cus")
	if _, err := tx.Exec(ctx, `INSERT INTO customers
		SELECT (jsonb_populate_record(NULL::customers, to_jsonb(c) || jsonb_build_object('id', $1::text))).*
		FROM customers c WHERE c.id = $2`, customerID, from.ID); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		id := authzID("ord")
		tag, err := tx.Exec(ctx, `INSERT INTO orders
			SELECT (jsonb_populate_record(NULL::orders, to_jsonb(o) || jsonb_build_object(
				'id', $1::text, 'customer_id', $2::text, 'status', 'pending', 'placed_at', now() - make_interval(mins => $4::int),
				'cancelled_at', NULL, 'cancel_reason', NULL))).*
			FROM orders o WHERE o.customer_id = $3 ORDER BY o.id LIMIT 1`, id, customerID, from.ID, i)
		if err != nil {
			t.Fatal(err)
		}
		if tag.RowsAffected() != 1 {
			t.Fatalf("could not copy an order of %s", from.ID)
		}
		orders = append(orders, id)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	return customerID, orders
}

// authzOrderState returns an order's status and cancellation time, as the
// database owner sees them.
func authzOrderState(t *testing.T, env *testenv.Env, orderID string) string {
	t.Helper()
	rows, err := env.OwnerQueryStrings(t, `SELECT status || '|' || coalesce(cancelled_at::text, '') FROM orders WHERE id = $1`, orderID)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 {
		t.Fatalf("order %s: %d rows", orderID, len(rows))
	}
	return rows[0]
}

// authzCancelled counts audit records of a cancellation of orderID.
func authzCancelled(t *testing.T, env *testenv.Env, orderID string) string {
	t.Helper()
	rows, err := env.OwnerQueryStrings(t, `SELECT count(*)::text FROM audit_log
		WHERE action = 'cancel_order' AND outcome = 'cancelled' AND $1 = ANY(object_ids)`, orderID)
	if err != nil {
		t.Fatal(err)
	}
	return rows[0]
}

// authzNotCancelled fails unless orderID is still pending and no
// cancellation of it was ever recorded.
func authzNotCancelled(t *testing.T, env *testenv.Env, orderID string) {
	t.Helper()
	if st := authzOrderState(t, env, orderID); st != "pending|" {
		t.Fatalf("order %s changed: %s", orderID, st)
	}
	if n := authzCancelled(t, env, orderID); n != "0" {
		t.Fatalf("order %s: %s audit records of a cancellation", orderID, n)
	}
}

// authzCustomerToken returns claims for a caller bound to customerID.
func authzCustomerClaims(iss *testenv.Issuer, subject, customerID string, scopes ...string) jwt.MapClaims {
	c := iss.Claims(authzAudience, subject, scopes...)
	c["customer_id"] = customerID
	return c
}

// authzConnect opens a go-sdk client session over Streamable HTTP with hc.
func authzConnect(t *testing.T, u string, hc *http.Client, version string) *mcp.ClientSession {
	t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "authz-test-client", Version: "1"}, nil)
	cs, err := client.Connect(context.Background(), &mcp.StreamableClientTransport{
		Endpoint: u, HTTPClient: hc, MaxRetries: -1,
	}, &mcp.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

// authzToolNames lists the tools a session sees.
func authzToolNames(t *testing.T, cs *mcp.ClientSession) []string {
	t.Helper()
	res, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	var names []string
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	return names
}

// authzResultJSON is everything a result carries, as one string.
func authzResultJSON(t *testing.T, res *mcp.CallToolResult) string {
	t.Helper()
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestUnauthenticatedRequestsAreRefused presents no credential, a
// malformed one, or one that is not (or no longer) valid. Each gets 401
// with a Bearer challenge and no data; a presented credential gets
// error="invalid_token" and the same answer whatever was wrong with it.
// The reason is logged, never sent. Run with API keys only (the challenge
// names the realm and nothing else) and with OAuth configured (it points to
// the metadata and the scope to ask for).
func TestUnauthenticatedRequestsAreRefused(t *testing.T) {
	customer := demo.Customers()[0]
	for _, mode := range []struct {
		name  string
		oauth bool
	}{{"APIKeysOnly", false}, {"OAuthConfigured", true}} {
		t.Run(mode.name, func(t *testing.T) {
			env := authzNewEnv(t, mode.oauth, httpserver.Config{})
			valid, _ := env.Key(t, customer.ID, auth.ScopeRead)
			revoked, revokedID := env.Key(t, customer.ID, auth.ScopeRead)
			past := time.Now().Add(-time.Hour)
			expired, _ := dbtest.MintKey(t, env.Owner, dbtest.KeyOptions{
				Scopes: []auth.Scope{auth.ScopeRead}, CustomerID: customer.ID, ExpiresAt: &past})
			wrongSecret := valid[:len(valid)-4] + "aaaa"
			if strings.HasSuffix(valid, "aaaa") {
				wrongSecret = valid[:len(valid)-4] + "bbbb"
			}
			body := authzToolCall(1, "list_recent_orders", map[string]any{})

			// The revoked key works until it is revoked: what refuses it
			// below is the revocation.
			if r := authzPost(t, env.url, revoked, body, authzProtocol...); r.status != http.StatusOK {
				t.Fatalf("key before revocation: %d %s", r.status, r.body)
			}
			if err := dbtest.Owner(t, dsn).RevokeAPIKey(context.Background(), revokedID); err != nil {
				t.Fatal(err)
			}

			secrets := []string{wrongSecret}
			wantChallenge := func(presented bool) map[string]string {
				c := map[string]string{"realm": "order-mcp"}
				if presented {
					c["error"] = "invalid_token"
				}
				if mode.oauth {
					c["resource_metadata"], c["scope"] = authzMetadataURL, auth.ScopeRead
				}
				return c
			}
			tests := []struct {
				name   string
				header []string // Authorization header values
				reason string   // logged reason, for a presented credential
			}{
				{"NoCredentialIsRefused", nil, ""},
				{"EmptyAuthorizationIsRefused", []string{""}, ""},
				{"BasicSchemeIsRefused", []string{"Basic " + "dXNlcjpwYXNz"}, ""},
				{"BasicSchemeCarryingAValidKeyIsRefused", []string{"Basic " + valid}, ""},
				{"BearerWithoutTokenIsRefused", []string{"Bearer"}, ""},
				{"TwoTokensInOneHeaderAreRefused", []string{"Bearer " + valid + " " + valid}, ""},
				{"KeyWithoutSchemeIsRefused", []string{valid}, ""},
				{"GarbageIsRefused", []string{"Bearer not-a-credential"}, "malformed credential"},
				{"GarbageShapedLikeAKeyIsRefused", []string{"Bearer osmcp_garbage"}, "malformed api key"},
				{"UnknownKeyIsRefused", []string{"Bearer osmcp_aaaaaaaaaaaa_" + strings.Repeat("a", 52)}, "unknown api key"},
				{"WrongSecretIsRefused", []string{"Bearer " + wrongSecret}, "wrong api key secret"},
				{"RevokedKeyIsRefused", []string{"Bearer " + revoked}, "api key revoked"},
				{"ExpiredKeyIsRefused", []string{"Bearer " + expired}, "api key expired"},
				{"GarbageBeforeAValidHeaderIsRefused", []string{"Bearer not-a-credential", "Bearer " + valid}, "malformed credential"},
			}
			var refusedBody, refusedChallenge string
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					var headers []string
					for _, h := range tt.header {
						headers = append(headers, "Authorization", h)
					}
					mark := len(env.Logs.String())
					r := authzPost(t, env.url, "", body, append(headers, authzProtocol...)...)
					if r.status != http.StatusUnauthorized {
						t.Fatalf("status %d, want 401: %s", r.status, r.body)
					}
					presented := tt.reason != ""
					authzWantChallenge(t, r, wantChallenge(presented))
					authzSaysNothingWhy(t, r)
					if presented {
						authzLogged(t, env.Env, mark, tt.reason)
						// Every refused credential gets the very same answer.
						if refusedBody == "" {
							refusedBody, refusedChallenge = r.body, r.header.Get("WWW-Authenticate")
						}
						if r.body != refusedBody || r.header.Get("WWW-Authenticate") != refusedChallenge {
							t.Fatalf("answer differs from another refused credential's:\n%s %s\n%s %s",
								r.body, r.header.Get("WWW-Authenticate"), refusedBody, refusedChallenge)
						}
					}
					authzNoSecrets(t, env.Env, []string{r.body, fmt.Sprint(r.header)}, []string{valid, revoked, expired}, secrets...)
				})
			}

			t.Run("ValidKeyIsAccepted", func(t *testing.T) {
				// The control: the same request with the valid key works, so
				// the refusals above are the credential's doing.
				r := authzPost(t, env.url, valid, body, authzProtocol...)
				if r.status != http.StatusOK || authzDecode(t, r).Result == nil {
					t.Fatalf("status %d: %s", r.status, r.body)
				}
			})
		})
	}
}

// authzForge signs claims in a way the server must refuse.
type authzForge func(t *testing.T, iss *testenv.Issuer, claims jwt.MapClaims) string

func authzSignRS256(key *rsa.PrivateKey, kid string) authzForge {
	return func(t *testing.T, _ *testenv.Issuer, claims jwt.MapClaims) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
		tok.Header["kid"] = kid
		tok.Header["typ"] = "at+jwt" // RFC 9068
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

// TestForgedAndMisdirectedTokensAreRefused presents JWTs the resource
// server must refuse: signed by another key, by another issuer, for another
// resource, expired, unsigned, signed with HS256 using the issuer's public
// key as the secret, or binding nobody. Each gets the same 401
// error="invalid_token" with the metadata pointer; the reason is logged
// only; the token is written nowhere.
func TestForgedAndMisdirectedTokensAreRefused(t *testing.T) {
	env := authzNewEnv(t, true, httpserver.Config{})
	iss := env.issuer
	customer := demo.Customers()[1]
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	valid := func() jwt.MapClaims {
		return authzCustomerClaims(iss, "forge-subject", customer.ID, auth.ScopeRead)
	}
	issuerSigned := func(t *testing.T, iss *testenv.Issuer, c jwt.MapClaims) string { return iss.Token(t, c) }
	body := authzToolCall(1, "list_recent_orders", map[string]any{})

	tests := []struct {
		name   string
		claims func() jwt.MapClaims
		sign   authzForge
		reason string
	}{
		{"TokenSignedByAnotherKeyIsRefused", valid, authzSignRS256(otherKey, iss.KID()),
			"jwt: bad signature or algorithm not allowed"},
		{"TokenFromAnotherIssuerIsRefused", func() jwt.MapClaims {
			c := valid()
			c["iss"] = "https://evil-issuer.example/"
			return c
		}, issuerSigned, "jwt: wrong issuer"},
		{"TokenForAnotherResourceIsRefused", func() jwt.MapClaims {
			c := valid()
			c["aud"] = []string{"https://other-resource.example/mcp"}
			return c
		}, issuerSigned, "jwt: wrong audience"},
		{"TokenWithoutAudienceIsRefused", func() jwt.MapClaims {
			c := valid()
			delete(c, "aud")
			return c
		}, issuerSigned, "jwt: required claim missing"},
		{"ExpiredTokenIsRefused", func() jwt.MapClaims {
			c := valid()
			c["iat"], c["nbf"] = time.Now().Add(-time.Hour).Unix(), time.Now().Add(-time.Hour).Unix()
			c["exp"] = time.Now().Add(-10 * time.Minute).Unix()
			return c
		}, issuerSigned, "jwt: expired"},
		{"TokenWithoutExpiryIsRefused", func() jwt.MapClaims {
			c := valid()
			delete(c, "exp")
			return c
		}, issuerSigned, "jwt: required claim missing"},
		{"UnsignedTokenAlgNoneIsRefused", valid, func(t *testing.T, iss *testenv.Issuer, c jwt.MapClaims) string {
			tok := jwt.NewWithClaims(jwt.SigningMethodNone, c)
			tok.Header["kid"] = iss.KID()
			tok.Header["typ"] = "at+jwt" // RFC 9068
			s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, "jwt: bad signature or algorithm not allowed"},
		{"HS256SignedWithTheIssuersPublicKeyIsRefused", valid, func(t *testing.T, iss *testenv.Issuer, c jwt.MapClaims) string {
			der, err := x509.MarshalPKIXPublicKey(&iss.PrivateKey().PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
			tok.Header["kid"] = iss.KID()
			tok.Header["typ"] = "at+jwt" // RFC 9068
			s, err := tok.SignedString(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, "jwt: bad signature or algorithm not allowed"},
		{"TokenBindingNoCustomerAndNotStaffIsRefused", func() jwt.MapClaims {
			return iss.Claims(authzAudience, "forge-subject", auth.ScopeRead, auth.ScopeCancel)
		}, issuerSigned, "jwt: no customer claim and not staff"},
		{"TokenWithMalformedCustomerClaimIsRefused", func() jwt.MapClaims {
			c := valid()
			c["customer_id"] = "cus_' OR '1'='1"
			return c
		}, issuerSigned, "jwt: malformed customer claim"},
		{"TokenWithoutSubjectIsRefused", func() jwt.MapClaims {
			c := valid()
			delete(c, "sub")
			return c
		}, issuerSigned, "jwt: no subject"},
	}
	var tokens []string
	var refusedBody, refusedChallenge string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := tt.sign(t, iss, tt.claims())
			tokens = append(tokens, authzTokenSecrets(tok)...)
			mark := len(env.Logs.String())
			r := authzPost(t, env.url, tok, body, authzProtocol...)
			if r.status != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401: %s", r.status, r.body)
			}
			authzWantChallenge(t, r, map[string]string{"realm": "order-mcp", "error": "invalid_token",
				"resource_metadata": authzMetadataURL, "scope": auth.ScopeRead})
			authzSaysNothingWhy(t, r)
			authzLogged(t, env.Env, mark, tt.reason)
			if refusedBody == "" {
				refusedBody, refusedChallenge = r.body, r.header.Get("WWW-Authenticate")
			}
			if r.body != refusedBody || r.header.Get("WWW-Authenticate") != refusedChallenge {
				t.Fatalf("answer differs from another refused token's: %s / %s", r.body, refusedBody)
			}
			authzNoSecrets(t, env.Env, []string{r.body}, nil, tokens...)
		})
	}

	t.Run("TokenFromTheIssuerForThisResourceIsAccepted", func(t *testing.T) {
		// The control: the same claims, signed by the issuer, work.
		tok := iss.Token(t, valid())
		r := authzPost(t, env.url, tok, body, authzProtocol...)
		if r.status != http.StatusOK || authzDecode(t, r).Result == nil {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		authzNoSecrets(t, env.Env, nil, nil, authzTokenSecrets(tok)...)
	})
}

// TestTokenInQueryStringIsRefusedAndNeverLogged puts a credential in the
// URL, where proxies, browser history and Referer headers would keep it.
// It is refused even next to a valid Authorization header, and neither the
// token nor the query string reaches the log.
func TestTokenInQueryStringIsRefusedAndNeverLogged(t *testing.T) {
	env := authzNewEnv(t, true, httpserver.Config{})
	customer := demo.Customers()[2]
	key, _ := env.Key(t, customer.ID, auth.ScopeRead)
	tok := env.issuer.Token(t, authzCustomerClaims(env.issuer, "query-subject", customer.ID, auth.ScopeRead))
	const canary = "QUERYCANARY7Q3"
	body := authzToolCall(1, "list_recent_orders", map[string]any{})

	tests := []struct {
		name   string
		query  string
		header string
	}{
		{"AccessTokenParameterAloneIsRefused", "access_token=" + key, ""},
		{"AccessTokenParameterNextToAValidHeaderIsRefused", "access_token=" + key, key},
		{"JWTInAccessTokenParameterIsRefused", "access_token=" + tok, tok},
		{"APIKeyParameterIsRefused", "api_key=" + key, key},
		{"TokenParameterIsRefused", "token=" + tok, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := authzPost(t, env.url+"?"+tt.query+"&trace="+canary, tt.header, body, authzProtocol...)
			if r.status != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401: %s", r.status, r.body)
			}
			authzWantChallenge(t, r, map[string]string{"realm": "order-mcp", "error": "invalid_request",
				"error_description": "send the token in the Authorization header",
				"resource_metadata": authzMetadataURL, "scope": auth.ScopeRead})
			if strings.Contains(r.body, `"result"`) {
				t.Fatalf("got a result: %s", r.body)
			}
			logs := env.Logs.String()
			if !strings.Contains(logs, `"refused":"token_in_query"`) {
				t.Fatal("the refusal is not in the access log")
			}
			for _, s := range []string{canary, "access_token", "api_key=", "token=", "trace="} {
				if strings.Contains(logs, s) {
					t.Fatalf("the log holds the query string (%q)", s)
				}
			}
			authzNoSecrets(t, env.Env, []string{r.body}, []string{key}, authzTokenSecrets(tok)...)
		})
	}

	t.Run("SameRequestWithoutTheQueryIsAccepted", func(t *testing.T) {
		r := authzPost(t, env.url+"?trace="+canary, key, body, authzProtocol...)
		if r.status != http.StatusOK || authzDecode(t, r).Result == nil {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		if strings.Contains(env.Logs.String(), canary) {
			t.Fatal("the access log holds the query string")
		}
	})
}

// TestProtectedResourceMetadata fetches the RFC 9728 metadata a client
// discovers through a 401 challenge: it names this resource, the one
// issuer trusted and the scopes; any origin may read it; and the challenge
// points to it. With API keys only there is no authorization server to
// advertise, and the paths do not exist.
func TestProtectedResourceMetadata(t *testing.T) {
	paths := []string{"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"}

	t.Run("OAuthConfigured", func(t *testing.T) {
		env := authzNewEnv(t, true, httpserver.Config{})
		for _, path := range paths {
			t.Run("GET"+path, func(t *testing.T) {
				req, _ := http.NewRequest(http.MethodGet, env.base+path, nil)
				req.Header.Set("Origin", "https://any-client.example")
				r := authzDo(t, req)
				if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
					t.Fatalf("status %d %s: %s", r.status, r.header.Get("Content-Type"), r.body)
				}
				var meta struct {
					Resource             string   `json:"resource"`
					AuthorizationServers []string `json:"authorization_servers"`
					ScopesSupported      []string `json:"scopes_supported"`
					BearerMethods        []string `json:"bearer_methods_supported"`
				}
				if err := json.Unmarshal([]byte(r.body), &meta); err != nil {
					t.Fatal(err)
				}
				if meta.Resource != authzAudience {
					t.Fatalf("resource %q, want %q", meta.Resource, authzAudience)
				}
				if !slices.Equal(meta.AuthorizationServers, []string{env.issuer.ID}) {
					t.Fatalf("authorization_servers %v, want [%s]", meta.AuthorizationServers, env.issuer.ID)
				}
				got := slices.Sorted(slices.Values(meta.ScopesSupported))
				if want := []auth.Scope{auth.ScopeCancel, auth.ScopeRead, auth.ScopeReadAny}; !slices.Equal(got, want) {
					t.Fatalf("scopes_supported %v, want %v", got, want)
				}
				if !slices.Equal(meta.BearerMethods, []string{"header"}) {
					t.Fatalf("bearer_methods_supported %v: only the header may carry tokens", meta.BearerMethods)
				}
				if acao := r.header.Get("Access-Control-Allow-Origin"); acao != "*" {
					t.Fatalf("Access-Control-Allow-Origin %q: any origin may read the metadata", acao)
				}
			})
			t.Run("CORSPreflight"+path, func(t *testing.T) {
				req, _ := http.NewRequest(http.MethodOptions, env.base+path, nil)
				req.Header.Set("Origin", "https://any-client.example")
				req.Header.Set("Access-Control-Request-Method", "GET")
				r := authzDo(t, req)
				if r.status >= 300 || r.header.Get("Access-Control-Allow-Origin") != "*" ||
					!strings.Contains(r.header.Get("Access-Control-Allow-Methods"), "GET") {
					t.Fatalf("preflight: %d %v", r.status, r.header)
				}
			})
		}

		t.Run("ChallengePointsToTheMetadata", func(t *testing.T) {
			r := authzPost(t, env.url, "", authzToolCall(1, "list_recent_orders", map[string]any{}), authzProtocol...)
			if r.status != http.StatusUnauthorized {
				t.Fatalf("status %d", r.status)
			}
			pointer := authzChallenge(t, r.header.Get("WWW-Authenticate"))["resource_metadata"]
			u, err := url.Parse(pointer)
			if err != nil {
				t.Fatal(err)
			}
			res, _ := url.Parse(authzAudience)
			if u.Scheme != res.Scheme || u.Host != res.Host || !slices.Contains(paths, u.Path) || u.RawQuery != "" {
				t.Fatalf("resource_metadata %q is not this resource's metadata", pointer)
			}
			// The test server stands in for mcp.example.test.
			req, _ := http.NewRequest(http.MethodGet, env.base+u.Path, nil)
			if m := authzDo(t, req); m.status != http.StatusOK || !strings.Contains(m.body, `"resource":"`+authzAudience+`"`) {
				t.Fatalf("%s: %d %s", u.Path, m.status, m.body)
			}
		})
	})

	// Behind a proxy that adds a path prefix the resource URL's path is not
	// /mcp; the challenge must still point to a document that exists.
	t.Run("ResourceURLWithAPrefix", func(t *testing.T) {
		const resource = "https://mcp.example.test/orders/mcp"
		issuer := testenv.NewIssuer(t)
		env := testenv.New(t, dsn, testenv.Options{
			Lockout:       &authzNoLockout,
			TokenVerifier: issuer.Verifier(t, resource),
			HTTP:          httpserver.Config{ResourceURL: resource, OAuthIssuer: issuer.ID},
		})
		u := env.URL(t)
		r := authzPost(t, u, "", authzToolCall(1, "list_recent_orders", map[string]any{}), authzProtocol...)
		pointer, err := url.Parse(authzChallenge(t, r.header.Get("WWW-Authenticate"))["resource_metadata"])
		if err != nil || pointer.Path != "/.well-known/oauth-protected-resource/orders/mcp" {
			t.Fatalf("resource_metadata %v (%v)", pointer, err)
		}
		req, _ := http.NewRequest(http.MethodGet, strings.TrimSuffix(u, "/mcp")+pointer.Path, nil)
		if m := authzDo(t, req); m.status != http.StatusOK || !strings.Contains(m.body, `"resource":"`+resource+`"`) {
			t.Fatalf("%s: %d %s", pointer.Path, m.status, m.body)
		}
	})

	t.Run("APIKeysOnly", func(t *testing.T) {
		env := authzNewEnv(t, false, httpserver.Config{})
		for _, path := range paths {
			t.Run("NoMetadataAt"+path, func(t *testing.T) {
				req, _ := http.NewRequest(http.MethodGet, env.base+path, nil)
				r := authzDo(t, req)
				if r.status != http.StatusNotFound {
					t.Fatalf("status %d, want 404: %s", r.status, r.body)
				}
				if strings.Contains(r.body, "authorization_servers") {
					t.Fatalf("metadata served without OAuth: %s", r.body)
				}
			})
		}
	})
}
