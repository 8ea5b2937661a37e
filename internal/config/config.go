package config

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/joho/godotenv"
	"github.com/ulule/limiter/v3"
)

// Config is the whole configuration.
type Config struct {
	Env         string // "production" or "development"
	DatabaseURL string
	LogLevel    string

	// HTTP transport.
	HTTPAddr                string
	ResourceURL             string
	resourceURLSet          bool // MCP_RESOURCE_URL was given, not derived from HTTPAddr
	AllowedOrigins          []string
	AllowedHosts            []string
	TrustedProxies          []netip.Prefix
	TLSCertFile             string
	TLSKeyFile              string
	TLSTerminatedByProxy    bool
	MaxBodyBytes            int64
	Stateful                bool
	SessionIdleTimeout      time.Duration
	MaxSessionsPerPrincipal int

	// MetricsAddr, when set, serves Prometheus metrics at /metrics on a
	// listener of its own.
	MetricsAddr string

	// stdio transport.
	APIKey string

	// OAuth resource server.
	OAuthIssuer        string
	OAuthJWKSURL       string
	OAuthCustomerClaim string
	OAuthMaxLifetime   time.Duration
	OAuthAcceptJWTType bool

	// Limits.
	RatePerIP            limiter.Rate
	RatePerPrincipal     limiter.Rate
	RateCancel           limiter.Rate
	RateNotFound         limiter.Rate
	ConcurrencyPerCaller int
	CancelDailyQuota     int
	RedisURL             string
	RedisPrefix          string

	// Database.
	StatementTimeout time.Duration
	DBAcquireTimeout time.Duration
	DBMaxConns       int32
	// CredentialCacheTTL bounds how long an API key is answered from memory
	// without a change notification (internal/store/keycache.go).
	CredentialCacheTTL time.Duration

	// DBLoginRole and DBLoginPassword, when set, make `server migrate`
	// create (or update) the login role the server connects as: one that
	// can only become order_mcp_app.
	DBLoginRole     string
	DBLoginPassword string

	// Audit.
	AuditHMACKey []byte
	// AuditPreviousKeys are keys AUDIT_HMAC_KEY replaced: `audit verify`
	// checks the records they sealed (key rotation).
	AuditPreviousKeys [][]byte
	// AuditSpillDir keeps records Postgres cannot take until it can.
	AuditSpillDir string

	// Human confirmation of destructive calls (docs/BEYOND-THE-CHECKLIST.md#human-confirmation-of-destructive-calls).
	// CancelConfirmation is one of the Confirm* values.
	CancelConfirmation string
	// ConfirmationSecret seals a confirmation's state between question and
	// answer; empty: a development key, or (stdio) a key per process.
	ConfirmationSecret []byte

	// ToolDigestKey signs the digest of the tool surface (internal/surface);
	// nil: the public development key, or (stdio) unsigned digests.
	ToolDigestKey ed25519.PrivateKey

	// SDKDebug is MCPGODEBUG, the go-sdk's compatibility switches, which it
	// reads from the environment itself. Reported in the posture line,
	// since some (allowsessionsinstateless=1) change what HTTP accepts.
	SDKDebug string
}

// The values of CANCEL_CONFIRMATION.
const (
	// ConfirmRequired: a destructive tool runs only after the user
	// confirmed it through the client; a client that cannot be asked is
	// refused. The default.
	ConfirmRequired = "required"
	// ConfirmIfSupported: confirm when the client can be asked, otherwise
	// run under the budgets and quotas alone. The development default.
	ConfirmIfSupported = "if-supported"
	// ConfirmOff: never ask.
	ConfirmOff = "off"
)

// Development reports whether MCP_ENV is development. Development relaxes
// exactly these, all documented in .env.example and under MCP_ENV in Vars
// (docs/CONFIGURATION.md): the .env file is read; example and weak
// secrets, and remote databases without a password or certificate
// verification, are accepted; AUDIT_HMAC_KEY may be missing (a public key
// is used, and the log says the chain then proves nothing);
// CANCEL_CONFIRMATION defaults to if-supported and CONFIRMATION_SECRET may
// be missing (a public key, with a warning); TOOL_DIGEST_SIGNING_KEY may
// be missing (a public key, with a warning); an
// AUDIT_SPILL_DIR that cannot be written is only warned about (the
// assembly in internal/app decides that); MCP_OAUTH_JWKS_URL may be plain
// http (a local issuer); and serve may listen on a non-loopback address
// without TLS or MCP_RESOURCE_URL (for containers; the log warns).
func (c *Config) Development() bool { return c.Env == "development" }

