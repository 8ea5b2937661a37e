package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// secretPatterns are what a committed secret looks like. Each is checked
// on every file git tracks.
var secretPatterns = map[string]*regexp.Regexp{
	"api key":         regexp.MustCompile(`osmcp_[a-z2-7]{12}_[a-z2-7]{52}`),
	"private key":     regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----`),
	"signed JWT":      regexp.MustCompile(`eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{20,}`),
	"AWS access key":  regexp.MustCompile(`AKIA[0-9A-Z]{16}`),
	"password in URL": regexp.MustCompile(`(?i)(postgres(ql)?|redis|mysql|amqp)://[^:/@\s'"]*:([^@\s'"]+)@`),
}

// allowedURLPasswords are placeholders and public local defaults, not
// secrets: the example values (which the server refuses outside
// development), the embedded development Postgres's fixed password, and
// masks.
var allowedURLPasswords = regexp.MustCompile(`^(change-me[a-z-]*|postgres|xxxxx|\[REDACTED\]|%s|\$\$\(cat.*)$`)

// placeholderKey reports whether an API key is an obvious test value (its
// secret part made of at most three distinct characters, such as
// "aaaa...a7"), as the fuzz corpora and tests hold: a minted key's secret
// is 32 random bytes, whose 52 base32 characters are never that uniform.
func placeholderKey(key []byte) bool {
	secret := key[bytes.LastIndexByte(key, '_')+1:]
	distinct := map[byte]bool{}
	for _, c := range secret {
		distinct[c] = true
	}
	return len(distinct) <= 3
}

func trackedFiles(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("git", "-C", root, "ls-files").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v (the scan needs a git checkout)", err)
	}
	return strings.Fields(string(out))
}

// TestNoSecretsCommitted scans every tracked file for committed secrets:
// real API keys, private keys, signed JWTs, cloud keys and passwords in
// connection URLs. It also checks that .env is never tracked.
func TestNoSecretsCommitted(t *testing.T) {
	files := trackedFiles(t)
	if len(files) < 10 {
		t.Fatalf("only %d tracked files: not a real checkout?", len(files))
	}
	for _, f := range files {
		base := filepath.Base(f)
		if base == ".env" || (strings.HasPrefix(base, ".env.") && base != ".env.example") {
			t.Errorf("%s is tracked: .env files hold secrets and must stay untracked", f)
		}
		if strings.HasPrefix(f, ".secrets/") {
			t.Errorf("%s is tracked", f)
		}
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil || bytes.IndexByte(b, 0) >= 0 {
			continue // unreadable or binary
		}
		for what, re := range secretPatterns {
			for _, m := range re.FindAllSubmatch(b, -1) {
				if what == "password in URL" && allowedURLPasswords.Match(m[3]) {
					continue
				}
				if what == "api key" && placeholderKey(m[0]) {
					continue
				}
				t.Errorf("%s: looks like a committed %s: %.24s...", f, what, m[0])
			}
		}
	}
}

// TestScannerFindsWhatItLooksFor keeps the scan honest: each pattern must
// match a sample of what it is meant to catch.
func TestScannerFindsWhatItLooksFor(t *testing.T) {
	// The samples are assembled at run time, so that this file does not
	// itself contain what the scan looks for.
	samples := map[string]string{
		"api key":         "osmcp_abcdefghijkl_" + strings.Repeat("a", 52),
		"private key":     strings.Join([]string{"-----BEGIN RSA", "PRIVATE KEY-----"}, " "),
		"signed JWT":      "eyJ" + "hbGciOiJSUzI1NiJ9." + "eyJ" + "zdWIiOiJhbGljZSJ9." + strings.Repeat("c2ln", 6),
		"AWS access key":  "AK" + "IA" + strings.Repeat("B", 16),
		"password in URL": "postgres://app:" + "hunter2" + "@db:5432/x",
	}
	for what, sample := range samples {
		m := secretPatterns[what].FindStringSubmatch(sample)
		if m == nil {
			t.Errorf("%s pattern misses %q", what, sample)
		}
		if what == "password in URL" && allowedURLPasswords.MatchString(m[3]) {
			t.Errorf("real password %q is allow-listed", m[3])
		}
	}
	// A realistic key (random base32) is never taken for a placeholder.
	realistic := "osmcp_k3j5h7g2f4d6_" + strings.Repeat("q7w2e5r3t6y4u", 4)
	if placeholderKey([]byte(realistic)) {
		t.Errorf("the realistic key %.24s... is taken for a placeholder", realistic)
	}
}
