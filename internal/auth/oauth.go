package auth

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
)

// OAuthConfig configures the OAuth resource server.
type OAuthConfig struct {
	// Issuer is the only "iss" accepted (MCP_OAUTH_ISSUER).
	Issuer string
	// JWKSURL is where the issuer publishes its signing keys.
	JWKSURL string
	// Audience is this resource's canonical URL (MCP_RESOURCE_URL): the
	// "aud" a token must contain (RFC 8707). A token minted for another
	// resource is refused, so no client can pass a token through to us
	// that was meant for someone else.
	Audience string
	// CustomerClaim names the claim that binds a caller to a customer.
	CustomerClaim string
	// Leeway is the clock skew tolerated on exp, nbf and iat.
	Leeway time.Duration
	// MaxLifetime bounds how long a token may be valid (exp - iat, or exp -
	// now when iat is absent). Zero means 24 hours. A stolen long-lived
	// token is a long-lived credential; issuers mint access tokens for
	// minutes or hours.
	MaxLifetime time.Duration
	// AcceptJWTType also accepts tokens whose header says typ "JWT" (or
	// says nothing), besides RFC 9068's "at+jwt". Several identity
	// providers (Keycloak, Auth0 and Entra by default) send "JWT"; turn it
	// on for them (MCP_OAUTH_ACCEPT_JWT_TYP).
	AcceptJWTType bool
}

// allowedAlgorithms is the algorithm allow-list: asymmetric signatures only.
// "none" is absent, and so is every HMAC algorithm: with HS256 allowed, a
// token signed with the issuer's *public* key as the HMAC secret would
// verify (algorithm confusion).
var allowedAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// customerIDPattern is the shape of a customer id; a claim of any other
// shape binds nobody and is refused.
var customerIDPattern = regexp.MustCompile(`^cus_[0-9A-HJKMNP-TV-Z]{16}$`)

// OAuthVerifier verifies bearer JWTs from one issuer. It is a resource
// server only: it never issues tokens.
//
// Signing keys come from the issuer's JWKS, fetched by keyfunc, cached, and
// refreshed every hour and, rate-limited, when a token names a key id not
// yet seen (so key rotation needs no restart).
type OAuthVerifier struct {
	cfg    OAuthConfig
	keys   keyfunc.Keyfunc
	parser *jwt.Parser
}

