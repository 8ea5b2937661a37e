package logging_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/example/order-mcp/internal/logging"
)

// What counts as personal data in free text, and what must survive, is
// written down in numbers.go (card and phone numbers) and redact.go
// (emails). These tests hold the redactor to it: the generators below
// produce each shape the red team typed, and the fixed list operators
// search for.

// piiKinds generate personal data in the shapes people type.
var piiKinds = []struct {
	name string
	gen  func(r *rand.Rand) string
}{
	{"InternationalPhone", func(r *rand.Rand) string {
		return "+" + digits(r, 1+r.IntN(2)) + sep(r, " -.") + digits(r, 2+r.IntN(2)) + sep(r, " -.") +
			digits(r, 3) + sep(r, " -.") + digits(r, 2+r.IntN(3))
	}},
	{"InternationalPhoneWithDoubleZero", func(r *rand.Rand) string {
		return "00" + digits(r, 2) + " " + digits(r, 2) + " " + digits(r, 3) + " " + digits(r, 4)
	}},
	{"NationalPhoneInGroups", func(r *rand.Rand) string {
		return "0" + digits(r, 2) + sep(r, " -./") + digits(r, 3) + sep(r, " -./") + digits(r, 2) + sep(r, " -./") + digits(r, 2)
	}},
	{"NationalPhoneWithBrackets", func(r *rand.Rand) string {
		return "(" + digits(r, 3) + ") " + digits(r, 3) + sep(r, "-. ") + digits(r, 4)
	}},
	{"NationalPhoneWithSeveralSpaces", func(r *rand.Rand) string {
		return "0" + digits(r, 3) + "  " + digits(r, 3) + "   " + digits(r, 3)
	}},
	{"NationalPhoneUngrouped", func(r *rand.Rand) string { return "0" + digits(r, 8+r.IntN(4)) }},
	{"CardNumber", func(r *rand.Rand) string { return card(r, []string{"", " ", "-", "."}[r.IntN(4)]) }},
	{"CardNumberWithSeveralSpaces", func(r *rand.Rand) string { return card(r, strings.Repeat(" ", 2+r.IntN(2))) }},
	{"Email", func(r *rand.Rand) string {
		return word(r, "abcdefghij") + "." + word(r, "klmnopq") + "@" + word(r, "xyz") + ".example"
	}},
	{"EmailWithUnicodeLocalPart", func(r *rand.Rand) string { return word(r, "éüøßçñ") + "@example." + word(r, "com") }},
	{"EmailWithUnicodeDomain", func(r *rand.Rand) string { return word(r, "abc") + "@" + word(r, "例子测试") + ".中国" }},
	{"EmailWithFullwidthAt", func(r *rand.Rand) string { return word(r, "abcdef") + "＠example.com" }},
	{"EmailWithIdeographicDots", func(r *rand.Rand) string { return word(r, "abcdef") + "@例子。公司" }},
}

