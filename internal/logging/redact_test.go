package logging_test

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/example/order-mcp/internal/logging"
)

// sensitiveKeys are attribute names that carry secrets or personal data,
// written the ways code in this project and its dependencies write them.
var sensitiveKeys = []string{
	"authorization", "Authorization", "api_key", "apiKey", "MCP_API_KEY", "x-api-key",
	"token", "access_token", "refresh_token", "id_token", "password", "db_password", "PGPASSWORD",
	"secret", "client_secret", "email", "customer_email", "phone", "phone_number", "address",
	"shipping_address", "card", "card_number", "internal_note", "delivery_instructions",
	"cookie", "Set-Cookie", "database_url", "DATABASE_URL", "dsn", "audit_hmac_key", "AUDIT_HMAC_KEY",
	"private_key",
}

// harmlessKeys are the attributes operators need to read the logs; they
// must survive redaction untouched.
var harmlessKeys = []string{"tool", "key_id", "principal", "correlation_id", "client_ip", "outcome", "transport"}

// bindings are the ways an attribute reaches a handler. The With forms are
// the slog-multi pitfall: a middleware that only redacts in Handle never
// sees attributes bound with logger.With, which reach the sink through
// WithAttrs instead.
var bindings = []struct {
	name string
	log  func(l *slog.Logger, key string, value any)
	path func(key string) []string
}{
	{"TopLevelAttr",
		func(l *slog.Logger, k string, v any) { l.Info("event", slog.Any(k, v)) },
		func(k string) []string { return []string{k} }},
	{"AttrThreeGroupsDeep",
		func(l *slog.Logger, k string, v any) {
			l.Info("event", slog.Group("request", slog.Group("headers", slog.Group("raw", slog.Any(k, v)))))
		},
		func(k string) []string { return []string{"request", "headers", "raw", k} }},
	{"AttrBoundWithWith",
		func(l *slog.Logger, k string, v any) { l.With(k, v).Info("event") },
		func(k string) []string { return []string{k} }},
	{"AttrBoundWithWithAfterWithGroup",
		func(l *slog.Logger, k string, v any) { l.WithGroup("request").With(k, v).Info("event") },
		func(k string) []string { return []string{"request", k} }},
	{"AttrBoundAmongOthersInNestedWithGroups",
		func(l *slog.Logger, k string, v any) {
			l.With("tool", "get_order_status").WithGroup("a").WithGroup("b").With(k, v).With("n", 1).Info("event")
		},
		func(k string) []string { return []string{"a", "b", k} }},
	{"AttrLoggedInsideWithGroup",
		func(l *slog.Logger, k string, v any) { l.WithGroup("request").Info("event", k, v) },
		func(k string) []string { return []string{"request", k} }},
	{"AttrBoundThroughAtLeast",
		func(l *slog.Logger, k string, v any) { logging.AtLeast(l, slog.LevelInfo).With(k, v).Warn("event") },
		func(k string) []string { return []string{k} }},
	{"AttrGroupedThroughAtLeast",
		func(l *slog.Logger, k string, v any) {
			logging.AtLeast(l, slog.LevelInfo).WithGroup("sdk").Warn("event", slog.Group("g", slog.Any(k, v)))
		},
		func(k string) []string { return []string{"sdk", "g", k} }},
}

// TestSensitiveKeysAreRedactedWhereverTheyAreBound logs a value under every
// sensitive key, bound in every way slog allows, and asserts that the value
// never reaches the sink and that the key is kept with the mask, so a reader
// sees something was there. The value matches no value pattern: only the
// redaction by key can hide it.
func TestSensitiveKeysAreRedactedWhereverTheyAreBound(t *testing.T) {
	for _, b := range bindings {
		t.Run(b.name+"IsRedacted", func(t *testing.T) {
			for _, key := range sensitiveKeys {
				t.Run(key, func(t *testing.T) {
					l, buf := capture()
					secret := canary(t)
					b.log(l, key, secret)
					out := buf.String()
					if strings.Contains(out, secret) {
						t.Fatalf("%s leaked into the log: %s", key, out)
					}
					got, ok := lookup(onlyLine(t, out), b.path(key)...)
					if !ok || got != logging.Redacted {
						t.Fatalf("%v = %v, want %q: %s", b.path(key), got, logging.Redacted, out)
					}
				})
			}
		})
	}
}

// TestHarmlessKeysAreKept guards against the opposite failure: a redactor
// that masks everything makes the logs useless, and then someone turns it
// off.
func TestHarmlessKeysAreKept(t *testing.T) {
	for _, b := range bindings {
		t.Run(b.name+"IsKept", func(t *testing.T) {
			for _, key := range harmlessKeys {
				t.Run(key, func(t *testing.T) {
					l, buf := capture()
					value := canary(t)
					b.log(l, key, value)
					got, ok := lookup(onlyLine(t, buf.String()), b.path(key)...)
					if !ok || got != value {
						t.Fatalf("%v = %v, want %q", b.path(key), got, value)
					}
				})
			}
		})
	}
}

