package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/dbtest"
	"github.com/example/order-mcp/internal/demo"
	"github.com/example/order-mcp/internal/store"
	"github.com/example/order-mcp/internal/testenv"
)

var dsn string

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m, &dsn)) }

// auditKey is a strong key, so the end-to-end tests run in production mode.
var auditKey = func() string {
	b := make([]byte, 48)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}()

// confirmationSecret seals the state of confirmations in production runs.
var confirmationSecret = func() string {
	b := make([]byte, 48)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}()

// toolDigestKey signs the tool digest in production runs: the base64 of
// an Ed25519 seed.
var toolDigestKey = func() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}()

// prodEnv is the environment of a production run against the test database.
func prodEnv(extra ...string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"MCP_ENV=production",
		"DATABASE_URL=" + dsn,
		"AUDIT_HMAC_KEY=" + auditKey,
		"CONFIRMATION_SECRET=" + confirmationSecret,
		"TOOL_DIGEST_SIGNING_KEY=" + toolDigestKey,
		"LOG_LEVEL=debug",
	}
	return append(env, extra...)
}

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// serverBinary builds the server once for the package.
func serverBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "order-mcp-e2e")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "server")
		out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
		if err != nil {
			buildErr = err
			t.Logf("%s", out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

// cli runs one command of the binary and returns its stdout.
func cli(t *testing.T, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(serverBinary(t), args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("server %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// TestEndToEnd builds the binary and uses it the way the README does:
// migrate, seed, keys create, then serve over HTTP and stdio, driven by the
// go-sdk client.
func TestEndToEnd(t *testing.T) {
	env := prodEnv()
	if out := cli(t, env, "migrate"); !strings.Contains(out, "migrations applied") {
		t.Fatalf("migrate printed %q", out)
	}
	seeded := cli(t, env, "seed")
	customer := demo.Customers()[0].ID
	if !strings.Contains(seeded, customer) {
		t.Fatalf("seed did not list the demo customers: %q", seeded)
	}
	key := lastLine(cli(t, env, "keys", "create", "--name", "e2e", "--scopes", "orders:read,orders:cancel", "--customer", customer))
	if !strings.HasPrefix(key, "osmcp_") {
		t.Fatalf("keys create's last line is not a key: %q", key)
	}
	if list := cli(t, env, "keys", "list"); strings.Contains(list, key) || strings.Contains(list, key[19:]) {
		t.Fatal("keys list shows the secret")
	}

	t.Run("ServeOverHTTP", func(t *testing.T) {
		url, stderr, stop := startServe(t, env)
		for _, version := range []string{testenv.Protocol20251125, testenv.Protocol20260728} {
			t.Run(version, func(t *testing.T) {
				cs := connect(t, &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: testenv.BearerClient(key), MaxRetries: -1}, version)
				checkSession(t, cs, customer)
			})
		}
		if code := stop(); code != 0 {
			t.Fatalf("serve exited %d after SIGTERM\n%s", code, stderr.String())
		}
		checkLogs(t, stderr.String(), key)
	})

	t.Run("StdioWithARevokedKeyIsRefused", func(t *testing.T) {
		stdioKey := lastLine(cli(t, env, "keys", "create", "--name", "e2e-stdio", "--scopes", "orders:read", "--customer", customer))
		var stderr bytes.Buffer
		cmd := exec.Command(serverBinary(t), "stdio")
		cmd.Env = prodEnv("MCP_API_KEY=" + stdioKey)
		cmd.Stderr = &stderr
		cs := connect(t, &mcp.CommandTransport{Command: cmd}, testenv.Protocol20251125)
		checkSession(t, cs, customer)

		// The running server learns of the revocation through a Postgres
		// notification, a moment after the CLI commits it: poll, within a
		// bound well below CREDENTIAL_CACHE_TTL (30 s), so that only the
		// notification can be what refuses the key.
		keyID := strings.Split(stdioKey, "_")[1]
		cli(t, env, "keys", "revoke", keyID)
		var err error
		waitFor(t, 10*time.Second, "the revoked key refused", func() bool {
			_, err = cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "list_recent_orders", Arguments: map[string]any{}})
			return err != nil
		})
		if !strings.Contains(err.Error(), "Unauthenticated") {
			t.Fatalf("call with a revoked key: err = %v", err)
		}
		if _, err := cs.ListTools(context.Background(), nil); err == nil {
			t.Fatal("tools/list with a revoked key succeeded")
		}
		_ = cs.Close()
		checkLogs(t, stderr.String(), stdioKey)
	})

	t.Run("AdminActionsAreAuditedAndTheChainVerifies", func(t *testing.T) {
		owner := dbtest.Owner(t, dsn)
		var actions []string
		err := owner.ReadAudit(context.Background(), 0, 0, func(e *store.AuditEntry) error {
			if e.Kind == "admin" {
				actions = append(actions, e.Action)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"migrate", "seed", "keys create", "keys revoke"} {
			if !slices.Contains(actions, want) {
				t.Errorf("no audit record for %q (have %v)", want, actions)
			}
		}
		if out := cli(t, env, "audit", "verify"); !strings.Contains(out, "audit trail intact") || !strings.Contains(out, "head seq") {
			t.Fatalf("audit verify printed %q", out)
		}
		// The same chain under another key does not verify: the key is
		// what makes the chain evidence.
		cmd := exec.Command(serverBinary(t), "audit", "verify")
		other := make([]byte, 48)
		_, _ = rand.Read(other)
		cmd.Env = append(prodEnv(), "AUDIT_HMAC_KEY="+base64.StdEncoding.EncodeToString(other))
		if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "audit trail broken at seq 1") {
			t.Fatalf("verify under another key: %v %s", err, out)
		}
	})

	t.Run("StdioRefusesToStartWithABadKey", func(t *testing.T) {
		cmd := exec.Command(serverBinary(t), "stdio")
		cmd.Env = prodEnv("MCP_API_KEY=osmcp_aaaaaaaaaaaa_" + strings.Repeat("b", 52))
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Fatal("stdio started with an unknown key")
		}
		msg := lastLine(string(out))
		if !strings.Contains(msg, "MCP_API_KEY was refused") || strings.Contains(msg, strings.Repeat("b", 52)) {
			t.Fatalf("unclear or leaking message: %q", msg)
		}
	})
}

// boundedCommand runs the server binary for a command expected to fail
// quickly: should a control be missing and the command serve instead, the
// test fails after a minute rather than hanging the suite.
func boundedCommand(t *testing.T, args ...string) *exec.Cmd {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return exec.CommandContext(ctx, serverBinary(t), args...)
}

// missingDatabase is the URL of a database that does not exist on the test
// server.
func missingDatabase(t *testing.T) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/order_mcp_does_not_exist"
	return u.String()
}

// emptyDatabase creates a database of its own for one test, dropped when
// the test ends, and returns its URL: nothing migrated, nothing seeded.
func emptyDatabase(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	admin := dbtest.AdminURL()
	name := fmt.Sprintf("test_empty_%d", time.Now().UnixNano())
	owner, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := owner.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = owner.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		_ = owner.Close(ctx)
	})
	return dbtest.WithDatabase(admin, name)
}