// safeKinds generate what operators need and the redactor must leave
// alone.
var safeKinds = []struct {
	name string
	gen  func(r *rand.Rand) string
}{
	{"OrderID", func(r *rand.Rand) string { return "ord_" + chars(r, "0123456789ABCDEFGHJKMNPQRSTVWXYZ", 16) }},
	{"CustomerID", func(r *rand.Rand) string { return "cus_" + chars(r, "0123456789", 16) }},
	{"KeyID", func(r *rand.Rand) string { return chars(r, "abcdefghijklmnopqrstuvwxyz234567", 12) }},
	{"KeyIDOfDigits", func(r *rand.Rand) string { return chars(r, "234567", 12) }},
	{"CorrelationID", func(r *rand.Rand) string { return chars(r, "abcdefghijklmnopqrstuvwxyz234567", 13) }},
	{"UPSTracking", func(r *rand.Rand) string { return "1Z" + chars(r, "0123456789", 3) + "AA" + digits(r, 11) }},
	{"PostalTracking", func(r *rand.Rand) string { return "RR" + digits(r, 9) + "SE" }},
	{"FedExTracking", func(r *rand.Rand) string { return "7" + digits(r, 11) }},
	{"USPSTracking", func(r *rand.Rand) string { return "94" + digits(r, 20) }},
	{"Date", func(r *rand.Rand) string {
		return fmt.Sprintf("%d-%02d-%02d", 2000+r.IntN(40), 1+r.IntN(12), 1+r.IntN(28))
	}},
	{"EuropeanDate", func(r *rand.Rand) string {
		return fmt.Sprintf("%02d.%02d.%d", 1+r.IntN(28), 1+r.IntN(12), 2000+r.IntN(40))
	}},
	{"Timestamp", func(r *rand.Rand) string {
		return fmt.Sprintf("%d-%02d-%02dT%02d:%02d:%02dZ", 2000+r.IntN(40), 1+r.IntN(12), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60))
	}},
	{"TimestampWithFractionAndOffset", func(r *rand.Rand) string {
		return fmt.Sprintf("2025-11-25T%02d:%02d:%02d.%s+01:00", r.IntN(24), r.IntN(60), r.IntN(60), digits(r, 6+r.IntN(4)))
	}},
	{"TimestampWithSpace", func(r *rand.Rand) string {
		return fmt.Sprintf("2025-11-25 %02d:%02d:%02d", r.IntN(24), r.IntN(60), r.IntN(60))
	}},
	{"UnixMillis", func(r *rand.Rand) string { return "17" + digits(r, 11) }},
	{"Amount", func(r *rand.Rand) string { return chars(r, "123456789", 1) + digits(r, r.IntN(9)) + "." + digits(r, 2) }},
	{"SmallAmount", func(r *rand.Rand) string { return "0." + digits(r, 2) }},
	{"AmountWithThousands", func(r *rand.Rand) string {
		return chars(r, "123456789", 1) + digits(r, r.IntN(3)) + "," + digits(r, 3) + "," + digits(r, 3) + "." + digits(r, 2)
	}},
	{"IPv4Address", func(r *rand.Rand) string {
		return fmt.Sprintf("%d.%d.%d.%d", r.IntN(256), r.IntN(256), r.IntN(256), r.IntN(256))
	}},
}

// delimiter separates the generated value from the fuzzed text around it.
// Nothing the redactor looks for spans it: it is neither a digit, a letter
// nor a separator of any pattern.
const delimiter = " ¦ "

// redactedMiddle embeds v between before and after and returns what the
// redactor made of v, by the delimiters; ok is false when the fuzzed text
// itself was rewritten across a delimiter (a "Bearer" or "password=" at
// its end reaches over), and the caller then checks containment only.
func redactedMiddle(before, after, v string) (out, middle string, ok bool) {
	clean := func(s string) string { return strings.ReplaceAll(s, "¦", "") }
	out = logging.RedactString(clean(before) + delimiter + v + delimiter + clean(after))
	parts := strings.Split(out, delimiter)
	if len(parts) != 3 {
		return out, "", false
	}
	return out, parts[1], true
}

// FuzzRedactionProperty is the property: personal data of every shape
// above, embedded in any text, never survives; and every value on the
// fixed list survives exactly. The seed corpus is in
// testdata/fuzz/FuzzRedactionProperty; `make fuzz` runs it longer.
func FuzzRedactionProperty(f *testing.F) {
	f.Add("called", "twice", uint8(0), uint64(1))
	f.Add("", "", uint8(5), uint64(2))
	f.Add("order total", "EUR", uint8(len(piiKinds)+14), uint64(3))
	f.Add("at 12", "34 then", uint8(6), uint64(4))
	f.Fuzz(func(t *testing.T, before, after string, kindIndex uint8, seed uint64) {
		r := rand.New(rand.NewPCG(seed, seed>>1|1))
		k := int(kindIndex) % (len(piiKinds) + len(safeKinds))
		if k < len(piiKinds) {
			v := piiKinds[k].gen(r)
			out, middle, ok := redactedMiddle(before, after, v)
			if strings.Contains(out, v) || (ok && !strings.HasPrefix(middle, "[REDACTED_")) {
				t.Fatalf("%s %q survived: %q", piiKinds[k].name, v, out)
			}
			if j := logging.RedactJSON(mustJSON(t, map[string]string{"note": before + delimiter + v + delimiter + after})); strings.Contains(j, v) {
				t.Fatalf("%s %q survived RedactJSON: %s", piiKinds[k].name, v, j)
			}
			return
		}
		s := safeKinds[k-len(piiKinds)]
		v := s.gen(r)
		if _, middle, ok := redactedMiddle(before, after, v); ok && middle != v {
			t.Fatalf("%s %q was changed to %q", s.name, v, middle)
		}
		if got := logging.RedactString(v); got != v {
			t.Fatalf("%s %q was changed to %q", s.name, v, got)
		}
	})
}

