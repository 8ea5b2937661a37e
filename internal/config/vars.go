package config

// Var is one environment variable the server reads, documented where it
// is defined. Vars is the single source of every name, default and meaning:
// Load reads each variable through it (a name that is not in Vars is a
// configuration error, so an undocumented variable fails every test that
// loads a configuration), and docs/CONFIGURATION.md is generated from it
// by `make docs` (a test fails when the committed file drifts).
type Var struct {
	// Name is the variable's name.
	Name string
	// Default is the value Load uses when the variable is unset, written
	// as an operator would write it ("" when there is none). Load parses
	// it like a value from the environment, so the documented default is
	// the default in force.
	Default string
	// DefaultDoc, when set, describes a default Load computes or a
	// requirement, and is shown in the documentation instead of Default.
	DefaultDoc string
	// Min and Max bound an integer variable; Load refuses a value outside
	// them. Zero for every other kind.
	Min, Max int
	// Secret marks a variable that may instead be given as Name_FILE, a
	// path to a file holding it (Docker and Kubernetes secrets, vault
	// agents). Load reads secrets, and only secrets, that way.
	Secret bool
	// Group is the section of the documentation it appears in.
	Group string
	// Doc says what the variable does, in Markdown, in one paragraph.
	Doc string
}

// The documentation's sections, in order.
const (
	groupMode    = "Mode and logging"
	groupDB      = "Database"
	groupHTTP    = "HTTP transport (`server serve`)"
	groupStdio   = "stdio transport (`server stdio`)"
	groupOAuth   = "OAuth resource server"
	groupLimits  = "Rate limits, concurrency and quotas"
	groupAudit   = "Audit trail"
	groupConfirm = "Human confirmation of destructive calls"
	groupSurface = "Pinned tool surface"
	groupOther   = "Observability and the go-sdk"
)