// LoopbackHTTP reports whether MCP_HTTP_ADDR listens on loopback only.
func (c *Config) LoopbackHTTP() bool {
	host, _, err := net.SplitHostPort(c.HTTPAddr)
	return err == nil && isLoopback(host)
}

// OAuth reports whether bearer JWTs are accepted.
func (c *Config) OAuth() bool { return c.OAuthIssuer != "" }

// TLS reports whether clients reach the server over HTTPS.
func (c *Config) TLS() bool { return c.TLSCertFile != "" || c.TLSTerminatedByProxy }

// Getenv reads one variable; run passes os.Getenv, tests pass a map.
type Getenv func(string) string

// WithDotEnv returns getenv extended, in development only, by the .env file
// at path: variables set in the real environment win over the file. It
// reports whether a file was read.
func WithDotEnv(getenv Getenv, path string) (Getenv, bool, error) {
	if getenv("MCP_ENV") != "development" {
		return getenv, false, nil
	}
	file, err := godotenv.Read(path)
	if errors.Is(err, os.ErrNotExist) {
		return getenv, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", path, err)
	}
	return func(k string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return file[k]
	}, true, nil
}

// Load reads and validates the configuration. readFile reads X_FILE
// secrets (os.ReadFile in production). Every name and default comes from
// Vars (vars.go), which documents them: a name missing there is refused.
func Load(getenv Getenv, readFile func(string) ([]byte, error)) (*Config, error) {
	r := reader{getenv: getenv, readFile: readFile, vars: varsByName()}
	c := &Config{
		Env:         r.str("MCP_ENV"),
		DatabaseURL: r.secret("DATABASE_URL"),
		LogLevel:    r.str("LOG_LEVEL"),

		HTTPAddr:                r.str("MCP_HTTP_ADDR"),
		ResourceURL:             r.str("MCP_RESOURCE_URL"),
		AllowedOrigins:          r.list("MCP_ALLOWED_ORIGINS"),
		AllowedHosts:            lower(r.list("MCP_ALLOWED_HOSTS")),
		TrustedProxies:          r.prefixes("TRUSTED_PROXIES"),
		TLSCertFile:             r.str("MCP_TLS_CERT_FILE"),
		TLSKeyFile:              r.str("MCP_TLS_KEY_FILE"),
		TLSTerminatedByProxy:    r.boolean("MCP_TLS_TERMINATED_BY_PROXY"),
		MaxBodyBytes:            int64(r.integer("MCP_MAX_BODY_BYTES")),
		Stateful:                r.boolean("MCP_HTTP_STATEFUL"),
		SessionIdleTimeout:      r.duration("MCP_SESSION_IDLE_TIMEOUT"),
		MaxSessionsPerPrincipal: r.integer("MCP_MAX_SESSIONS_PER_PRINCIPAL"),

		MetricsAddr: r.str("MCP_METRICS_ADDR"),

		APIKey: r.secret("MCP_API_KEY"),

		OAuthIssuer:        r.str("MCP_OAUTH_ISSUER"),
		OAuthJWKSURL:       r.str("MCP_OAUTH_JWKS_URL"),
		OAuthCustomerClaim: r.str("MCP_OAUTH_CUSTOMER_CLAIM"),
		OAuthMaxLifetime:   r.duration("MCP_OAUTH_MAX_TOKEN_LIFETIME"),
		OAuthAcceptJWTType: r.boolean("MCP_OAUTH_ACCEPT_JWT_TYP"),

		RatePerIP:            r.rate("RATE_LIMIT_PER_IP"),
		RatePerPrincipal:     r.rate("RATE_LIMIT_PER_PRINCIPAL"),
		RateCancel:           r.rate("RATE_LIMIT_CANCEL"),
		RateNotFound:         r.rate("RATE_LIMIT_NOT_FOUND"),
		ConcurrencyPerCaller: r.integer("CONCURRENCY_PER_PRINCIPAL"),
		CancelDailyQuota:     r.integer("CANCEL_DAILY_QUOTA"),
		RedisURL:             r.secret("REDIS_URL"),
		RedisPrefix:          r.str("REDIS_PREFIX"),

		StatementTimeout:   r.duration("DB_STATEMENT_TIMEOUT"),
		DBAcquireTimeout:   r.duration("DB_ACQUIRE_TIMEOUT"),
		DBMaxConns:         int32(r.integer("DB_MAX_CONNS")),
		CredentialCacheTTL: r.duration("CREDENTIAL_CACHE_TTL"),

		DBLoginRole:     r.str("DB_LOGIN_ROLE"),
		DBLoginPassword: r.secret("DB_LOGIN_PASSWORD"),

		AuditHMACKey:      []byte(r.secret("AUDIT_HMAC_KEY")),
		AuditPreviousKeys: splitKeys(r.secret("AUDIT_HMAC_PREVIOUS_KEYS")),
		AuditSpillDir:     r.str("AUDIT_SPILL_DIR"),

		CancelConfirmation: r.str("CANCEL_CONFIRMATION"),
		ConfirmationSecret: []byte(r.secret("CONFIRMATION_SECRET")),

		ToolDigestKey: r.ed25519Key("TOOL_DIGEST_SIGNING_KEY"),

		SDKDebug: r.str("MCPGODEBUG"),
	}
	if c.AuditSpillDir == "" {
		c.AuditSpillDir = defaultSpillDir(getenv)
	}
	if c.CancelConfirmation == "" {
		c.CancelConfirmation = ConfirmRequired
		if c.Development() {
			c.CancelConfirmation = ConfirmIfSupported
		}
	}
	c.resourceURLSet = c.ResourceURL != ""
	if !c.resourceURLSet {
		c.ResourceURL = defaultResourceURL(c.HTTPAddr, c.TLS())
	}
	c.defaultAllowedHosts()
	errs := r.errs
	if err := c.validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...) // every problem at once
	}
	return c, nil
}

