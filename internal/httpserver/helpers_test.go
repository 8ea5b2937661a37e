package httpserver_test

// The HTTP helpers every test of this package shares; the database
// fixtures and audit-trail queries are in fixtures_test.go.
//
// The tests attack the real HTTP surface: the production assembly
// (internal/app, through testenv) served on a loopback port, backed by the
// package's Postgres database and, where a test says so, Redis. Each test
// asserts that its attack is stopped, that the bystanders it names are
// still served, that the attempt is on record, and that no secret reached
// an answer or the log.
//
// Every test plays its clients from loopback addresses of its own
// (addresses; Linux routes all of 127/8 to the loopback device). Lockouts
// and refusal counts are kept per address in the shared test database, so
// this is what keeps one test's failures from counting against another.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/ulule/limiter/v3"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/limits"
	"github.com/example/order-mcp/internal/logging"
	"github.com/example/order-mcp/internal/refusal"
	"github.com/example/order-mcp/internal/testenv"
)

// protocol is the MCP-Protocol-Version raw requests announce; versions are
// the protocol generations go-sdk clients are run in.
const protocol = testenv.Protocol20251125

var versions = []string{testenv.Protocol20251125, testenv.Protocol20260728}

// oauthResource is MCP_RESOURCE_URL of the servers that trust a test
// issuer: the canonical URL of /mcp behind a TLS-terminating proxy, and the
// audience tokens must carry. oauthMetadata is where RFC 9728 puts its
// metadata.
const (
	oauthResource = "https://mcp.example.test/mcp"
	oauthMetadata = "https://mcp.example.test/.well-known/oauth-protected-resource/mcp"
)

// server is an assembled server listening on a loopback port.
type server struct {
	*testenv.Env
	base   string          // http://127.0.0.1:port
	issuer *testenv.Issuer // the trusted OAuth issuer (startOAuth only)
}

// start assembles a server on the package's database and serves its HTTP
// surface on a loopback port.
func start(t testing.TB, opts testenv.Options) *server {
	t.Helper()
	env := testenv.New(t, dsn, opts)
	return &server{Env: env, base: serve(t, env.Handler())}
}

// startOAuth is start with a test issuer trusted for oauthResource and
// advertised in the 401 challenges and the metadata.
func startOAuth(t testing.TB, opts testenv.Options) *server {
	t.Helper()
	issuer := testenv.NewIssuer(t)
	opts.TokenVerifier = issuer.Verifier(t, oauthResource)
	opts.HTTP.ResourceURL, opts.HTTP.OAuthIssuer = oauthResource, issuer.ID
	s := start(t, opts)
	s.issuer = issuer
	return s
}

// serve serves h on a loopback port until the test ends and returns its
// base URL.
func serve(t testing.TB, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

var nets atomic.Int64

// addresses returns a /24 of the loopback network that no other test of
// this process uses, as a function from host number to address. Every
// repetition of a test (-count) gets a fresh one too.
func addresses() func(host int) string {
	n := nets.Add(1)
	o2, o3 := 20+n/250, n%250
	return func(host int) string { return fmt.Sprintf("127.%d.%d.%d", o2, o3, host) }
}

// clientFrom returns an HTTP client whose connections come from the
// loopback address ip. It follows no redirects and keeps no connection
// open between requests.
func clientFrom(t testing.TB, ip string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport:     tr,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// bearerFrom is clientFrom sending credential as a bearer token on every
// request: the HTTP client of a go-sdk client session.
func bearerFrom(t testing.TB, ip, credential string) *http.Client {
	t.Helper()
	c := clientFrom(t, ip)
	c.Transport = bearerTransport{next: c.Transport, credential: credential}
	return c
}

type bearerTransport struct {
	next       http.RoundTripper
	credential string
}

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.credential)
	return b.next.RoundTrip(r)
}

