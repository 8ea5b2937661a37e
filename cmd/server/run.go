package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/example/order-mcp/internal/config"
	"github.com/example/order-mcp/internal/logging"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

const usage = `usage: server <command> [flags]

commands:
  migrate                     apply the database migrations (idempotent)
  seed [--canary]             load the demo dataset (idempotent); with --canary, plant
                              canary records instead, once (for production databases)
  keys create --name N --scopes a,b [--customer ID] [--expires DUR]
                              mint an API key; the key is the last line of stdout
  keys list                   list keys (never their secrets)
  keys revoke ID              revoke a key
  audit verify                check the audit trail's hash chain and print its head
  audit tail [-n N]           print the newest N audit records (default 20), redacted
  tools digest [--scopes a,b] print the signed digest of the tool definitions each
                              scope set sees (as /.well-known/mcp-tool-digest serves it),
                              or with --scopes the digest that set of scopes sees
  serve                       serve MCP over Streamable HTTP on MCP_HTTP_ADDR (/mcp)
  stdio                       serve MCP over stdin/stdout as MCP_API_KEY (Claude Desktop)
  healthcheck                 exit 0 if the local server answers /healthz (for containers)
  version, --version          print the version (set at build time: make build)

Configuration comes from the environment; see .env.example.`

// errUsage is returned for a command line that cannot be understood.
var errUsage = errors.New("bad command line; run `server help`")

// run is the whole program: main only calls it. It owns signal handling,
// configuration and wiring, so tests can run the server in-process.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal, stop catching: the graceful shutdown runs,
	// and a second signal kills the process as usual.
	context.AfterFunc(ctx, stop)

	if len(args) < 2 {
		return errUsage // one line, like every failure; `server help` shows the usage
	}
	if args[1] == "help" || args[1] == "-h" || args[1] == "--help" {
		fmt.Fprintln(stderr, usage)
		return nil
	}
	switch args[1] {
	case "version", "--version", "-version":
		// Before configuration: the version is asked of binaries that have
		// none (a container image, a bug report).
		fmt.Fprintln(stdout, version)
		return nil
	case "healthcheck":
		return healthcheck(ctx, getenv)
	}

	env, dotenv, err := config.WithDotEnv(getenv, ".env")
	if err != nil {
		return err
	}
	cfg, err := config.Load(env, os.ReadFile)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	// Production logs JSON lines for a collector; development, text lines
	// for the person at the terminal. Both through the same redaction.
	format := logging.JSON
	if cfg.Development() {
		format = logging.Text
	}
	logger := logging.NewFormat(format, logging.ParseLevel(cfg.LogLevel), stderr)
	if dotenv {
		logger.Info("development: read .env (variables already in the environment win)")
	}

	cmd, rest := args[1], args[2:]
	switch cmd {
	case "migrate":
		return migrate(ctx, cfg, logger, stdout)
	case "seed":
		return seed(ctx, cfg, logger, rest, stdout)
	case "keys":
		return keys(ctx, cfg, env, logger, rest, stdout, stderr)
	case "audit":
		return auditCmd(ctx, cfg, logger, rest, stdout)
	case "tools":
		return toolsCmd(cfg, logger, rest, stdout)
	case "serve":
		tuneGC(getenv)
		return serve(ctx, cfg, logger, stdout)
	case "stdio":
		tuneGC(getenv)
		return stdio(ctx, cfg, logger, stdin, stdout)
	}
	return fmt.Errorf("unknown command %q; run `server help`", cmd)
}

// healthcheck asks the server on MCP_HTTP_ADDR's port, over loopback,
// whether it is alive. Container images without a shell or curl use it.
func healthcheck(ctx context.Context, getenv func(string) string) error {
	addr := getenv("MCP_HTTP_ADDR")
	if addr == "" {
		addr = "127.0.0.1:8080"
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("MCP_HTTP_ADDR must be host:port")
	}
	scheme := "http"
	client := &http.Client{Timeout: 3 * time.Second}
	if getenv("MCP_TLS_CERT_FILE") != "" {
		scheme = "https"
		// The certificate names the public host, not 127.0.0.1; liveness
		// over loopback does not need to verify it.
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://127.0.0.1:"+port+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("not healthy: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("not healthy: status %d", resp.StatusCode)
	}
	return nil
}

// newFlags returns a flag set that returns its errors instead of exiting
// or printing them: the caller turns them into the one-line message main
// prints (parseFlags).
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parseFlags parses args into fs; an error comes back as one line that
// ends with the command's usage.
func parseFlags(fs *flag.FlagSet, args []string, usage string) error {
	err := fs.Parse(args)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		return errors.New(usage)
	}
	return fmt.Errorf("%v; %s", err, usage)
}
