package logging_test

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"strings"
	"testing"

	"github.com/example/order-mcp/internal/logging"
	"github.com/example/order-mcp/internal/testenv"
)

// TestTextLinesAreRedactedExactlyAsJSONLines: development writes text
// lines instead of JSON, and must not be a way around the redaction. Every
// kind of secret and personal data, in the message, in an attribute, bound
// with With, inside a group, in an error and inside a structured value, is
// logged once through each format: the text line carries exactly the
// fields, with exactly the values, of the JSON line, and neither carries
// what was masked.
func TestTextLinesAreRedactedExactlyAsJSONLines(t *testing.T) {
	secret, key := canary(t), newAPIKey(t)
	jwt, _, signature := newJWT(t)
	email, phone := newEmail(t), newPhone(t)

	tests := []struct {
		name  string
		log   func(l *slog.Logger)
		leaks []string
	}{
		{"APIKeyInTheMessage", func(l *slog.Logger) { l.Info("login with " + key.Key) }, []string{key.Key[19:]}},
		{"SecretUnderASensitiveKey", func(l *slog.Logger) { l.Info("login", "password", secret, "api_key", secret) }, []string{secret}},
		{"EmailAndPhoneInValues", func(l *slog.Logger) {
			l.Warn("contact "+email, "note", "call "+phone+" or mail "+email, "order_id", "ord_7QK2M9XWBR4TZP3H")
		}, []string{email, phone}},
		{"BearerAndJWTInValues", func(l *slog.Logger) {
			l.Info("request", "header", "Bearer "+secret, "token_seen", jwt, "raw", "x "+jwt)
		}, []string{secret, signature}},
		{"BoundWithWith", func(l *slog.Logger) {
			l.With("authorization", secret, "customer_email", email).Info("bound")
		}, []string{secret, email}},
		{"InsideGroups", func(l *slog.Logger) {
			l.WithGroup("call").With("cookie", secret).Info("grouped",
				slog.Group("args", slog.String("note", "mail "+email), slog.Group("deep", slog.String("phone_number", phone))))
		}, []string{secret, email, phone}},
		{"ErrorsAndStructuredValues", func(l *slog.Logger) {
			l.Error("failed", "error", errors.New("no customer "+email),
				"args", map[string]any{"delivery_instructions": secret, "order_id": "ord_1", "note": phone})
		}, []string{secret, email, phone}},
		{"DSNWithPassword", func(l *slog.Logger) {
			l.Info("connecting", "target", "postgres://app:"+secret+"@db:5432/orders")
		}, []string{secret}},
		{"NumbersAndBooleansKeepTheirValue", func(l *slog.Logger) {
			l.Info("counted", "n", 42, "ok", true, "ratio", 0.5)
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jsonBuf, textBuf := &testenv.Buffer{}, &testenv.Buffer{}
			tt.log(logging.NewFormat(logging.JSON, slog.LevelDebug, jsonBuf))
			tt.log(logging.NewFormat(logging.Text, slog.LevelDebug, textBuf))
			for _, leak := range tt.leaks {
				if strings.Contains(jsonBuf.String(), leak) || strings.Contains(textBuf.String(), leak) {
					t.Fatalf("%q leaked:\njson: %stext: %s", leak, jsonBuf, textBuf)
				}
			}
			fromJSON := flatten("", onlyLine(t, jsonBuf.String()))
			fromText := textFields(t, textBuf.String())
			delete(fromJSON, "time") // the only field written differently: a clock time in text
			delete(fromText, "time")
			if !maps.Equal(fromJSON, fromText) {
				t.Fatalf("the text line differs from the JSON line:\njson: %v\ntext: %v", fromJSON, fromText)
			}
		})
	}
}

// TestTextLinesCannotBeForged: a value with a line break and what looks
// like another record (a log-injection attempt through a tool argument or
// a header) stays inside its own, quoted, field.
func TestTextLinesCannotBeForged(t *testing.T) {
	buf := &testenv.Buffer{}
	forged := "ord_1\n00:00:00.000 level=ERROR msg=\"admin logged in\""
	logging.NewFormat(logging.Text, slog.LevelInfo, buf).Info("lookup\nlevel=ERROR", "order_id", forged)
	fields := textFields(t, buf.String())
	if fields["order_id"] != forged || fields["msg"] != "lookup\nlevel=ERROR" || fields["level"] != "INFO" {
		t.Fatalf("fields %v from %q", fields, buf.String())
	}
}

// flatten turns a decoded JSON line into dotted keys (as the text form
// writes groups) and values written as the text form writes them.
func flatten(prefix string, m map[string]any) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		switch v := v.(type) {
		case map[string]any:
			maps.Copy(out, flatten(prefix+k+".", v))
		case float64:
			out[prefix+k] = strconv.FormatFloat(v, 'f', -1, 64)
		default:
			out[prefix+k] = fmt.Sprint(v)
		}
	}
	return out
}

// textFields parses out, which must be exactly one text line, into its
// key=value fields, unquoting quoted values.
func textFields(t *testing.T, out string) map[string]string {
	t.Helper()
	line, ok := strings.CutSuffix(out, "\n")
	if !ok || strings.Contains(line, "\n") {
		t.Fatalf("want exactly one text line, got %q", out)
	}
	fields := map[string]string{}
	for line != "" {
		k, rest, ok := strings.Cut(line, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \"") {
			t.Fatalf("not a key=value field at %q in %q", line, out)
		}
		var v string
		if strings.HasPrefix(rest, `"`) {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				t.Fatalf("bad quoting at %q in %q", rest, out)
			}
			v, _ = strconv.Unquote(q)
			rest = rest[len(q):]
		} else {
			v, rest, _ = strings.Cut(rest, " ")
			rest = " " + rest
		}
		if _, dup := fields[k]; dup {
			t.Fatalf("field %s twice in %q", k, out)
		}
		fields[k] = v
		line = strings.TrimPrefix(rest, " ")
	}
	return fields
}
