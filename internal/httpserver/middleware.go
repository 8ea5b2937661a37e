package httpserver

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/limits"
	"github.com/example/order-mcp/internal/mcpserver"
	"github.com/example/order-mcp/internal/refusal"
	"github.com/example/order-mcp/internal/sdkfix"
)

// reqState is what the chain learns about one request, for later steps and
// for the access log.
type reqState struct {
	ip        netip.Addr
	principal *auth.Principal
	rpcMethod string
	tool      string
	scopes    []auth.Scope    // the scopes the called tool needs (tools/call of a known tool)
	args      json.RawMessage // its raw arguments, for the audit record of a refusal
	charged   bool
	refusal   string
	// call collects the MCP layer's part of this request's log line.
	call *mcpserver.CallLine
}

// subject is the authenticated caller's subject, or "".
func (st *reqState) subject() string {
	if st.principal == nil {
		return ""
	}
	return st.principal.Subject
}

type stateKey struct{}

func state(r *http.Request) *reqState {
	st, _ := r.Context().Value(stateKey{}).(*reqState)
	if st == nil {
		st = &reqState{}
	}
	return st
}

// accessLog is outermost but one: it creates the request state and logs one
// line when the request ends. It logs the path, never the query string
// (where a misconfigured client might put a token).
func (s *server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		st := &reqState{ip: ClientIP(r, s.Config.TrustedProxies)}
		r = r.WithContext(context.WithValue(r.Context(), stateKey{}, st))
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		attrs := []slog.Attr{
			slog.String("method", loggableHTTPMethod(r.Method)), slog.String("path", loggablePath(r)), slog.Int("status", rec.status),
			slog.String("client_ip", st.ip.String()), slog.Float64("duration_ms", ms(time.Since(start))),
		}
		if st.principal != nil {
			attrs = append(attrs, slog.String("principal", st.principal.Subject))
		}
		if st.rpcMethod != "" {
			attrs = append(attrs, slog.String("rpc_method", st.rpcMethod))
		}
		if st.tool != "" {
			attrs = append(attrs, slog.String("tool", st.tool))
		}
		if st.refusal != "" {
			attrs = append(attrs, slog.String("refused", st.refusal))
		}
		msg := "http request"
		if st.call != nil {
			if call := st.call.Close(); len(call) > 0 {
				// A tool call: one line for the request and the call.
				msg = "tool call"
				attrs = append(append(attrs, slog.String("transport", "http")), call...)
			}
		}
		s.Logger.LogAttrs(r.Context(), slog.LevelInfo, msg, attrs...)
	})
}

// loggablePath is the path of a route this server serves, or "unmatched":
// the path of a request no route matched is whatever the client typed (a
// token, an email address, a probe), and it is not logged. The mux sets
// Pattern on the request when a route matches.
func loggablePath(r *http.Request) string {
	if r.Pattern == "" {
		return "unmatched"
	}
	return r.URL.Path
}

// loggableHTTPMethod keeps made-up methods out of the log the same way.
func loggableHTTPMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodDelete, http.MethodOptions, http.MethodHead, http.MethodPut, http.MethodPatch:
		return m
	}
	return "other"
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// recoverPanics turns a panic in any handler into a fixed 500 answer and a
// logged stack trace. Nothing of the panic reaches the client.
func (s *server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.Logger.LogAttrs(r.Context(), slog.LevelError, "panic in http handler",
					slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
				sdkfix.WriteError(w, refusal.InternalHTTP.HTTPStatus(), nil, refusal.InternalHTTP.Error(nil))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// securityHeaders sets the headers every response carries. The MCP
// endpoint and the metadata are never cached by a browser or a proxy; no
// page may frame a response; browsers must not sniff content types; and
// over TLS, HSTS pins HTTPS. Go's net/http sends no Server header, and
// neither does this: no version banner.
func (s *server) securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		if s.Config.TLS {
			h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		}
		next.ServeHTTP(w, r)
	})
}

