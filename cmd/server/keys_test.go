package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/example/order-mcp/internal/demo"
	"github.com/example/order-mcp/internal/testenv"
)

// TestKeysCreatePrintsSnippetsAndReplaces: `keys create` keeps stdout for
// the key alone (its last line) and prints ready-to-paste client
// configuration on stderr, for Claude Desktop over stdio and through
// mcp-remote with the header from an environment variable; the database
// password never appears in it. With --replace, the earlier active key of
// the same name is revoked, so repeated demo set-ups do not pile up keys.
func TestKeysCreatePrintsSnippetsAndReplaces(t *testing.T) {
	env := prodEnv()
	cli(t, env, "migrate")
	cli(t, env, "seed")
	customer := demo.Customers()[1].ID
	create := func() (key, stderr string) {
		t.Helper()
		cmd := exec.Command(serverBinary(t), "keys", "create", "--name", "rotating-demo", "--scopes", "orders:read",
			"--customer", customer, "--replace")
		cmd.Env = append(env[:len(env):len(env)], "AUDIT_HMAC_KEY_FILE=")
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			t.Fatalf("keys create: %v\n%s", err, errOut.String())
		}
		if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); len(lines) != 1 {
			t.Fatalf("stdout holds more than the key: %q", out.String())
		}
		return strings.TrimSpace(out.String()), errOut.String()
	}

	first, stderr := create()
	t.Run("SnippetsAreOnStderr", func(t *testing.T) {
		stdio, remote := snippetAfter(t, stderr, "Claude Desktop over stdio"), snippetAfter(t, stderr, "through mcp-remote")
		server := stdio["mcpServers"].(map[string]any)["order-status"].(map[string]any)
		if server["args"].([]any)[0] != "stdio" || server["env"].(map[string]any)["MCP_API_KEY"] != first {
			t.Errorf("stdio snippet: %v", server)
		}
		bridge := remote["mcpServers"].(map[string]any)["order-status"].(map[string]any)
		args := strings.Join(func() (s []string) {
			for _, a := range bridge["args"].([]any) {
				s = append(s, a.(string))
			}
			return
		}(), " ")
		if !strings.Contains(args, "mcp-remote@"+mcpRemoteVersion) || !strings.Contains(args, "Authorization:${AUTH_HEADER}") ||
			bridge["env"].(map[string]any)["AUTH_HEADER"] != "Bearer "+first {
			t.Errorf("mcp-remote snippet: %v", bridge)
		}
	})

	second, _ := create()
	t.Run("TheEarlierKeyOfTheNameIsRevoked", func(t *testing.T) {
		url, _, stop := startServe(t, env)
		defer stop()
		ok := connect(t, &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: testenv.BearerClient(second), MaxRetries: -1}, "")
		if _, err := ok.ListTools(context.Background(), nil); err != nil {
			t.Fatalf("the new key is refused: %v", err)
		}
		client := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, nil)
		if _, err := client.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: url,
			HTTPClient: testenv.BearerClient(first), MaxRetries: -1}, nil); err == nil {
			t.Fatal("the replaced key still works")
		}
		if list := cli(t, env, "keys", "list"); strings.Count(list, "rotating-demo") != 2 || !strings.Contains(list, "revoked") {
			t.Fatalf("keys list:\n%s", list)
		}
	})
}

// snippetAfter decodes the JSON object that follows the line containing
// heading in a command's stderr.
func snippetAfter(t *testing.T, stderr, heading string) map[string]any {
	t.Helper()
	_, rest, ok := strings.Cut(stderr, heading)
	if !ok {
		t.Fatalf("no %q in:\n%s", heading, stderr)
	}
	rest = rest[strings.Index(rest, "{"):]
	var v map[string]any
	if err := json.NewDecoder(strings.NewReader(rest)).Decode(&v); err != nil {
		t.Fatalf("the snippet after %q is not JSON: %v\n%s", heading, err, rest)
	}
	return v
}