// TestConcurrentMigrationsApplyOnce: replicas starting together each run
// `server migrate` on the same empty database; every run succeeds and each
// migration is applied exactly once.
func TestConcurrentMigrationsApplyOnce(t *testing.T) {
	env := append(prodEnv(), "DATABASE_URL="+emptyDatabase(t))

	const replicas = 4
	var wg sync.WaitGroup
	outs := make([]string, replicas)
	bin := serverBinary(t)
	for i := range replicas {
		wg.Go(func() {
			cmd := exec.Command(bin, "migrate")
			cmd.Env = env
			out, err := cmd.Output()
			if err != nil {
				t.Errorf("replica %d: migrate: %v", i, err)
			}
			outs[i] = string(out)
		})
	}
	wg.Wait()
	total := 0
	for _, out := range outs {
		var n int
		if _, err := fmt.Sscanf(out, "migrations applied: %d", &n); err != nil {
			t.Fatalf("migrate printed %q", out)
		}
		total += n
	}
	files, _ := filepath.Glob("../../migrations/*.sql")
	if total != len(files) {
		t.Fatalf("%d replicas applied %d migrations in all, want each of the %d once", replicas, total, len(files))
	}
}

// startServe runs `server serve` on a free loopback port and returns the
// MCP URL, its stderr, and a function that sends SIGTERM and waits.
func startServe(t *testing.T, env []string) (string, *testenv.Buffer, func() int) {
	t.Helper()
	cmd := exec.Command(serverBinary(t), "serve")
	// The caller's MCP_HTTP_ADDR, if any, wins: exec uses the last value.
	cmd.Env = append([]string{"MCP_HTTP_ADDR=127.0.0.1:0"}, env...)
	stderr := &testenv.Buffer{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan int, 1)
	url := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
				url <- u
			}
		}
		_ = cmd.Wait()
		done <- cmd.ProcessState.ExitCode()
	}()
	select {
	case u := <-url:
		stop := func() int {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case code := <-done:
				return code
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
				return -1
			}
		}
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		return u, stderr, stop
	case code := <-done:
		t.Fatalf("serve exited %d:\n%s", code, stderr.String())
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("serve did not start:\n%s", stderr.String())
	}
	return "", nil, nil
}

