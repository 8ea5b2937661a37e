package config_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/example/order-mcp/internal/config"
)

// strongSeed is a random Ed25519 seed in the documented base64 form.
func strongSeed(t testing.TB) string {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(seed)
}

func pemOf(t testing.TB, key any) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// TestToolDigestSigningKey: the key that signs the tool digest is read in
// both documented forms (PEM as openssl writes it, the base64 of a seed in
// any base64 alphabet, from the variable or its _FILE), anything else is
// refused without quoting it, a guessable seed is refused outside
// development, and `serve` needs one outside development while `stdio`
// does not.
func TestToolDigestSigningKey(t *testing.T) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	seed := key.Seed()
	file := filepath.Join(t.TempDir(), "tool-digest.pem")
	if err := os.WriteFile(file, []byte(pemOf(t, key)), 0o600); err != nil {
		t.Fatal(err)
	}
	accepted := map[string][]string{
		"PEMIsRead":                  {"TOOL_DIGEST_SIGNING_KEY", pemOf(t, key)},
		"PEMFileIsRead":              {"TOOL_DIGEST_SIGNING_KEY", "", "TOOL_DIGEST_SIGNING_KEY_FILE", file},
		"StandardBase64SeedIsRead":   {"TOOL_DIGEST_SIGNING_KEY", base64.StdEncoding.EncodeToString(seed)},
		"URLBase64SeedIsRead":        {"TOOL_DIGEST_SIGNING_KEY", base64.RawURLEncoding.EncodeToString(seed)},
		"SeedWithANewlineIsRead":     {"TOOL_DIGEST_SIGNING_KEY", base64.StdEncoding.EncodeToString(seed) + "\n"},
		"UnpaddedStandardSeedIsRead": {"TOOL_DIGEST_SIGNING_KEY", base64.RawStdEncoding.EncodeToString(seed)},
	}
	for name, kv := range accepted {
		t.Run(name, func(t *testing.T) {
			c := mustLoad(t, production(t).with(kv...))
			if !key.Equal(c.ToolDigestKey) {
				t.Fatal("read a different key")
			}
		})
	}

	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	secret := randomHex(t, 16)
	refused := map[string]string{
		"ShortSeedIsRefused":           base64.StdEncoding.EncodeToString(seed[:16]),
		"LongSeedIsRefused":            base64.StdEncoding.EncodeToString(append(seed, seed...)),
		"NotBase64IsRefused":           "not-a-key-" + secret + "!",
		"AnotherAlgorithmIsRefused":    pemOf(t, ecKey),
		"TruncatedPEMIsRefused":        "-----BEGIN " + "PRIVATE KEY-----\n" + secret + "\n", // split: the secret scan in deploy/ looks for the whole marker
		"TheAuditKeyStyleIsRefused":    strongHMACKey(t),                                     // 64 hex characters: base64 of 48 bytes
		"PEMWithTrailingTextIsRefused": pemOf(t, key) + secret,
	}
	for name, value := range refused {
		t.Run(name, func(t *testing.T) {
			for _, mode := range []string{"production", "development"} {
				_, err := load(production(t).with("MCP_ENV", mode, "TOOL_DIGEST_SIGNING_KEY", value))
				if err == nil || !strings.Contains(err.Error(), "TOOL_DIGEST_SIGNING_KEY") {
					t.Fatalf("%s: %v, want a refusal naming TOOL_DIGEST_SIGNING_KEY", mode, err)
				}
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("the error quotes the value: %v", err)
				}
			}
		})
	}

	t.Run("GuessableSeedIsRefusedOutsideDevelopment", func(t *testing.T) {
		zeros := base64.StdEncoding.EncodeToString(make([]byte, ed25519.SeedSize))
		if _, err := load(production(t).with("TOOL_DIGEST_SIGNING_KEY", zeros)); err == nil || !strings.Contains(err.Error(), "TOOL_DIGEST_SIGNING_KEY") {
			t.Fatalf("got %v, want a refusal naming TOOL_DIGEST_SIGNING_KEY", err)
		}
		mustLoad(t, production(t).with("MCP_ENV", "development", "TOOL_DIGEST_SIGNING_KEY", zeros))
	})

	apiKey := "osmcp_" + randomHex(t, 6) + "_" + randomHex(t, 26)
	validate := []struct {
		name   string
		kv     []string
		check  func(*config.Config) error
		refuse bool
	}{
		{"ServeWithoutKeyIsRefused", []string{"TOOL_DIGEST_SIGNING_KEY", ""}, (*config.Config).ValidateServe, true},
		{"ServeWithoutKeyInDevelopmentIsAccepted", []string{"TOOL_DIGEST_SIGNING_KEY", "", "MCP_ENV", "development"}, (*config.Config).ValidateServe, false},
		{"ServeWithKeyIsAccepted", nil, (*config.Config).ValidateServe, false},
		{"StdioWithoutKeyIsAccepted", []string{"TOOL_DIGEST_SIGNING_KEY", "", "MCP_API_KEY", apiKey}, (*config.Config).ValidateStdio, false},
	}
	for _, tt := range validate {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.check(mustLoad(t, production(t).with(tt.kv...)))
			switch {
			case !tt.refuse && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.refuse && (err == nil || !strings.Contains(err.Error(), "TOOL_DIGEST_SIGNING_KEY")):
				t.Fatalf("got %v, want a refusal naming TOOL_DIGEST_SIGNING_KEY", err)
			}
		})
	}

	t.Run("PostureSaysConfiguredAndRevealsNothing", func(t *testing.T) {
		value := base64.StdEncoding.EncodeToString(seed)
		c := mustLoad(t, production(t).with("TOOL_DIGEST_SIGNING_KEY", value))
		var buf bytes.Buffer
		slog.New(slog.NewJSONHandler(&buf, nil)).LogAttrs(t.Context(), slog.LevelInfo, "security posture", c.Posture()...)
		if out := buf.String(); strings.Contains(out, value) || !strings.Contains(out, `"tool_digest_key_configured":true`) {
			t.Fatalf("posture: %s", out)
		}
	})
}
