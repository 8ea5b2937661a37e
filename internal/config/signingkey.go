package config

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// toolDigestKeyFormat says, in every error about TOOL_DIGEST_SIGNING_KEY,
// what the variable must hold and how to make one.
const toolDigestKeyFormat = "a PKCS#8 PEM Ed25519 private key (openssl genpkey -algorithm ed25519) " +
	"or the base64 of a 32-byte seed (head -c 32 /dev/urandom | base64)"

// ed25519Key reads an Ed25519 private key from a secret variable: a PKCS#8
// PEM block, as openssl writes it, or the base64 (standard or URL
// alphabet, padded or not) of its 32-byte seed. Unset is nil. An error
// never quotes the value.
func (r *reader) ed25519Key(name string) ed25519.PrivateKey {
	s := strings.TrimSpace(r.secret(name))
	if s == "" {
		return nil
	}
	key, err := parseEd25519(s)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s must be %s: %w", name, toolDigestKeyFormat, err))
		return nil
	}
	return key
}

func parseEd25519(s string) (ed25519.PrivateKey, error) {
	if strings.HasPrefix(s, "-----BEGIN") {
		block, rest := pem.Decode([]byte(s))
		if block == nil || strings.TrimSpace(string(rest)) != "" {
			return nil, errors.New("not one PEM block")
		}
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("not a PKCS#8 private key")
		}
		key, ok := k.(ed25519.PrivateKey)
		if !ok {
			return nil, errors.New("a private key of another algorithm")
		}
		return key, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if seed, err := enc.DecodeString(s); err == nil {
			if len(seed) != ed25519.SeedSize {
				return nil, fmt.Errorf("the seed is %d bytes, not %d", len(seed), ed25519.SeedSize)
			}
			return ed25519.NewKeyFromSeed(seed), nil
		}
	}
	return nil, errors.New("neither PEM nor base64")
}

// ToolDigestKeyRequired refuses to publish the tool digest without a key
// of the server's own outside development: a digest signed by the public
// development key, or a new key on every start, is one no client can pin.
func (c *Config) ToolDigestKeyRequired() error {
	if !c.Development() && c.ToolDigestKey == nil {
		return fmt.Errorf("TOOL_DIGEST_SIGNING_KEY is required outside development (or TOOL_DIGEST_SIGNING_KEY_FILE): "+
			"it signs the digest of the tool definitions clients pin, and every replica needs the same one; it must be %s",
			toolDigestKeyFormat)
	}
	return nil
}

// toolDigestKeyProblems refuses, outside development, a seed with less
// than 8 distinct bytes (all zeros, a repeated pattern): a key anyone can
// guess signs for anyone. The public development key is refused where it
// is known, in internal/app.
func (c *Config) toolDigestKeyProblems() []error {
	if c.ToolDigestKey != nil && distinctBytes(c.ToolDigestKey.Seed()) < 8 {
		return []error{fmt.Errorf("TOOL_DIGEST_SIGNING_KEY is a guessable key: generate one (openssl genpkey -algorithm ed25519)")}
	}
	return nil
}