func connect(t *testing.T, transport mcp.Transport, version string) *mcp.ClientSession {
	t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil)
	cs, err := client.Connect(context.Background(), transport, &mcp.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

// checkSession exercises the tools a read key can use.
func checkSession(t *testing.T, cs *mcp.ClientSession, customer string) {
	t.Helper()
	ctx := context.Background()
	tools, err := cs.ListTools(ctx, nil)
	if err != nil || len(tools.Tools) == 0 {
		t.Fatalf("tools/list: %v", err)
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "list_recent_orders", Arguments: map[string]any{"limit": 3}})
	if err != nil || res.IsError {
		t.Fatalf("list_recent_orders: %v %+v", err, res)
	}
	var list struct {
		CustomerID string `json:"customer_id"`
		Orders     []struct {
			OrderID string `json:"order_id"`
		} `json:"orders"`
	}
	b, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(b, &list); err != nil || list.CustomerID != customer || len(list.Orders) != 3 {
		t.Fatalf("list_recent_orders returned %s", b)
	}
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "get_order_status", Arguments: map[string]any{"order_id": list.Orders[0].OrderID}})
	if err != nil || res.IsError {
		t.Fatalf("get_order_status: %v %+v", err, res)
	}
}

// checkLogs asserts that the server's logs are JSON lines and carry no
// secret: no key, no full email or phone, no internal note.
func checkLogs(t *testing.T, logs, key string) {
	t.Helper()
	if logs == "" {
		t.Fatal("no logs")
	}
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		if !json.Valid([]byte(line)) {
			t.Fatalf("log line is not JSON: %q", line)
		}
	}
	secret := key[strings.LastIndex(key, "_")+1:]
	forbidden := []string{key, secret}
	for _, c := range demo.Customers() {
		forbidden = append(forbidden, c.Email, c.Phone, c.Address)
	}
	for _, s := range forbidden {
		if strings.Contains(logs, s) {
			t.Fatalf("logs contain %q", s)
		}
	}
	if strings.Contains(logs, "Chargeback") || strings.Contains(logs, "fraud model") {
		t.Fatal("logs contain an internal note")
	}
}

// TestRunServesInProcess drives run() directly, as main does, on
// 127.0.0.1:0, and shuts it down by cancelling its context.
func TestRunServesInProcess(t *testing.T) {
	for _, stateful := range []bool{false, true} {
		t.Run(fmt.Sprintf("stateful=%v", stateful), func(t *testing.T) { runInProcess(t, stateful) })
	}
}

