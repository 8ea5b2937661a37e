package auth_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/example/order-mcp/internal/auth"
)

var keyShape = regexp.MustCompile(`^osmcp_[a-z2-7]{12}_[a-z2-7]{52}$`)

func TestGenerateAPIKey(t *testing.T) {
	k := newKey(t)

	t.Run("KeyHasTheDocumentedShape", func(t *testing.T) {
		if !keyShape.MatchString(k.Key) {
			t.Fatalf("key %q does not match %s", k.Key, keyShape)
		}
		if !strings.HasPrefix(k.Key, auth.KeyPrefix+"_"+k.KeyID+"_") {
			t.Fatalf("key does not carry its id %q", k.KeyID)
		}
	})
	t.Run("SecretCarries256Bits", func(t *testing.T) {
		raw, err := base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding).DecodeString(secretOf(k.Key))
		if err != nil {
			t.Fatal(err)
		}
		if len(raw) != 32 {
			t.Fatalf("secret decodes to %d bytes, want 32", len(raw))
		}
	})
	t.Run("OnlyTheSHA256OfTheSecretIsKept", func(t *testing.T) {
		sum := sha256.Sum256([]byte(secretOf(k.Key)))
		if !bytes.Equal(k.SecretSHA256, sum[:]) || !bytes.Equal(auth.HashSecret(secretOf(k.Key)), sum[:]) {
			t.Fatal("stored hash is not the SHA-256 of the secret")
		}
		if bytes.Contains(k.SecretSHA256, []byte(secretOf(k.Key))) {
			t.Fatal("stored form contains the secret")
		}
	})
	t.Run("KeyParsesBackIntoIDAndSecret", func(t *testing.T) {
		id, secret, err := auth.ParseAPIKey(k.Key)
		if err != nil || id != k.KeyID || secret != secretOf(k.Key) {
			t.Fatalf("ParseAPIKey = %q, %q, %v", id, secret, err)
		}
		if !auth.LooksLikeAPIKeyID(id) {
			t.Fatal("generated key id does not look like a key id")
		}
	})
	t.Run("KeysAndSecretsAreUnique", func(t *testing.T) {
		ids, secrets := map[string]bool{}, map[string]bool{}
		for range 2000 {
			k := newKey(t)
			if ids[k.KeyID] || secrets[secretOf(k.Key)] {
				t.Fatalf("repeated key id or secret after %d keys", len(ids))
			}
			ids[k.KeyID], secrets[secretOf(k.Key)] = true, true
		}
	})
}

func TestParseAPIKeyRefusesMalformedKeys(t *testing.T) {
	k := newKey(t)
	id, secret := k.KeyID, secretOf(k.Key)
	tests := []struct{ name, key string }{
		{"EmptyStringIsMalformed", ""},
		{"GarbageIsMalformed", "garbage"},
		{"PrefixAloneIsMalformed", "osmcp_"},
		{"PrefixAndIDWithoutSecretIsMalformed", "osmcp_" + id},
		{"PrefixAndIDAndSeparatorIsMalformed", "osmcp_" + id + "_"},
		{"TruncatedSecretIsMalformed", k.Key[:len(k.Key)-1]},
		{"LongerSecretIsMalformed", k.Key + "a"},
		{"ShortIDIsMalformed", "osmcp_" + id[1:] + "_" + secret},
		{"UppercaseSecretIsMalformed", "osmcp_" + id + "_" + strings.ToUpper(secret)},
		{"UppercasePrefixIsMalformed", "OSMCP_" + id + "_" + secret},
		{"DigitsOutsideTheAlphabetAreMalformed", "osmcp_" + id + "_" + "0189" + secret[4:]},
		{"PaddingIsMalformed", "osmcp_" + id + "_" + secret[:51] + "="},
		// A minted secret ends in "a" or "q" (one data bit, four zero bits);
		// the next letter sets a bit no 32-byte secret has.
		{"SecretSpellingNoKeyHasIsMalformed", "osmcp_" + id + "_" + secret[:51] + string(secret[51]+1)},
		{"ExtraUnderscoreInTheSecretIsMalformed", "osmcp_" + id + "_" + secret[:20] + "_" + secret[21:]},
		{"ExtraUnderscoreAtTheEndIsMalformed", "osmcp_" + id + "_" + secret + "_"},
		{"DoubleUnderscoreIsMalformed", "osmcp__" + id + "_" + secret[1:]},
		{"OtherPrefixIsMalformed", "osmcq_" + id + "_" + secret},
		{"WhitespaceIsMalformed", " " + k.Key},
		{"SQLInTheIDIsMalformed", "osmcp_' OR 1=1 --_" + secret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gotID, gotSecret, err := auth.ParseAPIKey(tt.key)
			if !errors.Is(err, auth.ErrMalformedKey) {
				t.Fatalf("err %v, want ErrMalformedKey", err)
			}
			if gotID != "" || gotSecret != "" {
				t.Fatalf("returned %q, %q with the error", gotID, gotSecret)
			}
		})
	}
}

func TestLooksLikeAPIKeyID(t *testing.T) {
	tests := []struct {
		name string
		id   string
		want bool
	}{
		{"GeneratedIDIsAnID", newKey(t).KeyID, true},
		{"ShortIDIsNot", "abcdefghijk", false},
		{"LongIDIsNot", "abcdefghijklm", false},
		{"UppercaseIsNot", "ABCDEFGHIJKL", false},
		{"DigitsOutsideTheAlphabetAreNot", "abcdefghij01", false},
		{"SeparatorIsNot", "abcdef_hijkl", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := auth.LooksLikeAPIKeyID(tt.id); got != tt.want {
				t.Fatalf("LooksLikeAPIKeyID(%q) = %v", tt.id, got)
			}
		})
	}
}