func defaultResourceURL(addr string, tls bool) string {
	scheme := "http"
	if tls {
		scheme = "https"
	}
	return scheme + "://" + addr + "/mcp"
}

// defaultAllowedHosts closes the Host check on a listener beyond loopback.
// There the SDK's DNS-rebinding rule (loopback listener, loopback Host)
// does not apply, so without MCP_ALLOWED_HOSTS any Host would pass; the
// host of MCP_RESOURCE_URL, the public name of the server, becomes the
// allow-list instead.
func (c *Config) defaultAllowedHosts() {
	host, _, err := net.SplitHostPort(c.HTTPAddr)
	if len(c.AllowedHosts) > 0 || !c.resourceURLSet || err != nil || isLoopback(host) {
		return
	}
	u, err := url.Parse(c.ResourceURL)
	if err != nil || u.Host == "" {
		return // validate reports it
	}
	c.AllowedHosts = []string{strings.ToLower(u.Host)}
	// Clients leave the scheme's default port out of Host.
	if p := u.Port(); (u.Scheme == "https" && p == "443") || (u.Scheme == "http" && p == "80") {
		c.AllowedHosts = append(c.AllowedHosts, strings.ToLower(u.Hostname()))
	}
}

// validate checks what must hold in every command.
func (c *Config) validate() error {
	var errs []error
	if c.Env != "production" && c.Env != "development" {
		errs = append(errs, fmt.Errorf("MCP_ENV must be production or development"))
	}
	if c.DatabaseURL == "" {
		errs = append(errs, fmt.Errorf("DATABASE_URL is required (or DATABASE_URL_FILE)"))
	}
	if c.CredentialCacheTTL > 5*time.Minute {
		errs = append(errs, fmt.Errorf("CREDENTIAL_CACHE_TTL must be at most 5m"))
	}
	if (c.DBLoginRole == "") != (c.DBLoginPassword == "") {
		errs = append(errs, fmt.Errorf("DB_LOGIN_ROLE and DB_LOGIN_PASSWORD (or DB_LOGIN_PASSWORD_FILE) must be set together"))
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, fmt.Errorf("MCP_TLS_CERT_FILE and MCP_TLS_KEY_FILE must be set together"))
	}
	if (c.OAuthIssuer == "") != (c.OAuthJWKSURL == "") {
		errs = append(errs, fmt.Errorf("MCP_OAUTH_ISSUER and MCP_OAUTH_JWKS_URL must be set together"))
	}
	if u, err := url.Parse(c.ResourceURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, fmt.Errorf("MCP_RESOURCE_URL must be an absolute http(s) URL"))
	}
	if c.OAuth() {
		if u, err := url.Parse(c.OAuthJWKSURL); err != nil || u.Scheme != "https" && !(c.Development() && u.Scheme == "http") {
			errs = append(errs, fmt.Errorf("MCP_OAUTH_JWKS_URL must be an https URL"))
		}
	}
	for _, o := range c.AllowedOrigins {
		if u, err := url.Parse(o); err != nil || u.Host == "" || u.Path != "" || (u.Scheme != "https" && u.Scheme != "http") {
			errs = append(errs, fmt.Errorf("MCP_ALLOWED_ORIGINS: each entry must be an origin like https://app.example.com"))
			break
		}
	}
	switch c.CancelConfirmation {
	case ConfirmRequired, ConfirmIfSupported, ConfirmOff:
	default:
		errs = append(errs, fmt.Errorf("CANCEL_CONFIRMATION must be required, if-supported or off"))
	}
	if !c.Development() {
		errs = append(errs, c.productionSecrets()...)
	}
	return errors.Join(errs...)
}

