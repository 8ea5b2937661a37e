package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// runServer is `make run`: a database migrated and seeded, a demo key, how
// to call the server, then the server itself in development mode.
func runServer(ctx context.Context, binary string) error {
	binary, err := filepath.Abs(binary)
	if err != nil {
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
	server := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, binary, args...)
		cmd.Env, cmd.Stderr = env, os.Stderr
		var out bytes.Buffer
		cmd.Stdout = &out
		err := cmd.Run()
		return out.String(), err
	}
	if _, err := server("migrate"); err != nil {
		return fmt.Errorf("server migrate: %w", err)
	}
	seeded, err := server("seed")
	if err != nil {
		return fmt.Errorf("server seed: %w", err)
	}
	customer := firstCustomer(seeded)
	if customer == "" {
		return errors.New("server seed printed no demo customer")
	}
	out, err := server("keys", "create", "--name", "make run demo", "--scopes", "orders:read,orders:cancel", "--customer", customer)
	if err != nil {
		return fmt.Errorf("server keys create: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	key := lines[len(lines)-1]

	addr := os.Getenv("MCP_HTTP_ADDR")
	if addr == "" {
		addr = "127.0.0.1:8080"
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
 It is shown only now; only its hash is stored:

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
