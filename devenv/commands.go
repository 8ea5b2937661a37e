package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// devDatabase is the database `make run` creates on a local Postgres.
const devDatabase = "order_mcp_dev"

type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// execWithDatabase runs argv with TEST_DATABASE_URL pointing at a Postgres
// and, when devenv had to start one, TEST_REDIS_URL at a Redis (`make
// test`), and stops what it started afterwards.
func execWithDatabase(ctx context.Context, argv []string) error {
	if len(argv) == 0 {
		return errors.New("usage: devenv exec -- <command...>")
	}
	configured := os.Getenv("TEST_DATABASE_URL")
	if configured == "" {
		configured = os.Getenv("DATABASE_URL")
	}
	db, err := findDatabase(ctx, configured, os.Stderr)
	if err != nil {
		return err
	}
	defer db.stop()
	redisURL, stopRedis := ensureRedis(os.Stderr)
	defer stopRedis()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), "TEST_DATABASE_URL="+db.adminURL)
	if redisURL != "" {
		cmd.Env = append(cmd.Env, "TEST_REDIS_URL="+redisURL)
	}
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return &exitError{code: exit.ExitCode()}
		}
		return err
	}
	return nil
}

// demoKeyName names the key `make run` mints. Each run replaces the key of
// the run before (`keys create --replace` revokes the active keys of that
// name), so repeated runs leave one active demo key, not a pile of keys
// that never expire.
const demoKeyName = "make run demo"

// runServer is `make run`: a database migrated and seeded, a demo key, how
// to call the server, then the server itself in development mode.
func runServer(ctx context.Context, binary string) error {
	binary, err := filepath.Abs(binary)
	if err != nil {
		return err
	}
	addr := os.Getenv("MCP_HTTP_ADDR")
	if addr == "" {
		addr = "127.0.0.1:8080"
	}
	// Before anything is set up, and above all before a key is minted (and
	// the previous one revoked): a server that cannot listen would leave
	// the developer with a new key and nothing to use it on.
	if err := checkPortFree(addr); err != nil {
		return err
	}
	dsn := os.Getenv("DATABASE_URL")
	db, err := findDatabase(ctx, dsn, os.Stderr)
	if err != nil {
		return err
	}
	defer db.stop()
	if dsn == "" {
		if dsn, err = ensureDatabase(ctx, db.adminURL, devDatabase); err != nil {
			return err
		}
	}
	env := append(os.Environ(), "MCP_ENV=development", "DATABASE_URL="+dsn)
	customer, key, err := prepare(ctx, binary, env, os.Stderr)
	if err != nil {
		return err
	}
	printWelcome(binary, dsn, addr, customer, key)

	cmd := exec.CommandContext(ctx, binary, "serve")
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	if err := cmd.Run(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("server serve: %w", err)
	}
	return nil
}

// checkPortFree makes sure addr (MCP_HTTP_ADDR) can be listened on, and
// otherwise says which port is taken and how to choose another.
func checkPortFree(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		return ln.Close()
	}
	host, port, splitErr := net.SplitHostPort(addr)
	if splitErr != nil {
		return fmt.Errorf("MCP_HTTP_ADDR=%s is not host:port (for example 127.0.0.1:8080)", addr)
	}
	next := "8081"
	if n, err := strconv.Atoi(port); err == nil && n > 0 && n < 65535 {
		next = strconv.Itoa(n + 1)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	hint := fmt.Sprintf("stop it, or choose another port: MCP_HTTP_ADDR=%s make run", net.JoinHostPort(host, next))
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("port %s (MCP_HTTP_ADDR=%s) is already in use, by another make run or server?: %s", port, addr, hint)
	}
	return fmt.Errorf("cannot listen on port %s (MCP_HTTP_ADDR=%s): %v; %s", port, addr, err, hint)
}

// prepare migrates and seeds the database and mints the demo key,
// replacing the previous run's. It returns the demo customer and the key.
//
// What the commands print on stderr is shown only when one fails: each of
// them would give the same start-up warnings (the public development
// audit key, say) that the server, which starts last, gives once; and
// `keys create`'s client snippets are in the welcome. Only which earlier
// key was revoked is passed on.
func prepare(ctx context.Context, binary string, env []string, log io.Writer) (customer, key string, err error) {
	server := func(args ...string) (stdout, stderr string, err error) {
		cmd := exec.CommandContext(ctx, binary, args...)
		var out, errOut bytes.Buffer
		cmd.Env, cmd.Stdout, cmd.Stderr = env, &out, &errOut
		if err := cmd.Run(); err != nil {
			_, _ = io.Copy(log, &errOut)
			return "", "", fmt.Errorf("server %s: %w", args[0], err)
		}
		return out.String(), errOut.String(), nil
	}
	if _, _, err := server("migrate"); err != nil {
		return "", "", err
	}
	seeded, _, err := server("seed")
	if err != nil {
		return "", "", err
	}
	if customer = firstCustomer(seeded); customer == "" {
		return "", "", errors.New("server seed printed no demo customer")
	}
	out, stderr, err := server("keys", "create", "--name", demoKeyName, "--scopes", "orders:read,orders:cancel",
		"--customer", customer, "--replace")
	if err != nil {
		return "", "", err
	}
	for _, line := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(line, "revoked ") {
			fmt.Fprintln(log, "devenv: "+line)
		}
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return customer, lines[len(lines)-1], nil
}

// firstCustomer reads the first demo customer id from `server seed`.
func firstCustomer(seedOutput string) string {
	for _, line := range strings.Split(seedOutput, "\n") {
		if f := strings.TrimSpace(line); strings.HasPrefix(f, "cus_") {
			return f
		}
	}
	return ""
}

func printWelcome(binary, dsn, addr, customer, key string) {
	snippet, _ := json.MarshalIndent(map[string]any{
		"mcpServers": map[string]any{
			"order-status": map[string]any{
				"command": binary,
				"args":    []string{"stdio"},
				"env": map[string]string{
					"MCP_ENV":      "development",
					"DATABASE_URL": dsn,
					"MCP_API_KEY":  key,
				},
			},
		},
	}, "", "  ")
	fmt.Printf(`
================================================================================
 Order-status MCP server, development mode
================================================================================
 Demo API key (customer %s; scopes orders:read, orders:cancel).
 It is shown only now; only its hash is stored. The next make run revokes
 it and mints another (one active demo key at a time):

   %s

 Call it over HTTP:

   curl -s http://%s/mcp \
     -H 'Authorization: Bearer %s' \
     -H 'Content-Type: application/json' \
     -H 'Accept: application/json, text/event-stream' \
     -H 'MCP-Protocol-Version: 2025-11-25' \
     -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_recent_orders","arguments":{"limit":3}}}'

 Connect Claude Desktop over stdio: add this to claude_desktop_config.json
 (Settings > Developer > Edit Config), then restart Claude Desktop:

%s

 Stop with Ctrl-C.
================================================================================

`, customer, key, addr, key, snippet)
}
