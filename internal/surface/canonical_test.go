package surface_test

import (
	"testing"

	"github.com/example/order-mcp/internal/surface"
)

// TestCanonicalMatchesRFC8785: the examples of RFC 8785 itself (3.2.2,
// numbers and strings; 3.2.3, members sorted by UTF-16 code units, where
// an emoji sorts before U+FB33), so a client's own JCS library computes
// the same digests.
func TestCanonicalMatchesRFC8785(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"NumbersStringsLiterals",
			`{
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}`,
			`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`},
		{"MembersSortedByUTF16CodeUnits",
			`{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One",` +
				`"\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}`,
			"{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\",\"\u00f6\":\"Latin Small Letter O With Diaeresis\"," +
				"\"\u20ac\":\"Euro Sign\",\"\U0001F600\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}"},
		{"NegativeZeroAndIntegers", `[-0, 0.0, 1, -1, 1e21, 1e20, 123456789012]`, `[0,0,1,-1,1e+21,100000000000000000000,123456789012]`},
		{"HTMLCharactersAreNotEscaped", `"\u003cb\u003e \u0026 \u2028"`, "\"<b> & \u2028\""},
		{"NestedWhitespaceIsDropped", "{ \"b\" : [ 1 , { \"d\" : 2 , \"c\" : 3 } ] , \"a\" : {} }", `{"a":{},"b":[1,{"c":3,"d":2}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := surface.Canonical([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

// TestCanonicalRefusesWhatJCSCannotRepresent: a value that would have two
// readings is refused rather than digested one way.
func TestCanonicalRefusesWhatJCSCannotRepresent(t *testing.T) {
	for name, in := range map[string]string{
		"NumberBeyondDouble": `[1e400]`,
		"TrailingData":       `{} {}`,
		"InvalidUTF8":        "\"\xff\"",
		"NotJSON":            `{"a":`,
	} {
		t.Run(name, func(t *testing.T) {
			if out, err := surface.Canonical([]byte(in)); err == nil {
				t.Fatalf("accepted, as %s", out)
			}
		})
	}
}
