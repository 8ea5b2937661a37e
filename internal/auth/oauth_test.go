package auth_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/testenv"
)

// audience is this resource server's canonical URL in the OAuth tests.
const audience = "https://orders.example.test/mcp"

func rsaKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// signRS256 signs claims with key under kid, as an issuer would.
func signRS256(t testing.TB, key *rsa.PrivateKey, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = kid
	tok.Header["typ"] = "at+jwt" // RFC 9068
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// signHS256 signs claims with secret as an HMAC key (the algorithm
// confusion attack uses the issuer's public key as that secret).
func signHS256(t testing.TB, secret []byte, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	tok.Header["kid"] = kid
	tok.Header["typ"] = "at+jwt" // RFC 9068
	s, err := tok.SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// unsigned builds an `alg: none` token by hand: header and claims, empty
// signature.
func unsigned(t testing.TB, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc(h) + "." + enc(c) + "."
}

func pemPKIX(t testing.TB, pub *rsa.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// with returns a copy of c with the given claims set (a nil value deletes
// the claim).
func with(c jwt.MapClaims, kv ...any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		k := kv[i].(string)
		if kv[i+1] == nil {
			delete(out, k)
		} else {
			out[k] = kv[i+1]
		}
	}
	return out
}

// refusedWith asserts that err is an *AuthError with exactly reason, that
// it unwraps to ErrInvalidCredential, and that neither it nor the reason
// repeats the credential or any part of it that could be replayed.
func refusedWith(t testing.TB, err error, reason string, secrets ...string) *auth.AuthError {
	t.Helper()
	var ae *auth.AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("got %v (%T), want an *auth.AuthError %q", err, err, reason)
	}
	if ae.Reason != reason {
		t.Errorf("reason %q, want %q", ae.Reason, reason)
	}
	if !errors.Is(err, auth.ErrInvalidCredential) {
		t.Errorf("%v does not unwrap to ErrInvalidCredential", err)
	}
	assertNoLeak(t, secrets, ae.Reason, ae.KeyID, err.Error())
	return ae
}

// jwtParts returns the token and each of its non-empty parts: none of them
// may show up in a refusal.
func jwtParts(token string) []string {
	out := []string{token}
	for _, p := range strings.Split(token, ".") {
		if len(p) > 8 {
			out = append(out, p)
		}
	}
	return out
}

func TestOAuthVerifierRefusesBadTokens(t *testing.T) {
	issuer := testenv.NewIssuer(t)
	v := issuer.Verifier(t, audience)
	now := time.Now()

	// valid is a customer token that the verifier accepts (checked first):
	// each case breaks exactly one thing in it.
	valid := with(issuer.Claims(audience, "user-1", auth.ScopeRead), "customer_id", customerID())
	staffless := with(issuer.Claims(audience, "user-2", auth.ScopeRead))
	pub := &issuer.PrivateKey().PublicKey

	if _, err := v.Verify(context.Background(), issuer.Token(t, valid)); err != nil {
		t.Fatalf("the token every case starts from is refused: %v", err)
	}

	tests := []struct {
		name   string
		token  func(t *testing.T) string
		reason string
	}{
		{"TokenWithNoClaimsAtAllIsRefused", func(t *testing.T) string {
			return issuer.Token(t, jwt.MapClaims{})
		}, "jwt: required claim missing"},
		{"TokenWithoutSubjectIsRefused", func(t *testing.T) string {
			return issuer.Token(t, with(valid, "sub", nil))
		}, "jwt: no subject"},
		{"TokenWithEmptySubjectIsRefused", func(t *testing.T) string {
			return issuer.Token(t, with(valid, "sub", ""))
		}, "jwt: no subject"},
		{"TokenSignedByAnotherKeyUnderTheIssuersKidIsRefused", func(t *testing.T) string {
			return signRS256(t, rsaKey(t), issuer.KID(), valid)
		}, "jwt: bad signature or algorithm not allowed"},
		{"TokenWithTamperedClaimsIsRefused", func(t *testing.T) string {
			// A real signature over other claims, spliced onto a payload
			// that binds the caller to staff.
			real := strings.Split(issuer.Token(t, valid), ".")
			forged := strings.Split(unsigned(t, map[string]any{"alg": "RS256", "typ": "at+jwt", "kid": issuer.KID()},
				with(valid, "customer_id", nil, "scope", "orders:read orders:read:any")), ".")
			return real[0] + "." + forged[1] + "." + real[2]
		}, "jwt: bad signature or algorithm not allowed"},
		{"TokenFromAnotherIssuerIsRefused", func(t *testing.T) string {
			return issuer.Token(t, with(valid, "iss", "https://evil.example/"))
		}, "jwt: wrong issuer"},
		{"TokenFromASimilarIssuerIsRefused", func(t *testing.T) string {
			return issuer.Token(t, with(valid, "iss", strings.TrimSuffix(issuer.ID, "/")))
		}, "jwt: wrong issuer"},
		{"TokenWithoutIssuerIsRefused", func(t *testing.T) string {
			return issuer.Token(t, with(valid, "iss", nil))
		}, "jwt: required claim missing"},
		{"TokenForAnotherAudienceIsRefused", func(t *testing.T) string {
			return issuer.Token(t, with(valid, "aud", []string{"https://other.example/mcp"}))
		}, "jwt: wrong audience"},
		{"TokenForAnotherAudienceAsAStringIsRefused", func(t *testing.T) string {
			return issuer.Token(t, with(valid, "aud", "https://other.example/mcp"))
		}, "jwt: wrong audience"},
		{"TokenForAnotherPathOnOurHostIsRefused", func(t *testing.T) string {
			return issuer.Token(t, with(valid, "aud", []string{"https://orders.example.test/"}))
		}, "jwt: wrong audience"},
		{"TokenWithoutAudienceIsRefused", func(t *testing.T) string {
			return issuer.Token(t, with(valid, "aud", nil))
		}, "jwt: required claim missing"},
		{"TokenWithEmptyAudienceIsRefused", func(t *testing.T) string {
			return issuer.Token(t, with(valid, "aud", []string{}))
		}, "jwt: required claim missing"},
		{"TokenExpiredBeyondTheLeewayIsRefused", func(t *testing.T) string {
			return issuer.Token(t, with(valid, "exp", now.Add(-2*time.Minute).Unix(),
				"iat", now.Add(-10*time.Minute).Unix(), "nbf", now.Add(-10*time.Minute).Unix()))
		}, "jwt: expired"},
		{"TokenWithoutExpiryIsRefused", func(t *testing.T) string {
			return issuer.Token(t, with(valid, "exp", nil))
		}, "jwt: required claim missing"},
		{"TokenNotValidBeforeAFutureTimeIsRefused", func(t *testing.T) string {
			return issuer.Token(t, with(valid, "nbf", now.Add(2*time.Minute).Unix()))
		}, "jwt: not valid yet"},
		{"TokenIssuedInTheFutureIsRefused", func(t *testing.T) string {
			return issuer.Token(t, with(valid, "iat", now.Add(2*time.Minute).Unix()))
		}, "jwt: not valid yet"},
		{"UnsignedAlgNoneTokenIsRefused", func(t *testing.T) string {
			return unsigned(t, map[string]any{"alg": "none", "typ": "at+jwt", "kid": issuer.KID()}, valid)
		}, "jwt: bad signature or algorithm not allowed"},
		{"UnsignedAlgNoneTokenWithoutKidIsRefused", func(t *testing.T) string {
			return unsigned(t, map[string]any{"alg": "none", "typ": "at+jwt"}, valid)
		}, "jwt: bad signature or algorithm not allowed"},
		{"HS256SignedWithTheIssuersPEMPublicKeyIsRefused", func(t *testing.T) string {
			return signHS256(t, pemPKIX(t, pub), issuer.KID(), valid)
		}, "jwt: bad signature or algorithm not allowed"},
		{"HS256SignedWithTheIssuersDERPublicKeyIsRefused", func(t *testing.T) string {
			return signHS256(t, x509.MarshalPKCS1PublicKey(pub), issuer.KID(), valid)
		}, "jwt: bad signature or algorithm not allowed"},
		{"HS256SignedWithTheModulusIsRefused", func(t *testing.T) string {
			return signHS256(t, pub.N.Bytes(), issuer.KID(), valid)
		}, "jwt: bad signature or algorithm not allowed"},
		{"TokenWithNeitherCustomerNorReadAnyIsRefused", func(t *testing.T) string {
			return issuer.Token(t, staffless)
		}, "jwt: no customer claim and not staff"},
		{"TokenWithNoScopesAndNoCustomerIsRefused", func(t *testing.T) string {
			return issuer.Token(t, with(staffless, "scope", nil))
		}, "jwt: no customer claim and not staff"},
		{"ReadAnyOutsideTheScopeClaimDoesNotMakeStaff", func(t *testing.T) string {
			return issuer.Token(t, with(staffless, "scp", []auth.Scope{auth.ScopeRead, auth.ScopeReadAny},
				"roles", []auth.Scope{auth.ScopeReadAny}, "permissions", auth.ScopeReadAny))
		}, "jwt: no customer claim and not staff"},
		{"ScopeClaimAsAnArrayIsNotReadAsReadAny", func(t *testing.T) string {
			return issuer.Token(t, with(staffless, "scope", []auth.Scope{auth.ScopeRead, auth.ScopeReadAny}))
		}, "jwt: no customer claim and not staff"},
		{"ReadAnyWithATrailingSuffixIsNotReadAny", func(t *testing.T) string {
			return issuer.Token(t, with(staffless, "scope", "orders:read orders:read:any:x orders:read:anything"))
		}, "jwt: no customer claim and not staff"},
		{"CustomerClaimThatIsNotACustomerIDIsRefused", func(t *testing.T) string {
			return issuer.Token(t, with(valid, "customer_id", "cus_123"))
		}, "jwt: malformed customer claim"},
		{"CustomerClaimWithExcludedLettersIsRefused", func(t *testing.T) string {
			return issuer.Token(t, with(valid, "customer_id", "cus_IIIIIIIIIIIIIIII"))
		}, "jwt: malformed customer claim"},
		{"CustomerClaimWithInjectedSQLIsRefused", func(t *testing.T) string {
			return issuer.Token(t, with(valid, "customer_id", customerID()+"' OR '1'='1"))
		}, "jwt: malformed customer claim"},
		{"CustomerClaimWithATrailingNewlineIsRefused", func(t *testing.T) string {
			return issuer.Token(t, with(valid, "customer_id", customerID()+"\n"))
		}, "jwt: malformed customer claim"},
		{"EmptyCustomerClaimIsRefusedNotTreatedAsAbsent", func(t *testing.T) string {
			return issuer.Token(t, with(valid, "customer_id", "", "scope", "orders:read orders:read:any"))
		}, "jwt: malformed customer claim"},
		{"NullCustomerClaimIsRefusedNotTreatedAsAbsent", func(t *testing.T) string {
			c := with(valid, "scope", "orders:read orders:read:any")
			c["customer_id"] = nil
			return issuer.Token(t, c)
		}, "jwt: malformed customer claim"},
		{"NumericCustomerClaimIsRefused", func(t *testing.T) string {
			return issuer.Token(t, with(valid, "customer_id", 42))
		}, "jwt: malformed customer claim"},
		{"ArrayCustomerClaimIsRefused", func(t *testing.T) string {
			return issuer.Token(t, with(valid, "customer_id", []string{customerID()}))
		}, "jwt: malformed customer claim"},
		{"GarbageWithTwoDotsIsRefused", func(t *testing.T) string {
			return "not.a.jwt"
		}, "jwt: malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token := tt.token(t)
			p, err := v.Verify(context.Background(), token)
			if p != nil {
				t.Fatalf("accepted as %+v", p)
			}
			refusedWith(t, err, tt.reason, jwtParts(token)...)
		})
	}
}