// runInProcess serves, runs a session, and cancels. In stateful mode the
// client holds an event stream open (the standalone GET); shutdown must
// end it, not wait for it until its deadline and fail.
func runInProcess(t *testing.T, stateful bool) {
	getenv := func(k string) string {
		for _, kv := range prodEnv("MCP_HTTP_ADDR=127.0.0.1:0", fmt.Sprintf("MCP_HTTP_STATEFUL=%v", stateful)) {
			if name, v, _ := strings.Cut(kv, "="); name == k {
				return v
			}
		}
		return ""
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	var stderr testenv.Buffer
	done := make(chan error, 1)
	go func() {
		err := run(ctx, []string{"server", "serve"}, getenv, strings.NewReader(""), pw, &stderr)
		done <- err
		// Run returned (refusing to start, say): end the wait for its
		// "listening on" line instead of blocking until the test times out.
		_ = pw.CloseWithError(fmt.Errorf("run returned before listening: %v", err))
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	url := strings.TrimSpace(strings.TrimPrefix(line, "listening on "))
	go func() { _, _ = io.Copy(io.Discard, pr) }()

	owner := dbtest.Owner(t, dsn)
	key, _ := dbtest.MintKey(t, owner, dbtest.KeyOptions{Scopes: []auth.Scope{"orders:read"}, CustomerID: demo.Customers()[1].ID})
	cs := connect(t, &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: testenv.BearerClient(key), MaxRetries: -1}, "")
	checkSession(t, cs, demo.Customers()[1].ID)
	if stateful && cs.ID() == "" {
		t.Fatal("stateful mode gave the session no id")
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	_ = pw.Close()
}

// TestCommandLineErrors: failures exit non-zero with one line on stderr.
func TestCommandLineErrors(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"UnknownCommand", prodEnv(), []string{"frobnicate"}, "unknown command"},
		{"NoCommand", prodEnv(), nil, "bad command line; run `server help`"},
		{"MissingDatabaseURL", []string{"MCP_ENV=production", "AUDIT_HMAC_KEY=" + auditKey}, []string{"migrate"}, "DATABASE_URL is required"},
		{"KeyWithoutBindingOrStaff", prodEnv(), []string{"keys", "create", "--name", "x", "--scopes", "orders:read"}, "needs --customer"},
		{"KeyWithUnknownFlag", prodEnv(), []string{"keys", "create", "--bogus"}, "flag provided but not defined: -bogus; usage: server keys create"},
		{"KeyWithUnknownScope", prodEnv(), []string{"keys", "create", "--name", "x", "--scopes", "admin", "--customer", "cus_0000000000000000"}, "unknown scope"},
		{"KeyForUnknownCustomer", prodEnv(), []string{"keys", "create", "--name", "x", "--scopes", "orders:read", "--customer", "cus_0000000000000000"}, "no customer"},
		// Start-up failures after configuration, inside the wiring: still one
		// line naming the problem, never a panic.
		{"ServeOnAMissingDatabase", prodEnv("DATABASE_URL=" + missingDatabase(t)), []string{"serve"}, "database not reachable or not migrated"},
		{"ServeOnAnUnmigratedDatabase", prodEnv("DATABASE_URL=" + emptyDatabase(t)), []string{"serve"}, "not migrated (run `server migrate`)"},
		{"StdioOnAnUnmigratedDatabase", prodEnv("DATABASE_URL="+emptyDatabase(t), "MCP_API_KEY=osmcp_aaaaaaaaaaaa_"+strings.Repeat("b", 52)), []string{"stdio"}, "not migrated (run `server migrate`)"},
		{"ExampleAuditKeyInProduction", append(prodEnv(), "AUDIT_HMAC_KEY=change-me-audit-hmac-key-at-least-32-bytes-long"), []string{"serve"}, "AUDIT_HMAC_KEY is an example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := boundedCommand(t, tt.args...)
			// Later entries win: the overriding AUDIT_HMAC_KEY comes last.
			cmd.Env = tt.env
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if err == nil {
				t.Fatalf("exit 0; stdout %q", stdout.String())
			}
			msg := strings.TrimSpace(stderr.String())
			last := lastLine(msg)
			if !strings.HasPrefix(last, "server: ") || !strings.Contains(last, tt.want) {
				t.Fatalf("stderr %q, want a one-line message containing %q", msg, tt.want)
			}
			// Everything before the message is JSON log lines: no usage
			// dump, no second line of the error.
			for _, line := range strings.Split(msg, "\n")[:strings.Count(msg, "\n")] {
				if !json.Valid([]byte(line)) {
					t.Fatalf("stderr has a non-log line before the message: %q", msg)
				}
			}
		})
	}
}
