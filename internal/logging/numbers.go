package logging

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Card and phone numbers, as people really type them. Both are found by
// one scanner rather than regular expressions, because what decides is the
// shape of a whole run of digits (how many, how grouped, what is around
// it), which a regular expression states badly.
//
// A *run* is a maximal stretch of ASCII digits and separators: a space (up
// to three in a row), '.', '-', '/', brackets, and a '+' only in front. It
// must not touch a letter, a digit or '_' on either side, nor a ':' on its
// left (the seconds of a time), so identifiers that merely contain digits
// (ord_7QK2M9XWBR4TZP3H, key and correlation ids, 1Z999AA10123456784,
// RR123456789SE) are never runs.
//
// A **card number** is 13 to 19 digits whose first digit is 2 to 6 (the
// card networks' ranges) and which pass the Luhn check, grouped in any way.
//
// A **phone number** is 7 to 15 digits (E.164's maximum), in one of these
// forms:
//   - international: a leading '+' or "00", grouped or not;
//   - national, grouped: at least two groups of 1 to 8 digits
//     ("070 123 45 67", "(503) 555-0187", "030.9018.2773", "555-0187");
//   - national, ungrouped: 9 to 12 digits starting with the trunk prefix 0
//     ("0701234567").
//
// These are never phone numbers, so they survive redaction: dates
// (2025-11-25, 25.11.2025, 11/25/2025), IPv4 addresses, decimal amounts
// (27.49, 1234567.89, 1,234,567.89), and ungrouped digit runs that do not
// start with 0 (tracking numbers, Unix timestamps, amounts in cents).
//
// When a whole run is neither, its parts split at spaces are tried, the
// longest first, so a phone number written next to another number is still
// found.

const (
	redactedPAN   = "[REDACTED_PAN]"
	redactedPhone = "[REDACTED_PHONE]"
)