// request is one raw HTTP request. The zero value is a POST to /mcp with
// the headers an MCP client sends on a request outside initialize.
type request struct {
	method  string // default POST
	path    string // default /mcp
	key     string // sent as "Authorization: Bearer <key>"
	body    string
	chunked bool // send the body without Content-Length
	host    string
	// header sets headers, replacing the defaults; an empty value removes
	// one.
	header map[string]string
	// add adds headers after everything else, so that a name may repeat.
	add http.Header
	// stream reads no body when the answer is an event stream: one that
	// stays open (a session's GET) would never end.
	stream bool
}

// response is one HTTP answer.
type response struct {
	status int
	header http.Header
	body   string
}

// String is everything the answer carries, for checks that nothing leaked.
func (r response) String() string {
	var b strings.Builder
	for k, vs := range r.header {
		fmt.Fprintf(&b, "%s: %s\n", k, strings.Join(vs, ", "))
	}
	return b.String() + r.body
}

// do sends r to the server at base through c and reads the answer.
func do(t testing.TB, c *http.Client, base string, r request) response {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodPost
	}
	if r.path == "" {
		r.path = "/mcp"
	}
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
		if r.chunked {
			body = struct{ io.Reader }{body} // hides the length: chunked encoding
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, r.method, base+r.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if r.chunked {
		req.ContentLength = -1
		req.TransferEncoding = []string{"chunked"}
	}
	if r.method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("MCP-Protocol-Version", protocol)
	}
	if r.key != "" {
		req.Header.Set("Authorization", "Bearer "+r.key)
	}
	for k, v := range r.header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	for k, vs := range r.add {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if r.host != "" {
		req.Host = r.host
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	if r.stream && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return response{status: resp.StatusCode, header: resp.Header} // an open stream: its events are not awaited
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// rpcMessage is a decoded JSON-RPC answer.
type rpcMessage struct {
	Result *struct {
		IsError bool `json:"isError"`
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
		StructuredContent json.RawMessage `json:"structuredContent"`
		Tools             []struct {
			Name string `json:"name"`
		} `json:"tools"`
	} `json:"result"`
	Error *struct {
		Code    int64           `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	} `json:"error"`
}

// rpc decodes the JSON-RPC message of an answer, whether it came as
// application/json or as an event stream (stateful mode).
func (r response) rpc(t testing.TB) rpcMessage {
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
	var m rpcMessage
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("answer %d is not a JSON-RPC message: %v\n%s", r.status, err, r.body)
	}
	return m
}

// text is the first text content of a tool result.
func (m rpcMessage) text() string {
	if m.Result == nil || len(m.Result.Content) == 0 {
		return ""
	}
	return m.Result.Content[0].Text
}

// toolNames are the names a tools/list result lists, sorted.
func (m rpcMessage) toolNames() []string {
	var names []string
	if m.Result != nil {
		for _, tool := range m.Result.Tools {
			names = append(names, tool.Name)
		}
	}
	slices.Sort(names)
	return names
}

// callBody is the body of a tools/call request.
func callBody(tool string, args map[string]any) string {
	b, err := json.Marshal(map[string]any{
		"jsonrpc": "2.0", "id": 1, "method": "tools/call",
		"params": map[string]any{"name": tool, "arguments": args},
	})
	if err != nil {
		panic(err)
	}
	return string(b)
}

// getBody is the body of a get_order_status call.
func getBody(orderID string) string {
	return callBody("get_order_status", map[string]any{"order_id": orderID})
}

const listToolsBody = `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`

// jsonOf is v in JSON.
func jsonOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// ok asserts that r is a successful answer (a result, and not a tool
// error) and returns it.
func ok(t testing.TB, r response) rpcMessage {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d, want 200: %.500s", r.status, r.body)
	}
	m := r.rpc(t)
	if m.Error != nil || m.Result == nil || m.Result.IsError {
		t.Fatalf("not served: %.500s", r.body)
	}
	return m
}

// served asserts that r is a successful tool result carrying orderID: the
// caller was served and got data.
func served(t testing.TB, r response, orderID string) {
	t.Helper()
	m := ok(t, r)
	var out struct {
		OrderID string `json:"order_id"`
		Status  string `json:"status"`
	}
	if err := json.Unmarshal(m.Result.StructuredContent, &out); err != nil || out.OrderID != orderID || out.Status == "" {
		t.Fatalf("no order data for %s in %s", orderID, r.body)
	}
}

// limited asserts that r is a 429 refusal about what, with the fixed
// rate-limit error in the body and a Retry-After header (which, when the
// error carries retry_after_seconds, must agree with it), and returns
// Retry-After in seconds.
func limited(t testing.TB, r response, what string) int {
	t.Helper()
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429: %.500s", r.status, r.body)
	}
	ra, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || ra < 1 {
		t.Fatalf("Retry-After %q, want a positive number of seconds", r.header.Get("Retry-After"))
	}
	m := r.rpc(t)
	if m.Error == nil || m.Error.Code != refusal.CodeRateLimited || !strings.HasPrefix(m.Error.Message, "Too many requests") ||
		!strings.Contains(m.Error.Message, what) {
		t.Fatalf("429 body is not the fixed rate-limit error about %q: %s", what, r.body)
	}
	if m.Result != nil {
		t.Fatalf("a refused request got a result: %s", r.body)
	}
	var data struct {
		RetryAfter *int `json:"retry_after_seconds"`
	}
	if len(m.Error.Data) > 0 {
		if err := json.Unmarshal(m.Error.Data, &data); err != nil {
			t.Fatalf("error data: %v: %s", err, r.body)
		}
	}
	if data.RetryAfter != nil && *data.RetryAfter != ra {
		t.Fatalf("retry_after_seconds %d, Retry-After %d: they must agree", *data.RetryAfter, ra)
	}
	return ra
}

// unavailable asserts that r is the catalogue's 503 with Retry-After, and
// nothing else.
func unavailable(t testing.TB, r response) {
	t.Helper()
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503: %.500s", r.status, r.body)
	}
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
		t.Fatalf("Retry-After %q, want a positive number of seconds", r.header.Get("Retry-After"))
	}
	m := r.rpc(t)
	if m.Result != nil || m.Error == nil || m.Error.Code != refusal.CodeUnavailable || m.Error.Message != refusal.Unavailable.Message() {
		t.Fatalf("503 body is not the catalogue's unavailable error: %s", r.body)
	}
}

// challenge parses a WWW-Authenticate header of the Bearer scheme.
func challenge(t testing.TB, h string) map[string]string {
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

// wantChallenge asserts that r carries one challenge with exactly the
// parameters want.
func wantChallenge(t testing.TB, r response, want map[string]string) {
	t.Helper()
	values := r.header.Values("WWW-Authenticate")
	if len(values) != 1 {
		t.Fatalf("status %d: want one WWW-Authenticate header, got %q", r.status, values)
	}
	got := challenge(t, values[0])
	if len(got) != len(want) {
		t.Fatalf("challenge %q: want exactly %v", values[0], want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("challenge %q: %s=%q, want %q", values[0], k, got[k], v)
		}
	}
}

// reasonWords would tell a caller why it was refused. They belong in the
// log only.
var reasonWords = []string{"expire", "revoke", "audience", "aud", "issuer", "iss", "signature", "sign",
	"alg", "none", "hs256", "rs256", "kid", "claim", "customer", "staff", "unknown", "malformed", "jwt",
	"secret", "scope", "subject", "not valid", "mismatch"}

// saysNothingWhy asserts that a refusal does not explain itself and
// carries no result.
func saysNothingWhy(t testing.TB, r response) {
	t.Helper()
	text := strings.ToLower(r.body + " " + strings.Join(r.header.Values("WWW-Authenticate"), " "))
	text = strings.ReplaceAll(text, "resource_metadata", "") // the parameter's name, not a reason
	text = strings.ReplaceAll(text, "oauth-protected-resource", "")
	text = strings.ReplaceAll(text, `scope="orders:read"`, "") // the scope to ask for, not a reason
	for _, w := range reasonWords {
		if strings.Contains(text, w) {
			t.Fatalf("the answer says why (%q): %s %q", w, r.body, r.header.Values("WWW-Authenticate"))
		}
	}
	if strings.Contains(r.body, `"result"`) {
		t.Fatalf("a refused request got a result: %s", r.body)
	}
}

// loggedReason asserts that the log written since mark (a length of
// env.Logs.String() taken before the request) records a refused credential
// for reason.
func loggedReason(t testing.TB, env *testenv.Env, mark int, reason string) {
	t.Helper()
	want := fmt.Sprintf(`"reason":%q`, reason)
	if logs := env.Logs.String()[mark:]; !strings.Contains(logs, want) {
		t.Fatalf("the log does not record the refusal reason %s:\n%s", want, logs)
	}
}

// noSecrets asserts that no secret of the demo data, none of credentials
// (API keys, their secret halves, JWTs and their parts) and nothing else
// of secrets appears in outputs or in the logs of envs.
func noSecrets(t testing.TB, envs []*testenv.Env, credentials []string, outputs ...string) {
	t.Helper()
	var keys, secrets []string
	for _, c := range credentials {
		if !auth.LooksLikeJWT(c) {
			keys = append(keys, c)
			continue
		}
		secrets = append(secrets, c)
		for _, part := range strings.Split(c, ".")[1:] {
			if len(part) >= 16 {
				secrets = append(secrets, part)
			}
		}
	}
	secrets = append(secrets, envs[0].Secrets(t, keys...)...)
	texts := slices.Clone(outputs)
	for _, e := range envs {
		texts = append(texts, e.Logs.String())
	}
	for _, s := range secrets {
		if s == "" {
			continue
		}
		for i, text := range texts {
			if strings.Contains(text, s) {
				t.Fatalf("secret %q leaked (text %d of %d: %d outputs, then the logs)", s, i+1, len(texts), len(outputs))
			}
		}
	}
}

// connect opens a go-sdk client session over Streamable HTTP with hc.
func connect(t testing.TB, base string, hc *http.Client, version string) *mcp.ClientSession {
	t.Helper()
	// It declares elicitation, and its user accepts every confirmation.
	client := mcp.NewClient(&mcp.Implementation{Name: "httpserver-test-client", Version: "1"},
		&mcp.ClientOptions{ElicitationHandler: testenv.Accept})
	cs, err := client.Connect(context.Background(), &mcp.StreamableClientTransport{
		Endpoint: base + "/mcp", HTTPClient: hc, MaxRetries: -1,
	}, &mcp.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

// listedTools lists the tools a session sees, sorted.
func listedTools(t testing.TB, cs *mcp.ClientSession) []string {
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

// resultJSON is everything a result carries, as one string.
func resultJSON(t testing.TB, res *mcp.CallToolResult) string {
	t.Helper()
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// customerClaims returns valid claims of the test issuer for a caller
// bound to customerID.
func customerClaims(iss *testenv.Issuer, subject, customerID string, scopes ...auth.Scope) jwt.MapClaims {
	c := iss.Claims(oauthResource, subject, scopes...)
	c["customer_id"] = customerID
	return c
}

// eventually polls cond until it holds, and fails the test if it does not
// within a generous bound: for states a test waits for (an idle session
// expiring), never for how fast anything is.
func eventually(t testing.TB, what string, every time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(every) {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s", what)
		}
	}
}

// perMinute is a rate of n per minute.
func perMinute(n int64) limiter.Rate { return limiter.Rate{Period: time.Minute, Limit: n} }

// limitsWith returns generous limits with change applied.
func limitsWith(change func(*limits.Config)) *limits.Config {
	l := testenv.GenerousLimits()
	change(&l)
	return &l
}

// noLockout keeps the brute-force lockout out of tests that present many
// bad credentials or bodies on purpose; the lockout has tests of its own.
var noLockout = func() limits.Policy {
	p := limits.DefaultPolicy()
	p.Threshold = 1_000_000
	return p
}()

// loggerTo is a logger with the project's redaction, for components built
// before an environment; its output is kept in logs.
func loggerTo(logs *testenv.Buffer) *slog.Logger { return logging.New(slog.LevelDebug, logs) }