func TestOAuthVerifierAcceptsValidTokens(t *testing.T) {
	issuer := testenv.NewIssuer(t)
	v := issuer.Verifier(t, audience)
	now := time.Now()
	cus := customerID()

	tests := []struct {
		name       string
		claims     jwt.MapClaims
		wantScopes []auth.Scope
		wantCus    string
		wantStaff  bool
	}{
		{"CustomerTokenBindsTheCustomer",
			with(issuer.Claims(audience, "user-1", auth.ScopeRead, auth.ScopeCancel), "customer_id", cus),
			[]auth.Scope{auth.ScopeRead, auth.ScopeCancel}, cus, false},
		{"StaffTokenWithReadAnyAndNoCustomerIsStaff",
			issuer.Claims(audience, "staff-1", auth.ScopeRead, auth.ScopeReadAny),
			[]auth.Scope{auth.ScopeRead, auth.ScopeReadAny}, "", true},
		{"CustomerTokenWithReadAnyIsStillOnlyTheCustomer",
			with(issuer.Claims(audience, "user-2", auth.ScopeRead, auth.ScopeReadAny), "customer_id", cus),
			[]auth.Scope{auth.ScopeRead, auth.ScopeReadAny}, cus, false},
		{"UnknownScopesAreDropped",
			with(issuer.Claims(audience, "user-3", "admin", auth.ScopeRead, "orders:write", auth.ScopeRead, "*"), "customer_id", cus),
			[]auth.Scope{auth.ScopeRead}, cus, false},
		{"TokenForSeveralAudiencesIncludingOursIsAccepted",
			with(issuer.Claims(audience, "user-4", auth.ScopeRead), "customer_id", cus,
				"aud", []string{"https://other.example/mcp", audience}),
			[]auth.Scope{auth.ScopeRead}, cus, false},
		{"TokenExpiredWithinTheLeewayIsAccepted",
			with(issuer.Claims(audience, "user-5", auth.ScopeRead), "customer_id", cus,
				"exp", now.Add(-10*time.Second).Unix(), "iat", now.Add(-5*time.Minute).Unix(), "nbf", now.Add(-5*time.Minute).Unix()),
			[]auth.Scope{auth.ScopeRead}, cus, false},
		{"TokenValidWithinTheLeewayOfItsNotBeforeIsAccepted",
			with(issuer.Claims(audience, "user-6", auth.ScopeRead), "customer_id", cus,
				"nbf", now.Add(10*time.Second).Unix(), "iat", now.Add(10*time.Second).Unix()),
			[]auth.Scope{auth.ScopeRead}, cus, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := v.Verify(context.Background(), issuer.Token(t, tt.claims))
			if err != nil {
				t.Fatal(err)
			}
			sub := tt.claims["sub"].(string)
			if want := "oauth:" + issuer.ID + "#" + sub; p.Subject != want {
				t.Errorf("subject %q, want %q", p.Subject, want)
			}
			if p.Method != "oauth" || p.CredentialID != tt.claims["jti"] {
				t.Errorf("method %q credential %q, want oauth and the jti %v", p.Method, p.CredentialID, tt.claims["jti"])
			}
			if !slices.Equal(p.Scopes, tt.wantScopes) {
				t.Errorf("scopes %v, want %v", p.Scopes, tt.wantScopes)
			}
			if p.CustomerID != tt.wantCus || p.IsStaff() != tt.wantStaff {
				t.Errorf("customer %q staff %v, want %q %v", p.CustomerID, p.IsStaff(), tt.wantCus, tt.wantStaff)
			}
			if want := time.Unix(tt.claims["exp"].(int64), 0); !p.ExpiresAt.Equal(want) {
				t.Errorf("expires %v, want %v", p.ExpiresAt, want)
			}
			access, err := p.Access()
			if err != nil {
				t.Fatal(err)
			}
			if access.IsStaff() != tt.wantStaff || access.CustomerID() != tt.wantCus {
				t.Errorf("access %+v", access)
			}
		})
	}

	t.Run("TokenWithoutJTIIsIdentifiedBySubject", func(t *testing.T) {
		p, err := v.Verify(context.Background(), issuer.Token(t,
			with(issuer.Claims(audience, "user-7", auth.ScopeRead), "customer_id", cus, "jti", nil)))
		if err != nil {
			t.Fatal(err)
		}
		if p.CredentialID != "user-7" {
			t.Errorf("credential id %q, want the subject", p.CredentialID)
		}
	})
}

