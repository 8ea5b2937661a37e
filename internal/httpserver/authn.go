package httpserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/example/order-mcp/internal/mcpserver"
	"github.com/example/order-mcp/internal/security"
)

// queryTokenParams are query parameters a client might put a token in.
// Tokens in URLs end up in proxy logs, browser history and Referer headers,
// so a request carrying one is refused outright (and the access log never
// records query strings).
var queryTokenParams = []string{"access_token", "token", "api_key", "apikey", "key", "bearer"}

// authenticate is step 5 of the /mcp chain: the lockout check, then the
// bearer credential. It is the only place an HTTP request becomes a
// principal, and it runs for every request: nothing is remembered between
// requests.
//
// A refused credential gets 401 with a WWW-Authenticate challenge whose
// error="invalid_token" says only that; why it was refused goes to the log.
// Repeated failures lock the source out (429 with Retry-After).
func (s *server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := state(r)
		query := r.URL.Query()
		for _, p := range queryTokenParams {
			if query.Has(p) {
				s.challenge(w, r, "token_in_query", `error="invalid_request", error_description="send the token in the Authorization header"`,
					"Credentials are only accepted in the Authorization header.")
				return
			}
		}
		credential, ok := bearer(r)
		if !ok {
			s.challenge(w, r, "missing_credential", "", "Authentication required: send Authorization: Bearer <api key or token>.")
			return
		}
		pre, prechecked := security.PrecheckBucket(st.ip, credential)
		if prechecked {
			if err := s.Lockout.Check(r.Context(), pre); err != nil {
				s.refuseLimit(w, r, "locked_out", err)
				return
			}
		}
		p, err := s.Authenticator.Authenticate(r.Context(), credential)
		var authErr *security.AuthError
		switch {
		case errors.As(err, &authErr):
			s.Logger.LogAttrs(r.Context(), slog.LevelWarn, "credential refused",
				slog.String("reason", authErr.Reason), slog.String("key_id", authErr.KeyID),
				slog.String("client_ip", st.ip.String()))
			failed := security.FailureBucket(st.ip, credential, authErr)
			if !prechecked || failed.Name != pre.Name { // counted per address: is the address locked already?
				if lerr := s.Lockout.Check(r.Context(), failed); lerr != nil {
					s.refuseLimit(w, r, "locked_out", lerr)
					return
				}
			}
			if lerr := s.Lockout.Fail(r.Context(), failed); lerr != nil {
				s.refuseLimit(w, r, "locked_out", lerr)
				return
			}
			s.challenge(w, r, "invalid_credential", `error="invalid_token"`, "Invalid credential.")
			return
		case err != nil:
			s.Logger.LogAttrs(r.Context(), slog.LevelError, "authentication unavailable", slog.String("error", err.Error()))
			w.Header().Set("Retry-After", "5")
			s.refuse(w, r, http.StatusServiceUnavailable, "auth_unavailable", mcpserver.CodeUnavailable, "Temporarily unavailable. Please retry shortly.")
			return
		}
		st.principal = p
		next.ServeHTTP(w, r)
	})
}

// bearer returns the credential of an "Authorization: Bearer x" header,
// parsed exactly as the SDK's RequireBearerToken parses it.
func bearer(r *http.Request) (string, bool) {
	fields := strings.Fields(r.Header.Get("Authorization"))
	if len(fields) != 2 || !strings.EqualFold(fields[0], "bearer") {
		return "", false
	}
	return fields[1], true
}

// challenge answers 401 with a WWW-Authenticate challenge. With OAuth
// configured it points to the protected resource metadata and names the
// scope to ask for (RFC 9728, RFC 6750); with API keys only there is no
// authorization server to point to, and the challenge says only which
// realm it is.
func (s *server) challenge(w http.ResponseWriter, r *http.Request, reason, errParams, msg string) {
	w.Header().Set("WWW-Authenticate", s.challengeHeader(errParams, "orders:read"))
	s.refuse(w, r, http.StatusUnauthorized, reason, mcpserver.CodeUnauthenticated, msg)
}

func (s *server) challengeHeader(errParams, scope string) string {
	params := []string{`realm="order-mcp"`}
	if errParams != "" {
		params = append(params, errParams)
	}
	if s.oauth() {
		params = append(params, fmt.Sprintf("resource_metadata=%q", s.metadataURL), fmt.Sprintf("scope=%q", scope))
	}
	return "Bearer " + strings.Join(params, ", ")
}

// metadataURL is where the protected resource metadata of resource lives:
// RFC 9728 inserts the well-known path between host and path.
func metadataURL(resource string) string {
	u, err := url.Parse(resource)
	if err != nil {
		return ""
	}
	u.Path = "/.well-known/oauth-protected-resource" + strings.TrimSuffix(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	return u.String()
}

// carryPrincipal is the TokenVerifier given to the SDK's RequireBearerToken.
// It verifies nothing itself: step 5 did. It hands this request's principal
// to the SDK, which passes it to the MCP layer as req.Extra.TokenInfo.
func (s *server) carryPrincipal(ctx context.Context, _ string, r *http.Request) (*auth.TokenInfo, error) {
	st := state(r)
	if st.principal == nil {
		return nil, auth.ErrInvalidToken // fail closed if the chain was miswired
	}
	ti := mcpserver.TokenInfo(st.principal)
	if st.charged {
		mcpserver.MarkCharged(ti.Extra)
	}
	return ti, nil
}
