package config

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// weakSecretParts are substrings of placeholder or guessable secrets. The
// values in .env.example all contain "change-me" (a test keeps it so), and
// the rest are the passwords that scanners try first.
var weakSecretParts = []string{"change-me", "changeme", "replace-me", "example", "placeholder", "dummy"}

var weakSecrets = []string{"password", "passw0rd", "postgres", "secret", "admin", "root", "test", "12345678", "123456", "qwerty", "letmein"}

// WeakSecret reports whether s is a known placeholder or a guessable value.
func WeakSecret(s string) bool {
	l := strings.ToLower(strings.TrimSpace(s))
	for _, part := range weakSecretParts {
		if strings.Contains(l, part) {
			return true
		}
	}
	for _, w := range weakSecrets {
		if l == w {
			return true
		}
	}
	return false
}

// productionSecrets lists what is unacceptable outside development.
func (c *Config) productionSecrets() []error {
	var errs []error
	if len(c.AuditHMACKey) > 0 {
		switch {
		case len(c.AuditHMACKey) < 32:
			errs = append(errs, fmt.Errorf("AUDIT_HMAC_KEY must be at least 32 bytes (generate one: openssl rand -base64 48)"))
		case WeakSecret(string(c.AuditHMACKey)) || distinctBytes(c.AuditHMACKey) < 8:
			errs = append(errs, fmt.Errorf("AUDIT_HMAC_KEY is an example or guessable value: generate one (openssl rand -base64 48)"))
		}
	}
	if len(c.ConfirmationSecret) > 0 {
		switch {
		case len(c.ConfirmationSecret) < 32:
			errs = append(errs, fmt.Errorf("CONFIRMATION_SECRET must be at least 32 bytes (generate one: openssl rand -base64 48)"))
		case WeakSecret(string(c.ConfirmationSecret)) || distinctBytes(c.ConfirmationSecret) < 8:
			errs = append(errs, fmt.Errorf("CONFIRMATION_SECRET is an example or guessable value: generate one (openssl rand -base64 48)"))
		case string(c.ConfirmationSecret) == string(c.AuditHMACKey):
			errs = append(errs, fmt.Errorf("CONFIRMATION_SECRET must not be AUDIT_HMAC_KEY: give each its own secret"))
		}
	}
	errs = append(errs, c.toolDigestKeyProblems()...)
	if c.DBLoginPassword != "" && (WeakSecret(c.DBLoginPassword) || len(c.DBLoginPassword) < 16) {
		errs = append(errs, fmt.Errorf("DB_LOGIN_PASSWORD is short, an example or guessable: generate one (openssl rand -base64 24)"))
	}
	if c.APIKey != "" && WeakSecret(c.APIKey) {
		errs = append(errs, fmt.Errorf("MCP_API_KEY is the example value: mint a key with `server keys create`"))
	}
	if c.RedisURL != "" {
		if u, err := url.Parse(c.RedisURL); err == nil && u.User != nil {
			if p, ok := u.User.Password(); ok && WeakSecret(p) {
				errs = append(errs, fmt.Errorf("REDIS_URL holds an example or guessable password"))
			}
		}
	}
	if c.DatabaseURL != "" {
		errs = append(errs, databaseProblems(c.DatabaseURL)...)
	}
	return errs
}

// databaseProblems checks DATABASE_URL: no example password, and every
// remote host it may connect to (the primary and any fallback) only with a
// password and with its certificate verified. It judges the configuration
// pgx will actually use, not the text: in a keyword DSN the last sslmode
// wins, and a multi-host URL has fallbacks.
func databaseProblems(dsn string) []error {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return []error{fmt.Errorf("DATABASE_URL is not a valid Postgres connection string")}
	}
	var errs []error
	if cfg.Password != "" && WeakSecret(cfg.Password) {
		errs = append(errs, fmt.Errorf("DATABASE_URL holds an example or guessable password"))
	}
	type target struct {
		host     string
		tls      *tls.Config
		password string
	}
	targets := []target{{cfg.Host, cfg.TLSConfig, cfg.Password}}
	for _, f := range cfg.Fallbacks {
		targets = append(targets, target{f.Host, f.TLSConfig, cfg.Password})
	}
	var noPassword, unverified bool
	for _, t := range targets {
		if isLocalHost(t.host) {
			continue
		}
		if t.password == "" && !strings.Contains(dsn, "sslcert") {
			noPassword = true
		}
		if !verifiesCertificate(t.tls) {
			unverified = true
		}
	}
	if noPassword {
		errs = append(errs, fmt.Errorf("DATABASE_URL names a remote database without a password or client certificate"))
	}
	if unverified {
		errs = append(errs, fmt.Errorf("DATABASE_URL names a remote database: set sslmode=verify-full so its certificate is verified"))
	}
	return errs
}