// Vars returns every environment variable the server reads, in the order
// of the documentation. Adding a variable means adding it here first:
// Load refuses to read a name this list does not document.
func Vars() []Var {
	return []Var{
		{Name: "MCP_ENV", Default: "production", Group: groupMode,
			Doc: "`production` or `development`. Development relaxes exactly these, and nothing else: the `.env` file " +
				"in the working directory is read (variables already in the environment win over it); example and weak " +
				"secrets, and a remote database without a password or certificate verification, are accepted; " +
				"`AUDIT_HMAC_KEY` may be missing (a public key is used, and the log warns that the chain then proves " +
				"nothing); `CANCEL_CONFIRMATION` defaults to `if-supported` and `CONFIRMATION_SECRET` may be missing (a " +
				"public key, with a warning); `TOOL_DIGEST_SIGNING_KEY` may be missing (a public key, with a warning); an `AUDIT_SPILL_DIR` that cannot be written is a warning instead of a refusal to start; " +
				"`MCP_OAUTH_JWKS_URL` may be plain `http` (a local issuer); and `serve` may listen on a non-loopback " +
				"address without TLS or `MCP_RESOURCE_URL` (containers; the log warns). `make run` and compose.yaml set it."},
		{Name: "LOG_LEVEL", Default: "info", Group: groupMode,
			Doc: "`debug`, `info`, `warn` or `error` (anything else means `info`). Logs go to stderr, redacted: JSON " +
				"lines in production, text lines (`key=value`) in development; `debug` adds a line per SQL statement with its name and duration only."},

		{Name: "DATABASE_URL", Secret: true, DefaultDoc: "(required)", Group: groupDB,
			Doc: "Postgres connection string, in pgx form. It may name a superuser or the schema owner (as on a " +
				"developer machine): the server switches every pooled connection to the least-privilege role " +
				"`order_mcp_app` itself, and `serve` and `stdio` refuse a role that is a superuser, has `BYPASSRLS` " +
				"or owns the tables. Outside development a remote database needs a password (or a client " +
				"certificate) and `sslmode=verify-full`. `migrate`, `seed` and `keys` need the schema owner."},
		{Name: "DB_STATEMENT_TIMEOUT", Default: "5s", Group: groupDB,
			Doc: "`statement_timeout` of every database call."},
		{Name: "DB_ACQUIRE_TIMEOUT", Default: "1s", Group: groupDB,
			Doc: "Longest a call waits for a pooled connection when all are busy; past it the client is told the " +
				"server is temporarily unavailable, with `Retry-After`."},
		{Name: "DB_MAX_CONNS", Default: "10", Min: 1, Max: 500, Group: groupDB,
			Doc: "Connection pool size. Each replica opens one more connection, for change notifications (LISTEN); " +
				"size (this + 1) times the number of replicas within Postgres' `max_connections`."},
		{Name: "CREDENTIAL_CACHE_TTL", Default: "30s", Group: groupDB,
			Doc: "API keys are answered from memory: a revocation, expiry change or deletion, by `server keys` or by plain " +
				"SQL, reaches every replica when it commits (a trigger NOTIFYs them), and while a replica's notification " +
				"connection is down it reads the database on every call. This bounds how long a cached key is trusted " +
				"without a notification, as a backstop; at most 5m."},
		{Name: "DB_LOGIN_ROLE", Group: groupDB,
			Doc: "When set (with `DB_LOGIN_PASSWORD`), `server migrate` also creates or updates this login role, " +
				"which can log in and `SET ROLE order_mcp_app` and nothing else: the role a production `DATABASE_URL` should name."},
		{Name: "DB_LOGIN_PASSWORD", Secret: true, Group: groupDB,
			Doc: "Password `server migrate` gives `DB_LOGIN_ROLE`; set both or neither. Outside development it must be " +
				"at least 16 bytes long and not an example or guessable value."},

		{Name: "MCP_HTTP_ADDR", Default: "127.0.0.1:8080", Group: groupHTTP,
			Doc: "Listen address of `serve`. A non-loopback address requires TLS (`MCP_TLS_CERT_FILE` and " +
				"`MCP_TLS_KEY_FILE`, or `MCP_TLS_TERMINATED_BY_PROXY=true`) and `MCP_RESOURCE_URL`, except in development."},
		{Name: "MCP_RESOURCE_URL", DefaultDoc: "`http://<MCP_HTTP_ADDR>/mcp` (`https` with TLS)", Group: groupHTTP,
			Doc: "Canonical URL of the `/mcp` endpoint: the audience OAuth tokens must carry and the `resource` of the " +
				"protected resource metadata. Required on a non-loopback listener, where its host also becomes the " +
				"default Host allow-list."},
		{Name: "MCP_TLS_CERT_FILE", Group: groupHTTP,
			Doc: "Certificate file: `serve` speaks HTTPS (TLS 1.2 and newer). Set together with `MCP_TLS_KEY_FILE`."},
		{Name: "MCP_TLS_KEY_FILE", Group: groupHTTP,
			Doc: "Private key file of `MCP_TLS_CERT_FILE`."},
		{Name: "MCP_TLS_TERMINATED_BY_PROXY", Default: "false", Group: groupHTTP,
			Doc: "TLS ends at a proxy in front of the server: HSTS is sent, and a non-loopback listener is allowed without a certificate of its own."},
		{Name: "MCP_ALLOWED_ORIGINS", Group: groupHTTP,
			Doc: "Comma-separated browser origins (`https://app.example.com`) allowed to call `/mcp` besides the " +
				"server's own, with CORS headers for them. Requests without an `Origin` header are allowed; any other origin gets 403."},
		{Name: "MCP_ALLOWED_HOSTS",
			DefaultDoc: "on a loopback listener, loopback Hosts only (the go-sdk's check); beyond loopback, the host of `MCP_RESOURCE_URL`",
			Group:      groupHTTP,
			Doc:        "Comma-separated `Host` values the server answers to (DNS-rebinding protection). When set, it replaces the go-sdk's loopback-only check."},
		{Name: "TRUSTED_PROXIES", Group: groupHTTP,
			Doc: "Comma-separated addresses or CIDR prefixes of proxies allowed to set `X-Forwarded-For`. The client " +
				"address is the TCP peer, unless that peer is a trusted proxy: then it is the rightmost " +
				"`X-Forwarded-For` entry that is not one."},
		{Name: "MCP_MAX_BODY_BYTES", Default: "1048576", Min: 1 << 10, Max: 16 << 20, Group: groupHTTP,
			Doc: "Request body limit in bytes; also the longest line `stdio` reads."},
		{Name: "MCP_HTTP_STATEFUL", Default: "false", Group: groupHTTP,
			Doc: "MCP sessions instead of stateless requests. Loses the 2026-07-28 protocol and needs sticky routing; " +
				"sessions are bound to the caller's subject, expire when idle and are capped per caller."},
		{Name: "MCP_SESSION_IDLE_TIMEOUT", Default: "30m", Group: groupHTTP,
			Doc: "In stateful mode, how long an idle session lives."},
		{Name: "MCP_MAX_SESSIONS_PER_PRINCIPAL", Default: "5", Min: 1, Max: 1000, Group: groupHTTP,
			Doc: "In stateful mode, the most open sessions one caller may have."},

		{Name: "MCP_API_KEY", Secret: true, DefaultDoc: "(required by `stdio`)", Group: groupStdio,
			Doc: "The API key `server stdio` runs as. It is checked at start-up and again on every call, so revoking it " +
				"takes effect within moments (a Postgres notification reaches the running server). Mint one with `server keys create`."},

		{Name: "MCP_OAUTH_ISSUER", Group: groupOAuth,
			Doc: "When set (with `MCP_OAUTH_JWKS_URL`), bearer JWTs from this issuer are accepted as well as API keys, " +
				"and the protected resource metadata (RFC 9728) is served."},
		{Name: "MCP_OAUTH_JWKS_URL", Group: groupOAuth,
			Doc: "The issuer's JWKS, `https` (plain `http` only in development). Cached, refreshed hourly, and refreshed " +
				"(at most every five minutes) when a token names a key id it does not hold, so key rotation needs no restart."},
		{Name: "MCP_OAUTH_CUSTOMER_CLAIM", Default: "customer_id", Group: groupOAuth,
			Doc: "The JWT claim that binds a caller to one customer."},
		{Name: "MCP_OAUTH_MAX_TOKEN_LIFETIME", Default: "24h", Group: groupOAuth,
			Doc: "Longest validity (`exp` - `iat`) a token may have; a token valid for longer is refused."},
		{Name: "MCP_OAUTH_ACCEPT_JWT_TYP", Default: "false", Group: groupOAuth,
			Doc: "Also accept tokens whose header says `typ` `JWT` (or has none), not only RFC 9068's `at+jwt`: " +
				"Keycloak, Auth0 and Entra send `JWT` by default."},

		{Name: "RATE_LIMIT_PER_IP", Default: "300-M", Group: groupLimits,
			Doc: "Requests per client address, counted before authentication (IPv6 by /64)."},
		{Name: "RATE_LIMIT_PER_PRINCIPAL", Default: "60-M", Group: groupLimits,
			Doc: "Tool calls per caller, on every transport."},
		{Name: "RATE_LIMIT_CANCEL", Default: "10-H", Group: groupLimits,
			Doc: "Calls of destructive tools per caller, one budget shared by all of them. When the user is asked to confirm, only the round that acts (the answer) is charged, not the question."},
		{Name: "RATE_LIMIT_NOT_FOUND", Default: "20-H", Group: groupLimits,
			Doc: "Lookups of orders that are not found (or not the caller's) per caller: more is enumeration, and " +
				"further lookups by id are refused until the window ends."},
		{Name: "CONCURRENCY_PER_PRINCIPAL", Default: "4", Min: 1, Max: 1000, Group: groupLimits,
			Doc: "Tool calls one caller may have in flight at once, per replica."},
		{Name: "CANCEL_DAILY_QUOTA", Default: "3", Min: 1, Max: 1000, Group: groupLimits,
			Doc: "Orders one customer may have cancelled in 24 hours, whoever asks; checked in the " +
				"cancellation's own transaction."},
		{Name: "REDIS_URL", Secret: true, Group: groupLimits,
			Doc: "When set, rate-limit counters and lockout state live in Redis and are shared by every replica " +
				"(otherwise counters are per process and lockouts live in Postgres)."},
		{Name: "REDIS_PREFIX", Default: "ordermcp", Group: groupLimits,
			Doc: "Prefix of every Redis key the server writes."},

		{Name: "AUDIT_HMAC_KEY", Secret: true, DefaultDoc: "(required outside development)", Group: groupAudit,
			Doc: "Secret that keys the audit trail's HMAC chain: at least 32 bytes, not an example or low-entropy " +
				"value (generate one with `openssl rand -base64 48`). Never stored in the database."},
		{Name: "AUDIT_HMAC_PREVIOUS_KEYS", Secret: true, Group: groupAudit,
			Doc: "Comma-separated keys `AUDIT_HMAC_KEY` replaced, so that `server audit verify` can check the records they sealed."},
		{Name: "AUDIT_SPILL_DIR",
			DefaultDoc: "`$XDG_STATE_HOME/order-mcp/audit-spill`, else `$HOME/.local/state/order-mcp/audit-spill`; " +
				"the container image sets `/var/lib/order-mcp/audit-spill`",
			Group: groupAudit,
			Doc: "Where audit records wait, sealed and fsynced, while Postgres cannot take them; they are appended " +
				"when it is back. Must be writable: outside development the server refuses to start otherwise."},

		{Name: "CANCEL_CONFIRMATION", DefaultDoc: "`required`; `if-supported` in development", Group: groupConfirm,
			Doc: "Whether a destructive tool (`cancel_order`, and any tool whose annotations are not read-only and do not set destructiveHint to false) runs only after the " +
				"user confirmed it through the client (a form elicitation: over 2026-07-28 an `input_required` result, " +
				"in a 2025-11-25 session `elicitation/create`). `required`: a client that cannot be asked (no form " +
				"elicitation declared, or a stateless 2025-11-25 HTTP client) is refused with a message naming this " +
				"setting. `if-supported`: confirm when the client can be asked, otherwise run under the budgets and " +
				"quotas alone (so Claude Desktop can still cancel during `make run`). `off`: never ask; only the budgets " +
				"and quotas stand between a prompt-injected model and a cancellation. Which clients can cancel under " +
				"each setting: docs/BEYOND-THE-CHECKLIST.md#human-confirmation-of-destructive-calls."},
		{Name: "CONFIRMATION_SECRET", Secret: true,
			DefaultDoc: "(required by `serve` outside development unless `CANCEL_CONFIRMATION=off`)", Group: groupConfirm,
			Doc: "Secret that seals a confirmation's state (AES-256-GCM) between the question and the answer, which " +
				"may reach another replica: at least 32 bytes, not an example or low-entropy value, not `AUDIT_HMAC_KEY` " +
				"(generate one with `openssl rand -base64 48`); every replica needs the same one. `stdio` is one process " +
				"that answers its own questions, so without it a random key is made per process. In development a " +
				"public key is used instead, and the log says so."},

		{Name: "TOOL_DIGEST_SIGNING_KEY", Secret: true, DefaultDoc: "(required by `serve` outside development)", Group: groupSurface,
			Doc: "Ed25519 private key that signs the digest of the tool definitions each scope set sees (a JWS, alg " +
				"`EdDSA`), published at `/.well-known/mcp-tool-digest` and in the `_meta` of initialize, " +
				"server/discover and tools/list, so clients can pin the tool surface (docs/BEYOND-THE-CHECKLIST.md#pinned-tool-surface). Either a " +
				"PKCS#8 PEM block (`openssl genpkey -algorithm ed25519`) or the base64 of a 32-byte seed " +
				"(`head -c 32 /dev/urandom | base64`). Every replica needs the same one, and clients pin its public key: " +
				"rotate it as a published change. `stdio` without it publishes the digests unsigned (its client started " +
				"the binary itself). In development a public key is used instead, and the log says so; outside " +
				"development that public key, or a low-entropy seed, is refused."},

		{Name: "MCP_METRICS_ADDR", Group: groupOther,
			Doc: "When set, Prometheus metrics are served at `http://MCP_METRICS_ADDR/metrics` on a listener of " +
				"their own, never on the MCP port. Unset: no metrics."},
		{Name: "MCPGODEBUG", Group: groupOther,
			Doc: "The go-sdk's own compatibility switches, read by the SDK itself and shown in the posture line. " +
				"Each one turns a protocol protection off: leave it unset."},
	}
}

// varsByName indexes Vars for the loader.
func varsByName() map[string]Var {
	out := make(map[string]Var)
	for _, v := range Vars() {
		out[v.Name] = v
	}
	return out
}
