package config_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/example/order-mcp/internal/config"
)

// Test values are generated at run time: nothing in this file looks like a
// committed secret, and a value found in an error can only come from here.

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// strongHMACKey is what `openssl rand -hex 32` prints. Hex, rather than
// base64, can never spell a word of the weak list by chance ("dummy",
// "example"...), so the tests that need a strong key cannot flake.
func strongHMACKey(t testing.TB) string { return randomHex(t, 32) }

// env is a fake process environment; Load and WithDotEnv take a getenv.
type env map[string]string

func (e env) getenv(k string) string { return e[k] }

// with returns a copy of e with kv (key, value, key, value...) applied; an
// empty value unsets the key.
func (e env) with(kv ...string) env {
	out := env{}
	for k, v := range e {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(out, kv[i])
		} else {
			out[kv[i]] = kv[i+1]
		}
	}
	return out
}

// production is a valid production environment with strong secrets: every
// case changes one thing.
func production(t testing.TB) env {
	return env{
		"DATABASE_URL":            "postgres://order_mcp:" + randomHex(t, 16) + "@127.0.0.1:5432/order_mcp?sslmode=disable",
		"AUDIT_HMAC_KEY":          strongHMACKey(t),
		"CONFIRMATION_SECRET":     strongHMACKey(t),
		"TOOL_DIGEST_SIGNING_KEY": strongSeed(t),
	}
}

func load(e env) (*config.Config, error) { return config.Load(e.getenv, os.ReadFile) }

