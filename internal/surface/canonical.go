package surface

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// Canonical returns the JSON text b in the JSON Canonicalization Scheme of
// RFC 8785 (JCS): no insignificant whitespace, object members sorted by
// the UTF-16 code units of their names, numbers as ECMAScript prints them,
// strings with only the escapes JSON requires. Two JSON texts with the same
// data have the same canonical form, so a digest of it does not depend on
// the encoder (field order, spacing, \u003c or <) that produced it.
//
// It refuses what RFC 8785 cannot represent: invalid UTF-8, numbers
// outside the IEEE 754 double range, and trailing data.
func Canonical(b []byte) ([]byte, error) {
	if !utf8.Valid(b) {
		return nil, errors.New("canonical JSON: invalid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("canonical JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("canonical JSON: trailing data after the value")
	}
	var out bytes.Buffer
	if err := writeCanonical(&out, v); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

func writeCanonical(w *bytes.Buffer, v any) error {
	switch v := v.(type) {
	case nil:
		w.WriteString("null")
	case bool:
		w.WriteString(strconv.FormatBool(v))
	case json.Number:
		return writeNumber(w, v)
	case string:
		writeString(w, v)
	case []any:
		w.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				w.WriteByte(',')
			}
			if err := writeCanonical(w, e); err != nil {
				return err
			}
		}
		w.WriteByte(']')
	case map[string]any:
		names := make([]string, 0, len(v))
		for k := range v {
			names = append(names, k)
		}
		slices.SortFunc(names, func(a, b string) int {
			return slices.Compare(utf16.Encode([]rune(a)), utf16.Encode([]rune(b)))
		})
		w.WriteByte('{')
		for i, k := range names {
			if i > 0 {
				w.WriteByte(',')
			}
			writeString(w, k)
			w.WriteByte(':')
			if err := writeCanonical(w, v[k]); err != nil {
				return err
			}
		}
		w.WriteByte('}')
	default:
		return fmt.Errorf("canonical JSON: unexpected %T", v)
	}
	return nil
}

// writeNumber prints n as ECMAScript's Number.prototype.toString does,
// which RFC 8785 adopts: encoding/json formats a float64 exactly that way
// (shortest round-trip digits, exponent form below 1e-6 and from 1e21),
// except for negative zero, which ECMAScript prints as 0.
func writeNumber(w *bytes.Buffer, n json.Number) error {
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return fmt.Errorf("canonical JSON: number %.32s is outside the double range", n)
	}
	if f == 0 {
		f = 0 // -0 prints as 0
	}
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	w.Write(b)
	return nil
}

// writeString quotes s with the escapes RFC 8785 prescribes: \" and \\,
// the short forms \b \t \n \f \r, \u00xx (lower-case hex) for the other
// control characters, and every other character as itself.
func writeString(w *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	w.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			w.WriteString(`\"`)
		case '\\':
			w.WriteString(`\\`)
		case '\b':
			w.WriteString(`\b`)
		case '\t':
			w.WriteString(`\t`)
		case '\n':
			w.WriteString(`\n`)
		case '\f':
			w.WriteString(`\f`)
		case '\r':
			w.WriteString(`\r`)
		default:
			if r < 0x20 {
				w.WriteString(`\u00`)
				w.WriteByte(hex[r>>4])
				w.WriteByte(hex[r&0xf])
			} else {
				w.WriteRune(r)
			}
		}
	}
	w.WriteByte('"')
}
