package sanitize

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// DefaultMaxRunes is the length cap for untrusted text returned to a model:
// long enough for any genuine delivery instruction, short enough that an
// attacker cannot fill the context window with it.
const DefaultMaxRunes = 280

// maxMarksPerBase bounds combining marks after one base character. Real
// text (Vietnamese, Devanagari, Hebrew with points) needs at most a few;
// "Zalgo" text stacks dozens to smear over neighbouring lines.
const maxMarksPerBase = 4

// Result is sanitized text and what sanitizing did to it.
type Result struct {
	// Text is safe to show as plain text: every rune is a letter, mark,
	// number, punctuation, symbol or the ASCII space.
	Text string
	// Removed counts the runes dropped (invisible, control, private-use,
	// unassigned, variation selectors, excess combining marks, invalid
	// UTF-8 bytes).
	Removed int
	// Truncated reports that the text was cut to the length cap.
	Truncated bool
}

// UntrustedText returns s made safe to place in front of a model:
//
//  1. Invalid UTF-8 is dropped.
//  2. Each rune is kept only if its general category is a letter (L), mark
//     (M), number (N), punctuation (P) or symbol (S). So removed are:
//     controls (Cc), format characters (Cf: bidi embeddings, overrides and
//     isolates U+202A-U+202E and U+2066-U+2069, zero-width space, joiners
//     and word joiner, U+FEFF, soft hyphen U+00AD, and the tag block
//     U+E0000-U+E007F), private use (Co), surrogates (Cs) and unassigned
//     code points (Cn). Tab, newline and the Zs/Zl/Zp separators become a
//     plain space; runs of spaces collapse to one.
//  3. Also removed, though their category is a letter or mark: variation
//     selectors (U+FE00-FE0F, U+E0100-E01EF, Mongolian FVS) and the other
//     default-ignorable code points (Hangul fillers, U+034F...), which
//     render as nothing.
//  4. At most 4 combining marks follow any base character.
//  5. Characters that start markup are replaced by look-alike plain
//     punctuation (< > ` [ ] & become ‹ › ' ( ) ＆), so a client that renders
//     tool output as Markdown or HTML cannot be made to render an image
//     (a data-exfiltration channel: it loads without a click), a link with
//     text that hides its target, a code block or an entity that decodes to
//     an invisible character. A bare URL stays readable as text, and a
//     client may still auto-link it; following it takes the user's click on
//     a target they can see.
//  6. The text is put in Unicode normalization form C.
//  7. It is cut to maxRunes runes, never inside a character's combining
//     marks, and trimmed.
//
// Steps 1-6 are repeated until nothing changes (removing a character can
// bring two others together that normalization then combines), so the
// function is idempotent: UntrustedText(UntrustedText(s).Text) == the same
// text. FuzzUntrustedText checks that, and checks the output against the
// unicode package's own tables rather than against this code's rules.
func UntrustedText(s string, maxRunes int) Result {
	if maxRunes <= 0 {
		maxRunes = DefaultMaxRunes
	}
	var res Result
	// Only the start of a long text can survive the cap: cleaning more than
	// a few times the cap would be work an attacker chooses the size of.
	text := prefixRunes(s, 4*maxRunes+64)
	if len(text) < len(s) {
		res.Truncated = true
	}
	for range 4 {
		next, removed := clean(text)
		res.Removed += removed
		if next == text {
			break
		}
		text = next
	}
	text, cut := truncate(text, maxRunes)
	res.Truncated = res.Truncated || cut
	res.Text = text
	return res
}

// markup maps characters that open markup to inert look-alikes.
var markup = map[rune]rune{
	'<': '‹', '>': '›', '`': '\'', '[': '(', ']': ')', '&': '＆',
}

// clean is one pass of steps 1-6.
func clean(s string) (string, int) {
	var sb strings.Builder
	sb.Grow(len(s))
	removed, marks := 0, 0
	space := true // drop leading spaces
	for i, w := 0, 0; i < len(s); i += w {
		r, width := utf8.DecodeRuneInString(s[i:])
		w = width
		if r == utf8.RuneError && width <= 1 {
			removed++
			continue
		}
		switch {
		case isSpace(r):
			if !space {
				sb.WriteByte(' ')
				space = true
			}
			marks = 0
			continue
		case !keep(r):
			removed++
			continue
		case unicode.Is(unicode.M, r):
			if marks >= maxMarksPerBase {
				removed++
				continue
			}
			marks++
		default:
			marks = 0
		}
		if m, ok := markup[r]; ok {
			r = m
		}
		sb.WriteRune(r)
		space = false
	}
	out := strings.TrimRight(sb.String(), " ")
	return norm.NFC.String(out), removed
}

// isSpace reports runes that become a plain space: Unicode white space
// (tab, newline, NBSP...) and the separator categories.
func isSpace(r rune) bool {
	return unicode.IsSpace(r) || unicode.In(r, unicode.Zs, unicode.Zl, unicode.Zp)
}

// keep is the category allow-list of step 2, minus the exceptions of step 3.
func keep(r rune) bool {
	if !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S) {
		return false
	}
	return !unicode.In(r, unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point)
}

// prefixRunes returns at most the first n runes of s.
func prefixRunes(s string, n int) string {
	i := 0
	for pos := range s {
		if i == n {
			return s[:pos]
		}
		i++
	}
	return s
}

// truncate cuts s to at most max runes. It cuts only where a base
// character starts, so no combining mark is separated from its character.
func truncate(s string, max int) (string, bool) {
	n, clusterStart := 0, 0
	for i, r := range s {
		if !unicode.Is(unicode.M, r) {
			clusterStart = i
		}
		if n == max { // rune i does not fit: drop its whole cluster
			return strings.TrimRight(s[:clusterStart], " "), true
		}
		n++
	}
	return s, false
}