// NewOAuthVerifier starts fetching the issuer's keys; ctx ends the refresh.
// A JWKS that cannot be fetched yet does not stop start-up: tokens are
// refused until it can.
func NewOAuthVerifier(ctx context.Context, cfg OAuthConfig, logger *slog.Logger) (*OAuthVerifier, error) {
	if cfg.Leeway == 0 {
		cfg.Leeway = 30 * time.Second
	}
	if cfg.MaxLifetime <= 0 {
		cfg.MaxLifetime = 24 * time.Hour
	}
	keys, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{cfg.JWKSURL}, keyfunc.Override{
		Client:          &http.Client{Timeout: 5 * time.Second},
		HTTPTimeout:     5 * time.Second,
		RefreshInterval: time.Hour,
		// A token naming an unknown key id triggers a refresh at most every
		// five minutes; a request that arrives while that budget is spent
		// fails at once instead of waiting up to a minute for it.
		RateLimitWaitMax: 100 * time.Millisecond,
		RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
			return func(ctx context.Context, err error) {
				logger.LogAttrs(ctx, slog.LevelError, "could not refresh the issuer's JWKS", slog.String("error", err.Error()))
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("oauth: JWKS: %w", err)
	}
	return &OAuthVerifier{
		cfg:  cfg,
		keys: keys,
		parser: jwt.NewParser(
			jwt.WithValidMethods(allowedAlgorithms),
			jwt.WithIssuer(cfg.Issuer),
			jwt.WithAudience(cfg.Audience),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(cfg.Leeway),
		),
	}, nil
}

// Header problems, found before any signature is checked.
var (
	errCritical   = errors.New("critical header extension not understood")
	errKeyRef     = errors.New("header names a key of its own")
	errType       = errors.New("typ is not at+jwt")
	errNoKID      = errors.New("no kid, and the issuer publishes several keys")
	errKeyMisuse  = errors.New("the key is not for signing with this algorithm")
	errTooLong    = errors.New("lifetime longer than allowed")
	errNoLifetime = errors.New("no expiry")
)

// checkHeader refuses what the JOSE header may not carry here:
//
//   - crit: RFC 7515 section 4.1.11 says a JWS naming a critical
//     extension the recipient does not understand MUST be rejected, and
//     this server understands none;
//   - jku, x5u, jwk, x5c: a token that points at a key of its own choosing
//     (a URL to fetch, an embedded key) is refused outright, though the
//     keys used are only ever the issuer's JWKS;
//   - typ: RFC 9068 access tokens say "at+jwt" (or "application/at+jwt");
//     "JWT", or no typ at all, only when AcceptJWTType is set.
func (v *OAuthVerifier) checkHeader(h map[string]any) error {
	if _, ok := h["crit"]; ok {
		return errCritical
	}
	for _, k := range []string{"jku", "x5u", "jwk", "x5c"} {
		if _, ok := h[k]; ok {
			return errKeyRef
		}
	}
	typ, _ := h["typ"].(string)
	switch strings.ToLower(typ) {
	case "at+jwt", "application/at+jwt":
		return nil
	case "jwt", "":
		if v.cfg.AcceptJWTType {
			if _, isString := h["typ"].(string); isString || h["typ"] == nil {
				return nil
			}
		}
	}
	return errType
}

// keyfunc checks the header, then finds the issuer's key for the token.
// A token without a kid is verified only when the issuer publishes exactly
// one key, and then with the same checks keyfunc makes for a kid (the
// key's alg and use): keyfunc itself would try every published key, an
// encryption key included.
func (v *OAuthVerifier) keyfunc(ctx context.Context) jwt.Keyfunc {
	byKID := v.keys.KeyfuncCtx(ctx)
	return func(t *jwt.Token) (any, error) {
		if err := v.checkHeader(t.Header); err != nil {
			return nil, err
		}
		if _, ok := t.Header["kid"]; ok {
			return byKID(t)
		}
		all, err := v.keys.Storage().KeyReadAll(ctx)
		if err != nil || len(all) != 1 {
			return nil, errNoKID
		}
		m := all[0].Marshal()
		if (m.ALG.String() != "" && m.ALG.String() != t.Method.Alg()) || (m.USE != "" && m.USE != "sig") {
			return nil, errKeyMisuse
		}
		key := all[0].Key()
		if pk, ok := key.(interface{ Public() crypto.PublicKey }); ok {
			key = pk.Public()
		}
		return key, nil
	}
}

// checkLifetime bounds how long the token is valid for.
func (v *OAuthVerifier) checkLifetime(claims jwt.MapClaims) error {
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		return errNoLifetime
	}
	from := time.Now()
	if iat, err := claims.GetIssuedAt(); err == nil && iat != nil {
		from = iat.Time
	}
	if exp.Sub(from) > v.cfg.MaxLifetime+v.cfg.Leeway {
		return errTooLong
	}
	return nil
}

// Verify implements TokenVerifier.
func (v *OAuthVerifier) Verify(ctx context.Context, token string) (*Principal, error) {
	claims := jwt.MapClaims{}
	if _, err := v.parser.ParseWithClaims(token, claims, v.keyfunc(ctx)); err != nil {
		return nil, &AuthError{Reason: "jwt: " + jwtReason(err)}
	}
	if err := v.checkLifetime(claims); err != nil {
		return nil, &AuthError{Reason: "jwt: " + err.Error()}
	}
	sub, _ := claims["sub"].(string)
	if sub == "" {
		return nil, &AuthError{Reason: "jwt: no subject"}
	}
	p := &Principal{
		Subject:      "oauth:" + v.cfg.Issuer + "#" + sub,
		Method:       "oauth",
		CredentialID: sub,
		Scopes:       ParseScopes(strings.Fields(stringClaim(claims, "scope"))),
	}
	if jti := stringClaim(claims, "jti"); jti != "" {
		p.CredentialID = jti
	}
	if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
		p.ExpiresAt = exp.Time
	}
	if raw, present := claims[v.cfg.CustomerClaim]; present {
		customer, ok := raw.(string)
		if !ok || !customerIDPattern.MatchString(customer) {
			return nil, &AuthError{Reason: "jwt: malformed customer claim"}
		}
		p.CustomerID = customer
	}
	// No caller becomes staff by omission: a token that binds no customer
	// must carry orders:read:any explicitly.
	if _, err := p.Access(); err != nil {
		return nil, &AuthError{Reason: "jwt: no customer claim and not staff"}
	}
	return p, nil
}

func stringClaim(c jwt.MapClaims, name string) string {
	s, _ := c[name].(string)
	return s
}

// jwtReason names why a token was refused, for the log.
func jwtReason(err error) string {
	for _, e := range []error{errCritical, errKeyRef, errType, errNoKID, errKeyMisuse} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "unknown signing key or algorithm"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "bad signature or algorithm not allowed"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "not valid yet"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "wrong issuer"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "wrong audience"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "required claim missing"
	}
	return "invalid"
}