func TestOAuthVerifierFollowsKeyRotation(t *testing.T) {
	issuer := testenv.NewIssuer(t)
	v := issuer.Verifier(t, audience)
	ctx := context.Background()
	claims := func() jwt.MapClaims {
		return with(issuer.Claims(audience, "user-1", auth.ScopeRead), "customer_id", customerID())
	}

	oldKey, oldKID := issuer.PrivateKey(), issuer.KID()
	if _, err := v.Verify(ctx, issuer.Token(t, claims())); err != nil {
		t.Fatalf("token signed with the first key: %v", err)
	}
	fetches := issuer.Fetches()

	issuer.Rotate(t)
	if issuer.KID() == oldKID {
		t.Fatal("rotation kept the key id")
	}

	t.Run("TokenSignedWithTheNewKeyVerifiesWithoutRestart", func(t *testing.T) {
		if _, err := v.Verify(ctx, issuer.Token(t, claims())); err != nil {
			t.Fatalf("token signed with the rotated key: %v", err)
		}
		if issuer.Fetches() <= fetches {
			t.Errorf("the JWKS was not fetched again (%d fetches)", issuer.Fetches())
		}
	})
	t.Run("TokenSignedWithTheRetiredKeyIsRefused", func(t *testing.T) {
		token := signRS256(t, oldKey, oldKID, claims())
		p, err := v.Verify(ctx, token)
		if p != nil {
			t.Fatalf("retired key still accepted: %+v", p)
		}
		refusedWith(t, err, "jwt: unknown signing key or algorithm", jwtParts(token)...)
	})
}

