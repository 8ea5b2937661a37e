package auth_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/testenv"
)

// asymmetricAlgorithms are the JWS algorithms a token may name: the
// specification of the verifier's allow-list, written out here so the test
// does not read the list it checks.
var asymmetricAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// kidPlaceholder in a fuzzed header stands for the test issuer's key id,
// which is made at run time, so that seeds can name the real key.
const kidPlaceholder = "$KID"

// FuzzJWTHeader feeds arbitrary JOSE headers to the OAuth verifier, inside
// otherwise valid tokens: valid claims, and a signature made the way an
// attacker would for the alg the header names (the issuer's RSA key for
// RS* and PS*, its public key as the HMAC secret for HS*, nothing for
// none). Whatever the header, two verifiers (the default, and one with
// AcceptJWTType) must hold:
//
//   - a token is never accepted when its header carries crit, jku, jwk,
//     x5u or x5c, names an alg outside the asymmetric allow-list (none and
//     HS* included), or has a typ other than at+jwt or application/at+jwt
//     (in ASCII case only); with AcceptJWTType a typ of JWT, or none
//     (absent, null or empty), is accepted too;
//   - a header that only says alg RS256, an allowed typ and the issuer's
//     kid (or no kid), besides any harmless parameters, is accepted: the
//     harness is not refusing everything.
//
// The header is read as RFC 7515 section 4 lets a JWS parser read it
// (encoding/json, the last of duplicate names wins). Seeds beyond these
// are in testdata/fuzz/FuzzJWTHeader.
func FuzzJWTHeader(f *testing.F) {
	for _, h := range []string{
		`{"alg":"RS256","typ":"at+jwt","kid":"$KID"}`,
		`{"alg":"RS256","typ":"application/at+jwt"}`,
		`{"alg":"RS256","typ":"AT+JWT","kid":"$KID","x-extra":[1,{"crit":true}]}`,
		`{"alg":"RS256","typ":"JWT","kid":"$KID"}`,
		`{"alg":"RS256","kid":"$KID"}`,
		`{"alg":"RS256","typ":null,"kid":"$KID"}`,
		`{"alg":"RS256","typ":"","kid":"$KID"}`,
		`{"alg":"RS256","typ":"at+jwt","kid":"$KID","crit":["exp"],"exp":1}`,
		`{"alg":"RS256","typ":"at+jwt","kid":"$KID","jku":"https://evil.example/jwks.json"}`,
		`{"alg":"RS256","typ":"at+jwt","kid":"$KID","jwk":{"kty":"RSA","n":"AQAB","e":"AQAB"}}`,
		`{"alg":"RS256","typ":"at+jwt","kid":"$KID","x5u":"https://evil.example/cert.pem"}`,
		`{"alg":"RS256","typ":"at+jwt","kid":"$KID","x5c":["MIIB"]}`,
		`{"alg":"none","typ":"at+jwt","kid":"$KID"}`,
		`{"alg":"None","typ":"at+jwt"}`,
		`{"alg":"HS256","typ":"at+jwt","kid":"$KID"}`,
		`{"alg":"PS256","typ":"at+jwt","kid":"$KID"}`,
		`{"alg":"RS256","alg":"none","typ":"at+jwt","kid":"$KID"}`,
		`{"alg":"none","alg":"RS256","typ":"JWT","typ":"at+jwt","kid":"$KID"}`,
		`{"alg":"RS256","typ":"at+jwt","kid":"$KID","crit":null}`,
		`{"alg":"RS256","typ":"at+jwt","kid":"$KID","cr\u0069t":["exp"]}`,
		`{"alg":"RS256","typ":"at\u002bjwt","kid":"$KID"}`,
		`{"alg":"RS256","typ":["at+jwt"],"kid":"$KID"}`,
		`{"alg":"RS256","typ":"at+jwt","kid":null}`,
		`{"alg":"RS256","typ":"at+jwt","kid":"unknown"}`,
		`["alg","RS256"]`,
		``,
	} {
		f.Add([]byte(h))
	}

	issuer := testenv.NewIssuer(f)
	verifiers := map[bool]*auth.OAuthVerifier{
		false: issuer.Verifier(f, audience),
		true:  verifier(f, issuer, auth.OAuthConfig{AcceptJWTType: true}),
	}
	kid := issuer.KID()
	hmacSecret := pemPKIX(f, &issuer.PrivateKey().PublicKey)
	token := func(t testing.TB, header []byte) string {
		claims, err := json.Marshal(with(issuer.Claims(audience, "user-1", auth.ScopeRead), "customer_id", customerID()))
		if err != nil {
			t.Fatal(err)
		}
		enc := base64.RawURLEncoding.EncodeToString
		signed := enc(header) + "." + enc(claims)
		var hdr map[string]any
		_ = json.Unmarshal(header, &hdr)
		alg, _ := hdr["alg"].(string)
		sig := []byte("not a signature")
		switch method := jwt.GetSigningMethod(alg); {
		case alg == "none":
			sig = nil
		case strings.HasPrefix(alg, "HS") && method != nil:
			sig, _ = method.Sign(signed, hmacSecret)
		case (strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")) && method != nil:
			sig, _ = method.Sign(signed, issuer.PrivateKey())
		}
		return signed + "." + enc(sig)
	}

	if _, err := verifiers[false].Verify(context.Background(), token(f, []byte(`{"alg":"RS256","typ":"at+jwt","kid":"`+kid+`"}`))); err != nil {
		f.Fatalf("the harness's own valid token is refused: %v", err)
	}

	f.Fuzz(func(t *testing.T, header []byte) {
		header = bytes.ReplaceAll(header, []byte(kidPlaceholder), []byte(kid))
		tok := token(t, header)
		for acceptJWT, v := range verifiers {
			p, err := v.Verify(context.Background(), tok)
			accepted := err == nil && p != nil
			if accepted {
				if why := forbiddenHeader(header, acceptJWT); why != "" {
					t.Fatalf("AcceptJWTType=%v accepted a header with %s: %s", acceptJWT, why, header)
				}
			} else if plainHeader(header, kid, acceptJWT) {
				t.Fatalf("AcceptJWTType=%v refused a header that only names the issuer's key (%v): %s", acceptJWT, err, header)
			}
		}
	})
}

// forbiddenHeader says what, if anything, makes header one that must be
// refused.
func forbiddenHeader(header []byte, acceptJWT bool) string {
	var h map[string]any
	if err := json.Unmarshal(header, &h); err != nil {
		return "no JSON object"
	}
	for _, k := range []string{"crit", "jku", "jwk", "x5u", "x5c"} {
		if _, ok := h[k]; ok {
			return k
		}
	}
	if alg, _ := h["alg"].(string); !slices.Contains(asymmetricAlgorithms, alg) {
		return "alg " + alg
	}
	if !typAllowed(h, acceptJWT) {
		return "that typ"
	}
	return ""
}

// plainHeader reports whether header is one an RFC 9068 issuer sends for
// this key: alg RS256 (the key's alg), an allowed typ, the key's kid or
// none, and nothing forbidden.
func plainHeader(header []byte, kid string, acceptJWT bool) bool {
	var h map[string]any
	if forbiddenHeader(header, acceptJWT) != "" || json.Unmarshal(header, &h) != nil || h["alg"] != "RS256" {
		return false
	}
	k, present := h["kid"]
	return !present || k == kid
}

// typAllowed is the typ rule: at+jwt or application/at+jwt, in any ASCII
// case (a media type is case-insensitive); with AcceptJWTType also JWT, or
// a header that says no typ (absent, null or empty). Case is folded byte by
// byte, never with Unicode's rules, so that no other character can fold
// into an allowed value.
func typAllowed(h map[string]any, acceptJWT bool) bool {
	raw, present := h["typ"]
	if acceptJWT && (!present || raw == nil || raw == "") {
		return true
	}
	typ, ok := raw.(string)
	if !ok {
		return false
	}
	b := []byte(typ)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	switch string(b) {
	case "at+jwt", "application/at+jwt":
		return true
	case "jwt":
		return acceptJWT
	}
	return false
}