// ValidateServe checks what must hold before `serve` listens.
func (c *Config) ValidateServe() error {
	host, _, err := net.SplitHostPort(c.HTTPAddr)
	if err != nil {
		return fmt.Errorf("MCP_HTTP_ADDR must be host:port")
	}
	// Development relaxes this one rule, for docker compose, where the
	// container must listen on 0.0.0.0 and compose publishes the port on
	// the host's loopback only (see compose.yaml).
	if !isLoopback(host) && !c.TLS() && !c.Development() {
		return fmt.Errorf("MCP_HTTP_ADDR %s is not a loopback address: refusing to serve without TLS "+
			"(set MCP_TLS_CERT_FILE and MCP_TLS_KEY_FILE, or MCP_TLS_TERMINATED_BY_PROXY=true behind a TLS proxy)", c.HTTPAddr)
	}
	// Beyond loopback the URL derived from the bind address (0.0.0.0) names
	// nothing a client can reach: it would be a meaningless token audience
	// and leave the Host check with nothing to allow.
	if !isLoopback(host) && !c.resourceURLSet && !c.Development() {
		return fmt.Errorf("MCP_HTTP_ADDR %s is not a loopback address: set MCP_RESOURCE_URL to the public URL of /mcp "+
			"(e.g. https://mcp.example.com/mcp); it is the token audience and, unless MCP_ALLOWED_HOSTS is set, the only Host served", c.HTTPAddr)
	}
	if !c.Development() && len(c.AuditHMACKey) == 0 {
		return fmt.Errorf("AUDIT_HMAC_KEY is required outside development (or AUDIT_HMAC_KEY_FILE)")
	}
	// A confirmation asked by one replica may be answered to another: they
	// must share the key that seals its state. (stdio answers its own
	// questions, so it makes a key of its own.)
	if !c.Development() && c.CancelConfirmation != ConfirmOff && len(c.ConfirmationSecret) == 0 {
		return fmt.Errorf("CONFIRMATION_SECRET is required outside development (or CONFIRMATION_SECRET_FILE): " +
			"it seals the state of confirmations of destructive calls, and every replica needs the same one " +
			"(generate one: openssl rand -base64 48)")
	}
	if err := c.ToolDigestKeyRequired(); err != nil {
		return err
	}
	if c.MetricsAddr != "" {
		if _, mport, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			return fmt.Errorf("MCP_METRICS_ADDR must be host:port")
		} else if _, port, _ := net.SplitHostPort(c.HTTPAddr); port == mport && port != "0" {
			return fmt.Errorf("MCP_METRICS_ADDR must not be the MCP port: metrics are served on a listener of their own")
		}
	}
	return nil
}