func mustLoad(t *testing.T, e env) *config.Config {
	t.Helper()
	c, err := load(e)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

// TestDefaultsAreSafe: an operator who sets only DATABASE_URL gets
// production and a bounded server on loopback.
func TestDefaultsAreSafe(t *testing.T) {
	c := mustLoad(t, env{"DATABASE_URL": "postgres://order_mcp@127.0.0.1:5432/order_mcp"})
	tests := []struct {
		name      string
		got, want any
	}{
		{"EnvIsProduction", c.Env, "production"},
		{"DevelopmentIsOff", c.Development(), false},
		{"ListensOnLoopback8080", c.HTTPAddr, "127.0.0.1:8080"},
		{"ResourceURLFollowsTheAddress", c.ResourceURL, "http://127.0.0.1:8080/mcp"},
		{"BodyLimitIs1MiB", c.MaxBodyBytes, int64(1 << 20)},
		{"PerIPRateIs300PerMinute", [2]any{c.RatePerIP.Limit, c.RatePerIP.Period}, [2]any{int64(300), time.Minute}},
		{"PerPrincipalRateIs60PerMinute", [2]any{c.RatePerPrincipal.Limit, c.RatePerPrincipal.Period}, [2]any{int64(60), time.Minute}},
		{"CancelRateIs10PerHour", [2]any{c.RateCancel.Limit, c.RateCancel.Period}, [2]any{int64(10), time.Hour}},
		{"NotFoundRateIs20PerHour", [2]any{c.RateNotFound.Limit, c.RateNotFound.Period}, [2]any{int64(20), time.Hour}},
		{"ConcurrencyIs4", c.ConcurrencyPerCaller, 4},
		{"CancelQuotaIs3PerDay", c.CancelDailyQuota, 3},
		{"StatementTimeoutIs5s", c.StatementTimeout, 5 * time.Second},
		{"DBMaxConnsIs10", c.DBMaxConns, int32(10)},
		{"SessionIdleTimeoutIs30m", c.SessionIdleTimeout, 30 * time.Minute},
		{"SessionsPerPrincipalIs5", c.MaxSessionsPerPrincipal, 5},
		{"StatelessHTTP", c.Stateful, false},
		{"NoExtraOrigins", len(c.AllowedOrigins), 0},
		{"NoExtraHosts", len(c.AllowedHosts), 0},
		{"NoTrustedProxies", len(c.TrustedProxies), 0},
		{"NoTLSClaimed", c.TLS(), false},
		{"NoOAuth", c.OAuth(), false},
		{"LimitStateInMemory", c.RedisURL, ""},
		{"LogLevelInfo", c.LogLevel, "info"},
		{"DestructiveCallsNeedConfirmation", c.CancelConfirmation, config.ConfirmRequired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Fatalf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
}

// TestUnsetEnvIsProduction: forgetting MCP_ENV must not relax anything.
// The example audit key is refused, which only production does.
func TestUnsetEnvIsProduction(t *testing.T) {
	_, err := load(production(t).with("AUDIT_HMAC_KEY", "change-me-audit-hmac-key-at-least-32-bytes-long"))
	if err == nil || !strings.Contains(err.Error(), "AUDIT_HMAC_KEY") {
		t.Fatalf("example audit key with MCP_ENV unset: %v, want a refusal", err)
	}
}

// TestSecretsFromFiles: every secret X can come from the file X_FILE names,
// as Docker and Kubernetes secrets and vault agents deliver them.
func TestSecretsFromFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	dbURL := "postgres://order_mcp:" + randomHex(t, 16) + "@127.0.0.1:5432/order_mcp"
	apiKey := "osmcp_" + randomHex(t, 6) + "_" + randomHex(t, 26)
	redisURL := "redis://:" + randomHex(t, 16) + "@127.0.0.1:6379/0"
	hmacKey := strongHMACKey(t)

	tests := []struct {
		name string
		env  env
		got  func(*config.Config) string
		want string
	}{
		{"DatabaseURLIsReadFromItsFile", env{"DATABASE_URL_FILE": write("db", dbURL+"\n"), "AUDIT_HMAC_KEY": hmacKey},
			func(c *config.Config) string { return c.DatabaseURL }, dbURL},
		{"APIKeyIsReadFromItsFile", production(t).with("MCP_API_KEY_FILE", write("key", apiKey+"\n")),
			func(c *config.Config) string { return c.APIKey }, apiKey},
		{"RedisURLIsReadFromItsFile", production(t).with("REDIS_URL_FILE", write("redis", redisURL)),
			func(c *config.Config) string { return c.RedisURL }, redisURL},
		{"AuditKeyIsReadFromItsFileWithoutTheNewline", production(t).with("AUDIT_HMAC_KEY", "", "AUDIT_HMAC_KEY_FILE", write("hmac", hmacKey+"\n")),
			func(c *config.Config) string { return string(c.AuditHMACKey) }, hmacKey},
		{"WindowsLineEndingIsTrimmed", production(t).with("AUDIT_HMAC_KEY", "", "AUDIT_HMAC_KEY_FILE", write("hmac-crlf", hmacKey+"\r\n")),
			func(c *config.Config) string { return string(c.AuditHMACKey) }, hmacKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.got(mustLoad(t, tt.env)); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestSecretFileProblemsAreRefusedWithoutRevealingTheSecret: setting both X
// and X_FILE is refused (which one wins would be a guess), and a file that
// cannot be read is refused with an error that names the variable and
// repeats neither the secret nor what the reader said about the file.
func TestSecretFileProblemsAreRefusedWithoutRevealingTheSecret(t *testing.T) {
	dir := t.TempDir()
	secret := strongHMACKey(t)
	file := filepath.Join(dir, "hmac")
	if err := os.WriteFile(file, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	// A reader with a verbose error, like a secrets client that refuses a
	// file and quotes it.
	verbose := func(p string) ([]byte, error) {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("refusing %s: unexpected content %q", p, b)
	}
	tests := []struct {
		name     string
		env      env
		readFile func(string) ([]byte, error)
		want     []string
	}{
		{"ValueAndFileBothSetIsRefused", production(t).with("AUDIT_HMAC_KEY", secret, "AUDIT_HMAC_KEY_FILE", file), os.ReadFile,
			[]string{"AUDIT_HMAC_KEY and AUDIT_HMAC_KEY_FILE are both set"}},
		{"MissingFileIsRefused", production(t).with("AUDIT_HMAC_KEY", "", "AUDIT_HMAC_KEY_FILE", filepath.Join(dir, "absent")), os.ReadFile,
			[]string{"AUDIT_HMAC_KEY_FILE"}},
		{"DirectoryIsRefused", production(t).with("AUDIT_HMAC_KEY", "", "AUDIT_HMAC_KEY_FILE", dir), os.ReadFile,
			[]string{"AUDIT_HMAC_KEY_FILE"}},
		{"ReaderErrorQuotingTheFileIsNotRepeated", production(t).with("AUDIT_HMAC_KEY", "", "AUDIT_HMAC_KEY_FILE", file), verbose,
			[]string{"AUDIT_HMAC_KEY_FILE"}},
		{"DatabaseURLBothWaysIsRefused", env{"DATABASE_URL": "postgres://u:" + secret + "@127.0.0.1/db", "DATABASE_URL_FILE": file}, os.ReadFile,
			[]string{"DATABASE_URL and DATABASE_URL_FILE are both set"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Load(tt.env.getenv, tt.readFile)
			if err == nil {
				t.Fatalf("accepted: %+v", c)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			for _, leak := range []string{secret, "unexpected content", "no such file", "is a directory"} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("error repeats %q: %v", leak, err)
				}
			}
		})
	}
}

// TestDotEnvIsReadOnlyInDevelopment: a .env file is a development
// convenience. In production it is ignored even when present, also when
// it claims MCP_ENV=development itself (a file dropped next to the binary
// must not relax the checks), and real environment variables always win.
func TestDotEnvIsReadOnlyInDevelopment(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ".env")
	fileDB := "postgres://dev:" + randomHex(t, 8) + "@127.0.0.1:5432/dev"
	content := "MCP_ENV=development\n" +
		"DATABASE_URL='" + fileDB + "'\n" +
		"AUDIT_HMAC_KEY='change-me-audit-hmac-key-at-least-32-bytes-long'\n" +
		"LOG_LEVEL=debug\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	realDB := "postgres://order_mcp:" + randomHex(t, 16) + "@127.0.0.1:5432/order_mcp"

	tests := []struct {
		name     string
		real     env
		path     string
		wantRead bool
		want     map[string]string
	}{
		{"DevelopmentReadsTheFile", env{"MCP_ENV": "development"}, path, true,
			map[string]string{"DATABASE_URL": fileDB, "LOG_LEVEL": "debug"}},
		{"RealEnvironmentWinsOverTheFile", env{"MCP_ENV": "development", "DATABASE_URL": realDB, "LOG_LEVEL": "warn"}, path, true,
			map[string]string{"DATABASE_URL": realDB, "LOG_LEVEL": "warn"}},
		{"UnsetEnvIgnoresTheFileThatClaimsDevelopment", env{}, path, false,
			map[string]string{"MCP_ENV": "", "DATABASE_URL": "", "AUDIT_HMAC_KEY": ""}},
		{"ProductionIgnoresTheFile", env{"MCP_ENV": "production", "DATABASE_URL": realDB}, path, false,
			map[string]string{"MCP_ENV": "production", "DATABASE_URL": realDB, "LOG_LEVEL": ""}},
		{"DevelopmentInCapitalsIsNotDevelopment", env{"MCP_ENV": "Development"}, path, false,
			map[string]string{"DATABASE_URL": ""}},
		{"MissingFileInDevelopmentIsNoError", env{"MCP_ENV": "development"}, filepath.Join(dir, "absent.env"), false,
			map[string]string{"DATABASE_URL": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv, read, err := config.WithDotEnv(tt.real.getenv, tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if read != tt.wantRead {
				t.Fatalf("read = %v, want %v", read, tt.wantRead)
			}
			for k, want := range tt.want {
				if got := getenv(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
		})
	}

	t.Run("ProductionWithAPlantedFileStillRefusesItsExampleSecret", func(t *testing.T) {
		getenv, _, err := config.WithDotEnv(env{"DATABASE_URL": realDB}.getenv, path)
		if err != nil {
			t.Fatal(err)
		}
		c, err := config.Load(getenv, os.ReadFile)
		if err != nil {
			t.Fatal(err)
		}
		if c.Development() || len(c.AuditHMACKey) != 0 {
			t.Fatalf("the planted file took effect: env %s, audit key set %v", c.Env, len(c.AuditHMACKey) != 0)
		}
		if err := c.ValidateServe(); err == nil {
			t.Fatal("serve would start in production without an audit key")
		}
	})
}

// TestDotEnvQuoting documents the godotenv "$" pitfall that .env.example
// warns about: godotenv expands $VAR in unquoted and double-quoted values
// (from variables earlier in the same file, or to nothing), so a secret
// containing "$" is silently changed; single quotes keep it literal. That
// is why every secret in .env.example is single-quoted, which the last
// subtest checks.
func TestDotEnvQuoting(t *testing.T) {
	key := strongHMACKey(t) + "$HOME$1x"
	content := "MCP_ENV=development\n" +
		"SINGLE='pa$HOME'\n" +
		"DOUBLE=\"pa$HOME\"\n" +
		"BARE=pa$HOME\n" +
		"AUDIT_HMAC_KEY='" + key + "'\n" +
		"DATABASE_URL='postgres://order_mcp:" + "pa$HOME" + "@127.0.0.1:5432/order_mcp'\n" // split: not a committed secret
	path := filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	getenv, _, err := config.WithDotEnv(env{"MCP_ENV": "development"}.getenv, path)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, key, want string
	}{
		{"SingleQuotedValueIsLiteral", "SINGLE", "pa$HOME"},
		{"DoubleQuotedValueIsExpanded", "DOUBLE", "pa"},
		{"UnquotedValueIsExpanded", "BARE", "pa"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := getenv(tt.key); got != tt.want {
				t.Fatalf("%s = %q, want %q", tt.key, got, tt.want)
			}
		})
	}
	t.Run("SingleQuotedSecretsSurviveIntoTheConfig", func(t *testing.T) {
		c, err := config.Load(getenv, os.ReadFile)
		if err != nil {
			t.Fatal(err)
		}
		if string(c.AuditHMACKey) != key {
			t.Errorf("audit key changed on the way: %d bytes, want %d", len(c.AuditHMACKey), len(key))
		}
		if !strings.Contains(c.DatabaseURL, ":pa$HOME@") {
			t.Errorf("database password changed on the way")
		}
	})
	t.Run("EnvExampleSingleQuotesEverySecret", func(t *testing.T) {
		raw, err := os.ReadFile(envExample)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, line := range strings.Split(string(raw), "\n") {
			line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "#"))
			for _, k := range exampleSecretVars {
				if v, ok := strings.CutPrefix(line, k+"="); ok {
					seen[k] = true
					if !strings.HasPrefix(v, "'") || !strings.HasSuffix(v, "'") {
						t.Errorf(".env.example: %s is not single-quoted: %s", k, line)
					}
				}
			}
		}
		for _, k := range exampleSecretVars {
			if !seen[k] {
				t.Errorf(".env.example does not document %s", k)
			}
		}
	})
}

// TestInvalidValuesAreRefusedByName: every bad value stops startup with an
// error naming the variable, instead of silently falling back to a default
// the operator did not choose.
func TestInvalidValuesAreRefusedByName(t *testing.T) {
	tests := []struct {
		name string
		kv   []string
		want []string
	}{
		{"RateWithoutPeriodIsRefused", []string{"RATE_LIMIT_PER_IP", "300"}, []string{"RATE_LIMIT_PER_IP"}},
		{"RateInWordsIsRefused", []string{"RATE_LIMIT_PER_PRINCIPAL", "60/minute"}, []string{"RATE_LIMIT_PER_PRINCIPAL"}},
		{"RateWithUnknownPeriodIsRefused", []string{"RATE_LIMIT_CANCEL", "10-W"}, []string{"RATE_LIMIT_CANCEL"}},
		{"ZeroRateIsRefused", []string{"RATE_LIMIT_NOT_FOUND", "0-H"}, []string{"RATE_LIMIT_NOT_FOUND"}},
		{"NegativeRateIsRefused", []string{"RATE_LIMIT_PER_IP", "-5-M"}, []string{"RATE_LIMIT_PER_IP"}},
		{"NegativeDurationIsRefused", []string{"MCP_SESSION_IDLE_TIMEOUT", "-1m"}, []string{"MCP_SESSION_IDLE_TIMEOUT"}},
		{"ZeroDurationIsRefused", []string{"DB_STATEMENT_TIMEOUT", "0s"}, []string{"DB_STATEMENT_TIMEOUT"}},
		{"DurationWithoutUnitIsRefused", []string{"DB_STATEMENT_TIMEOUT", "5"}, []string{"DB_STATEMENT_TIMEOUT"}},
		{"ZeroConcurrencyIsRefused", []string{"CONCURRENCY_PER_PRINCIPAL", "0"}, []string{"CONCURRENCY_PER_PRINCIPAL"}},
		{"HugeConcurrencyIsRefused", []string{"CONCURRENCY_PER_PRINCIPAL", "1000000"}, []string{"CONCURRENCY_PER_PRINCIPAL"}},
		{"NonNumericQuotaIsRefused", []string{"CANCEL_DAILY_QUOTA", "three"}, []string{"CANCEL_DAILY_QUOTA"}},
		{"TinyBodyLimitIsRefused", []string{"MCP_MAX_BODY_BYTES", "10"}, []string{"MCP_MAX_BODY_BYTES"}},
		{"HugeBodyLimitIsRefused", []string{"MCP_MAX_BODY_BYTES", "1073741824"}, []string{"MCP_MAX_BODY_BYTES"}},
		{"ZeroDBConnsIsRefused", []string{"DB_MAX_CONNS", "0"}, []string{"DB_MAX_CONNS"}},
		{"NegativeSessionsIsRefused", []string{"MCP_MAX_SESSIONS_PER_PRINCIPAL", "-1"}, []string{"MCP_MAX_SESSIONS_PER_PRINCIPAL"}},
		{"CIDRWithBadPrefixLengthIsRefused", []string{"TRUSTED_PROXIES", "10.0.0.0/33"}, []string{"TRUSTED_PROXIES"}},
		{"ProxyHostNameIsRefused", []string{"TRUSTED_PROXIES", "10.0.0.0/8,proxy.internal"}, []string{"TRUSTED_PROXIES"}},
		{"OriginWithPathIsRefused", []string{"MCP_ALLOWED_ORIGINS", "https://console.example.com/app"}, []string{"MCP_ALLOWED_ORIGINS"}},
		{"OriginWithoutSchemeIsRefused", []string{"MCP_ALLOWED_ORIGINS", "console.example.com"}, []string{"MCP_ALLOWED_ORIGINS"}},
		{"OriginWithOtherSchemeIsRefused", []string{"MCP_ALLOWED_ORIGINS", "https://ok.example.com,ftp://console.example.com"}, []string{"MCP_ALLOWED_ORIGINS"}},
		{"IssuerWithoutJWKSIsRefused", []string{"MCP_OAUTH_ISSUER", "https://auth.example.com/"}, []string{"MCP_OAUTH_ISSUER", "MCP_OAUTH_JWKS_URL"}},
		{"JWKSWithoutIssuerIsRefused", []string{"MCP_OAUTH_JWKS_URL", "https://auth.example.com/jwks.json"}, []string{"MCP_OAUTH_ISSUER", "MCP_OAUTH_JWKS_URL"}},
		{"PlainHTTPJWKSInProductionIsRefused", []string{"MCP_OAUTH_ISSUER", "https://auth.example.com/", "MCP_OAUTH_JWKS_URL", "http://auth.example.com/jwks.json"},
			[]string{"MCP_OAUTH_JWKS_URL must be an https URL"}},
		{"BooleanYesIsRefused", []string{"MCP_TLS_TERMINATED_BY_PROXY", "yes"}, []string{"MCP_TLS_TERMINATED_BY_PROXY"}},
		{"UnknownEnvIsRefused", []string{"MCP_ENV", "staging"}, []string{"MCP_ENV"}},
		{"EnvInCapitalsIsRefused", []string{"MCP_ENV", "Development"}, []string{"MCP_ENV"}},
		{"RelativeResourceURLIsRefused", []string{"MCP_RESOURCE_URL", "/mcp"}, []string{"MCP_RESOURCE_URL"}},
		{"MissingDatabaseURLIsRefused", []string{"DATABASE_URL", ""}, []string{"DATABASE_URL"}},
		{"CertWithoutKeyIsRefused", []string{"MCP_TLS_CERT_FILE", "/run/secrets/tls.crt"}, []string{"MCP_TLS_CERT_FILE", "MCP_TLS_KEY_FILE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(production(t).with(tt.kv...))
			if err == nil {
				t.Fatalf("accepted %v: %+v", tt.kv, c)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %s", err, w)
				}
			}
		})
	}

	t.Run("PlainHTTPJWKSInDevelopmentIsAccepted", func(t *testing.T) {
		mustLoad(t, production(t).with("MCP_ENV", "development", "MCP_OAUTH_ISSUER", "http://127.0.0.1:9000/",
			"MCP_OAUTH_JWKS_URL", "http://127.0.0.1:9000/jwks.json"))
	})
}

// TestAllProblemsAreReportedAtOnce: an operator fixing a deployment sees
// every problem in one run, not one per restart.
func TestAllProblemsAreReportedAtOnce(t *testing.T) {
	parse := []string{
		"RATE_LIMIT_PER_IP", "lots",
		"DB_STATEMENT_TIMEOUT", "-5s",
		"CONCURRENCY_PER_PRINCIPAL", "0",
		"TRUSTED_PROXIES", "10.0.0.0/33",
	}
	validate := []string{
		"MCP_ALLOWED_ORIGINS", "https://console.example.com/app",
		"MCP_OAUTH_ISSUER", "https://auth.example.com/",
		"AUDIT_HMAC_KEY", "change-me-audit-hmac-key-at-least-32-bytes-long",
	}
	tests := []struct {
		name string
		kv   []string
	}{
		{"ParseProblemsAreAllNamed", parse},
		{"ValidationProblemsAreAllNamed", validate},
		{"ParseAndValidationProblemsAreAllNamed", append(append([]string{}, parse...), validate...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(production(t).with(tt.kv...))
			if err == nil {
				t.Fatal("accepted")
			}
			for i := 0; i < len(tt.kv); i += 2 {
				if !strings.Contains(err.Error(), tt.kv[i]) {
					t.Errorf("%s not reported in: %v", tt.kv[i], err)
				}
			}
		})
	}
}

// TestAllowedHostsDefaultToTheResourceURLBeyondLoopback: on a listener
// beyond loopback, where the SDK's loopback-only Host rule protects
// nothing, the host of an explicit MCP_RESOURCE_URL becomes the Host
// allow-list; an explicit MCP_ALLOWED_HOSTS always wins.
func TestAllowedHostsDefaultToTheResourceURLBeyondLoopback(t *testing.T) {
	tests := []struct {
		name string
		kv   []string
		want []string
	}{
		{"AllInterfaces", []string{"MCP_HTTP_ADDR", "0.0.0.0:8080", "MCP_RESOURCE_URL", "https://MCP.example.com/mcp"}, []string{"mcp.example.com"}},
		{"DefaultPortSpelledOut", []string{"MCP_HTTP_ADDR", "[::]:8443", "MCP_RESOURCE_URL", "https://mcp.example.com:443/mcp"}, []string{"mcp.example.com:443", "mcp.example.com"}},
		{"OtherPort", []string{"MCP_HTTP_ADDR", "192.0.2.10:8443", "MCP_RESOURCE_URL", "https://mcp.example.com:8443/mcp"}, []string{"mcp.example.com:8443"}},
		{"ExplicitListWins", []string{"MCP_HTTP_ADDR", "0.0.0.0:8080", "MCP_RESOURCE_URL", "https://mcp.example.com/mcp", "MCP_ALLOWED_HOSTS", "a.example,b.example"}, []string{"a.example", "b.example"}},
		{"LoopbackKeepsTheSDKRule", []string{"MCP_HTTP_ADDR", "127.0.0.1:8080", "MCP_RESOURCE_URL", "http://127.0.0.1:8080/mcp"}, nil},
		{"DerivedResourceURLIsNotAHost", []string{"MCP_HTTP_ADDR", "0.0.0.0:8080", "MCP_ENV", "development"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustLoad(t, production(t).with(tt.kv...))
			if !slices.Equal(c.AllowedHosts, tt.want) {
				t.Fatalf("AllowedHosts = %q, want %q", c.AllowedHosts, tt.want)
			}
		})
	}
}
