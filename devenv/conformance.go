package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// conformanceVersion pins the official MCP conformance suite. 0.1.12 is the
// newest release that runs on Node 20 (later ones need fs.globSync).
const conformanceVersion = "0.1.12"

// conformanceScenarios are the suite's scenarios this server is held to.
// The others exercise features it deliberately does not offer (prompts,
// resources, sampling, logging...).
var conformanceScenarios = []string{"dns-rebinding-protection"}

// runConformance is `make conformance`: it runs the official MCP
// conformance suite's scenarios against a development server.
//
// The suite sends its requests without credentials (its DNS-rebinding
// scenario is written for servers without authentication) and this server
// authenticates every request. So the suite talks to a small proxy that
// adds a valid API key and changes nothing else: Host and Origin reach the
// server exactly as the suite sent them, which is what the scenario tests.
func runConformance(ctx context.Context, binary string) error {
	binary, err := filepath.Abs(binary)
	if err != nil {
		return err
	}
	db, err := findDatabase(ctx, os.Getenv("DATABASE_URL"), os.Stderr)
	if err != nil {
		return err
	}
	defer db.stop()
	dsn, err := ensureDatabase(ctx, db.adminURL, "order_mcp_conformance")
	if err != nil {
		return err
	}
	env := append(os.Environ(), "MCP_ENV=development", "DATABASE_URL="+dsn, "MCP_HTTP_ADDR=127.0.0.1:0")
	run := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, binary, args...)
		cmd.Env, cmd.Stderr = env, os.Stderr
		out, err := cmd.Output()
		return string(out), err
	}
	if _, err := run("migrate"); err != nil {
		return fmt.Errorf("server migrate: %w", err)
	}
	seeded, err := run("seed")
	if err != nil {
		return fmt.Errorf("server seed: %w", err)
	}
	out, err := run("keys", "create", "--name", "conformance", "--scopes", "orders:read", "--customer", firstCustomer(seeded))
	if err != nil {
		return fmt.Errorf("server keys create: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	key := lines[len(lines)-1]

	serverURL, stopServer, err := startServe(ctx, binary, env)
	if err != nil {
		return err
	}
	defer stopServer()

	target, err := url.Parse(serverURL)
	if err != nil {
		return err
	}
	target.Path = "" // the proxy keeps the request's own path
	proxy := httputil.NewSingleHostReverseProxy(target)
	direct := proxy.Director
	proxy.Director = func(r *http.Request) {
		host := r.Host
		direct(r)
		r.Host = host // the suite's Host, untouched
		r.Header.Set("Authorization", "Bearer "+key)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	suiteURL := fmt.Sprintf("http://localhost:%d/mcp", ln.Addr().(*net.TCPAddr).Port)

	work, err := os.MkdirTemp("", "order-mcp-conformance")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	for _, scenario := range conformanceScenarios {
		fmt.Fprintf(os.Stderr, "devenv: conformance scenario %s against %s\n", scenario, suiteURL)
		cmd := exec.CommandContext(ctx, "npx", "--yes", "@modelcontextprotocol/conformance@"+conformanceVersion,
			"server", "--url", suiteURL, "--scenario", scenario)
		cmd.Dir, cmd.Stdout, cmd.Stderr = work, os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				return fmt.Errorf("conformance scenario %s failed", scenario)
			}
			return fmt.Errorf("running the conformance suite (needs Node.js and npx): %w", err)
		}
	}
	return nil
}

// startServe runs `server serve` and returns its MCP URL once it listens.
func startServe(ctx context.Context, binary string, env []string) (string, func(), error) {
	cmd := exec.CommandContext(ctx, binary, "serve")
	cmd.Env, cmd.Stderr = env, os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() }
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
				found <- u
			}
		}
	}()
	select {
	case u := <-found:
		return u, stop, nil
	case <-time.After(20 * time.Second):
		stop()
		return "", nil, errors.New("server serve did not start")
	}
}