// ValidateStdio checks what must hold before `stdio` starts.
func (c *Config) ValidateStdio() error {
	if c.APIKey == "" {
		return fmt.Errorf("MCP_API_KEY is required for stdio (or MCP_API_KEY_FILE): mint one with `server keys create`")
	}
	if !c.Development() && len(c.AuditHMACKey) == 0 {
		return fmt.Errorf("AUDIT_HMAC_KEY is required outside development (or AUDIT_HMAC_KEY_FILE)")
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// reader reads variables and collects every problem, so that one run names
// all of them. It reads only variables Vars documents, each as the kind
// Vars says it is (a secret, which may come from a file, or not), and
// takes their defaults from there.
type reader struct {
	getenv   Getenv
	readFile func(string) ([]byte, error)
	vars     map[string]Var
	errs     []error
}

// lookup returns the documentation of key. A name Vars does not document,
// or documents as the other kind, is a mistake in this package: it is
// reported like a bad value, so every test that loads a configuration
// fails until Vars is fixed.
func (r *reader) lookup(key string, secret bool) Var {
	v, ok := r.vars[key]
	switch {
	case !ok:
		r.errs = append(r.errs, fmt.Errorf("%s is read but not documented: add it to Vars in internal/config/vars.go", key))
	case v.Secret != secret:
		r.errs = append(r.errs, fmt.Errorf("%s: Vars says Secret is %v, but it is read otherwise (internal/config/vars.go)", key, v.Secret))
	}
	return v
}

// value returns key from the environment, trimmed, or its default.
func (r *reader) value(key string) string {
	v := r.lookup(key, false)
	if s := strings.TrimSpace(r.getenv(key)); s != "" {
		return s
	}
	return v.Default
}

func (r *reader) str(key string) string { return r.value(key) }

// secret reads X, or the file named by X_FILE. Setting both is an error:
// which one wins would be a guess.
func (r *reader) secret(key string) string {
	def := r.lookup(key, true).Default
	v, path := r.getenv(key), r.getenv(key+"_FILE")
	switch {
	case v != "" && path != "":
		r.errs = append(r.errs, fmt.Errorf("%s and %s_FILE are both set: set one", key, key))
		return ""
	case path != "":
		b, err := r.readFile(path)
		if err != nil {
			r.errs = append(r.errs, fmt.Errorf("%s_FILE: cannot read the file it names", key))
			return ""
		}
		return strings.TrimRight(string(b), "\r\n")
	case v == "":
		return def
	}
	return v
}

func (r *reader) list(key string) []string {
	var out []string
	for _, v := range strings.Split(r.value(key), ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func (r *reader) prefixes(key string) []netip.Prefix {
	var out []netip.Prefix
	for _, v := range r.list(key) {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			a, aerr := netip.ParseAddr(v)
			if aerr != nil {
				r.errs = append(r.errs, fmt.Errorf("%s: %q is not an address or CIDR prefix", key, v))
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out
}

func (r *reader) boolean(key string) bool {
	v := r.value(key)
	if v == "" {
		return false
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s must be true or false", key))
	}
	return b
}

// integer reads a whole number within the bounds Vars gives the variable.
func (r *reader) integer(key string) int {
	v := r.vars[key]
	n, err := strconv.Atoi(r.value(key))
	if err != nil || n < v.Min || n > v.Max {
		r.errs = append(r.errs, fmt.Errorf("%s must be an integer from %d to %d", key, v.Min, v.Max))
	}
	return n
}

func (r *reader) duration(key string) time.Duration {
	d, err := time.ParseDuration(r.value(key))
	if err != nil || d <= 0 {
		r.errs = append(r.errs, fmt.Errorf("%s must be a positive duration like 30s or 5m", key))
	}
	return d
}

// rate reads a limit in the <count>-<S|M|H|D> form, e.g. 120-M.
func (r *reader) rate(key string) limiter.Rate {
	rate, err := limiter.NewRateFromFormatted(r.value(key))
	if err != nil || rate.Limit <= 0 {
		r.errs = append(r.errs, fmt.Errorf("%s must look like 120-M (count per S, M, H or D)", key))
	}
	return rate
}

// splitKeys reads a comma-separated list of keys.
func splitKeys(s string) [][]byte {
	var out [][]byte
	for _, k := range strings.Split(s, ",") {
		if k = strings.TrimSpace(k); k != "" {
			out = append(out, []byte(k))
		}
	}
	return out
}

// defaultSpillDir is where audit records wait while Postgres cannot take
// them: the user's state directory ($XDG_STATE_HOME, or ~/.local/state) for
// a server on a desktop (Claude Desktop launches stdio with HOME set). The
// container image sets AUDIT_SPILL_DIR to its writable volume.
func defaultSpillDir(getenv Getenv) string {
	if d := getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "order-mcp", "audit-spill")
	}
	if home := getenv("HOME"); home != "" {
		return filepath.Join(home, ".local", "state", "order-mcp", "audit-spill")
	}
	return ""
}

func lower(in []string) []string {
	for i, s := range in {
		in[i] = strings.ToLower(s)
	}
	return in
}
