package auth_test

import (
	"encoding/base32"
	"errors"
	"strings"
	"testing"

	"github.com/example/order-mcp/internal/auth"
)

// keyBase32 is the key alphabet as the documentation states it, written
// here rather than borrowed from the package, so the test checks the code
// against the documentation and not against itself.
var keyBase32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// documentedShape reports whether key is what the documentation says an
// API key is: "osmcp_", a 12-character key id, "_", and 32 random bytes
// in unpadded lowercase base32, written the one way base32 writes them.
func documentedShape(key string) bool {
	if !keyShape.MatchString(key) {
		return false
	}
	secret := key[strings.LastIndex(key, "_")+1:]
	raw, err := keyBase32.DecodeString(secret)
	return err == nil && len(raw) == 32 && keyBase32.EncodeToString(raw) == secret
}

// FuzzAPIKeyParse holds the API key parser to its shape:
//
//   - it accepts exactly the documented shape, in both directions, and
//     refuses everything else with ErrMalformedKey and no parts;
//   - an accepted key is canonical: FormatAPIKey of its parts is the very
//     string presented, so one key has one spelling (a second spelling
//     would be a second string to look up, count and log for one key);
//   - the lockout's reading (PresentedKeyID) names the same key id;
//   - parse(format(id, secret)) gives back id and secret for any id and
//     secret GenerateAPIKey could produce (built here from the fuzzer's
//     bytes).
//
// Seeds beyond these are in testdata/fuzz/FuzzAPIKeyParse, among them the
// non-canonical secrets this target found: a last character carrying bits
// that 32 bytes never set.
func FuzzAPIKeyParse(f *testing.F) {
	id, secret := "abcdefghijkl", strings.Repeat("a", 52)
	for _, key := range []string{
		auth.FormatAPIKey(id, secret),
		auth.FormatAPIKey(id, secret[:51]+"q"), // the last character's one data bit set
		auth.FormatAPIKey(id, secret[:51]+"b"), // a bit 32 bytes never set
		auth.FormatAPIKey(id, secret) + "_",
		auth.FormatAPIKey(id+"_", secret),
		auth.FormatAPIKey(strings.ToUpper(id), secret),
		"osmcp__" + id + "_" + secret,
		"osmcp_" + id,
		"Bearer " + auth.FormatAPIKey(id, secret),
		"",
	} {
		f.Add(key, []byte("id"), []byte("secret"))
	}
	f.Fuzz(func(t *testing.T, key string, idBytes, secretBytes []byte) {
		gotID, gotSecret, err := auth.ParseAPIKey(key)
		switch {
		case err != nil:
			if !errors.Is(err, auth.ErrMalformedKey) || gotID != "" || gotSecret != "" {
				t.Fatalf("ParseAPIKey(%q) = %q, %q, %v: a refusal is ErrMalformedKey and nothing else", key, gotID, gotSecret, err)
			}
			if documentedShape(key) {
				t.Fatalf("ParseAPIKey refused %q, which has the documented shape", key)
			}
		default:
			if !documentedShape(key) {
				t.Fatalf("ParseAPIKey accepted %q, which does not have the documented shape", key)
			}
			if again := auth.FormatAPIKey(gotID, gotSecret); again != key {
				t.Fatalf("ParseAPIKey accepted %q, whose canonical form is %q", key, again)
			}
			if presented, ok := auth.PresentedKeyID(key); !ok || presented != gotID {
				t.Fatalf("PresentedKeyID(%q) = %q, %v; ParseAPIKey read key id %q", key, presented, ok, gotID)
			}
		}

		// Any id and secret GenerateAPIKey can produce round-trip.
		var rawID [8]byte
		var rawSecret [32]byte
		copy(rawID[:], idBytes)
		copy(rawSecret[:], secretBytes)
		id, secret := keyBase32.EncodeToString(rawID[:])[:12], keyBase32.EncodeToString(rawSecret[:])
		gotID, gotSecret, err = auth.ParseAPIKey(auth.FormatAPIKey(id, secret))
		if err != nil || gotID != id || gotSecret != secret {
			t.Fatalf("ParseAPIKey(FormatAPIKey(%q, %q)) = %q, %q, %v", id, secret, gotID, gotSecret, err)
		}
	})
}
