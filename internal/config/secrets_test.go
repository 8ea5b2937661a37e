package config_test

import (
	"bytes"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/joho/godotenv"

	"github.com/example/order-mcp/internal/config"
)

// envExample is the repository's example configuration, relative to this
// package's directory.
const envExample = "../../.env.example"

// exampleSecretVars are the variables of .env.example that hold secrets.
var exampleSecretVars = []string{"DATABASE_URL", "MCP_API_KEY", "REDIS_URL", "AUDIT_HMAC_KEY", "CONFIRMATION_SECRET"}

// documentedLine is a commented-out assignment in .env.example, such as
// "# REDIS_URL='redis://...'": optional variables are documented that way.
var documentedLine = regexp.MustCompile(`(?m)^#\s*([A-Z][A-Z0-9_]*=.*)$`)

// exampleValues returns every value .env.example assigns or documents,
// parsed by godotenv exactly as WithDotEnv parses a .env file.
func exampleValues(t *testing.T) map[string]string {
	t.Helper()
	active, err := godotenv.Read(envExample)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(envExample)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, m := range documentedLine.FindAllStringSubmatch(string(raw), -1) {
		lines = append(lines, m[1])
	}
	documented, err := godotenv.Unmarshal(strings.Join(lines, "\n"))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range active {
		documented[k] = v
	}
	for _, k := range exampleSecretVars {
		if documented[k] == "" {
			t.Fatalf(".env.example has no value for %s", k)
		}
	}
	return documented
}

// exampleSecrets returns the secret inside each example value: the
// password of a URL, or the value itself.
func exampleSecrets(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, k := range exampleSecretVars {
		v := exampleValues(t)[k]
		if u, err := url.Parse(v); err == nil && u.User != nil {
			p, ok := u.User.Password()
			if !ok || p == "" {
				t.Fatalf("%s in .env.example has no password", k)
			}
			v = p
		}
		out[k] = v
	}
	return out
}

// TestEveryExampleSecretIsWeak keeps .env.example and the weak list in
// sync: a new example secret that WeakSecret does not recognise would be
// accepted in production.
func TestEveryExampleSecretIsWeak(t *testing.T) {
	for k, secret := range exampleSecrets(t) {
		t.Run(k+"ExampleIsWeak", func(t *testing.T) {
			if !config.WeakSecret(secret) {
				t.Fatalf("WeakSecret does not recognise the example %s", k)
			}
		})
	}
	for _, s := range []string{"password", "Postgres", " secret ", "admin", "12345678", "CHANGEME", "my-placeholder-key", "dummy"} {
		t.Run("GuessableIsWeak/"+s, func(t *testing.T) {
			if !config.WeakSecret(s) {
				t.Fatalf("WeakSecret(%q) = false", s)
			}
		})
	}
	t.Run("RandomIsNotWeak", func(t *testing.T) {
		for range 20 {
			if s := strongHMACKey(t); config.WeakSecret(s) {
				t.Fatalf("WeakSecret(%q) = true", s)
			}
		}
	})
}