// TestSensitiveKeysMaskValuesOfEveryKind: the key decides, whatever the
// value is (a card number logged as an integer, a struct, a whole group).
func TestSensitiveKeysMaskValuesOfEveryKind(t *testing.T) {
	secret := canary(t)
	digits := randomDigits(t, 16)
	var number int64
	if _, err := fmt.Sscan(digits, &number); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		attr slog.Attr
	}{
		{"IntegerCardNumberIsRedacted", slog.Int64("card", number)},
		{"StructUnderAddressIsRedacted", slog.Any("address", struct{ Street, City string }{secret, "Stockholm"})},
		{"ErrorUnderTokenIsRedacted", slog.Any("token", errors.New(secret))},
		{"ByteSliceUnderSecretIsRedacted", slog.Any("client_secret", []byte(secret))},
		{"WholeGroupUnderCredentialsKeyIsRedacted", slog.Group("authorization", slog.String("scheme", "Bearer"), slog.String("value", secret))},
		{"LogValuerUnderPasswordIsRedacted", slog.Any("password", valuer{secret})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, buf := capture()
			l.LogAttrs(t.Context(), slog.LevelInfo, "event", tt.attr)
			out := buf.String()
			if strings.Contains(out, secret) || strings.Contains(out, digits) {
				t.Fatalf("value leaked: %s", out)
			}
			if got, _ := lookup(onlyLine(t, out), tt.attr.Key); got != logging.Redacted {
				t.Fatalf("%s = %v, want %q", tt.attr.Key, got, logging.Redacted)
			}
		})
	}
}

// valuer resolves to its secret only when a handler asks.
type valuer struct{ s string }

func (v valuer) LogValue() slog.Value { return slog.StringValue(v.s) }

// TestSensitiveFieldsInsideAnyValuesAreRedacted logs the kind of value code
// passes to slog.Any without thinking (a request struct, a map of headers):
// its field and map key names say what is secret, as an attribute key does.
func TestSensitiveFieldsInsideAnyValuesAreRedacted(t *testing.T) {
	type loginRequest struct {
		User     string
		Password string
	}
	secret := canary(t)
	tests := []struct {
		name  string
		value any
	}{
		{"StructPasswordFieldIsRedacted", loginRequest{User: "maya", Password: secret}},
		{"PointerToStructPasswordFieldIsRedacted", &loginRequest{User: "maya", Password: secret}},
		{"MapAuthorizationHeaderIsRedacted", map[string]string{"Accept": "application/json", "Authorization": secret}},
		{"NestedMapApiKeyIsRedacted", map[string]any{"params": map[string]any{"api_key": secret}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, buf := capture()
			l.Info("event", slog.Any("request", tt.value))
			if out := buf.String(); strings.Contains(out, secret) {
				t.Fatalf("secret field leaked through slog.Any: %s", out)
			}
		})
	}
}

// valueCase is a secret hidden in free text, under a harmless key or in
// the message, where only redaction by value can find it.
type valueCase struct {
	name  string
	text  string   // the text carrying the secret
	leaks []string // none of these may reach the log
	keeps []string // these must: what operators need
}

