package httpserver

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	sdkauth "github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/example/order-mcp/internal/audit"
	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/limits"
	"github.com/example/order-mcp/internal/logging"
	"github.com/example/order-mcp/internal/sdkfix"
)

// Authenticator turns a bearer credential into a principal.
type Authenticator interface {
	Authenticate(ctx context.Context, credential string) (*auth.Principal, error)
}

// Config is the HTTP surface's configuration (from internal/config).
type Config struct {
	// ResourceURL is the canonical URL of /mcp (MCP_RESOURCE_URL): the
	// audience OAuth tokens must carry and the "resource" of the protected
	// resource metadata.
	ResourceURL string
	// OAuthIssuer, when set, is the authorization server advertised in the
	// metadata and the 401 challenges. Empty means API keys only.
	OAuthIssuer string
	// AllowedOrigins are browser origins allowed besides the server's own.
	AllowedOrigins []string
	// AllowedHosts, when set, replaces the SDK's localhost-only Host check
	// with this allow-list (for deployments behind a reverse proxy).
	AllowedHosts []string
	// TrustedProxies may set X-Forwarded-For.
	TrustedProxies []netip.Prefix
	// MaxBodyBytes bounds every request body.
	MaxBodyBytes int64
	// TLS says the server is reached over HTTPS (directly or through a
	// TLS-terminating proxy): HSTS is sent.
	TLS bool
	// Stateful turns on MCP sessions (docs/DEPLOYMENT.md, "Stateful HTTP",
	// weighs the trade-off).
	Stateful bool
	// SessionIdleTimeout closes idle sessions in stateful mode.
	SessionIdleTimeout time.Duration
	// MaxSessionsPerPrincipal caps sessions per caller in stateful mode.
	MaxSessionsPerPrincipal int
}

// Deps are the HTTP layer's dependencies.
type Deps struct {
	Config        Config
	MCP           *mcp.Server
	Authenticator Authenticator
	Lockout       *limits.Lockout
	Limits        *limits.Limits
	Audit         *audit.Writer
	// Metrics, when set, counts refusals by reason.
	Metrics interface{ Refusal(reason string) }
	Logger  *slog.Logger
	// Ready reports whether the server can serve (the database answers).
	Ready func(context.Context) error
	// ToolDigest, when set, is served at /.well-known/mcp-tool-digest.
	ToolDigest ToolDigest
}

// server holds the handlers' shared state.
type server struct {
	Deps
	sessions    *sessionTracker    // stateful mode only
	metadataURL string             // where the 401 challenge points (RFC 9728)
	recent      *limits.RecentKeys // key ids served lately: verified even from a locked address
}

// safeErrors gives the SDK's own error answers fixed texts
// (internal/sdkfix) and counts each one in the refusal aggregate.
func (s *server) safeErrors(next http.Handler) http.Handler {
	return sdkfix.HTTPErrors(next, s.Config.MaxBodyBytes, func(r *http.Request, rw sdkfix.Rewrite) {
		s.count(r, rw.Reason())
	})
}

