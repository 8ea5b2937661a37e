package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"

	"github.com/example/order-mcp/internal/config"
)

// mcpRemoteVersion pins the mcp-remote release the snippet names, so a
// pasted configuration keeps working the way it was tested (make interop
// drives this version).
const mcpRemoteVersion = "0.15.1"

// printSnippets writes ready-to-paste client configuration for a freshly
// minted key to w (stderr): Claude Desktop launching this binary over
// stdio, and Claude Desktop reaching the HTTP endpoint through mcp-remote,
// with the Authorization header taken from an environment variable as
// mcp-remote documents (an argument with a space in it breaks on some
// platforms, and the header stays out of the process list).
//
// The database URL is shown with its password replaced: a terminal's
// scrollback is no place for it, and the user knows it.
func printSnippets(w io.Writer, cfg *config.Config, getenv func(string) string, key string) {
	binary, err := os.Executable()
	if err != nil {
		binary = "/absolute/path/to/bin/server"
	}
	binary, _ = filepath.Abs(binary)
	env := map[string]string{"DATABASE_URL": withoutPassword(cfg.DatabaseURL), "MCP_API_KEY": key}
	switch {
	case cfg.Development():
		env["MCP_ENV"] = "development"
	case getenv("AUDIT_HMAC_KEY_FILE") != "":
		env["AUDIT_HMAC_KEY_FILE"] = getenv("AUDIT_HMAC_KEY_FILE")
	default:
		env["AUDIT_HMAC_KEY_FILE"] = "/absolute/path/to/audit-hmac-key"
	}
	stdio, _ := json.MarshalIndent(map[string]any{"mcpServers": map[string]any{
		"order-status": map[string]any{"command": binary, "args": []string{"stdio"}, "env": env},
	}}, "", "  ")
	remote, _ := json.MarshalIndent(map[string]any{"mcpServers": map[string]any{
		"order-status": map[string]any{
			"command": "npx",
			"args":    []string{"-y", "mcp-remote@" + mcpRemoteVersion, cfg.ResourceURL, "--header", "Authorization:${AUTH_HEADER}"},
			"env":     map[string]string{"AUTH_HEADER": "Bearer " + key},
		},
	}}, "", "  ")
	fmt.Fprintf(w, `
Claude Desktop over stdio (Settings > Developer > Edit Config, claude_desktop_config.json):
%s

Claude Desktop over HTTP through mcp-remote (the server must be running: server serve):
%s

`, stdio, remote)
}

// withoutPassword returns a Postgres URL with its password replaced by a
// placeholder, or the URL unchanged when it has none.
func withoutPassword(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	if _, has := u.User.Password(); !has {
		return dsn
	}
	u.User = url.UserPassword(u.User.Username(), "PASSWORD")
	return u.String()
}
