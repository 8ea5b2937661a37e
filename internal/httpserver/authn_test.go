package httpserver_test

// Attacks on authentication: no credential, bad ones, forged and
// misdirected tokens, tokens in the URL. Each refusal must be the status
// and challenge the contract promises, the same answer whatever was wrong,
// with the reason in the log only and no secret anywhere.

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/dbtest"
	"github.com/example/order-mcp/internal/demo"
	"github.com/example/order-mcp/internal/httpserver"
	"github.com/example/order-mcp/internal/testenv"
)

// TestUnauthenticatedRequestsAreRefused presents no credential, a
// malformed one, or one that is not (or no longer) valid. Each gets 401
// with a Bearer challenge and no data; a presented credential gets
// error="invalid_token" and the same answer whatever was wrong with it.
// The reason is logged, never sent. Run with API keys only (the challenge
// names the realm and nothing else) and with OAuth configured (it points to
// the metadata and the scope to ask for).
func TestUnauthenticatedRequestsAreRefused(t *testing.T) {
	t.Parallel()
	customer := demo.Customers()[0]
	for _, mode := range []struct {
		name  string
		oauth bool
	}{{"APIKeysOnly", false}, {"OAuthConfigured", true}} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			var srv *server
			if mode.oauth {
				srv = startOAuth(t, testenv.Options{Lockout: &noLockout})
			} else {
				srv = start(t, testenv.Options{Lockout: &noLockout})
			}
			c := clientFrom(t, addresses()(1))
			valid, _ := srv.Key(t, customer.ID, auth.ScopeRead)
			revoked, revokedID := srv.Key(t, customer.ID, auth.ScopeRead)
			past := time.Now().Add(-time.Hour)
			expired, _ := dbtest.MintKey(t, srv.Owner, dbtest.KeyOptions{
				Scopes: []auth.Scope{auth.ScopeRead}, CustomerID: customer.ID, ExpiresAt: &past})
			wrongSecret := valid[:len(valid)-4] + "aaaa"
			if strings.HasSuffix(valid, "aaaa") {
				wrongSecret = valid[:len(valid)-4] + "bbbb"
			}
			body := callBody("list_recent_orders", map[string]any{})

			// The revoked key works until it is revoked: what refuses it
			// below is the revocation.
			ok(t, do(t, c, srv.base, request{key: revoked, body: body}))
			if err := srv.Owner.RevokeAPIKey(context.Background(), revokedID); err != nil {
				t.Fatal(err)
			}
			// The server learns of the revocation from a database
			// notification, a moment after the commit.
			eventually(t, "the revocation reaches the server", 10*time.Millisecond, func() bool {
				return do(t, c, srv.base, request{key: revoked, body: body}).status == http.StatusUnauthorized
			})

			wantChallengeOf := func(presented bool) map[string]string {
				c := map[string]string{"realm": "order-mcp"}
				if presented {
					c["error"] = "invalid_token"
				}
				if mode.oauth {
					c["resource_metadata"], c["scope"] = oauthMetadata, string(auth.ScopeRead)
				}
				return c
			}
			tests := []struct {
				name   string
				header []string // Authorization header values
				reason string   // logged reason, for a presented credential
			}{
				{"NoCredentialIsRefused", nil, ""},
				{"EmptyAuthorizationIsRefused", []string{""}, ""},
				{"BasicSchemeIsRefused", []string{"Basic " + "dXNlcjpwYXNz"}, ""},
				{"BasicSchemeCarryingAValidKeyIsRefused", []string{"Basic " + valid}, ""},
				{"BearerWithoutTokenIsRefused", []string{"Bearer"}, ""},
				{"TwoTokensInOneHeaderAreRefused", []string{"Bearer " + valid + " " + valid}, ""},
				{"KeyWithoutSchemeIsRefused", []string{valid}, ""},
				{"GarbageIsRefused", []string{"Bearer not-a-credential"}, "malformed credential"},
				{"GarbageShapedLikeAKeyIsRefused", []string{"Bearer osmcp_garbage"}, "malformed api key"},
				{"UnknownKeyIsRefused", []string{"Bearer osmcp_aaaaaaaaaaaa_" + strings.Repeat("a", 52)}, "unknown api key"},
				{"WrongSecretIsRefused", []string{"Bearer " + wrongSecret}, "wrong api key secret"},
				{"RevokedKeyIsRefused", []string{"Bearer " + revoked}, "api key revoked"},
				{"ExpiredKeyIsRefused", []string{"Bearer " + expired}, "api key expired"},
				{"GarbageBeforeAValidHeaderIsRefused", []string{"Bearer not-a-credential", "Bearer " + valid}, "malformed credential"},
			}
			var refusedBody, refusedChallenge string
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					mark := len(srv.Logs.String())
					r := do(t, c, srv.base, request{body: body, add: http.Header{"Authorization": tt.header}})
					if r.status != http.StatusUnauthorized {
						t.Fatalf("status %d, want 401: %s", r.status, r.body)
					}
					presented := tt.reason != ""
					wantChallenge(t, r, wantChallengeOf(presented))
					saysNothingWhy(t, r)
					if presented {
						loggedReason(t, srv.Env, mark, tt.reason)
						// Every refused credential gets the very same answer.
						if refusedBody == "" {
							refusedBody, refusedChallenge = r.body, r.header.Get("WWW-Authenticate")
						}
						if r.body != refusedBody || r.header.Get("WWW-Authenticate") != refusedChallenge {
							t.Fatalf("answer differs from another refused credential's:\n%s %s\n%s %s",
								r.body, r.header.Get("WWW-Authenticate"), refusedBody, refusedChallenge)
						}
					}
					noSecrets(t, []*testenv.Env{srv.Env}, []string{valid, revoked, expired, wrongSecret}, r.String())
				})
			}

			t.Run("ValidKeyIsAccepted", func(t *testing.T) {
				// The control: the same request with the valid key works, so
				// the refusals above are the credential's doing.
				ok(t, do(t, c, srv.base, request{key: valid, body: body}))
			})
		})
	}
}