// limitBody bounds the request body before anything reads it. The bound
// is enforced while reading, so it holds for chunked bodies too.
func (s *server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > s.Config.MaxBodyBytes {
			s.refuse(w, r, refusal.BodyTooLarge, refusal.BodyTooLarge.Message())
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.Config.MaxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

// checkHost refuses requests addressed to a Host this server does not
// answer to: the point of DNS rebinding is a page on evil.example whose
// name now resolves to 127.0.0.1, so its requests carry Host evil.example.
// With MCP_ALLOWED_HOSTS set, only those hosts pass (behind a reverse
// proxy, where the SDK's check cannot work and is switched off); beyond
// loopback, configuration defaults the list to MCP_RESOURCE_URL's host.
// Without it, the SDK's rule applies, here and again inside the SDK: on a
// loopback listener only loopback Hosts pass.
func (s *server) checkHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.hostAllowed(r) {
			s.refuse(w, r, refusal.ForeignHost, refusal.ForeignHost.Message())
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *server) hostAllowed(r *http.Request) bool {
	if len(s.Config.AllowedHosts) > 0 {
		return slices.Contains(s.Config.AllowedHosts, strings.ToLower(r.Host))
	}
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok || local == nil {
		return false // not served by net/http: the listener is unknown, so refuse
	}
	return !hostVetted(local.String(), nil) || hostVetted(r.Host, nil)
}

// checkOrigin refuses browsers calling from an origin that is neither the
// server's own nor in MCP_ALLOWED_ORIGINS, on every method (the MCP
// specification says servers MUST validate Origin; the go-sdk no longer
// does by default). Requests without Origin (non-browser clients) pass. It
// answers CORS preflights for allowed origins; no CORS headers are sent
// otherwise.
func (s *server) checkOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		if !s.originAllowed(r, origin) {
			s.refuse(w, r, refusal.ForeignOrigin, refusal.ForeignOrigin.Message())
			return
		}
		if slices.Contains(s.Config.AllowedOrigins, origin) {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Expose-Headers", "Mcp-Session-Id, WWW-Authenticate, Retry-After")
			h.Add("Vary", "Origin")
			if r.Method == http.MethodOptions {
				h.Set("Access-Control-Allow-Methods", "POST, GET, DELETE")
				h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Mcp-Session-Id, Mcp-Protocol-Version, Last-Event-ID")
				h.Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// originAllowed reports whether origin is the server's own (the origin of
// MCP_RESOURCE_URL, or the origin the request was addressed to, whose Host
// the previous step vetted) or is configured.
func (s *server) originAllowed(r *http.Request, origin string) bool {
	if slices.Contains(s.Config.AllowedOrigins, origin) {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	if s.Config.ResourceURL != "" {
		if ru, err := url.Parse(s.Config.ResourceURL); err == nil && sameOrigin(u, ru.Scheme, ru.Host) {
			return true
		}
	}
	scheme := "http"
	if r.TLS != nil || s.Config.TLS {
		scheme = "https"
	}
	return sameOrigin(u, scheme, r.Host) && hostVetted(r.Host, s.Config.AllowedHosts)
}

// hostVetted reports whether a Host passed a Host check: the configured
// allow-list, or else the SDK's rule, under which only loopback names reach
// the handler on a loopback listener.
func hostVetted(host string, allowed []string) bool {
	if len(allowed) > 0 {
		return slices.Contains(allowed, strings.ToLower(host))
	}
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = host
	}
	if h == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(strings.Trim(h, "[]"))
	return err == nil && a.IsLoopback()
}

func sameOrigin(u *url.URL, scheme, host string) bool {
	return strings.EqualFold(u.Scheme, scheme) && strings.EqualFold(u.Host, host)
}

// limitAddress applies the per-address rate limit (RATE_LIMIT_PER_IP)
// before any work is done for a caller not yet known.
func (s *server) limitAddress(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q, err := s.Limits.AllowIP(r.Context(), state(r).ip)
		setQuotaHeaders(w, q)
		if err != nil {
			s.refuseLimit(w, r, "address_rate_limited", err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// limitPrincipal applies the per-principal rate limit and concurrency cap
// to tool calls (RATE_LIMIT_PER_PRINCIPAL, CONCURRENCY_PER_PRINCIPAL),
// here rather than in the MCP layer so that HTTP callers get a 429 with
// Retry-After. The MCP layer is told, so it does not charge twice.
func (s *server) limitPrincipal(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := state(r)
		if st.rpcMethod != "tools/call" {
			next.ServeHTTP(w, r)
			return
		}
		release, q, err := s.Limits.Admit(r.Context(), st.principal)
		setQuotaHeaders(w, q)
		if err != nil {
			s.refuseLimit(w, r, "principal_rate_limited", err)
			return
		}
		defer release()
		st.charged = true
		next.ServeHTTP(w, r)
	})
}

// setQuotaHeaders reports a limit's state, unless a tighter one (fewer
// requests remaining) was already reported for this request.
func setQuotaHeaders(w http.ResponseWriter, q limits.Quota) {
	if q.Limit == 0 {
		return
	}
	h := w.Header()
	if prev, err := strconv.ParseInt(h.Get("X-RateLimit-Remaining"), 10, 64); err == nil && prev <= q.Remaining {
		return
	}
	h.Set("X-RateLimit-Limit", strconv.FormatInt(q.Limit, 10))
	h.Set("X-RateLimit-Remaining", strconv.FormatInt(q.Remaining, 10))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(q.Reset.Unix(), 10))
}

// refuseLimit answers a limit or lockout refusal with 429 and Retry-After
// (recorded as reason), and any other failure of the limit store with 503:
// a store that cannot answer must not turn into "allowed".
func (s *server) refuseLimit(w http.ResponseWriter, r *http.Request, reason string, err error) {
	var le *limits.Error
	if errors.As(err, &le) {
		w.Header().Set("Retry-After", strconv.Itoa(le.RetryAfterSeconds()))
		s.refuseAs(w, r, refusal.RateLimited, reason, le.Error())
		return
	}
	s.Logger.LogAttrs(r.Context(), slog.LevelError, "limit check failed", slog.String("error", err.Error()))
	w.Header().Set("Retry-After", "5")
	s.refuseAs(w, r, refusal.Unavailable, "limit_store_unavailable", refusal.Unavailable.Message())
}

// count records a refusal before the MCP layer: in the access log, the
// audit trail's per-minute aggregate, and the metrics.
func (s *server) count(r *http.Request, reason string) {
	st := state(r)
	st.refusal = reason
	s.Audit.Refusal(limits.AddressKey(st.ip), st.subject(), reason)
	if s.Metrics != nil {
		s.Metrics.Refusal(reason)
	}
}

// refuse answers a request refused before the MCP layer with the
// catalogue's status, code and text for kind (msg, when the kind's text
// takes arguments), and counts it in the audit trail's per-minute
// aggregate under the kind's name.
func (s *server) refuse(w http.ResponseWriter, r *http.Request, kind refusal.Kind, msg string) {
	s.refuseAs(w, r, kind, kind.Name(), msg)
}

// refuseAs is refuse, recorded under reason: which limit, for instance.
func (s *server) refuseAs(w http.ResponseWriter, r *http.Request, kind refusal.Kind, reason, msg string) {
	s.count(r, reason)
	sdkfix.WriteError(w, kind.HTTPStatus(), nil, &jsonrpc.Error{Code: kind.Code(), Message: msg})
}

// statusRecorder remembers the status written, for the access log. It
// forwards Flush (server-sent events) through Unwrap.
type statusRecorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (rec *statusRecorder) WriteHeader(code int) {
	if !rec.wroteHeader {
		rec.status, rec.wroteHeader = code, true
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *statusRecorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

// Flush passes flushes through (server-sent events).
func (rec *statusRecorder) Flush() { _ = http.NewResponseController(rec.ResponseWriter).Flush() }
