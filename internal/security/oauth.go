package security

import (
	"context"
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

// Verify implements TokenVerifier.
func (v *OAuthVerifier) Verify(ctx context.Context, token string) (*Principal, error) {
	claims := jwt.MapClaims{}
	if _, err := v.parser.ParseWithClaims(token, claims, v.keys.KeyfuncCtx(ctx)); err != nil {
		return nil, &AuthError{Reason: "jwt: " + jwtReason(err)}
	}
	sub, _ := claims["sub"].(string)
	if sub == "" {
		return nil, &AuthError{Reason: "jwt: no subject"}
	}
	p := &Principal{
		Subject:      "oauth:" + v.cfg.Issuer + "#" + sub,
		Method:       "oauth",
		CredentialID: sub,
		Scopes:       knownScopes(strings.Fields(stringClaim(claims, "scope"))),
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
