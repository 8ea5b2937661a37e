package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/example/order-mcp/internal/demo"
	"github.com/example/order-mcp/internal/store"
	"github.com/example/order-mcp/internal/testenv"
)

// Helpers shared by the fault-injection tests (fault_*_test.go). Each of
// those tests runs the real binary (serverBinary, startServe), puts it
// under load from callers with keys of their own, breaks something under
// it, and then judges every answer any client got and reads the audit
// trail back as the owner. Nothing is judged by timing: the tests wait
// for states (a spill file, a readiness answer, more results), each with
// a generous bound.

// faultEnv is the production environment of a serve process under test:
// its own database and spill directory, and the rate and concurrency
// limits raised out of the way of the load.
func faultEnv(databaseURL, spillDir string, extra ...string) []string {
	return append(prodEnv(
		"DATABASE_URL="+databaseURL,
		"AUDIT_SPILL_DIR="+spillDir,
		"MCP_HTTP_ADDR=127.0.0.1:0",
		"RATE_LIMIT_PER_PRINCIPAL=100000-M",
		"RATE_LIMIT_PER_IP=100000-M",
		"CONCURRENCY_PER_PRINCIPAL=100",
		// Not debug: a line per SQL statement under load is noise here.
		"LOG_LEVEL=info",
	), extra...)
}

// ownerConn connects to databaseURL as the owner, to set up and to read
// the audit trail back, which the server's own role cannot do.
func ownerConn(t *testing.T, databaseURL string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// faultCaller is one principal of the load: a key minted with `server
// keys create`, and the read calls it cycles through.
type faultCaller struct {
	subject string // the audit trail's principal: apikey:<key id>
	key     string
	calls   []faultCall
}

type faultCall struct {
	tool string
	args map[string]any
}

// newFaultCallers mints the load's principals through the binary: three
// customers' read keys and a staff key, each calling get_order_status on
// an order it may see and list_recent_orders.
func newFaultCallers(t *testing.T, env []string, db *pgx.Conn) []*faultCaller {
	t.Helper()
	customers := demo.Customers()
	orderOf := func(customer string) string {
		var id string
		if err := db.QueryRow(context.Background(),
			"SELECT id FROM orders WHERE customer_id = $1 ORDER BY id LIMIT 1", customer).Scan(&id); err != nil {
			t.Fatalf("an order of %s: %v", customer, err)
		}
		return id
	}
	mint := func(name, scopes string, flags ...string) (key, subject string) {
		args := append([]string{"keys", "create", "--name", name, "--scopes", scopes}, flags...)
		key = lastLine(cli(t, env, args...))
		if !strings.HasPrefix(key, "osmcp_") {
			t.Fatalf("keys create's last line is not a key: %q", key)
		}
		return key, "apikey:" + strings.Split(key, "_")[1]
	}
	var callers []*faultCaller
	for i, c := range customers[:3] {
		key, subject := mint(fmt.Sprintf("fault-customer-%d", i), "orders:read", "--customer", c.ID)
		callers = append(callers, &faultCaller{subject: subject, key: key, calls: []faultCall{
			{"get_order_status", map[string]any{"order_id": orderOf(c.ID)}},
			{"list_recent_orders", map[string]any{"limit": 5}},
		}})
	}
	other := customers[3].ID
	key, subject := mint("fault-staff", "orders:read,orders:read:any")
	callers = append(callers, &faultCaller{subject: subject, key: key, calls: []faultCall{
		{"get_order_status", map[string]any{"order_id": orderOf(other)}},
		{"list_recent_orders", map[string]any{"customer_id": other, "limit": 5}},
	}})
	return callers
}

// What became of one call, as its client saw it.
const (
	answerResult    = "result"    // HTTP 200, one JSON-RPC response with a tool result
	answerInternal  = "internal"  // "Internal error, reference <id>", as a tool result or a JSON-RPC error
	answerRefused   = "refused"   // HTTP 503 with Retry-After and a JSON-RPC error
	answerUnreached = "unreached" // no response began: the connection was refused or closed
	answerProblem   = "problem"   // anything else: the test fails
)

type faultAnswer struct {
	subject string
	kind    string
	ref     string // the correlation id of an internal error
	detail  string // what was wrong, for a problem
	// The load's phase (see faultLoad.phase) when the call was sent and
	// when its answer, or its failure, came back.
	sentIn, answeredIn int32
}

// faultLoad is concurrent clients calling tools over raw HTTP, in the
// 2025-11-25 protocol's stateless form, until stopped. Every answer is
// kept and judged.
type faultLoad struct {
	url    string
	client *http.Client
	nextID atomic.Int64
	// phase is advanced by the test at the moment it injects a fault, so
	// that each answer says whether its call straddled the fault.
	phase    atomic.Int32
	stopping atomic.Bool
	wg       sync.WaitGroup

	mu      sync.Mutex
	answers []faultAnswer
}

// newFaultClient is a faultLoad without workers, for tests that send
// their calls one at a time (faultLoad.call).
func newFaultClient(url string, conns int) *faultLoad {
	return &faultLoad{url: url, client: &http.Client{
		Timeout:   2 * time.Minute, // a bound against a hung server, not a judgement
		Transport: &http.Transport{MaxIdleConnsPerHost: conns},
	}}
}

// startFaultLoad starts perCaller clients for each caller. Stop it with
// stop, which lets every call in flight finish.
func startFaultLoad(t *testing.T, url string, callers []*faultCaller, perCaller int) *faultLoad {
	l := newFaultClient(url, len(callers)*perCaller)
	for _, c := range callers {
		for range perCaller {
			l.wg.Go(func() {
				for i := 0; !l.stopping.Load(); i++ {
					a := l.call(c, c.calls[i%len(c.calls)])
					l.mu.Lock()
					l.answers = append(l.answers, a)
					l.mu.Unlock()
					if a.kind != answerResult {
						// Pacing, not a judgement: a refused caller does not
						// spin while the server is without its database.
						time.Sleep(20 * time.Millisecond)
					}
				}
			})
		}
	}
	t.Cleanup(l.stop)
	return l
}

// stop ends the load: no new calls, and every call in flight is answered
// (or fails) before it returns. Calls are never cancelled: a call whose
// client gave up could be recorded without its answer being counted.
func (l *faultLoad) stop() {
	l.stopping.Store(true)
	l.wg.Wait()
	l.client.CloseIdleConnections()
}

// snapshot returns a copy of the answers so far.
func (l *faultLoad) snapshot() []faultAnswer {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]faultAnswer(nil), l.answers...)
}

