package testenv

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/example/order-mcp/internal/auth"
)

// Issuer is an OAuth authorization server for tests: an RSA signing key
// generated in the test and a JWKS endpoint on a loopback port. It only
// signs tokens; the server under test is the resource server.
type Issuer struct {
	// ID is the issuer identifier ("iss").
	ID string
	// JWKSURL serves the current public keys.
	JWKSURL string

	mu    sync.Mutex
	key   *rsa.PrivateKey
	kid   string
	extra []*rsa.PrivateKey // further published keys (AddKey)
	srv   *httptest.Server
	hits  int
}

// NewIssuer starts an issuer; it stops when the test ends.
func NewIssuer(t testing.TB) *Issuer {
	t.Helper()
	i := &Issuer{}
	i.Rotate(t)
	i.srv = httptest.NewServer(http.HandlerFunc(i.serveJWKS))
	t.Cleanup(i.srv.Close)
	i.ID = i.srv.URL + "/"
	i.JWKSURL = i.srv.URL + "/.well-known/jwks.json"
	return i
}

// Rotate replaces the signing key; the JWKS then lists only the new one.
func (i *Issuer) Rotate(t testing.TB) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.key = key
	i.kid = fmt.Sprintf("k%d", time.Now().UnixNano())
	i.extra = nil
}

// AddKey publishes one more signing key beside the current one (an issuer
// in the middle of a rotation publishes two).
func (i *Issuer) AddKey(t testing.TB) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.extra = append(i.extra, key)
}

// PrivateKey returns the current signing key, for tests that forge tokens.
func (i *Issuer) PrivateKey() *rsa.PrivateKey {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.key
}

// KID returns the current key id.
func (i *Issuer) KID() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.kid
}

// Fetches counts JWKS requests.
func (i *Issuer) Fetches() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.hits
}

func (i *Issuer) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.hits++
	b64 := base64.RawURLEncoding.EncodeToString
	jwk := func(k *rsa.PrivateKey, kid string) map[string]string {
		return map[string]string{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
			"n": b64(k.PublicKey.N.Bytes()), "e": b64(big.NewInt(int64(k.PublicKey.E)).Bytes())}
	}
	keys := []map[string]string{jwk(i.key, i.kid)}
	for n, k := range i.extra {
		keys = append(keys, jwk(k, fmt.Sprintf("%s-extra-%d", i.kid, n)))
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
}

// Claims returns valid claims for audience: issued now, expiring in five
// minutes, with the given subject and scopes. Set or delete entries to
// make a token invalid in one specific way.
func (i *Issuer) Claims(audience, subject string, scopes ...auth.Scope) jwt.MapClaims {
	now := time.Now()
	scope := ""
	for n, s := range scopes {
		if n > 0 {
			scope += " "
		}
		scope += string(s)
	}
	return jwt.MapClaims{
		"iss": i.ID, "sub": subject, "aud": []string{audience}, "scope": scope,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"jti": fmt.Sprintf("jti-%d", now.UnixNano()),
	}
}

// Token signs claims with the current key (RS256, with its kid).
func (i *Issuer) Token(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = i.KID()
	tok.Header["typ"] = "at+jwt" // RFC 9068
	s, err := tok.SignedString(i.PrivateKey())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TokenWithHeader signs claims with the current key and the header an
// RFC 9068 issuer sends (alg RS256, typ at+jwt, kid), changed by header:
// each entry is set, or deleted when its value is nil.
func (i *Issuer) TokenWithHeader(t testing.TB, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = i.KID()
	tok.Header["typ"] = "at+jwt"
	for k, v := range header {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(i.PrivateKey())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Verifier returns the server's verifier for this issuer and audience,
// with the default customer claim (customer_id).
func (i *Issuer) Verifier(t testing.TB, audience string) *auth.OAuthVerifier {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	v, err := auth.NewOAuthVerifier(ctx, auth.OAuthConfig{
		Issuer: i.ID, JWKSURL: i.JWKSURL, Audience: audience, CustomerClaim: "customer_id",
	}, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
