package surface

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
)

// The signature is a JSON Web Signature (RFC 7515) in compact form,
// BASE64URL(header) "." BASE64URL(payload) "." BASE64URL(signature), with
// Ed25519 as RFC 8037 defines it for JOSE (alg "EdDSA", keys of kty "OKP"
// and crv "Ed25519"). Ed25519 signatures are deterministic: the same key
// and document always give the same JWS, so it can be compared as text.
//
// Only the standard library: a JWS with one fixed algorithm and no header
// parameters a verifier must act on needs no JOSE library, and a verifier
// that accepts exactly this header cannot be talked into another
// algorithm.

// TokenType is the JWS "typ" of the signed document (RFC 7515, 4.1.9: the
// media type application/tool-digest+json, shortened).
const TokenType = "tool-digest+json"

// b64 is base64url without padding, as JOSE encodes every part.
var b64 = base64.RawURLEncoding

// Signer signs the tool-digest document with the server's Ed25519 key.
type Signer struct {
	key ed25519.PrivateKey
	jwk JWK
}

// JWK is an Ed25519 public key as a JSON Web Key (RFC 7517, RFC 8037).
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// NewSigner returns a signer for key. Its key id is the key's RFC 7638
// thumbprint, so the same key always has the same id and a rotated key a
// new one.
func NewSigner(key ed25519.PrivateKey) (*Signer, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, errors.New("tool digest: not an Ed25519 private key")
	}
	pub := key.Public().(ed25519.PublicKey)
	return &Signer{key: key, jwk: JWK{Kty: "OKP", Crv: "Ed25519", X: b64.EncodeToString(pub), Kid: kid(pub), Alg: "EdDSA", Use: "sig"}}, nil
}

// PublicJWK is the public key that verifies the signer's signatures.
func (s *Signer) PublicJWK() JWK { return s.jwk }

// header is the protected header: fixed members in a fixed order, so the
// same key and payload always give the same JWS.
type header struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
}

// Sign returns payload signed as a compact JWS.
func (s *Signer) Sign(payload []byte) string {
	h, _ := json.Marshal(header{Alg: "EdDSA", Kid: s.jwk.Kid, Typ: TokenType}) // cannot fail: three strings
	input := b64.EncodeToString(h) + "." + b64.EncodeToString(payload)
	return input + "." + b64.EncodeToString(ed25519.Sign(s.key, []byte(input)))
}

// ErrBadSignature is any JWS Verify does not accept.
var ErrBadSignature = errors.New("tool digest: the signature does not verify")

// Verify checks a compact JWS made by Sign against pub and returns its
// payload. It accepts exactly the header Sign writes (alg EdDSA, typ
// TokenType, the key's kid): no other algorithm, no "crit", no key carried
// in the header (jwk, jku, x5u, x5c), so the document cannot name its own
// verifier. A client verifies the same way with any JOSE library, pinned
// to alg EdDSA and the key it trusts.
func Verify(jws string, pub ed25519.PublicKey) ([]byte, error) {
	parts := strings.Split(jws, ".")
	if len(parts) != 3 || len(pub) != ed25519.PublicKeySize {
		return nil, ErrBadSignature
	}
	h, err := b64.DecodeString(parts[0])
	if err != nil {
		return nil, ErrBadSignature
	}
	want, _ := json.Marshal(header{Alg: "EdDSA", Kid: kid(pub), Typ: TokenType})
	if !bytes.Equal(h, want) {
		return nil, ErrBadSignature
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil || !ed25519.Verify(pub, []byte(parts[0]+"."+parts[1]), sig) {
		return nil, ErrBadSignature
	}
	payload, err := b64.DecodeString(parts[1])
	if err != nil {
		return nil, ErrBadSignature
	}
	return payload, nil
}

// kid is the RFC 7638 thumbprint of an Ed25519 public key: SHA-256 over
// the key's required members in lexical order, without whitespace.
func kid(pub ed25519.PublicKey) string {
	thumb := sha256.Sum256([]byte(`{"crv":"Ed25519","kty":"OKP","x":"` + b64.EncodeToString(pub) + `"}`))
	return b64.EncodeToString(thumb[:])
}

// PublicKey returns the key a JWK holds, if it is an Ed25519 key.
func (k JWK) PublicKey() (ed25519.PublicKey, error) {
	x, err := b64.DecodeString(k.X)
	if k.Kty != "OKP" || k.Crv != "Ed25519" || err != nil || len(x) != ed25519.PublicKeySize {
		return nil, errors.New("tool digest: not an Ed25519 JWK")
	}
	return ed25519.PublicKey(x), nil
}

// developmentSeed makes the public development key: anyone can sign with
// it, so a digest it signed proves nothing, and outside development the
// server refuses it.
var developmentSeed = sha256.Sum256([]byte("order-mcp public development key for the tool digest: it proves nothing"))

// DevelopmentKey is the key MCP_ENV=development signs with when
// TOOL_DIGEST_SIGNING_KEY is not set. It is public.
func DevelopmentKey() ed25519.PrivateKey { return ed25519.NewKeyFromSeed(developmentSeed[:]) }
