package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/surface"
	"github.com/example/order-mcp/internal/tools"
)

// TestToolsDigest: `server tools digest` prints, without a database, the
// very document serve publishes at /.well-known/mcp-tool-digest, signed
// with TOOL_DIGEST_SIGNING_KEY; with --scopes, the one digest a caller
// with those scopes is handed. Outside development it refuses to sign
// without the key, as serve does.
func TestToolsDigest(t *testing.T) {
	seed := bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7, 8}, 4)
	env := map[string]string{
		"MCP_ENV":                 "production",
		"DATABASE_URL":            "postgres://order_mcp@127.0.0.1:1/order_mcp", // never dialled
		"TOOL_DIGEST_SIGNING_KEY": base64.StdEncoding.EncodeToString(seed),
	}
	digest := func(t *testing.T, env map[string]string, args ...string) (string, error) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), append([]string{"server", "tools", "digest"}, args...),
			func(k string) string { return env[k] }, strings.NewReader(""), &stdout, &stderr)
		return stdout.String(), err
	}
	signer, err := surface.NewSigner(ed25519.NewKeyFromSeed(seed))
	if err != nil {
		t.Fatal(err)
	}
	pin, err := surface.New(tools.All(), signer)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("PrintsTheSignedDocument", func(t *testing.T) {
		out, err := digest(t, env)
		if err != nil {
			t.Fatal(err)
		}
		if out != string(pin.Document()) {
			t.Fatalf("printed:\n%s\nwant what serve publishes:\n%s", out, pin.Document())
		}
		var doc struct{ JWS string }
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatal(err)
		}
		if _, err := surface.Verify(doc.JWS, ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)); err != nil {
			t.Fatalf("the printed JWS does not verify with the configured key: %v", err)
		}
	})
	t.Run("ScopesPrintOneDigest", func(t *testing.T) {
		out, err := digest(t, env, "--scopes", "orders:read, orders:cancel")
		if err != nil {
			t.Fatal(err)
		}
		if want := pin.Digest([]auth.Scope{auth.ScopeRead, auth.ScopeCancel}); out != want+"\n" {
			t.Fatalf("printed %q, want %q", out, want)
		}
		if out, err := digest(t, env, "--scopes", ""); err != nil || out != pin.Digest(nil)+"\n" {
			t.Fatalf("no scopes: %q %v, want the digest of the empty list", out, err)
		}
	})
	refused := map[string]struct {
		env  map[string]string
		args []string
		says string
	}{
		"WithoutTheKeyOutsideDevelopment": {map[string]string{"MCP_ENV": "production", "DATABASE_URL": env["DATABASE_URL"]}, nil, "TOOL_DIGEST_SIGNING_KEY"},
		"TheDevelopmentKeyOutsideDevelopment": {map[string]string{"MCP_ENV": "production", "DATABASE_URL": env["DATABASE_URL"],
			"TOOL_DIGEST_SIGNING_KEY": base64.StdEncoding.EncodeToString(surface.DevelopmentKey().Seed())}, nil, "public development key"},
		"UnknownScope":      {env, []string{"--scopes", "orders:export"}, "unknown scope"},
		"UnknownSubcommand": {env, []string{"list"}, "usage: server tools digest"},
	}
	for name, tt := range refused {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := []string{"server", "tools", "digest"}
			if name == "UnknownSubcommand" {
				args = []string{"server", "tools"}
			}
			err := run(context.Background(), append(args, tt.args...),
				func(k string) string { return tt.env[k] }, strings.NewReader(""), &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("got %v, want a refusal saying %q", err, tt.says)
			}
			if stdout.Len() != 0 {
				t.Fatalf("printed %q while refusing", stdout.String())
			}
		})
	}
	t.Run("DevelopmentSignsWithThePublicKey", func(t *testing.T) {
		out, err := digest(t, map[string]string{"MCP_ENV": "development", "DATABASE_URL": env["DATABASE_URL"]})
		if err != nil {
			t.Fatal(err)
		}
		var doc struct{ JWS string }
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatal(err)
		}
		if _, err := surface.Verify(doc.JWS, surface.DevelopmentKey().Public().(ed25519.PublicKey)); err != nil {
			t.Fatalf("development did not sign with the public development key: %v", err)
		}
	})
}