// redactNumbers masks the card and phone numbers in s.
func redactNumbers(s string) string {
	digits := 0
	for i := 0; i < len(s) && digits < 7; i++ {
		if s[i] >= '0' && s[i] <= '9' {
			digits++
		}
	}
	if digits < 7 {
		return s // fast path: too few digits for either
	}
	var (
		out  strings.Builder
		last int // s[last:] is not yet copied to out
	)
	for i := 0; i < len(s); {
		if !runStart(s, i) {
			i++
			continue
		}
		end := runEnd(s, i)
		if end <= i { // a '+' or '(' that no digit follows after all
			i++
			continue
		}
		for _, m := range classify(s, i, end, leftBoundary(s, i)) {
			out.WriteString(s[last:m.start])
			out.WriteString(m.mask)
			last = m.end
		}
		i = end
	}
	if last == 0 {
		return s
	}
	out.WriteString(s[last:])
	return out.String()
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// runStart reports whether a run can start at s[i]: a digit, or a '+' or
// '(' directly before a digit.
func runStart(s string, i int) bool {
	switch {
	case isDigit(s[i]):
		return true
	case s[i] == '+' || s[i] == '(':
		return i+1 < len(s) && (isDigit(s[i+1]) || (s[i] == '+' && s[i+1] == '('))
	}
	return false
}

// runEnd returns where the run starting at i ends: after its last digit
// (or closing bracket).
func runEnd(s string, i int) int {
	lastDigit := i
	spaces := 0
	prevSep := false
scan:
	for j := i; j < len(s); j++ {
		switch c := s[j]; {
		case isDigit(c):
			lastDigit, spaces, prevSep = j+1, 0, false
		case c == ' ':
			if spaces++; spaces > 3 {
				break scan
			}
		case c == '+' && j == i:
		case c == '(' || c == ')':
			if c == ')' && j == lastDigit {
				lastDigit = j + 1 // keep "(030)" whole
			}
		case c == '.' || c == '-' || c == '/':
			if prevSep || spaces > 0 {
				break scan
			}
			prevSep = true
		default:
			break scan
		}
	}
	return trimRun(s, i, lastDigit)
}

// trimRun drops a trailing closing bracket that closes nothing.
func trimRun(s string, start, end int) int {
	if end > start && s[end-1] == ')' && !strings.Contains(s[start:end], "(") {
		return end - 1
	}
	return end
}

// wordRune reports whether r makes a number part of a word or identifier.
func wordRune(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }

func leftBoundary(s string, i int) bool {
	if i == 0 {
		return true
	}
	r, _ := utf8.DecodeLastRuneInString(s[:i])
	return !wordRune(r) && r != ':'
}

func rightBoundary(s string, end int) bool {
	if end >= len(s) {
		return true
	}
	r, _ := utf8.DecodeRuneInString(s[end:])
	return !wordRune(r)
}

type match struct {
	start, end int
	mask       string
}

// classify finds the card and phone numbers in the run s[start:end]: the
// whole run, or else its space-separated parts (the longest first). A part
// shaped like a date, an IPv4 address or an amount is never taken into a
// phone number with its neighbours: "2025-11-25 10:00" is a date and a
// time. (An amount is not protected so: over-redacting "12.50" next to a
// phone number costs nothing, leaking "064 432 85.14" would.) A run that
// starts with '+' or "00" is a phone number whatever its parts look like.
// When the run touches a word on its left (boundary false), its first part
// belongs to that word and only the parts after it are tried.
func classify(s string, start, end int, boundary bool) []match {
	var chunks [][2]int
	for i := start; i < end; {
		for i < end && s[i] == ' ' {
			i++
		}
		j := i
		for j < end && s[j] != ' ' {
			j++
		}
		if j > i {
			chunks = append(chunks, [2]int{i, j})
		}
		i = j
	}
	protected := make([]bool, len(chunks))
	for i, c := range chunks {
		groups, seps, _ := split(s[c[0]:c[1]])
		protected[i] = dateOrAddress(groups, seps)
	}
	if s[start] == '+' || strings.HasPrefix(s[start:end], "00") {
		clear(protected)
	}
	var found []match
	first := 0
	if !boundary {
		first = 1
	}
	for a := first; a < len(chunks); {
		matched := false
	windows:
		for b := len(chunks) - 1; b >= a; b-- {
			for k := a; k <= b; k++ {
				if protected[k] {
					continue windows
				}
			}
			from, to := chunks[a][0], chunks[b][1]
			if !runStart(s, from) || !rightBoundary(s, to) {
				continue
			}
			if mask := kind(s[from:to]); mask != "" {
				found = append(found, match{from, to, mask})
				a, matched = b+1, true
				break
			}
		}
		if !matched {
			a++
		}
	}
	return found
}

// split returns the digit groups of run, the separator before each group
// after the first, and all its digits.
func split(run string) (groups, seps []string, digits []byte) {
	var sep, group strings.Builder
	for i := 0; i < len(run); i++ {
		c := run[i]
		if isDigit(c) {
			if group.Len() == 0 && len(groups) > 0 {
				seps = append(seps, sep.String())
				sep.Reset()
			}
			digits = append(digits, c)
			group.WriteByte(c)
			continue
		}
		if group.Len() > 0 {
			groups = append(groups, group.String())
			group.Reset()
		}
		if len(groups) > 0 {
			sep.WriteByte(c)
		}
	}
	if group.Len() > 0 {
		groups = append(groups, group.String())
	}
	return groups, seps, digits
}

// kind says whether run is a card number, a phone number, or neither ("").
func kind(run string) string {
	groups, seps, digits := split(run)
	n := len(digits)
	if n >= 13 && n <= 19 && digits[0] >= '2' && digits[0] <= '6' && luhn(string(digits)) {
		return redactedPAN
	}
	if n < 7 || n > 15 {
		return ""
	}
	switch {
	case run[0] == '+' || strings.HasPrefix(run, "00") || strings.HasPrefix(run, "(00"):
		return redactedPhone // nothing else starts so
	case notAPhone(groups, seps):
		return ""
	case len(groups) == 1:
		if digits[0] == '0' && n >= 9 && n <= 12 {
			return redactedPhone
		}
		return ""
	}
	for _, g := range groups {
		if len(g) > 8 {
			return ""
		}
	}
	return redactedPhone
}

// notAPhone recognises the digit shapes that look grouped but are dates,
// IPv4 addresses or decimal amounts.
func notAPhone(groups, seps []string) bool {
	return dateOrAddress(groups, seps) || amount(groups, seps)
}

// dateOrAddress recognises dates and IPv4 addresses.
func dateOrAddress(groups, seps []string) bool {
	same := func(allowed string) bool {
		for _, s := range seps {
			if len(s) != 1 || !strings.Contains(allowed, s) || s != seps[0] {
				return false
			}
		}
		return len(seps) > 0
	}
	lens := make([]int, len(groups))
	for i, g := range groups {
		lens[i] = len(g)
	}
	switch {
	case len(groups) == 3 && same("-./") &&
		((lens[0] == 4 && lens[1] <= 2 && lens[2] <= 2) || (lens[0] <= 2 && lens[1] <= 2 && lens[2] == 4)):
		return true // a date
	case len(groups) == 4 && same("."):
		for _, g := range groups {
			if len(g) > 3 || (len(g) == 3 && g > "255") || (len(g) > 1 && g[0] == '0') {
				return false
			}
		}
		return true // an IPv4 address, written as Go writes one (no leading zeros)
	}
	return false
}

// amount recognises a decimal amount (27.49, 0.50, 1234567,89) and one
// with thousands separators. Amounts have no leading zeros.
func amount(groups, seps []string) bool {
	if len(groups) == 2 && len(seps) == 1 && (seps[0] == "." || seps[0] == ",") && len(groups[1]) <= 2 &&
		(groups[0] == "0" || groups[0][0] != '0') {
		return true
	}
	return thousands(groups, seps)
}

// thousands recognises an amount with thousands separators:
// 1,234,567 or 1.234.567,89 or 1,234,567.89.
func thousands(groups, seps []string) bool {
	if len(groups) < 2 || len(groups[0]) > 3 || len(seps) != len(groups)-1 || (len(groups[0]) > 1 && groups[0][0] == '0') {
		return false
	}
	mark := seps[0]
	if mark != "," && mark != "." {
		return false
	}
	for i := 1; i < len(groups); i++ {
		last := i == len(groups)-1
		switch {
		case seps[i-1] == mark && len(groups[i]) == 3:
		case last && i > 1 && len(groups[i]) <= 2 && (seps[i-1] == "," || seps[i-1] == ".") && seps[i-1] != mark:
		default:
			return false
		}
	}
	return true
}

// luhn reports whether the digits of s pass the Luhn checksum.
func luhn(s string) bool {
	sum, double := 0, false
	for i := len(s) - 1; i >= 0; i-- {
		c := s[i]
		if c < '0' || c > '9' {
			continue
		}
		d := int(c - '0')
		if double {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}