// New returns the whole HTTP surface: every route, and for /mcp the chain
// of controls in the order they run, cheapest refusal first. This function
// is the one screen that shows everything the network can reach.
func New(d Deps) http.Handler {
	s := &server{Deps: d, metadataURL: metadataURL(d.Config.ResourceURL),
		recent: limits.NewRecentKeys(d.Lockout.Policy().Decay, nil)}
	if d.Config.MaxBodyBytes <= 0 {
		s.Config.MaxBodyBytes = 1 << 20
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	// Readiness touches the database: rate-limited like everything else
	// that does work for callers nobody has authenticated.
	mux.Handle("GET /readyz", s.limitAddress(http.HandlerFunc(s.readyz)))
	if s.oauth() {
		meta := s.protectedResourceMetadata()
		paths := []string{"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"}
		// Where the 401 challenge points (resource_metadata), when
		// MCP_RESOURCE_URL's path is not /mcp (a proxy prefix, say).
		if u, err := url.Parse(s.metadataURL); err == nil && !slices.Contains(paths, u.Path) && !strings.ContainsAny(u.Path, "{}") {
			paths = append(paths, u.Path)
		}
		for _, p := range paths {
			mux.Handle("GET "+p, meta)
			mux.Handle("OPTIONS "+p, meta)
		}
	}
	if s.ToolDigest != nil {
		mux.Handle("GET "+toolDigestPath, staticJSON(s.ToolDigest.Document()))
		mux.Handle("GET "+toolDigestKeys, staticJSON(s.ToolDigest.KeySet()))
	}
	mux.Handle("/mcp", chain(s.mcpHandler(),
		s.limitBody,      // 1. request body size: a bound before anything reads it
		s.checkHost,      // 2. Host allow-list (DNS rebinding)
		s.checkOrigin,    // 3. Origin allow-list (browsers); CORS preflight
		s.limitAddress,   // 4. per-address rate limit, before any work for unknown callers
		s.authenticate,   // 5. lockout check, then the bearer credential (API key or JWT)
		s.inspect,        // 6. read the JSON-RPC request as the SDK will (400 if it might not)
		s.limitPrincipal, // 7. per-principal rate limit and concurrency for tool calls (429)
		s.checkScope,     // 8. the called tool's scopes (403 insufficient_scope)
	))
	return chain(mux,
		s.recoverPanics,   // a panicking handler answers 500 with a fixed text and is logged
		s.securityHeaders, // nosniff, no-store, frame-ancestors, HSTS; no version banner
		s.accessLog,       // one line per request: method, path (never the query), status, principal
	)
}

// mcpHandler is the SDK's Streamable HTTP handler behind the bearer-token
// carrier and the safe-error rewriter.
func (s *server) mcpHandler() http.Handler {
	opts := &mcp.StreamableHTTPOptions{
		// Stateless by default: the only mode that speaks both 2025-11-25
		// and the sessionless 2026-07-28 protocol, and lets any replica
		// answer any request. Nothing about a caller is remembered between
		// requests: every request is authenticated on its own.
		Stateless:    !s.Config.Stateful,
		JSONResponse: !s.Config.Stateful,
		Logger:       logging.AtLeast(s.Logger, slog.LevelWarn),
		// The SDK's DNS-rebinding check (loopback listener, non-loopback
		// Host) stays on unless our own Host allow-list replaces it.
		DisableLocalhostProtection: len(s.Config.AllowedHosts) > 0,
		MaxRequestBodyBytes:        s.Config.MaxBodyBytes,
	}
	var h http.Handler
	if s.Config.Stateful {
		opts.SessionTimeout = s.Config.SessionIdleTimeout
		s.sessions = newSessionTracker(s.Config.MaxSessionsPerPrincipal, s.Config.SessionIdleTimeout)
		h = s.sessions.wrap(s.safeErrors(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s.MCP }, opts)), s)
	} else {
		h = s.safeErrors(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s.MCP }, opts))
	}
	// The SDK reads the caller only from a context key that its own
	// RequireBearerToken sets. Authentication has already happened (step 5),
	// so this verifier only hands the principal of this request over.
	carrier := sdkauth.RequireBearerToken(s.carryPrincipal, &sdkauth.RequireBearerTokenOptions{AllowMissingExpiration: true})
	return carrier(h)
}

// chain wraps h in middleware, the first listed running first.
func chain(h http.Handler, mw ...func(http.Handler) http.Handler) http.Handler {
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h
}

func (s *server) oauth() bool { return s.Config.OAuthIssuer != "" }

func (s *server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.Ready(ctx); err != nil {
		s.Logger.LogAttrs(ctx, slog.LevelWarn, "not ready", slog.String("error", err.Error()))
		http.Error(w, "not ready", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ready\n"))
}