func valueCases(t *testing.T) []valueCase {
	key := newAPIKey(t)
	secret := key.Key[len("osmcp_")+len(key.KeyID)+1:]
	truncated := "osmcp_" + key.KeyID[:7]
	foreign := "osmcp_" + strings.ToUpper(randomHex(t, 10))
	jwt, payload, signature := newJWT(t)
	opaque := randomHex(t, 20)
	email := newEmail(t)
	phone := newPhone(t)
	usPhone := "+1 (503) " + randomDigits(t, 3) + "-" + randomDigits(t, 4)
	pw, pw2, pw3 := randomHex(t, 12), randomHex(t, 6), randomHex(t, 6)
	return []valueCase{
		{"FullAPIKeyKeepsOnlyItsID", "authenticating " + key.Key + " now",
			[]string{key.Key, secret, secret[:12], secret[40:]}, []string{"osmcp_" + key.KeyID + "_" + logging.Redacted}},
		{"APIKeyWithTruncatedSecretKeepsOnlyItsID", "key " + key.Key[:len(key.Key)-20] + " was cut",
			[]string{secret[:32]}, []string{"osmcp_" + key.KeyID + "_" + logging.Redacted}},
		{"TruncatedAPIKeyIsMaskedWhole", "key " + truncated + " is malformed",
			[]string{truncated}, []string{"osmcp_" + logging.Redacted}},
		{"MalformedAPIKeyIsMaskedWhole", "key " + foreign + " is malformed",
			[]string{foreign[len("osmcp_"):]}, []string{"osmcp_" + logging.Redacted}},
		{"JWTIsMasked", "token " + jwt + " expired",
			[]string{jwt, payload, signature}, []string{"expired"}},
		{"BearerCredentialIsMasked", "Authorization: Bearer " + opaque,
			[]string{opaque}, []string{"Bearer " + logging.Redacted}},
		{"BearerCredentialInCapitalsIsMasked", "retrying with BEARER " + opaque,
			[]string{opaque}, []string{logging.Redacted}},
		{"CardNumberIsMasked", "charge 4111111111111111 failed",
			[]string{"4111111111111111", "111111111111"}, []string{"failed"}},
		{"GroupedCardNumberIsMasked", "card 5555-5555-5555-4444 and 3782 822463 10005 declined",
			[]string{"5555-5555-5555-4444", "5555-4444", "822463"}, []string{"declined"}},
		{"EmailAddressIsMasked", "mail to " + email + " bounced",
			[]string{email, strings.Split(email, "@")[0]}, []string{"bounced"}},
		{"InternationalPhoneNumberIsMasked", "called " + phone + " twice",
			[]string{phone, phone[7:]}, []string{"twice"}},
		{"PhoneNumberWithParenthesesIsMasked", "called " + usPhone + " twice",
			[]string{usPhone, usPhone[len(usPhone)-8:]}, []string{"twice"}},
		{"PasswordInPostgresURLIsMasked", "connect postgres://order_mcp:" + pw + "@db.internal:5432/orders?sslmode=verify-full: refused",
			[]string{pw}, []string{"postgres://order_mcp:", "db.internal"}},
		{"PasswordInPostgresqlURLIsMasked", "dial postgresql://app:" + pw + "@10.0.0.5/orders failed",
			[]string{pw}, []string{"10.0.0.5"}},
		{"PasswordInRedisURLWithUserIsMasked", "redis redis://default:" + pw + "@cache.internal:6379/0 down",
			[]string{pw}, []string{"cache.internal"}},
		{"PasswordInRedisURLWithoutUserIsMasked", "redis redis://:" + pw + "@127.0.0.1:6379/0 down",
			[]string{pw}, []string{"127.0.0.1:6379"}},
		{"PasswordInKeywordDSNIsMasked", "open host=db.internal user=order_mcp password=" + pw + " dbname=orders",
			[]string{pw}, []string{"host=db.internal", "dbname=orders"}},
		{"QuotedPasswordWithSpacesInKeywordDSNIsMasked", "open host=db.internal password='" + pw2 + " " + pw3 + "' dbname=orders",
			[]string{pw2, pw3}, []string{"host=db.internal"}},
	}
}

// carriers are the places a secret can sit in a log call besides a
// sensitive key.
var carriers = []struct {
	name string
	log  func(l *slog.Logger, text string)
}{
	{"InMessage", func(l *slog.Logger, s string) { l.Info(s) }},
	{"InStringAttrUnderHarmlessKey", func(l *slog.Logger, s string) { l.Info("event", slog.String("detail", s)) }},
	{"InError", func(l *slog.Logger, s string) {
		l.Info("event", slog.Any("error", fmt.Errorf("call failed: %w", errors.New(s))))
	}},
	{"InBareError", func(l *slog.Logger, s string) { l.Info("event", slog.Any("error", errors.New(s))) }},
	{"InStructViaAny", func(l *slog.Logger, s string) { l.Info("event", slog.Any("request", struct{ Detail string }{s})) }},
	{"InStringSliceViaAny", func(l *slog.Logger, s string) { l.Info("event", slog.Any("lines", []string{"first", s})) }},
	{"InAttrBoundWithWith", func(l *slog.Logger, s string) { l.With("detail", s).Info("event") }},
	{"InGroupBoundWithWithGroup", func(l *slog.Logger, s string) {
		l.WithGroup("req").With(slog.Group("ctx", slog.String("detail", s))).Info("event")
	}},
}

// TestSecretValuesAreMaskedWhereverTheyAppear hides each kind of secret in
// each carrier and asserts that none of it reaches the sink, while the
// parts operators need (an API key's public id, the host) stay.
func TestSecretValuesAreMaskedWhereverTheyAppear(t *testing.T) {
	for _, vc := range valueCases(t) {
		t.Run(vc.name, func(t *testing.T) {
			for _, c := range carriers {
				t.Run(c.name, func(t *testing.T) {
					l, buf := capture()
					c.log(l, vc.text)
					out := buf.String()
					onlyLine(t, out)
					for _, leak := range vc.leaks {
						if strings.Contains(out, leak) {
							t.Errorf("%q leaked: %s", leak, out)
						}
					}
					for _, keep := range vc.keeps {
						if !strings.Contains(out, keep) {
							t.Errorf("%q was lost: %s", keep, out)
						}
					}
				})
			}
		})
	}
}

// TestRedactStringLeavesOrdinaryTextAlone: the value patterns must not eat
// the identifiers operators search for.
func TestRedactStringLeavesOrdinaryTextAlone(t *testing.T) {
	for _, s := range []string{
		"tool call ok",
		"order ord_7K3M9Q2W8E5R4T6Y not found for cus_1A2B3C4D5E6F7G8H",
		"key_id=abcdefghijkl principal=apikey:abcdefghijkl",
		"listening on 127.0.0.1:8080",
		"rate 60-M, retry after 12s",
		"at 1732430000000 ms", // a millisecond timestamp is not a card number
		"order total 4111111111111112 fails the checksum",
	} {
		if got := logging.RedactString(s); got != s {
			t.Errorf("RedactString(%q) = %q, want it unchanged", s, got)
		}
	}
}