// forge signs claims in a way the server must refuse.
type forge func(t *testing.T, iss *testenv.Issuer, claims jwt.MapClaims) string

func signRS256(key *rsa.PrivateKey, kid string) forge {
	return func(t *testing.T, _ *testenv.Issuer, claims jwt.MapClaims) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
		tok.Header["kid"] = kid
		tok.Header["typ"] = "at+jwt" // RFC 9068
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

// TestForgedAndMisdirectedTokensAreRefused presents JWTs the resource
// server must refuse: signed by another key, by another issuer, for another
// resource, expired, unsigned, signed with HS256 using the issuer's public
// key as the secret, or binding nobody. Each gets the same 401
// error="invalid_token" with the metadata pointer; the reason is logged
// only; the token is written nowhere.
func TestForgedAndMisdirectedTokensAreRefused(t *testing.T) {
	t.Parallel()
	srv := startOAuth(t, testenv.Options{Lockout: &noLockout})
	iss := srv.issuer
	c := clientFrom(t, addresses()(1))
	customer := demo.Customers()[1]
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	valid := func() jwt.MapClaims {
		return customerClaims(iss, "forge-subject", customer.ID, auth.ScopeRead)
	}
	issuerSigned := func(t *testing.T, iss *testenv.Issuer, c jwt.MapClaims) string { return iss.Token(t, c) }
	body := callBody("list_recent_orders", map[string]any{})

	tests := []struct {
		name   string
		claims func() jwt.MapClaims
		sign   forge
		reason string
	}{
		{"TokenSignedByAnotherKeyIsRefused", valid, signRS256(otherKey, iss.KID()),
			"jwt: bad signature or algorithm not allowed"},
		{"TokenFromAnotherIssuerIsRefused", func() jwt.MapClaims {
			c := valid()
			c["iss"] = "https://evil-issuer.example/"
			return c
		}, issuerSigned, "jwt: wrong issuer"},
		{"TokenForAnotherResourceIsRefused", func() jwt.MapClaims {
			c := valid()
			c["aud"] = []string{"https://other-resource.example/mcp"}
			return c
		}, issuerSigned, "jwt: wrong audience"},
		{"TokenWithoutAudienceIsRefused", func() jwt.MapClaims {
			c := valid()
			delete(c, "aud")
			return c
		}, issuerSigned, "jwt: required claim missing"},
		{"ExpiredTokenIsRefused", func() jwt.MapClaims {
			c := valid()
			c["iat"], c["nbf"] = time.Now().Add(-time.Hour).Unix(), time.Now().Add(-time.Hour).Unix()
			c["exp"] = time.Now().Add(-10 * time.Minute).Unix()
			return c
		}, issuerSigned, "jwt: expired"},
		{"TokenWithoutExpiryIsRefused", func() jwt.MapClaims {
			c := valid()
			delete(c, "exp")
			return c
		}, issuerSigned, "jwt: required claim missing"},
		{"UnsignedTokenAlgNoneIsRefused", valid, func(t *testing.T, iss *testenv.Issuer, c jwt.MapClaims) string {
			tok := jwt.NewWithClaims(jwt.SigningMethodNone, c)
			tok.Header["kid"] = iss.KID()
			tok.Header["typ"] = "at+jwt"
			s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, "jwt: bad signature or algorithm not allowed"},
		{"HS256SignedWithTheIssuersPublicKeyIsRefused", valid, func(t *testing.T, iss *testenv.Issuer, c jwt.MapClaims) string {
			der, err := x509.MarshalPKIXPublicKey(&iss.PrivateKey().PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
			tok.Header["kid"] = iss.KID()
			tok.Header["typ"] = "at+jwt"
			s, err := tok.SignedString(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, "jwt: bad signature or algorithm not allowed"},
		{"TokenBindingNoCustomerAndNotStaffIsRefused", func() jwt.MapClaims {
			return iss.Claims(oauthResource, "forge-subject", auth.ScopeRead, auth.ScopeCancel)
		}, issuerSigned, "jwt: no customer claim and not staff"},
		{"TokenWithMalformedCustomerClaimIsRefused", func() jwt.MapClaims {
			c := valid()
			c["customer_id"] = "cus_' OR '1'='1"
			return c
		}, issuerSigned, "jwt: malformed customer claim"},
		{"TokenWithoutSubjectIsRefused", func() jwt.MapClaims {
			c := valid()
			delete(c, "sub")
			return c
		}, issuerSigned, "jwt: no subject"},
	}
	var tokens []string
	var refusedBody, refusedChallenge string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := tt.sign(t, iss, tt.claims())
			tokens = append(tokens, tok)
			mark := len(srv.Logs.String())
			r := do(t, c, srv.base, request{key: tok, body: body})
			if r.status != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401: %s", r.status, r.body)
			}
			wantChallenge(t, r, map[string]string{"realm": "order-mcp", "error": "invalid_token",
				"resource_metadata": oauthMetadata, "scope": string(auth.ScopeRead)})
			saysNothingWhy(t, r)
			loggedReason(t, srv.Env, mark, tt.reason)
			if refusedBody == "" {
				refusedBody, refusedChallenge = r.body, r.header.Get("WWW-Authenticate")
			}
			if r.body != refusedBody || r.header.Get("WWW-Authenticate") != refusedChallenge {
				t.Fatalf("answer differs from another refused token's: %s / %s", r.body, refusedBody)
			}
			noSecrets(t, []*testenv.Env{srv.Env}, tokens, r.body)
		})
	}

	t.Run("TokenFromTheIssuerForThisResourceIsAccepted", func(t *testing.T) {
		// The control: the same claims, signed by the issuer, work.
		tok := iss.Token(t, valid())
		ok(t, do(t, c, srv.base, request{key: tok, body: body}))
		noSecrets(t, []*testenv.Env{srv.Env}, []string{tok})
	})
}

// TestTokenInQueryStringIsRefusedAndNeverLogged puts a credential in the
// URL, where proxies, browser history and Referer headers would keep it.
// It is refused even next to a valid Authorization header, and neither the
// token nor the query string reaches the log.
func TestTokenInQueryStringIsRefusedAndNeverLogged(t *testing.T) {
	t.Parallel()
	srv := startOAuth(t, testenv.Options{Lockout: &noLockout})
	c := clientFrom(t, addresses()(1))
	customer := demo.Customers()[2]
	key, _ := srv.Key(t, customer.ID, auth.ScopeRead)
	tok := srv.issuer.Token(t, customerClaims(srv.issuer, "query-subject", customer.ID, auth.ScopeRead))
	const canary = "QUERYCANARY7Q3"
	body := callBody("list_recent_orders", map[string]any{})

	tests := []struct {
		name   string
		query  string
		header string
	}{
		{"AccessTokenParameterAloneIsRefused", "access_token=" + key, ""},
		{"AccessTokenParameterNextToAValidHeaderIsRefused", "access_token=" + key, key},
		{"JWTInAccessTokenParameterIsRefused", "access_token=" + tok, tok},
		{"APIKeyParameterIsRefused", "api_key=" + key, key},
		{"TokenParameterIsRefused", "token=" + tok, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, c, srv.base, request{path: "/mcp?" + tt.query + "&trace=" + canary, key: tt.header, body: body})
			if r.status != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401: %s", r.status, r.body)
			}
			wantChallenge(t, r, map[string]string{"realm": "order-mcp", "error": "invalid_request",
				"error_description": "send the token in the Authorization header",
				"resource_metadata": oauthMetadata, "scope": string(auth.ScopeRead)})
			if strings.Contains(r.body, `"result"`) {
				t.Fatalf("got a result: %s", r.body)
			}
			logs := srv.Logs.String()
			if !strings.Contains(logs, `"refused":"token_in_query"`) {
				t.Fatal("the refusal is not in the access log")
			}
			for _, s := range []string{canary, "access_token", "api_key=", "token=", "trace="} {
				if strings.Contains(logs, s) {
					t.Fatalf("the log holds the query string (%q)", s)
				}
			}
			noSecrets(t, []*testenv.Env{srv.Env}, []string{key, tok}, r.body)
		})
	}

	t.Run("SameRequestWithoutTheQueryIsAccepted", func(t *testing.T) {
		ok(t, do(t, c, srv.base, request{path: "/mcp?trace=" + canary, key: key, body: body}))
		if strings.Contains(srv.Logs.String(), canary) {
			t.Fatal("the access log holds the query string")
		}
	})
}