// results counts the answers with a result, per principal.
func results(answers []faultAnswer) map[string]int {
	n := map[string]int{}
	for _, a := range answers {
		if a.kind == answerResult {
			n[a.subject]++
		}
	}
	return n
}

// waitForResults waits until every caller has had n more results than it
// had when called: the server answers every principal.
func (l *faultLoad) waitForResults(t *testing.T, callers []*faultCaller, n int, what string) {
	t.Helper()
	before := results(l.snapshot())
	waitFor(t, time.Minute, what, func() bool {
		now := results(l.snapshot())
		for _, c := range callers {
			if now[c.subject] < before[c.subject]+n {
				return false
			}
		}
		return true
	})
}

// call sends one tools/call and judges what comes back.
func (l *faultLoad) call(c *faultCaller, fc faultCall) faultAnswer {
	id := l.nextID.Add(1)
	a := faultAnswer{subject: c.subject, sentIn: l.phase.Load()}
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": "tools/call",
		"params": map[string]any{"name": fc.tool, "arguments": fc.args}})
	req, err := http.NewRequest(http.MethodPost, l.url, bytes.NewReader(body))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", testenv.Protocol20251125)
	resp, err := l.client.Do(req)
	if err != nil {
		// No response began: refused, or closed before a status line.
		a.kind, a.detail, a.answeredIn = answerUnreached, err.Error(), l.phase.Load()
		return a
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	a.answeredIn = l.phase.Load()
	if err != nil {
		a.kind, a.detail = answerProblem, fmt.Sprintf("HTTP %d with a truncated body (%v): %q", resp.StatusCode, err, data)
		return a
	}
	if leak := internalDetail(data); leak != "" {
		a.kind, a.detail = answerProblem, fmt.Sprintf("HTTP %d body reveals %q: %s", resp.StatusCode, leak, data)
		return a
	}
	a.kind, a.ref, a.detail = judgeAnswer(resp, data, id)
	return a
}

