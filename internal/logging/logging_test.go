package logging_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/example/order-mcp/internal/logging"
	"github.com/example/order-mcp/internal/testenv"
)

// TestFanOutWritesTheRedactedLineToEverySink: a second sink (a file, a
// shipper) must not be a way around the redaction, and every line on every
// sink must be one JSON object, also when many goroutines log at once.
func TestFanOutWritesTheRedactedLineToEverySink(t *testing.T) {
	a, b := &testenv.Buffer{}, &testenv.Buffer{}
	l := logging.New(slog.LevelInfo, a, b)
	key := newAPIKey(t)
	secret := canary(t)

	const goroutines, perGoroutine = 8, 25
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			bound := l.With("password", secret)
			for i := range perGoroutine {
				bound.Info("login with "+key.Key, "goroutine", g, "i", i)
			}
		})
	}
	wg.Wait()

	for name, sink := range map[string]*testenv.Buffer{"first": a, "second": b} {
		t.Run(name+"SinkGetsEveryLineRedacted", func(t *testing.T) {
			out := sink.String()
			if strings.Contains(out, secret) || strings.Contains(out, key.Key) {
				t.Fatalf("secret reached the %s sink", name)
			}
			lines := jsonLines(t, out)
			if len(lines) != goroutines*perGoroutine {
				t.Fatalf("%d lines, want %d", len(lines), goroutines*perGoroutine)
			}
			for _, line := range lines {
				if line["password"] != logging.Redacted || line["msg"] != "login with osmcp_"+key.KeyID+"_"+logging.Redacted {
					t.Fatalf("line not redacted as expected: %v", line)
				}
			}
		})
	}
	t.Run("BothSinksGetTheSameLines", func(t *testing.T) {
		la, lb := strings.Split(a.String(), "\n"), strings.Split(b.String(), "\n")
		slices.Sort(la)
		slices.Sort(lb)
		if !slices.Equal(la, lb) {
			t.Fatal("the sinks got different lines")
		}
	})
}

// TestEveryLoggerFromNewRedacts guards against the reused-Pipe pitfall: a
// slogmulti.Pipe builder is consumed by its first Handler call, so a second
// handler built from the same value has no redaction at all. Each New call
// must build a fresh pipeline, whatever order loggers are built and used in.
func TestEveryLoggerFromNewRedacts(t *testing.T) {
	first, firstBuf := capture()
	second, secondBuf := capture()
	third := logging.New(slog.LevelInfo, &testenv.Buffer{}) // built in between, never used
	_ = third

	tests := []struct {
		name string
		l    *slog.Logger
		buf  *testenv.Buffer
	}{
		{"FirstLoggerStillRedacts", first, firstBuf},
		{"SecondLoggerRedacts", second, secondBuf},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secret, email := canary(t), newEmail(t)
			tt.l.With("token", secret).Info("mail to "+email, "api_key", secret)
			out := tt.buf.String()
			if strings.Contains(out, secret) || strings.Contains(out, email) {
				t.Fatalf("not redacted: %s", out)
			}
		})
	}
}

// TestAtLeastDropsRecordsBelowItsLevel: the SDK logs every stateless
// request at info; AtLeast(warn) must keep that out, also through loggers
// derived with With and WithGroup, and must never lower the level of the
// logger it wraps.
func TestAtLeastDropsRecordsBelowItsLevel(t *testing.T) {
	tests := []struct {
		name   string
		base   slog.Level
		min    slog.Level
		derive func(*slog.Logger) *slog.Logger
		level  slog.Level
		kept   bool
	}{
		{"InfoBelowWarnIsDropped", slog.LevelDebug, slog.LevelWarn, same, slog.LevelInfo, false},
		{"DebugBelowWarnIsDropped", slog.LevelDebug, slog.LevelWarn, same, slog.LevelDebug, false},
		{"WarnAtWarnIsKept", slog.LevelDebug, slog.LevelWarn, same, slog.LevelWarn, true},
		{"ErrorAboveWarnIsKept", slog.LevelDebug, slog.LevelWarn, same, slog.LevelError, true},
		{"InfoThroughWithIsDropped", slog.LevelDebug, slog.LevelWarn, func(l *slog.Logger) *slog.Logger { return l.With("a", 1) }, slog.LevelInfo, false},
		{"InfoThroughWithGroupIsDropped", slog.LevelDebug, slog.LevelWarn, func(l *slog.Logger) *slog.Logger { return l.WithGroup("sdk") }, slog.LevelInfo, false},
		{"WarnThroughWithGroupIsKept", slog.LevelDebug, slog.LevelWarn, func(l *slog.Logger) *slog.Logger { return l.WithGroup("sdk").With("a", 1) }, slog.LevelWarn, true},
		{"LowerMinimumDoesNotLowerTheBaseLevel", slog.LevelError, slog.LevelDebug, same, slog.LevelWarn, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := &testenv.Buffer{}
			l := tt.derive(logging.AtLeast(logging.New(tt.base, buf), tt.min))
			l.Log(t.Context(), tt.level, "event")
			if got := buf.String() != ""; got != tt.kept {
				t.Fatalf("kept = %v, want %v: %q", got, tt.kept, buf.String())
			}
		})
	}
}

func same(l *slog.Logger) *slog.Logger { return l }

// TestAtLeastKeepsTheRedaction: wrapping a redacting logger must not open
// a path around the redaction.
func TestAtLeastKeepsTheRedaction(t *testing.T) {
	l, buf := capture()
	secret, email := canary(t), newEmail(t)
	logging.AtLeast(l, slog.LevelWarn).With("authorization", secret).WithGroup("sdk").Warn("session for "+email, "cookie", secret)
	out := buf.String()
	if strings.Contains(out, secret) || strings.Contains(out, email) {
		t.Fatalf("not redacted: %s", out)
	}
}

