package logging

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Redacted replaces a masked value.
const Redacted = "[REDACTED]"

// sensitiveKeyParts: an attribute whose key, lowercased and stripped of
// "_", "-" and ".", contains one of these is masked whole.
var sensitiveKeyParts = []string{
	"authorization", "token", "apikey", "password", "passwd", "secret", "cookie",
	"email", "phone", "address", "card", "internalnote", "instructions",
	"hmac", "databaseurl", "dsn", "privatekey",
}

// isSensitiveKey reports whether a key names secret or personal data.
func isSensitiveKey(key string) bool {
	k := strings.Map(func(r rune) rune {
		switch r {
		case '_', '-', '.', ' ':
			return -1
		}
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, key)
	for _, part := range sensitiveKeyParts {
		if strings.Contains(k, part) {
			return true
		}
	}
	return false
}

// Value patterns masked wherever they appear.
var (
	apiKeyRE  = regexp.MustCompile(`osmcp_([a-z2-7]{12})_[A-Za-z0-9]+`)
	anyKeyRE  = regexp.MustCompile(`osmcp_[A-Za-z0-9_-]*`)
	jwtRE     = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*`)
	jwtPartRE = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]*`) // a JWT cut before its signature
	bearerRE  = regexp.MustCompile(`(?i)(bearer\s+)[^\s",]+`)
	// emailRE is an address as people type it, internationalised ones
	// included: letters of any script in the local part and the domain,
	// the fullwidth and small "at" signs, and the ideographic and
	// fullwidth full stops that IDNA reads as dots.
	emailRE    = regexp.MustCompile(`[\p{L}\p{N}\p{M}._%+\-]+[@＠﹫][\p{L}\p{N}\p{M}\-]+(?:[.。．｡][\p{L}\p{N}\p{M}\-]+)+`)
	urlPassRE  = regexp.MustCompile(`(?i)([a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]+@`)
	passwordRE = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]+)`)
)

// RedactString masks every value pattern in s. The API key's public id is
// kept, because operators need it to find the key; its secret is not.
//
// Secrets go first, whole, so that a digit run inside a key or a token is
// never cut out of it by the number scanner, leaving the rest unmatched.
func RedactString(s string) string {
	// Each pattern runs only when the literal it cannot match without is
	// there (checked on the text as it is at that point): the same result
	// as running them all, without the cost on the common line that holds
	// none of them.
	if strings.Contains(s, "osmcp_") {
		s = apiKeyRE.ReplaceAllString(s, "osmcp_${1}_"+Redacted)
		s = anyKeyRE.ReplaceAllStringFunc(s, func(m string) string {
			if apiKeyMasked(m) {
				return m
			}
			return "osmcp_" + Redacted // a partial or malformed key is still a secret
		})
	}
	if strings.Contains(s, "eyJ") {
		s = jwtRE.ReplaceAllString(s, "[REDACTED_JWT]")
		s = jwtPartRE.ReplaceAllString(s, "[REDACTED_JWT]")
	}
	if containsFold(s, "bearer") {
		s = bearerRE.ReplaceAllString(s, "${1}"+Redacted)
	}
	if strings.Contains(s, "://") && strings.Contains(s, "@") {
		s = urlPassRE.ReplaceAllString(s, "${1}"+Redacted+"@")
	}
	if strings.Contains(s, "=") { // not a fold of "password": (?i) also matches "paſſword"
		s = passwordRE.ReplaceAllString(s, "${1}"+Redacted)
	}
	if strings.ContainsAny(s, "@＠﹫") {
		s = emailRE.ReplaceAllString(s, "[REDACTED_EMAIL]")
	}
	return redactNumbers(s) // card and phone numbers: numbers.go
}

// containsFold reports whether s contains sub, ignoring ASCII case, without
// allocating.
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

// apiKeyMasked reports whether m is an already masked key ("osmcp_<id>_"
// followed by the mask), which the second pattern must leave alone.
func apiKeyMasked(m string) bool {
	rest, ok := strings.CutPrefix(m, "osmcp_")
	if !ok {
		return false
	}
	id, tail, ok := strings.Cut(rest, "_")
	return ok && len(id) == 12 && tail == ""
}

// redactAttr masks one attribute, recursing into groups.
func redactAttr(a slog.Attr) slog.Attr {
	if isSensitiveKey(a.Key) {
		return slog.String(a.Key, Redacted)
	}
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, truncateRunes(RedactString(head(v.String(), 16*maxLogString)), maxLogString))
	case slog.KindGroup:
		attrs := v.Group()
		red := make([]any, len(attrs))
		for i, ga := range attrs {
			red[i] = redactAttr(ga)
		}
		return slog.Group(a.Key, red...)
	case slog.KindAny:
		// Structs, maps, errors: their fields could carry anything. An
		// error is logged as redacted text; anything else as its JSON form
		// with the same key-by-key masking as tool arguments, or, if it
		// has none, as redacted text.
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, truncateRunes(RedactString(head(err.Error(), 16*maxLogString)), maxLogString))
		}
		if b, err := json.Marshal(v.Any()); err == nil {
			return slog.String(a.Key, RedactJSON(b))
		}
		return slog.String(a.Key, RedactString(fmt.Sprintf("%+v", v.Any())))
	default:
		return slog.Attr{Key: a.Key, Value: v}
	}
}

// maxLogString bounds one string attribute of a log line: a caller cannot
// make the log carry megabytes of its text (method names the SDK logs, for
// one), and redaction never scans more than four times this.
const maxLogString = 2048

// maxStringInJSON and maxJSON bound what RedactJSON keeps.
const (
	maxStringInJSON = 120
	maxJSON         = 1024
)

// RedactJSON returns raw JSON (tool arguments) in a form fit for the logs
// and the audit trail: sensitive keys masked at any depth, value patterns
// masked, long strings cut, and the whole bounded in size. Input that is not
// JSON is summarised, not copied.
func RedactJSON(raw []byte) string {
	if len(raw) == 0 {
		return "{}"
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Sprintf(`{"_unparseable_bytes":%d}`, len(raw))
	}
	out, err := json.Marshal(redactValue(v))
	if err != nil || len(out) > maxJSON {
		return fmt.Sprintf(`{"_redacted_bytes":%d}`, len(raw))
	}
	return string(out)
}

func redactValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, val := range t {
			key := truncateRunes(RedactString(head(k, 320)), 40)
			if isSensitiveKey(k) {
				m[key] = Redacted
			} else {
				m[key] = redactValue(val)
			}
		}
		return m
	case []any:
		for i := range t {
			t[i] = redactValue(t[i])
		}
		return t
	case string:
		// Cut first, generously, so that redacting a megabyte-long argument
		// does not cost a megabyte of regular expressions; then redact; then
		// cut to what is kept. A secret straddling the first cut is still
		// caught by its prefix (see jwtPartRE and anyKeyRE).
		return truncateRunes(RedactString(head(t, 16*maxStringInJSON)), maxStringInJSON)
	default:
		return v
	}
}

// head returns at most the first n bytes of s, cut where a rune starts.
// It bounds the work redaction does on a huge value; n bytes always hold at
// least n/4 runes.
func head(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}