// judgeAnswer classifies one HTTP answer to a tools/call with id.
func judgeAnswer(resp *http.Response, data []byte, id int64) (kind, ref, detail string) {
	problem := func(format string, args ...any) (string, string, string) {
		return answerProblem, "", fmt.Sprintf("HTTP %d: ", resp.StatusCode) + fmt.Sprintf(format, args...) + fmt.Sprintf(": %q", data)
	}
	var msg struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Result  *struct {
			IsError bool `json:"isError"`
			Content []struct {
				Text string `json:"text"`
			} `json:"content"`
		} `json:"result"`
		Error *struct {
			Code    int64  `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&msg); err != nil {
		return problem("not one complete JSON-RPC response (%v)", err)
	}
	if len(bytes.TrimSpace(data[dec.InputOffset():])) > 0 {
		return problem("more than one JSON value")
	}
	if msg.JSONRPC != "2.0" || (msg.Result == nil) == (msg.Error == nil) {
		return problem("not a JSON-RPC response")
	}
	switch resp.StatusCode {
	case http.StatusOK:
		if string(msg.ID) != strconv.FormatInt(id, 10) {
			return problem("the answer to another request (id %s, want %d)", msg.ID, id)
		}
		if msg.Error != nil {
			if ref := internalRef(msg.Error.Message); ref != "" {
				return answerInternal, ref, ""
			}
			return problem("unexpected JSON-RPC error")
		}
		if !msg.Result.IsError {
			if len(msg.Result.Content) == 0 {
				return problem("a result without content")
			}
			return answerResult, "", ""
		}
		if len(msg.Result.Content) == 1 {
			if ref := internalRef(msg.Result.Content[0].Text); ref != "" {
				return answerInternal, ref, ""
			}
		}
		return problem("unexpected tool error")
	case http.StatusServiceUnavailable:
		if resp.Header.Get("Retry-After") == "" || msg.Error == nil {
			return problem("503 without Retry-After or a JSON-RPC error")
		}
		return answerRefused, "", ""
	}
	return problem("unexpected status")
}

var internalRefPattern = regexp.MustCompile(`^Internal error, reference ([a-z0-9]+)\. Please try again later\.$`)

// internalRef returns the correlation id of an internal-error text, or "".
func internalRef(text string) string {
	if m := internalRefPattern.FindStringSubmatch(text); m != nil {
		return m[1]
	}
	return ""
}

// internalDetails are fragments of what must never reach a client: driver
// and network errors, the names of the server's dependencies and files,
// Go's type names and stack traces. Matched without regard to case.
var internalDetails = []string{
	"sqlstate", "pgx", "pgconn", "postgres", "redis", "dial tcp", "dial unix", "connection refused",
	"connection reset", "broken pipe", "unexpected eof", "context deadline", "context canceled",
	"spill", "advisory", "goroutine", "panic", ".go:", "/tmp/", "/work/", "/usr/", "/var/",
	"*store.", "*audit.", "*net.", "*errors.", "*fmt.", "*url.", "127.0.0.1",
}

// internalDetail returns the first internal detail body reveals, or "".
func internalDetail(body []byte) string {
	lower := bytes.ToLower(body)
	for _, s := range internalDetails {
		if bytes.Contains(lower, []byte(s)) {
			return s
		}
	}
	return ""
}

// waitFor polls cond until it holds, failing the test after bound.
func waitFor(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, bound)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkProblems fails the test with every problem answer (at most a few
// of each kind are shown).
func checkProblems(t *testing.T, answers []faultAnswer) {
	t.Helper()
	shown := 0
	for _, a := range answers {
		if a.kind == answerProblem {
			if shown < 10 {
				t.Errorf("%s: %s", a.subject, a.detail)
			}
			shown++
		}
	}
	if shown > 10 {
		t.Errorf("... and %d more problem answers", shown-10)
	}
}

// tally counts answers by kind, for the log.
func tally(answers []faultAnswer) map[string]int {
	n := map[string]int{}
	for _, a := range answers {
		n[a.kind]++
	}
	return n
}

// checkEveryAnswerAudited reads the audit trail back as the owner and
// checks the promise "one record per tool call" against what the clients
// saw: each principal has exactly as many records with outcome ok as its
// clients got results, and every internal-error reference a client got
// names exactly one record, which says the call failed or its result was
// withheld. A reference whose record waits in the spill directory is
// waited for (the replay runs every few seconds once Postgres answers).
//
// A record whose commit was durable but never acknowledged (Postgres went
// away between the two) says "ok" although the server withheld the
// result: such a call must have a correction record (kind "correction",
// outcome "withheld", same correlation id), appended when the spilled copy
// is replayed, and its "ok" does not count as a result delivered.
func checkEveryAnswerAudited(t *testing.T, db *pgx.Conn, callers []*faultCaller, answers []faultAnswer) {
	t.Helper()
	ctx := context.Background()

	var refs []string
	for _, a := range answers {
		if a.kind == answerInternal {
			refs = append(refs, a.ref)
		}
	}
	if n := len(refs) - len(uniq(refs)); n != 0 {
		t.Errorf("%d internal-error references were given to two answers", n)
	}
	refs = uniq(refs)
	type record struct{ outcome, reason string }
	var byRef map[string][]record
	corrected := map[string]bool{}
	read := func() bool {
		byRef = map[string][]record{}
		clear(corrected)
		rows, err := db.Query(ctx, `SELECT correlation_id, kind, outcome, reason FROM audit_log
			 WHERE kind IN ('tool_call', 'correction') AND correlation_id = ANY($1)`, refs)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var ref, kind string
			var r record
			if err := rows.Scan(&ref, &kind, &r.outcome, &r.reason); err != nil {
				t.Fatal(err)
			}
			if kind == "correction" {
				corrected[ref] = r.outcome == "withheld"
				continue
			}
			byRef[ref] = append(byRef[ref], r)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return len(byRef) == len(refs)
	}
	deadline := time.Now().Add(time.Minute)
	for !read() && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	missing := 0
	for _, ref := range refs {
		switch recs := byRef[ref]; {
		case len(recs) == 0:
			if missing < 5 {
				t.Errorf("a client got \"Internal error, reference %s\", and no tool-call record has that correlation id", ref)
			}
			missing++
		case len(recs) > 1:
			t.Errorf("reference %s: %d records, want one: %+v", ref, len(recs), recs)
		case recs[0].outcome == "ok" && corrected[ref]:
			// committed unacknowledged, and corrected: the trail says the
			// result was withheld
		case recs[0].outcome != "error" && recs[0].outcome != "withheld":
			t.Errorf("reference %s: the client got an internal error, and the call's one record says outcome %q "+
				"with no correction: the trail says the caller got the result it was refused", ref, recs[0].outcome)
		}
	}
	if missing > 5 {
		t.Errorf("... %d references in all without a record", missing)
	}

	got := results(answers)
	subjects := make([]string, 0, len(callers))
	for _, c := range callers {
		subjects = append(subjects, c.subject)
	}
	recorded := map[string]int{}
	rows, err := db.Query(ctx, `SELECT principal, count(*) FROM audit_log a
		 WHERE kind = 'tool_call' AND outcome = 'ok' AND principal = ANY($1)
		   AND NOT EXISTS (SELECT 1 FROM audit_log c WHERE c.kind = 'correction' AND c.correlation_id = a.correlation_id)
		 GROUP BY principal`, subjects)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var p string
		var n int
		if err := rows.Scan(&p, &n); err != nil {
			t.Fatal(err)
		}
		recorded[p] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, s := range subjects {
		if recorded[s] != got[s] {
			t.Errorf("%s: clients got %d results, the audit trail holds %d records with outcome ok", s, got[s], recorded[s])
		}
	}

	var twice int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM (SELECT correlation_id FROM audit_log
		 WHERE kind = 'tool_call' GROUP BY correlation_id HAVING count(*) > 1) AS d`).Scan(&twice); err != nil {
		t.Fatal(err)
	}
	if twice != 0 {
		t.Errorf("%d tool calls are in the audit trail more than once", twice)
	}
}

func uniq(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// holdAuditChainLock takes the advisory lock that orders audit appends,
// from a connection of its own, so that the server's next commit waits in
// Postgres: a fault injected then finds a commit in flight, every time.
// The returned release drops the lock by closing the connection, which
// works as well when Postgres has gone away under it.
func holdAuditChainLock(t *testing.T, databaseURL string) (release func()) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", store.AuditChainLockKey); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() { once.Do(func() { _ = conn.Close(ctx) }) }
	t.Cleanup(release)
	return release
}

// waitForAuditCommitInFlight waits until an audit append waits for the
// chain lock: a tool call's record is being committed, its answer not
// yet sent.
func waitForAuditCommitInFlight(t *testing.T, databaseURL string) {
	t.Helper()
	db := ownerConn(t, databaseURL)
	waitFor(t, time.Minute, "an audit commit waiting on the chain lock", func() bool {
		var n int
		if err := db.QueryRow(context.Background(), `SELECT count(*) FROM pg_locks
			 WHERE locktype = 'advisory' AND NOT granted
			   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n > 0
	})
}

// httpStatus GETs url and returns the status, or 0 if no answer came.
func httpStatus(url string) int {
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(url)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