// TestTokenInsideTheClockSkewIsServed: a token that expired a moment ago
// is within the verifier's 30-second skew and must be served like any
// valid token (not refused by a second, skew-less check further down).
func TestTokenInsideTheClockSkewIsServed(t *testing.T) {
	t.Parallel()
	issuer := testenv.NewIssuer(t)
	aud := "http://127.0.0.1/mcp"
	env := testenv.New(t, dsn, testenv.Options{TokenVerifier: issuer.Verifier(t, aud),
		HTTP: httpserver.Config{ResourceURL: aud, OAuthIssuer: issuer.ID}})
	base := serve(t, env.Handler())
	claims := issuer.Claims(aud, "skewed", auth.ScopeRead)
	claims["customer_id"] = demo.Customers()[1].ID
	claims["exp"] = time.Now().Add(-2 * time.Second).Unix()
	claims["iat"] = time.Now().Add(-time.Minute).Unix()
	claims["nbf"] = time.Now().Add(-time.Minute).Unix()
	cs := connect(t, base, bearerFrom(t, addresses()(1), issuer.Token(t, claims)), testenv.Protocol20251125)
	res := testenv.Call(t, cs, "list_recent_orders", map[string]any{"limit": 1})
	if res.IsError {
		t.Fatalf("a token 2s past exp (inside the 30s skew) was refused: %s", testenv.Text(res))
	}
}