func TestOAuthVerifierUnknownKeyIDsCannotMakeItHammerTheJWKS(t *testing.T) {
	issuer := testenv.NewIssuer(t)
	v := issuer.Verifier(t, audience)
	claims := with(issuer.Claims(audience, "user-1", auth.ScopeRead), "customer_id", customerID())
	attacker := rsaKey(t)

	before := issuer.Fetches()
	for i := range 20 {
		token := signRS256(t, attacker, fmt.Sprintf("attacker-%d", i), claims)
		p, err := v.Verify(context.Background(), token)
		if p != nil {
			t.Fatalf("token signed by an unknown key accepted: %+v", p)
		}
		refusedWith(t, err, "jwt: unknown signing key or algorithm", jwtParts(token)...)
	}
	if n := issuer.Fetches() - before; n > 1 {
		t.Errorf("20 unknown key ids caused %d JWKS fetches, want at most 1", n)
	}
}

func TestOAuthVerifierWithUnreachableJWKS(t *testing.T) {
	// The issuer signs, but its keys are published at an address where
	// nothing listens: start-up goes on, and every token is refused.
	issuer := testenv.NewIssuer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v, err := auth.NewOAuthVerifier(ctx, auth.OAuthConfig{
		Issuer: issuer.ID, JWKSURL: "http://127.0.0.1:1/.well-known/jwks.json", Audience: audience, CustomerClaim: "customer_id",
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("an unreachable JWKS stopped start-up: %v", err)
	}
	token := issuer.Token(t, with(issuer.Claims(audience, "user-1", auth.ScopeRead), "customer_id", customerID()))
	p, err := v.Verify(ctx, token)
	if p != nil {
		t.Fatalf("accepted without any key: %+v", p)
	}
	refusedWith(t, err, "jwt: unknown signing key or algorithm", jwtParts(token)...)
}

// TestOAuthVerifierJudgesTheHeader attacks the JOSE header of otherwise
// valid tokens: critical extensions (RFC 7515 section 4.1.11 says a JWS
// whose crit names an extension the recipient does not understand MUST be
// rejected), the RFC 9068 typ, keys the token points at itself, a lifetime
// longer than allowed, and a missing kid when the issuer publishes several
// keys.
func TestOAuthVerifierJudgesTheHeader(t *testing.T) {
	issuer := testenv.NewIssuer(t)
	strict := issuer.Verifier(t, audience)
	lenient := verifier(t, issuer, auth.OAuthConfig{AcceptJWTType: true})
	valid := with(issuer.Claims(audience, "user-1", auth.ScopeRead), "customer_id", customerID())
	now := time.Now()

	tests := []struct {
		name     string
		header   map[string]any
		claims   jwt.MapClaims
		verifier *auth.OAuthVerifier
		reason   string // "" means accepted
	}{
		{"AtJWTTypIsAccepted", nil, valid, strict, ""},
		{"MediaTypeFormOfAtJWTIsAccepted", map[string]any{"typ": "application/at+jwt"}, valid, strict, ""},
		{"CriticalExtensionIsRefused", map[string]any{"crit": []string{"urn:example:acme"}, "urn:example:acme": true}, valid, lenient,
			"jwt: critical header extension not understood"},
		{"CriticalListNamingAStandardHeaderIsRefused", map[string]any{"crit": []string{"exp"}}, valid, lenient,
			"jwt: critical header extension not understood"},
		{"EmptyCriticalListIsRefused", map[string]any{"crit": []string{}}, valid, lenient,
			"jwt: critical header extension not understood"},
		{"PlainJWTTypIsRefusedByDefault", map[string]any{"typ": "JWT"}, valid, strict, "jwt: typ is not at+jwt"},
		{"MissingTypIsRefusedByDefault", map[string]any{"typ": nil}, valid, strict, "jwt: typ is not at+jwt"},
		{"PlainJWTTypIsAcceptedWhenConfigured", map[string]any{"typ": "JWT"}, valid, lenient, ""},
		{"MissingTypIsAcceptedWhenConfigured", map[string]any{"typ": nil}, valid, lenient, ""},
		{"IDTokenTypIsRefusedEvenWhenJWTIsAccepted", map[string]any{"typ": "id_token+jwt"}, valid, lenient, "jwt: typ is not at+jwt"},
		{"NonStringTypIsRefused", map[string]any{"typ": 7}, valid, lenient, "jwt: typ is not at+jwt"},
		{"KeyURLInJKUIsRefused", map[string]any{"jku": "https://evil.example/jwks.json"}, valid, strict, "jwt: header names a key of its own"},
		{"EmbeddedJWKIsRefused", map[string]any{"jwk": map[string]string{"kty": "RSA", "n": "AQAB", "e": "AQAB"}}, valid, strict,
			"jwt: header names a key of its own"},
		{"CertificateURLInX5UIsRefused", map[string]any{"x5u": "https://evil.example/cert.pem"}, valid, strict,
			"jwt: header names a key of its own"},
		{"TokenValidForTwoDaysIsRefused", nil, with(valid, "exp", now.Add(48*time.Hour).Unix()), strict,
			"jwt: lifetime longer than allowed"},
		{"TokenValidForTwoDaysWithoutIatIsRefused", nil, with(valid, "iat", nil, "exp", now.Add(48*time.Hour).Unix()), strict,
			"jwt: lifetime longer than allowed"},
		{"TokenValidForEightHoursIsAccepted", nil, with(valid, "exp", now.Add(8*time.Hour).Unix()), strict, ""},
		{"TokenWithoutKidIsAcceptedWhenTheIssuerPublishesOneKey", map[string]any{"kid": nil}, valid, strict, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token := issuer.TokenWithHeader(t, tt.header, tt.claims)
			p, err := tt.verifier.Verify(context.Background(), token)
			if tt.reason == "" {
				if err != nil || p == nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if p != nil {
				t.Fatalf("accepted: %+v", p)
			}
			refusedWith(t, err, tt.reason, jwtParts(token)...)
		})
	}

	// An issuer in the middle of a rotation publishes two keys: a token
	// without a kid could be checked against either, an encryption key or
	// one meant for another algorithm included, so it is refused.
	t.Run("TokenWithoutKidIsRefusedWhenTheIssuerPublishesSeveralKeys", func(t *testing.T) {
		two := testenv.NewIssuer(t)
		two.AddKey(t)
		v := two.Verifier(t, audience)
		claims := with(two.Claims(audience, "user-1", auth.ScopeRead), "customer_id", customerID())
		if _, err := v.Verify(context.Background(), two.Token(t, claims)); err != nil {
			t.Fatalf("a token with its kid is refused: %v", err)
		}
		token := two.TokenWithHeader(t, map[string]any{"kid": nil}, claims)
		p, err := v.Verify(context.Background(), token)
		if p != nil {
			t.Fatalf("accepted: %+v", p)
		}
		refusedWith(t, err, "jwt: no kid, and the issuer publishes several keys", jwtParts(token)...)
	})
}

// verifier builds a verifier for issuer with cfg's options.
func verifier(t testing.TB, issuer *testenv.Issuer, cfg auth.OAuthConfig) *auth.OAuthVerifier {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cfg.Issuer, cfg.JWKSURL, cfg.Audience, cfg.CustomerClaim = issuer.ID, issuer.JWKSURL, audience, "customer_id"
	v, err := auth.NewOAuthVerifier(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return v
}
