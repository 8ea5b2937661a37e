package httpserver

import (
	"bytes"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// The pre-check's reader: one strict pass over a JSON-RPC request body
// that validates it as JSON (RFC 8259) and returns only what the HTTP
// layer decides on: the method and, for tools/call, the tool name and the
// raw arguments. It is written out rather than built on a decoder so that
// reading a request costs one pass and no buffer, and so that every
// judgement is visible here:
//
//   - exactly one JSON object, nothing after it but whitespace (a batch
//     and a second request are refused);
//   - no object, at any depth, with two keys that are equal or equal but
//     for case (encoding/json folds case, the SDK's decoder does not: such
//     a body could read differently to the two);
//   - no string with invalid UTF-8, a control character, an invalid escape
//     or a lone surrogate (decoders replace those differently);
//   - nesting at most maxDepth deep;
//   - "jsonrpc" is "2.0", "method" (when present) a string, and the
//     "params" of a tools/call an object whose "name" is a string.
//
// The keys are read with their exact case, as the SDK reads them. Whatever
// this reader accepts, the SDK reads the same method, tool and arguments
// from; it refuses more than the SDK does. FuzzPrecheckAgreesWithSDK holds
// it to that.

// rpcRequest is what scanRequest reads out of a body.
type rpcRequest struct {
	method    string // "" when the body has no method (a response)
	hasMethod bool
	tool      string
	args      []byte // the raw arguments of a tools/call, nil when absent
}

// scanRequest reads body; any error is errMalformed.
func scanRequest(body []byte) (rpcRequest, error) {
	var req rpcRequest
	s := scanner{data: body}
	s.skipSpace()
	if s.pos >= len(s.data) || s.data[s.pos] != '{' {
		return req, errMalformed // batches ([...]) and non-objects
	}
	var version, params []byte
	versionSeen, idValid := false, false
	err := s.object(0, func(key []byte, start, end int) error {
		switch string(key) {
		case "jsonrpc":
			version, versionSeen = s.data[start:end], true
		case "method":
			m, ok := s.stringValue(start, end)
			if !ok {
				return errMalformed
			}
			req.method, req.hasMethod = m, true
		case "params":
			params = s.data[start:end]
		case "id":
			switch s.data[start] {
			case '{', '[', 't', 'f':
				return errMalformed // the SDK takes strings, numbers and null
			case 'n':
			default:
				idValid = true
			}
		}
		return nil
	})
	if err != nil {
		return req, err
	}
	s.skipSpace()
	if s.pos != len(s.data) {
		return req, errMalformed // anything after the one request
	}
	if !versionSeen || string(version) != `"2.0"` {
		return req, errMalformed
	}
	if !req.hasMethod && !idValid {
		return req, errMalformed // neither a request nor a response
	}
	if req.method != "tools/call" {
		return req, nil
	}
	if len(params) == 0 || params[0] != '{' {
		return req, errMalformed
	}
	p := scanner{data: params}
	nameSeen := false
	err = p.object(0, func(key []byte, start, end int) error {
		switch string(key) {
		case "name":
			n, ok := p.stringValue(start, end)
			if !ok {
				return errMalformed
			}
			req.tool, nameSeen = n, true
		case "arguments":
			req.args = p.data[start:end]
		}
		return nil
	})
	if err != nil || !nameSeen {
		return req, errMalformed
	}
	return req, nil
}

// scanner walks a JSON text. Positions are byte offsets into data.
type scanner struct {
	data []byte
	pos  int
}

func (s *scanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// value skips one value at depth.
func (s *scanner) value(depth int) error {
	if depth > maxDepth {
		return errMalformed
	}
	s.skipSpace()
	if s.pos >= len(s.data) {
		return errMalformed
	}
	switch c := s.data[s.pos]; {
	case c == '{':
		return s.object(depth, nil)
	case c == '[':
		return s.array(depth)
	case c == '"':
		_, _, err := s.str()
		return err
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	}
	return errMalformed
}

// object reads an object at s.pos, refusing equal or case-variant keys,
// and calls member (when not nil) with each key (unescaped) and the span
// of its value.
func (s *scanner) object(depth int, member func(key []byte, start, end int) error) error {
	if depth+1 > maxDepth {
		return errMalformed
	}
	s.pos++ // '{'
	var keys []objectKey
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
		return nil
	}
	for {
		s.skipSpace()
		if s.pos >= len(s.data) || s.data[s.pos] != '"' {
			return errMalformed
		}
		raw, plain, err := s.str()
		if err != nil {
			return err
		}
		k := objectKey{raw: raw, plain: plain}
		for _, prev := range keys {
			if prev.sameFolded(k) {
				return errMalformed
			}
		}
		keys = append(keys, k)
		s.skipSpace()
		if s.pos >= len(s.data) || s.data[s.pos] != ':' {
			return errMalformed
		}
		s.pos++
		s.skipSpace()
		start := s.pos
		if err := s.value(depth + 1); err != nil {
			return err
		}
		if member != nil {
			if err := member(k.text(), start, s.pos); err != nil {
				return err
			}
		}
		s.skipSpace()
		if s.pos >= len(s.data) {
			return errMalformed
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case '}':
			s.pos++
			return nil
		default:
			return errMalformed
		}
	}
}

func (s *scanner) array(depth int) error {
	if depth+1 > maxDepth {
		return errMalformed
	}
	s.pos++ // '['
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == ']' {
		s.pos++
		return nil
	}
	for {
		if err := s.value(depth + 1); err != nil {
			return err
		}
		s.skipSpace()
		if s.pos >= len(s.data) {
			return errMalformed
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case ']':
			s.pos++
			return nil
		default:
			return errMalformed
		}
	}
}

// str reads a string at s.pos and returns its content as written (between
// the quotes) and whether it is plain: ASCII with no escape, so that the
// content is the string.
func (s *scanner) str() (raw []byte, plain bool, err error) {
	s.pos++ // '"'
	start := s.pos
	plain = true
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch {
		case c == '"':
			raw = s.data[start:s.pos]
			s.pos++
			return raw, plain, nil
		case c < 0x20:
			return nil, false, errMalformed
		case c == '\\':
			plain = false
			if s.pos+1 >= len(s.data) {
				return nil, false, errMalformed
			}
			switch s.data[s.pos+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.pos += 2
			case 'u':
				_, n, ok := readEscapedRune(s.data[s.pos:])
				if !ok {
					return nil, false, errMalformed
				}
				s.pos += n
			default:
				return nil, false, errMalformed
			}
		case c < utf8.RuneSelf:
			s.pos++
		default:
			plain = false
			r, n := utf8.DecodeRune(s.data[s.pos:])
			if r == utf8.RuneError && n <= 1 {
				return nil, false, errMalformed
			}
			s.pos += n
		}
	}
	return nil, false, errMalformed
}