func TestParseLevel(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want slog.Level
	}{
		{"DebugIsDebug", "debug", slog.LevelDebug},
		{"CapitalsAreAccepted", "DEBUG", slog.LevelDebug},
		{"SpacesAreTrimmed", " warn ", slog.LevelWarn},
		{"WarningIsWarn", "warning", slog.LevelWarn},
		{"ErrorIsError", "error", slog.LevelError},
		{"InfoIsInfo", "info", slog.LevelInfo},
		{"EmptyIsInfo", "", slog.LevelInfo},
		{"UnknownWordIsInfo", "verbose", slog.LevelInfo},
		{"NumberIsInfo", "-4", slog.LevelInfo},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := logging.ParseLevel(tt.in); got != tt.want {
				t.Fatalf("ParseLevel(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

// TestRedactJSON covers the form tool arguments take in the logs and the
// audit trail: whatever a client sends, what is kept is valid JSON, small,
// and free of secrets.
func TestRedactJSON(t *testing.T) {
	secret := canary(t)
	key := newAPIKey(t)
	jwt, _, signature := newJWT(t)
	email, phone := newEmail(t), newPhone(t)
	marshal := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	many := map[string]any{}
	for i := range 200 {
		many[fmt.Sprintf("field_%03d", i)] = fmt.Sprintf("value %d", i)
	}

	tests := []struct {
		name  string
		raw   []byte
		leaks []string
		check func(t *testing.T, got string, decoded any)
	}{
		{"SensitiveKeyAtTopLevelIsMasked", marshal(map[string]any{"order_id": "ord_1", "api_key": secret}), []string{secret},
			func(t *testing.T, _ string, d any) {
				wantAt(t, d, logging.Redacted, "api_key")
				wantAt(t, d, "ord_1", "order_id")
			}},
		{"SensitiveKeyDeepInArraysIsMasked", marshal(map[string]any{"a": []any{map[string]any{"b": map[string]any{"password": secret}}}}), []string{secret},
			nil},
		{"SensitiveKeyWithObjectValueIsMaskedWhole", marshal(map[string]any{"customer_email": map[string]any{"x": secret}}), []string{secret},
			func(t *testing.T, _ string, d any) { wantAt(t, d, logging.Redacted, "customer_email") }},
		{"SensitiveKeyVariantsAreMasked", marshal(map[string]any{"Customer-Email": secret + "1", "apiKey": secret + "2", "X.Auth.Token": secret + "3", "DELIVERY_INSTRUCTIONS": secret + "4", "internalNote": secret + "5"}), []string{secret},
			nil},
		{"APIKeyUnderHarmlessKeyKeepsOnlyItsID", marshal(map[string]any{"order_id": key.Key}), []string{key.Key[len(key.Key)-52:]},
			func(t *testing.T, _ string, d any) { wantAt(t, d, "osmcp_"+key.KeyID+"_"+logging.Redacted, "order_id") }},
		{"ValuePatternsInArrayAreMasked", marshal(map[string]any{"notes": []any{"call " + phone, "mail " + email, "token " + jwt}}), []string{phone, email, signature},
			nil},
		{"EmailUsedAsAKeyIsMasked", marshal(map[string]any{email: "x"}), []string{email},
			nil},
		{"LongStringIsCut", marshal(map[string]any{"note": strings.Repeat("a", 10_000)}), nil,
			func(t *testing.T, got string, d any) {
				s, _ := lookupAny(d, "note").(string)
				if n := utf8.RuneCountInString(s); n == 0 || n > 121 {
					t.Fatalf("note kept %d runes, want at most 121", n)
				}
			}},
		{"ManyFieldsAreBoundedInTotal", marshal(many), []string{"value 199"},
			func(t *testing.T, got string, _ any) {
				if len(got) > 1024 {
					t.Fatalf("kept %d bytes", len(got))
				}
			}},
		{"NonJSONIsSummarisedNotCopied", []byte("not json: password=" + secret), []string{secret, "not json"},
			func(t *testing.T, got string, d any) {
				wantAt(t, d, float64(len("not json: password="+secret)), "_unparseable_bytes")
			}},
		{"TruncatedJSONIsSummarisedNotCopied", []byte(`{"order_id":"` + secret), []string{secret},
			nil},
		{"EmptyIsAnEmptyObject", nil, nil,
			func(t *testing.T, got string, _ any) {
				if got != "{}" {
					t.Fatalf("got %q", got)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := logging.RedactJSON(tt.raw)
			var decoded any
			if err := json.Unmarshal([]byte(got), &decoded); err != nil {
				t.Fatalf("not valid JSON: %q", got)
			}
			if len(got) > 1024 {
				t.Fatalf("kept %d bytes, want at most 1024", len(got))
			}
			for _, leak := range tt.leaks {
				if strings.Contains(got, leak) {
					t.Fatalf("%q leaked: %s", leak, got)
				}
			}
			if tt.check != nil {
				tt.check(t, got, decoded)
			}
		})
	}
}

func lookupAny(v any, path ...string) any {
	m, _ := v.(map[string]any)
	got, _ := lookup(m, path...)
	return got
}

func wantAt(t *testing.T, v any, want any, path ...string) {
	t.Helper()
	if got := lookupAny(v, path...); got != want {
		t.Fatalf("%v = %v, want %v", path, got, want)
	}
}
