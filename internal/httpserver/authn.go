package httpserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	sdkauth "github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/limits"
	"github.com/example/order-mcp/internal/mcpserver"
	"github.com/example/order-mcp/internal/refusal"
)

// queryTokenParams are query parameters a client might put a token in.
// Tokens in URLs end up in proxy logs, browser history and Referer headers,
// so a request carrying one is refused outright (and the access log never
// records query strings).
var queryTokenParams = []string{"access_token", "token", "api_key", "apikey", "key", "bearer"}

// authenticate is where an HTTP request becomes a principal: the lockout
// check, then the bearer credential. It runs for every request: nothing is
// remembered between requests.
//
// A refused credential gets 401 with a WWW-Authenticate challenge whose
// error="invalid_token" says only that; why it was refused goes to the log.
// Every failure counts in the address's lockout bucket, whatever key id
// the credential names (see limits.AddressBucket for why). While the
// address is locked, a credential is verified only when it names an API
// key this process has seen succeed lately (a client behind the same NAT
// as the attacker keeps working); anything else gets 429 before any
// database work. Bearer JWTs are verified first in any case: their check
// is a signature, not a lookup, and one garbage sender behind a shared
// address must not lock out the OAuth callers there.
func (s *server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := state(r)
		query := r.URL.Query()
		for _, p := range queryTokenParams {
			if query.Has(p) {
				s.challenge(w, r, refusal.TokenInQuery, `error="invalid_request", error_description="send the token in the Authorization header"`)
				return
			}
		}
		credential, ok := bearer(r)
		if !ok {
			s.challenge(w, r, refusal.MissingCredential, "")
			return
		}
		bucket := limits.AddressBucket(st.ip)
		keyID, isKey := auth.PresentedKeyID(credential)
		// A token is judged by its signature, which costs no database work,
		// so a locked address's token is still checked (its clients are
		// not locked out by a flood they share an address with); only when
		// OAuth is configured is a dotted credential a token at all.
		jwt := s.oauth() && auth.LooksLikeJWT(credential)
		var locked error
		if !jwt {
			if err := s.Lockout.Check(r.Context(), bucket); err != nil {
				if !(isKey && s.recent.Has(keyID)) {
					s.refuseLimit(w, r, "locked_out", err)
					return
				}
				locked = err
			}
		}
		p, err := s.Authenticator.Authenticate(r.Context(), credential)
		var authErr *auth.AuthError
		switch {
		case errors.As(err, &authErr):
			s.Logger.LogAttrs(r.Context(), slog.LevelWarn, "credential refused",
				slog.String("reason", authErr.Reason), slog.String("key_id", authErr.KeyID),
				slog.String("client_ip", st.ip.String()))
			if jwt {
				locked = s.Lockout.Check(r.Context(), bucket)
			}
			if locked != nil {
				// Already locked: answered with that lock and not counted
				// again, so a failure naming a key id this server served
				// lately looks exactly like one naming a made-up id.
				s.refuseLimit(w, r, "locked_out", locked)
				return
			}
			if lerr := s.Lockout.Fail(r.Context(), bucket); lerr != nil {
				s.refuseLimit(w, r, "locked_out", lerr) // locked now, or already was
				return
			}
			s.challenge(w, r, refusal.InvalidCredential, `error="invalid_token"`)
			return
		case err != nil:
			s.Logger.LogAttrs(r.Context(), slog.LevelError, "authentication unavailable", slog.String("error", err.Error()))
			w.Header().Set("Retry-After", "5")
			s.refuseAs(w, r, refusal.Unavailable, "auth_unavailable", refusal.Unavailable.Message())
			return
		}
		if isKey {
			s.recent.Add(keyID)
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
func (s *server) challenge(w http.ResponseWriter, r *http.Request, kind refusal.Kind, errParams string) {
	w.Header().Set("WWW-Authenticate", s.challengeHeader(errParams, string(auth.ScopeRead)))
	s.refuse(w, r, kind, kind.Message())
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
// It verifies nothing itself: authenticate did. It hands this request's principal
// to the SDK, which passes it to the MCP layer as req.Extra.TokenInfo.
func (s *server) carryPrincipal(ctx context.Context, _ string, r *http.Request) (*sdkauth.TokenInfo, error) {
	st := state(r)
	if st.principal == nil {
		return nil, sdkauth.ErrInvalidToken // fail closed if the chain was miswired
	}
	ti := mcpserver.TokenInfo(st.principal)
	if st.charged {
		mcpserver.MarkCharged(ti.Extra)
	}
	st.call = &mcpserver.CallLine{}
	mcpserver.CarryCallLine(ti.Extra, st.call)
	return ti, nil
}