// TestExampleSecretsAreRefusedOutsideDevelopment copies each secret of
// .env.example into an otherwise sound production configuration: each
// must stop startup with a message naming the variable.
func TestExampleSecretsAreRefusedOutsideDevelopment(t *testing.T) {
	example := exampleValues(t)
	for _, k := range exampleSecretVars {
		t.Run("Example"+k+"IsRefused", func(t *testing.T) {
			_, err := load(production(t).with(k, example[k]))
			if err == nil {
				t.Fatalf("production accepted the example %s", k)
			}
			if !strings.Contains(err.Error(), k) {
				t.Fatalf("error does not name %s: %v", k, err)
			}
		})
	}
	t.Run("WholeExampleFileInProductionNamesEverySecret", func(t *testing.T) {
		e := env(example).with("MCP_ENV", "production")
		_, err := load(e)
		if err == nil {
			t.Fatal("production accepted .env.example")
		}
		for _, k := range exampleSecretVars {
			if !strings.Contains(err.Error(), k) {
				t.Errorf("%s not named in: %v", k, err)
			}
		}
	})
	t.Run("WholeExampleFileInDevelopmentIsAccepted", func(t *testing.T) {
		c := mustLoad(t, env(example).with("MCP_ENV", "development"))
		if err := c.ValidateServe(); err != nil {
			t.Fatal(err)
		}
		if err := c.ValidateStdio(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestWeakAuditKeysAreRefusedOutsideDevelopment: the audit chain is only
// as strong as its key; a short or guessable one lets whoever edits the
// table recompute the chain.
func TestWeakAuditKeysAreRefusedOutsideDevelopment(t *testing.T) {
	tests := []struct {
		name string
		key  string
	}{
		{"ShortKeyIsRefused", randomHex(t, 15)},
		{"RepeatedPairIsRefused", strings.Repeat("ab", 24)},
		{"OneCharacterRepeatedIsRefused", strings.Repeat("k", 64)},
		{"FewDistinctBytesIsRefused", strings.Repeat("0123456", 8)},
		{"PlaceholderPaddedToLengthIsRefused", "changeme-" + randomHex(t, 20)},
		{"GuessableWordIsRefused", "password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(production(t).with("AUDIT_HMAC_KEY", tt.key))
			if err == nil || !strings.Contains(err.Error(), "AUDIT_HMAC_KEY") {
				t.Fatalf("production: %v, want a refusal naming AUDIT_HMAC_KEY", err)
			}
			if strings.Contains(err.Error(), tt.key) {
				t.Fatalf("error repeats the key: %v", err)
			}
		})
		t.Run(strings.TrimSuffix(tt.name, "IsRefused")+"IsAcceptedInDevelopment", func(t *testing.T) {
			mustLoad(t, production(t).with("MCP_ENV", "development", "AUDIT_HMAC_KEY", tt.key))
		})
	}
	t.Run("StrongKeyIsAccepted", func(t *testing.T) {
		mustLoad(t, production(t))
	})
}

// TestRemoteDatabaseNeedsPasswordAndVerifiedTLS: outside development a
// database that is not on this host must be reached with a password (or a
// client certificate) and with its certificate verified, or anyone on the
// path can read every order and the credentials.
func TestRemoteDatabaseNeedsPasswordAndVerifiedTLS(t *testing.T) {
	// pgx also reads libpq's environment and password file; keep this
	// machine's out of the cases.
	for _, k := range []string{"PGPASSWORD", "PGSSLMODE", "PGHOST", "PGSSLCERT"} {
		t.Setenv(k, "")
	}
	t.Setenv("PGPASSFILE", filepath.Join(t.TempDir(), "absent"))
	pw := randomHex(t, 16)
	const host = "db.internal.example"
	tests := []struct {
		name   string
		dsn    string
		refuse string // "" when accepted
	}{
		{"RemoteWithoutPasswordIsRefused", "postgres://order_mcp@" + host + ":5432/orders?sslmode=verify-full", "without a password"},
		{"RemoteWithoutSSLModeIsRefused", "postgres://order_mcp:" + pw + "@" + host + "/orders", "verify-full"},
		{"RemoteWithSSLModeDisableIsRefused", "postgres://order_mcp:" + pw + "@" + host + "/orders?sslmode=disable", "verify-full"},
		{"RemoteWithSSLModeRequireIsRefused", "postgres://order_mcp:" + pw + "@" + host + "/orders?sslmode=require", "verify-full"},
		{"RemoteWithSSLModeVerifyCAIsRefused", "postgres://order_mcp:" + pw + "@" + host + "/orders?sslmode=verify-ca", "verify-full"},
		{"RemoteKeywordDSNWithoutVerifyFullIsRefused", "host=" + host + " user=order_mcp password=" + pw + " sslmode=require", "verify-full"},
		{"RemoteKeywordDSNWithoutPasswordIsRefused", "host=" + host + " user=order_mcp sslmode=verify-full", "without a password"},
		{"RemoteWithGuessablePasswordIsRefused", "postgres://order_mcp:postgres@" + host + "/orders?sslmode=verify-full", "guessable password"},
		{"LocalWithExamplePasswordIsRefused", "postgres://order_mcp:change-me-db-password@127.0.0.1/orders", "guessable password"},
		// The check must judge the connection pgx will make, not the
		// first sslmode or the first host it reads.
		{"RemoteKeywordDSNWhoseLastSSLModeIsDisableIsRefused", "host=" + host + " user=order_mcp password=" + pw + " sslmode=verify-full sslmode=disable", "verify-full"},
		{"RemoteFallbackHostWithoutTLSIsRefused", "postgres://order_mcp:" + pw + "@127.0.0.1," + host + "/orders?sslmode=disable", "verify-full"},

		{"RemoteWithVerifyFullAndStrongPasswordIsAccepted", "postgres://order_mcp:" + pw + "@" + host + ":5432/orders?sslmode=verify-full", ""},
		{"RemoteKeywordDSNWithVerifyFullIsAccepted", "host=" + host + " user=order_mcp password=" + pw + " sslmode=verify-full", ""},
		{"LoopbackWithoutPasswordIsAccepted", "postgres://order_mcp@127.0.0.1:5432/orders", ""},
		{"IPv6LoopbackWithoutTLSIsAccepted", "postgres://order_mcp@[::1]:5432/orders?sslmode=disable", ""},
		{"UnixSocketIsAccepted", "host=/var/run/postgresql user=order_mcp dbname=orders", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(production(t).with("DATABASE_URL", tt.dsn))
			switch {
			case tt.refuse == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.refuse != "" && err == nil:
				t.Fatalf("production accepted %s", strings.ReplaceAll(tt.dsn, pw, "xxx"))
			case tt.refuse != "" && (!strings.Contains(err.Error(), "DATABASE_URL") || !strings.Contains(err.Error(), tt.refuse)):
				t.Fatalf("error %q does not say DATABASE_URL ... %s", err, tt.refuse)
			case err != nil && strings.Contains(err.Error(), pw):
				t.Fatalf("error repeats the password: %v", err)
			}
		})
		if tt.refuse != "" {
			t.Run(strings.TrimSuffix(tt.name, "IsRefused")+"IsAcceptedInDevelopment", func(t *testing.T) {
				mustLoad(t, production(t).with("MCP_ENV", "development", "DATABASE_URL", tt.dsn))
			})
		}
	}
}

// TestValidateServe: `serve` refuses to expose plain HTTP beyond this host
// in production, and to run without an audit key.
func TestValidateServe(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	for _, p := range []string{cert, key} {
		if err := os.WriteFile(p, []byte("placeholder"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		kv     []string
		refuse string
	}{
		{"AllInterfacesWithoutTLSIsRefused", []string{"MCP_HTTP_ADDR", "0.0.0.0:8080"}, "MCP_HTTP_ADDR"},
		{"EmptyHostWithoutTLSIsRefused", []string{"MCP_HTTP_ADDR", ":8080"}, "MCP_HTTP_ADDR"},
		{"IPv6AllInterfacesWithoutTLSIsRefused", []string{"MCP_HTTP_ADDR", "[::]:8080"}, "MCP_HTTP_ADDR"},
		{"LANAddressWithoutTLSIsRefused", []string{"MCP_HTTP_ADDR", "192.0.2.10:8080"}, "MCP_HTTP_ADDR"},
		{"LocalhostLookalikeWithoutTLSIsRefused", []string{"MCP_HTTP_ADDR", "localhost.attacker.example:8080"}, "MCP_HTTP_ADDR"},
		{"AddressWithoutPortIsRefused", []string{"MCP_HTTP_ADDR", "0.0.0.0"}, "MCP_HTTP_ADDR"},
		{"MissingAuditKeyIsRefused", []string{"AUDIT_HMAC_KEY", ""}, "AUDIT_HMAC_KEY"},
		{"AllInterfacesWithoutResourceURLIsRefused", []string{"MCP_HTTP_ADDR", "0.0.0.0:8080", "MCP_TLS_TERMINATED_BY_PROXY", "true"}, "MCP_RESOURCE_URL"},

		{"LoopbackIsAccepted", []string{"MCP_HTTP_ADDR", "127.0.0.1:8080"}, ""},
		{"IPv6LoopbackIsAccepted", []string{"MCP_HTTP_ADDR", "[::1]:8080"}, ""},
		{"LocalhostIsAccepted", []string{"MCP_HTTP_ADDR", "localhost:8080"}, ""},
		{"AllInterfacesWithCertAndKeyIsAccepted", []string{"MCP_HTTP_ADDR", "0.0.0.0:8443", "MCP_TLS_CERT_FILE", cert, "MCP_TLS_KEY_FILE", key, "MCP_RESOURCE_URL", "https://mcp.example.com:8443/mcp"}, ""},
		{"AllInterfacesBehindTLSProxyIsAccepted", []string{"MCP_HTTP_ADDR", "0.0.0.0:8080", "MCP_TLS_TERMINATED_BY_PROXY", "true", "MCP_RESOURCE_URL", "https://mcp.example.com/mcp"}, ""},
		{"AllInterfacesInDevelopmentIsAccepted", []string{"MCP_HTTP_ADDR", "0.0.0.0:8080", "MCP_ENV", "development"}, ""},
		{"MissingAuditKeyInDevelopmentIsAccepted", []string{"AUDIT_HMAC_KEY", "", "MCP_ENV", "development"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustLoad(t, production(t).with(tt.kv...))
			err := c.ValidateServe()
			switch {
			case tt.refuse == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.refuse != "" && (err == nil || !strings.Contains(err.Error(), tt.refuse)):
				t.Fatalf("got %v, want a refusal naming %s", err, tt.refuse)
			}
		})
	}
}

// TestValidateStdio: stdio runs as exactly one API key, and in production
// with an audit key.
func TestValidateStdio(t *testing.T) {
	dir := t.TempDir()
	apiKey := "osmcp_" + randomHex(t, 6) + "_" + randomHex(t, 26)
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte(apiKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		kv     []string
		refuse string
	}{
		{"MissingAPIKeyIsRefused", nil, "MCP_API_KEY"},
		{"MissingAPIKeyInDevelopmentIsRefused", []string{"MCP_ENV", "development"}, "MCP_API_KEY"},
		{"MissingAuditKeyIsRefused", []string{"MCP_API_KEY", apiKey, "AUDIT_HMAC_KEY", ""}, "AUDIT_HMAC_KEY"},
		{"APIKeyIsAccepted", []string{"MCP_API_KEY", apiKey}, ""},
		{"APIKeyFromFileIsAccepted", []string{"MCP_API_KEY_FILE", keyFile}, ""},
		{"MissingAuditKeyInDevelopmentIsAccepted", []string{"MCP_API_KEY", apiKey, "AUDIT_HMAC_KEY", "", "MCP_ENV", "development"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustLoad(t, production(t).with(tt.kv...))
			err := c.ValidateStdio()
			switch {
			case tt.refuse == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.refuse != "" && (err == nil || !strings.Contains(err.Error(), tt.refuse)):
				t.Fatalf("got %v, want a refusal naming %s", err, tt.refuse)
			}
		})
	}
}

// TestPostureRevealsNoSecret renders the posture line the way the server
// logs it at startup and searches it for every secret of the
// configuration, while checking that it still says what an operator needs.
func TestPostureRevealsNoSecret(t *testing.T) {
	dbPW, redisPW, hmacKey := randomHex(t, 16), randomHex(t, 16), strongHMACKey(t)
	apiKey := "osmcp_" + randomHex(t, 6) + "_" + randomHex(t, 26)
	tests := []struct {
		name string
		kv   []string
		keep []string
	}{
		{"URLDatabaseAndRedis", []string{
			"DATABASE_URL", "postgres://order_mcp:" + dbPW + "@db.internal.example:5432/orders?sslmode=verify-full",
			"REDIS_URL", "redis://default:" + redisPW + "@cache.internal.example:6379/0",
		}, []string{"db.internal.example:5432/orders", "sslmode=verify-full", "redis://cache.internal.example:6379"}},
		{"KeywordDatabaseAndPasswordOnlyRedis", []string{
			"DATABASE_URL", "host=db.internal.example user=order_mcp password=" + dbPW + " dbname=orders sslmode=verify-full",
			"REDIS_URL", "redis://:" + redisPW + "@cache.internal.example:6379/0",
		}, []string{"db.internal.example", "redis://cache.internal.example:6379"}},
		{"PasswordInQueryString", []string{
			"DATABASE_URL", "postgres://order_mcp@db.internal.example/orders?sslmode=verify-full&password=" + dbPW,
			"REDIS_URL", "redis://" + redisPW + "@cache.internal.example:6379/0",
		}, []string{"db.internal.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name+"RevealsNoSecret", func(t *testing.T) {
			kv := append([]string{"AUDIT_HMAC_KEY", hmacKey, "MCP_API_KEY", apiKey,
				"MCP_HTTP_ADDR", "0.0.0.0:8080", "MCP_TLS_TERMINATED_BY_PROXY", "true"}, tt.kv...)
			c := mustLoad(t, production(t).with(kv...))
			var buf bytes.Buffer
			slog.New(slog.NewJSONHandler(&buf, nil)).LogAttrs(t.Context(), slog.LevelInfo, "security posture", c.Posture()...)
			out := buf.String()
			for name, secret := range map[string]string{"database password": dbPW, "redis password": redisPW,
				"audit key": hmacKey, "api key": apiKey, "api key secret": apiKey[len(apiKey)-52:]} {
				if strings.Contains(out, secret) {
					t.Errorf("posture reveals the %s: %s", name, out)
				}
			}
			for _, want := range append(tt.keep, `"env":"production"`, `"audit_key_configured":true`, `"tls":true`) {
				if !strings.Contains(out, want) {
					t.Errorf("posture does not say %s: %s", want, out)
				}
			}
		})
	}
}

// TestConfirmationSettings: the confirmation of destructive calls is on
// by default and in force outside development, its setting takes only the
// documented values, and the secret that seals its state is refused when
// short, guessable or the audit key (which would let one leaked secret
// forge both), and required by `serve`, whose replicas must share it.
func TestConfirmationSettings(t *testing.T) {
	t.Run("ProductionDefaultIsRequired", func(t *testing.T) {
		if got := mustLoad(t, production(t)).CancelConfirmation; got != config.ConfirmRequired {
			t.Fatalf("CANCEL_CONFIRMATION defaults to %q in production", got)
		}
	})
	t.Run("DevelopmentDefaultIsIfSupported", func(t *testing.T) {
		if got := mustLoad(t, production(t).with("MCP_ENV", "development")).CancelConfirmation; got != config.ConfirmIfSupported {
			t.Fatalf("CANCEL_CONFIRMATION defaults to %q in development", got)
		}
	})
	t.Run("EachValueIsAccepted", func(t *testing.T) {
		for _, v := range []string{config.ConfirmRequired, config.ConfirmIfSupported, config.ConfirmOff} {
			if got := mustLoad(t, production(t).with("CANCEL_CONFIRMATION", v)).CancelConfirmation; got != v {
				t.Fatalf("CANCEL_CONFIRMATION=%s read as %q", v, got)
			}
		}
	})
	for _, v := range []string{"Required", "no", "false", "optional"} {
		t.Run("Unknown value "+v+" is refused", func(t *testing.T) {
			if _, err := load(production(t).with("CANCEL_CONFIRMATION", v)); err == nil || !strings.Contains(err.Error(), "CANCEL_CONFIRMATION") {
				t.Fatalf("got %v, want a refusal naming CANCEL_CONFIRMATION", err)
			}
		})
	}

	audit := strongHMACKey(t)
	weak := []struct{ name, secret string }{
		{"ShortSecretIsRefused", randomHex(t, 15)},
		{"RepeatedPairIsRefused", strings.Repeat("ab", 24)},
		{"PlaceholderPaddedToLengthIsRefused", "change-me-" + randomHex(t, 20)},
		{"TheAuditKeyIsRefused", audit},
	}
	for _, tt := range weak {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(production(t).with("AUDIT_HMAC_KEY", audit, "CONFIRMATION_SECRET", tt.secret))
			if err == nil || !strings.Contains(err.Error(), "CONFIRMATION_SECRET") {
				t.Fatalf("production: %v, want a refusal naming CONFIRMATION_SECRET", err)
			}
			if strings.Contains(err.Error(), tt.secret) {
				t.Fatalf("error repeats the secret: %v", err)
			}
		})
		t.Run(strings.TrimSuffix(tt.name, "IsRefused")+"IsAcceptedInDevelopment", func(t *testing.T) {
			mustLoad(t, production(t).with("MCP_ENV", "development", "AUDIT_HMAC_KEY", audit, "CONFIRMATION_SECRET", tt.secret))
		})
	}

	validate := []struct {
		name   string
		kv     []string
		check  func(*config.Config) error
		refuse bool
	}{
		{"ServeWithoutSecretIsRefused", []string{"CONFIRMATION_SECRET", ""}, (*config.Config).ValidateServe, true},
		{"ServeWithoutSecretIfSupportedIsRefused", []string{"CONFIRMATION_SECRET", "", "CANCEL_CONFIRMATION", "if-supported"}, (*config.Config).ValidateServe, true},
		{"ServeWithoutSecretWhenOffIsAccepted", []string{"CONFIRMATION_SECRET", "", "CANCEL_CONFIRMATION", "off"}, (*config.Config).ValidateServe, false},
		{"ServeWithoutSecretInDevelopmentIsAccepted", []string{"CONFIRMATION_SECRET", "", "MCP_ENV", "development"}, (*config.Config).ValidateServe, false},
		{"StdioWithoutSecretIsAccepted", []string{"CONFIRMATION_SECRET", "", "MCP_API_KEY", "osmcp_" + randomHex(t, 6) + "_" + randomHex(t, 26)}, (*config.Config).ValidateStdio, false},
	}
	for _, tt := range validate {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.check(mustLoad(t, production(t).with(tt.kv...)))
			switch {
			case !tt.refuse && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.refuse && (err == nil || !strings.Contains(err.Error(), "CONFIRMATION_SECRET")):
				t.Fatalf("got %v, want a refusal naming CONFIRMATION_SECRET", err)
			}
		})
	}
}
