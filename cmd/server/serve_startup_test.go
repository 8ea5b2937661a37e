package main

// Tests of how `serve` refuses to start, or narrows what it answers, when
// what it was given would expose it: a schema breaking the permission
// rules, no way for anyone to call it, a public address.

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/example/order-mcp/internal/testenv"
)

// TestServeRefusesASchemaThatBreaksThePermissionRules: a migration that
// adds customer data without forced row-level security (the step a forker
// forgets) stops the server at start-up, naming the table and the rule.
func TestServeRefusesASchemaThatBreaksThePermissionRules(t *testing.T) {
	dsn := emptyDatabase(t)
	env := append(prodEnv(), "DATABASE_URL="+dsn)
	cli(t, env, "migrate")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, stmt := range []string{
		`CREATE TABLE wishlists (customer_id text REFERENCES customers (id), item text)`,
		`GRANT SELECT (customer_id, item) ON wishlists TO order_mcp_app`,
	} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	cmd := boundedCommand(t, "serve")
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if line := lastLine(string(out)); err == nil || !strings.Contains(line, "wishlists: customer data needs row-level security") {
		t.Fatalf("serve on a schema with an unprotected customer table: %v\n%s", err, out)
	}
}

// TestServeRefusesToExposeAServerNobodyCanUse: on a non-loopback address,
// with no active API key and no OAuth issuer, serve does not start.
func TestServeRefusesToExposeAServerNobodyCanUse(t *testing.T) {
	env := append(prodEnv(), "DATABASE_URL="+emptyDatabase(t), "MCP_HTTP_ADDR=0.0.0.0:0",
		"MCP_TLS_TERMINATED_BY_PROXY=true", "MCP_RESOURCE_URL=https://mcp.example.com/mcp")
	cli(t, env, "migrate")

	cmd := boundedCommand(t, "serve")
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(lastLine(string(out)), "authentication is not configured") {
		t.Fatalf("serve with no way to authenticate: %v\n%s", err, out)
	}
}

// TestServeOnLoopbackWithoutAKeySaysHowToMintOne: on loopback a server
// nobody can use yet still starts (a developer is about to mint a key),
// but it says so at start-up, with the command that mints one, instead of
// answering every request 401 in silence.
func TestServeOnLoopbackWithoutAKeySaysHowToMintOne(t *testing.T) {
	env := append(prodEnv(), "DATABASE_URL="+emptyDatabase(t))
	cli(t, env, "migrate")
	_, stderr, stop := startServe(t, env)
	if code := stop(); code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	if logs := stderr.String(); !strings.Contains(logs, "no active API key") || !strings.Contains(logs, "server keys create --name") {
		t.Fatalf("no warning naming the command that mints a key:\n%s", logs)
	}
}

// TestServeBeyondLoopbackAnswersOnlyItsPublicHost: on a non-loopback
// listener the SDK's DNS-rebinding rule does not apply, so without
// MCP_ALLOWED_HOSTS the host of MCP_RESOURCE_URL becomes the allow-list. A
// request addressed to any other name (a rebinding page's) is refused.
func TestServeBeyondLoopbackAnswersOnlyItsPublicHost(t *testing.T) {
	env := append(prodEnv(), "DATABASE_URL="+emptyDatabase(t), "MCP_HTTP_ADDR=0.0.0.0:0",
		"MCP_TLS_TERMINATED_BY_PROXY=true", "MCP_RESOURCE_URL=https://mcp.example.com/mcp")
	cli(t, env, "migrate")
	key := lastLine(cli(t, env, "keys", "create", "--name", "staff", "--scopes", "orders:read,orders:read:any"))
	listening, stderr, stop := startServe(t, env)
	_, port, err := net.SplitHostPort(strings.TrimSuffix(strings.TrimPrefix(listening, "http://"), "/mcp"))
	if err != nil {
		t.Fatalf("listening on %q: %v", listening, err)
	}
	post := func(addr, host string) int {
		body := `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}`
		req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/mcp", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("MCP-Protocol-Version", testenv.Protocol20251125)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	// Over loopback, and over this machine's first other address (a
	// connection to which the loopback-only rule would not protect).
	addrs := []string{net.JoinHostPort("127.0.0.1", port)}
	if ip := firstNonLoopbackIPv4(); ip != "" {
		addrs = append(addrs, net.JoinHostPort(ip, port))
	}
	for _, addr := range addrs {
		for _, host := range []string{"evil.example", addr, "mcp.example.com.evil.example"} {
			if code := post(addr, host); code != http.StatusForbidden {
				t.Errorf("to %s with Host %s: status %d, want 403", addr, host, code)
			}
		}
		if code := post(addr, "mcp.example.com"); code != http.StatusOK {
			t.Errorf("to %s with Host mcp.example.com (the resource URL's): status %d, want 200", addr, code)
		}
	}
	if code := stop(); code != 0 {
		t.Fatalf("serve exited %d\n%s", code, stderr.String())
	}
	checkLogs(t, stderr.String(), key)
}

func firstNonLoopbackIPv4() string {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			return n.IP.String()
		}
	}
	return ""
}