// verifiesCertificate reports whether pgx will verify the server's
// certificate and name: only sslmode=verify-full gives a TLS config that
// does not skip verification (verify-ca skips the name check, require and
// prefer skip everything, disable has no TLS).
func verifiesCertificate(c *tls.Config) bool {
	return c != nil && !c.InsecureSkipVerify && c.ServerName != ""
}

func isLocalHost(host string) bool {
	return strings.HasPrefix(host, "/") || isLoopback(host)
}

// sslMode returns the sslmode a connection string asks for ("prefer",
// pgx's default, when it asks for none), for the posture line. In a
// keyword DSN, as in pgx, the last one wins.
func sslMode(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		if m := u.Query().Get("sslmode"); m != "" {
			return m
		}
		return "prefer"
	}
	mode := "prefer"
	for _, field := range strings.Fields(dsn) {
		if v, ok := strings.CutPrefix(field, "sslmode="); ok {
			mode = strings.Trim(v, "'")
		}
	}
	return mode
}

func distinctBytes(b []byte) int {
	seen := map[byte]bool{}
	for _, c := range b {
		seen[c] = true
	}
	return len(seen)
}

// Posture describes the effective security configuration in one log line,
// with every secret masked: what an operator checks after a deploy.
func (c *Config) Posture() []slog.Attr {
	attrs := []slog.Attr{
		slog.String("env", c.Env),
		slog.String("http_addr", c.HTTPAddr),
		slog.String("resource_url", c.ResourceURL),
		slog.Bool("tls", c.TLS()),
		slog.Bool("tls_terminated_by_proxy", c.TLSTerminatedByProxy),
		slog.String("database", describeDatabase(c.DatabaseURL)),
		slog.String("auth", c.authMethods()),
		slog.String("oauth_issuer", c.OAuthIssuer),
		slog.Bool("oauth_accept_jwt_typ", c.OAuthAcceptJWTType),
		slog.String("oauth_max_token_lifetime", c.OAuthMaxLifetime.String()),
		slog.String("rate_per_ip", c.RatePerIP.Formatted),
		slog.String("rate_per_principal", c.RatePerPrincipal.Formatted),
		slog.String("rate_cancel", c.RateCancel.Formatted),
		slog.Int("concurrency_per_principal", c.ConcurrencyPerCaller),
		slog.Int("cancel_daily_quota", c.CancelDailyQuota),
		slog.String("limit_state", c.limitState()),
		slog.String("allowed_origins", strings.Join(c.AllowedOrigins, ",")),
		slog.String("allowed_hosts", strings.Join(c.AllowedHosts, ",")),
		slog.Int("trusted_proxies", len(c.TrustedProxies)),
		slog.Bool("stateful_http", c.Stateful),
		slog.Bool("audit_key_configured", len(c.AuditHMACKey) > 0),
		slog.String("cancel_confirmation", c.CancelConfirmation),
		slog.Bool("confirmation_secret_configured", len(c.ConfirmationSecret) > 0),
		slog.Bool("tool_digest_key_configured", c.ToolDigestKey != nil),
		slog.String("sdk_debug", c.SDKDebug),
	}
	return attrs
}

func (c *Config) authMethods() string {
	if c.OAuth() {
		return "api_key+oauth"
	}
	return "api_key"
}

func (c *Config) limitState() string {
	if c.RedisURL == "" {
		return "memory"
	}
	if u, err := url.Parse(c.RedisURL); err == nil {
		return "redis://" + u.Host
	}
	return "redis"
}

// describeDatabase names host and database, never credentials.
func describeDatabase(dsn string) string {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return "(unparseable)"
	}
	return fmt.Sprintf("%s:%d/%s sslmode=%s", cfg.Host, cfg.Port, cfg.Database, sslMode(dsn))
}
