package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"strings"
)

// API keys look like
//
//	osmcp_<key id>_<secret>
//
// The prefix lets secret scanners (GitHub push protection, gitleaks,
// trufflehog) recognise a leaked key with a simple rule, and lets the log
// redactor find keys wherever they appear (internal/logging). The key id is
// public: it names the row and shows in `keys list`, logs and the audit
// trail. The secret is 32 random bytes (256 bits); only its SHA-256 is
// stored. With that much entropy a fast hash is the right choice: a
// password hash (bcrypt, argon2) would cost tens of milliseconds per request
// on a small machine and protect nothing more.
const (
	KeyPrefix    = "osmcp"
	keyIDLen     = 12 // 60 bits: unique, not secret
	keySecretLen = 52 // 32 bytes in unpadded base32
)

// keyEncoding is lowercase base32 without padding: no characters that need
// escaping in URLs, headers, JSON or shells, and no "_", which separates the
// parts.
var keyEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewKey is a freshly minted API key.
type NewKey struct {
	// Key is the full key. It is shown once, to the operator, and never
	// stored.
	Key          string
	KeyID        string
	SecretSHA256 []byte
}

// GenerateAPIKey mints a new key from the operating system's CSPRNG.
func GenerateAPIKey() (NewKey, error) {
	var id [8]byte
	var secret [32]byte
	if _, err := rand.Read(id[:]); err != nil {
		return NewKey{}, err
	}
	if _, err := rand.Read(secret[:]); err != nil {
		return NewKey{}, err
	}
	keyID := keyEncoding.EncodeToString(id[:])[:keyIDLen]
	s := keyEncoding.EncodeToString(secret[:])
	return NewKey{
		Key:          FormatAPIKey(keyID, s),
		KeyID:        keyID,
		SecretSHA256: HashSecret(s),
	}, nil
}

// FormatAPIKey writes a key id and a secret as the key a caller presents.
// ParseAPIKey is its inverse.
func FormatAPIKey(keyID, secret string) string { return KeyPrefix + "_" + keyID + "_" + secret }

// ErrMalformedKey means a string is not shaped like one of our API keys.
var ErrMalformedKey = errors.New("malformed api key")

// ParseAPIKey splits a presented key into its id and secret, checking only
// the shape. It never looks anything up.
//
// The shape is exact, so that every accepted string is the one way of
// writing its key: 32 bytes take 52 base32 characters, and the last of
// them carries one bit of the secret and four bits that are zero in every
// key GenerateAPIKey mints. A secret whose last character sets any of those
// four bits is no key we could have issued, so it is refused here as
// malformed, never looked up (FuzzAPIKeyParse found these).
func ParseAPIKey(key string) (keyID, secret string, err error) {
	rest, ok := strings.CutPrefix(key, KeyPrefix+"_")
	if !ok {
		return "", "", ErrMalformedKey
	}
	keyID, secret, ok = strings.Cut(rest, "_")
	if !ok || len(keyID) != keyIDLen || len(secret) != keySecretLen ||
		!isKeyAlphabet(keyID) || !isKeyAlphabet(secret) || !isCanonicalSecret(secret) {
		return "", "", ErrMalformedKey
	}
	return keyID, secret, nil
}

// isCanonicalSecret reports whether secret (52 characters of the key
// alphabet) is how keyEncoding writes the 32 bytes it decodes to.
func isCanonicalSecret(secret string) bool {
	raw, err := keyEncoding.DecodeString(secret)
	return err == nil && len(raw) == 32 && keyEncoding.EncodeToString(raw) == secret
}

// LooksLikeAPIKeyID reports whether s has the shape of a key id. The
// lockout uses it to decide whether a failed attempt named a key.
func LooksLikeAPIKeyID(s string) bool { return len(s) == keyIDLen && isKeyAlphabet(s) }

func isKeyAlphabet(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}

// HashSecret returns the stored form of a key's secret.
func HashSecret(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// PresentedKeyID returns the key id of a credential shaped like one of our
// API keys (whatever its secret), and whether it is one.
func PresentedKeyID(credential string) (string, bool) {
	rest, ok := strings.CutPrefix(credential, KeyPrefix+"_")
	if !ok {
		return "", false
	}
	id, _, _ := strings.Cut(rest, "_")
	if !LooksLikeAPIKeyID(id) {
		return "", false
	}
	return id, true
}
