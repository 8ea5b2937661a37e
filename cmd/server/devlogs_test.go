package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/example/order-mcp/internal/demo"
	"github.com/example/order-mcp/internal/testenv"
)

// devEnv is the environment of a development run against databaseURL:
// no audit key, no confirmation secret, and a spill directory that cannot
// be created, so that each start-up warning development allows is given.
func devEnv(t *testing.T, databaseURL string, extra ...string) []string {
	blocker := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"MCP_ENV=development",
		"DATABASE_URL=" + databaseURL,
		"AUDIT_SPILL_DIR=" + filepath.Join(blocker, "spill"), // under a file: never a directory
	}
	return append(env, extra...)
}

// TestDevelopmentLogsAreTextAndEachWarningIsGivenOnce runs the binary in
// development mode the ways a developer does (serve on loopback before any
// key exists, serve on every interface, stdio), and reads its stderr: every
// line is a readable text log line (not JSON), redacted like production's
// (no key, no customer's contact data), and each warning appears once,
// however many parts of the server have a reason to give it.
func TestDevelopmentLogsAreTextAndEachWarningIsGivenOnce(t *testing.T) {
	database := emptyDatabase(t)
	cli(t, devEnv(t, database), "migrate")
	cli(t, devEnv(t, database), "seed")

	const (
		auditKeyWarning = "development: AUDIT_HMAC_KEY not set"
		spillWarning    = "development: no audit spill directory"
		noKeyWarning    = "no active API key and no OAuth issuer"
		plainHTTP       = "development: serving plain HTTP on a non-loopback address"
	)
	var key string
	tests := []struct {
		name string
		run  func(t *testing.T) string
		want []string
	}{
		{"ServeBeforeAnyKeyExists", func(t *testing.T) string {
			_, stderr, stop := startServe(t, devEnv(t, database))
			if code := stop(); code != 0 {
				t.Fatalf("serve exited %d\n%s", code, stderr.String())
			}
			return stderr.String()
		}, []string{auditKeyWarning, spillWarning, noKeyWarning}},
		{"ServeOnEveryInterface", func(t *testing.T) string {
			key = lastLine(cli(t, devEnv(t, database), "keys", "create", "--name", "dev", "--scopes", "orders:read",
				"--customer", demo.Customers()[0].ID))
			_, stderr, stop := startServe(t, devEnv(t, database, "MCP_HTTP_ADDR=0.0.0.0:0"))
			if code := stop(); code != 0 {
				t.Fatalf("serve exited %d\n%s", code, stderr.String())
			}
			return stderr.String()
		}, []string{auditKeyWarning, spillWarning, plainHTTP}},
		{"Stdio", func(t *testing.T) string {
			stderr := &testenv.Buffer{}
			cmd := exec.Command(serverBinary(t), "stdio")
			cmd.Env = devEnv(t, database, "MCP_API_KEY="+key)
			cmd.Stderr = stderr
			cs := connect(t, &mcp.CommandTransport{Command: cmd}, testenv.Protocol20251125)
			if _, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "list_recent_orders", Arguments: map[string]any{}}); err != nil {
				t.Fatal(err)
			}
			_ = cs.Close()
			return stderr.String()
		}, []string{auditKeyWarning, spillWarning}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := tt.run(t)
			warnings := map[string]int{}
			for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
				fields, ok := textLogLine(line)
				if !ok {
					t.Fatalf("not a text log line: %q\n%s", line, logs)
				}
				if fields["level"] == "WARN" {
					warnings[fields["msg"]]++
				}
			}
			for msg, n := range warnings {
				if n > 1 {
					t.Errorf("warned %d times: %q", n, msg)
				}
			}
			for _, want := range tt.want {
				found := false
				for msg := range warnings {
					found = found || strings.HasPrefix(msg, want)
				}
				if !found {
					t.Errorf("no warning %q in:\n%s", want, logs)
				}
			}
			if key != "" && strings.Contains(logs, key[strings.LastIndex(key, "_")+1:]) {
				t.Fatal("the logs hold the key's secret")
			}
			for _, c := range demo.Customers() {
				if strings.Contains(logs, c.Email) || strings.Contains(logs, c.Phone) {
					t.Fatal("the logs hold a customer's contact data")
				}
			}
		})
	}
}

// textLogLine parses one line of slog's text form (time=... level=...
// msg=... key=value...), unquoting quoted values; ok is false for anything
// else, a JSON line included.
func textLogLine(line string) (fields map[string]string, ok bool) {
	fields = map[string]string{}
	for rest := line; rest != ""; {
		k, after, found := strings.Cut(rest, "=")
		if !found || k == "" || strings.ContainsAny(k, " \"{") {
			return nil, false
		}
		var v string
		if strings.HasPrefix(after, `"`) {
			q, err := strconv.QuotedPrefix(after)
			if err != nil {
				return nil, false
			}
			v, _ = strconv.Unquote(q)
			after = after[len(q):]
		} else {
			v, after, _ = strings.Cut(after, " ")
			after = " " + after
		}
		fields[k] = v
		rest = strings.TrimPrefix(after, " ")
	}
	_, hasTime := fields["time"]
	return fields, hasTime && fields["level"] != "" && fields["msg"] != ""
}