// TestRedactionPropertyOnEveryKind runs each generator many times with a
// fixed seed: the property holds without waiting for the fuzzer.
func TestRedactionPropertyOnEveryKind(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	for _, k := range piiKinds {
		t.Run(k.name+"IsRedacted", func(t *testing.T) {
			for range 300 {
				v := k.gen(r)
				if _, middle, _ := redactedMiddle("text", "more text", v); !strings.HasPrefix(middle, "[REDACTED_") {
					t.Fatalf("%q survived as %q", v, middle)
				}
			}
		})
	}
	for _, k := range safeKinds {
		t.Run(k.name+"Survives", func(t *testing.T) {
			for range 300 {
				v := k.gen(r)
				if _, middle, _ := redactedMiddle("text", "more text", v); middle != v {
					t.Fatalf("%q became %q", v, middle)
				}
			}
		})
	}
}

// TestRedTeamShapes are the exact strings the red team found in the logs.
func TestRedTeamShapes(t *testing.T) {
	for _, s := range []string{
		"call me on 070 123 45 67 tonight",
		"phone: (030) 9018 2773",
		"reach me at 503.555.0187.",
		"card 4111.1111.1111.1111 declined",
		"card 4111  1111  1111  1111 declined",
		"mail maïa.lindqvist@exämple.se now",
		"mail maya＠example.com now",
		"tel 0701234567: after six",
	} {
		out := logging.RedactString(s)
		if !strings.Contains(out, "[REDACTED_") {
			t.Errorf("RedactString(%q) = %q: nothing was redacted", s, out)
		}
		for _, w := range strings.Fields(s) {
			if strings.ContainsAny(w, "0123456789@＠") && len(w) > 4 && strings.Contains(out, strings.Trim(w, ".:,")) {
				t.Errorf("RedactString(%q) = %q: %q survived", s, out, w)
			}
		}
	}
}

func digits(r *rand.Rand, n int) string { return chars(r, "0123456789", n) }

func chars(r *rand.Rand, alphabet string, n int) string {
	rs := []rune(alphabet)
	var b strings.Builder
	for range n {
		b.WriteRune(rs[r.IntN(len(rs))])
	}
	return b.String()
}

func word(r *rand.Rand, alphabet string) string { return chars(r, alphabet, 3+r.IntN(6)) }

func sep(r *rand.Rand, from string) string {
	rs := []rune(from)
	return string(rs[r.IntN(len(rs))])
}

// card returns a Luhn-valid card number of 16 digits starting 4 or 5, in
// groups of four joined by s.
func card(r *rand.Rand, s string) string {
	d := []byte(string("45"[r.IntN(2)]) + digits(r, 14))
	sum := 0
	for i := len(d) - 1; i >= 0; i-- {
		n := int(d[i] - '0')
		if (len(d)-i)%2 == 1 { // doubled: the check digit will be appended after it
			if n *= 2; n > 9 {
				n -= 9
			}
		}
		sum += n
	}
	d = append(d, byte('0'+(10-sum%10)%10))
	return string(d[0:4]) + s + string(d[4:8]) + s + string(d[8:12]) + s + string(d[12:16])
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