// readEscapedRune reads "\uXXXX", or a surrogate pair of two of them, at
// the start of b: the rune and the bytes it took. A lone surrogate is not
// ok.
func readEscapedRune(b []byte) (rune, int, bool) {
	r1, ok := hex4(b)
	if !ok {
		return 0, 0, false
	}
	if !utf16.IsSurrogate(r1) {
		return r1, 6, true
	}
	if r1 >= 0xDC00 { // a low surrogate first
		return 0, 0, false
	}
	r2, ok := hex4(b[6:])
	if !ok {
		return 0, 0, false
	}
	r := utf16.DecodeRune(r1, r2)
	if r == utf8.RuneError {
		return 0, 0, false
	}
	return r, 12, true
}

// hex4 reads "\uXXXX" at the start of b.
func hex4(b []byte) (rune, bool) {
	if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
		return 0, false
	}
	v, err := strconv.ParseUint(string(b[2:6]), 16, 32)
	return rune(v), err == nil
}

// unescape returns the string a valid string's content (as str returned
// it) stands for.
func unescape(raw []byte) string {
	var sb strings.Builder
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			sb.WriteByte(c)
			i++
			continue
		}
		switch raw[i+1] {
		case 'b':
			sb.WriteByte('\b')
		case 'f':
			sb.WriteByte('\f')
		case 'n':
			sb.WriteByte('\n')
		case 'r':
			sb.WriteByte('\r')
		case 't':
			sb.WriteByte('\t')
		case 'u':
			r, n, _ := readEscapedRune(raw[i:])
			sb.WriteRune(r)
			i += n
			continue
		default: // '"', '\\', '/'
			sb.WriteByte(raw[i+1])
		}
		i += 2
	}
	return sb.String()
}

// stringValue returns the string at data[start:end], if the value is one.
func (s *scanner) stringValue(start, end int) (string, bool) {
	if end-start < 2 || s.data[start] != '"' {
		return "", false
	}
	return unescape(s.data[start+1 : end-1]), true
}

func (s *scanner) number() error {
	i := s.pos
	if i < len(s.data) && s.data[i] == '-' {
		i++
	}
	switch {
	case i < len(s.data) && s.data[i] == '0':
		i++
	case i < len(s.data) && s.data[i] >= '1' && s.data[i] <= '9':
		i = digits(s.data, i)
	default:
		return errMalformed
	}
	if i < len(s.data) && s.data[i] == '.' {
		j := digits(s.data, i+1)
		if j == i+1 {
			return errMalformed
		}
		i = j
	}
	if i < len(s.data) && (s.data[i] == 'e' || s.data[i] == 'E') {
		i++
		if i < len(s.data) && (s.data[i] == '+' || s.data[i] == '-') {
			i++
		}
		j := digits(s.data, i)
		if j == i {
			return errMalformed
		}
		i = j
	}
	s.pos = i
	return nil
}

func digits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

func (s *scanner) literal(word string) error {
	if !bytes.HasPrefix(s.data[s.pos:], []byte(word)) {
		return errMalformed
	}
	s.pos += len(word)
	return nil
}

// objectKey is one key of an object being read.
type objectKey struct {
	raw   []byte
	plain bool
}

// text is the key as the SDK reads it: exact, unescaped.
func (k objectKey) text() []byte {
	if k.plain {
		return k.raw
	}
	return []byte(unescape(k.raw))
}

// sameFolded reports whether two keys are equal but for case, as
// strings.ToLower sees case (Unicode, so "\u212a" and "k" are the same).
func (k objectKey) sameFolded(o objectKey) bool {
	if k.plain && o.plain {
		return asciiEqualFold(k.raw, o.raw)
	}
	//lint:ignore SA6005 the comparison must be ToLower's, not EqualFold's simple folding: they differ on a few runes
	return strings.ToLower(unescape(k.raw)) == strings.ToLower(unescape(o.raw))
}

func asciiEqualFold(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
