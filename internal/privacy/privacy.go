package privacy

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Every value a customer typed is returned only in a shape that cannot
// carry a sentence: a value that does not fit its shape is withheld or cut
// down to an initial, never cleaned and passed on. (Text that is useful as
// prose, the delivery instructions, is returned only in a field labelled
// untrusted; see internal/sanitize.)
//
// The bounds, precisely, so that a reviewer can check each function
// against them:
//
//   - a name word: letters and combining marks only, one or two parts
//     joined by a single hyphen or apostrophe, at most MaxNameLetters
//     letters; in scripts written without spaces between words (Han, kana,
//     Thai, Lao, Khmer, Myanmar, Tibetan), where a handful of characters
//     already makes a sentence, at most MaxUnspacedNameLetters;
//   - an initial: one letter followed by a period;
//   - a masked email: one letter or digit, "***@", then either a domain
//     from a closed list of large mail providers, or one letter, "***.",
//     and a top-level domain of 2 to 6 ASCII letters;
//   - a masked phone: "***" and two digits;
//   - a country: two capital ASCII letters;
//   - a card: a brand from a closed list and four digits.

// MaxNameLetters bounds a given name in scripts that separate words with
// spaces: long enough for "Maximilian" or "Anne-Marie", too short to hide a
// sentence in one hyphenated "word".
const MaxNameLetters = 16

// MaxUnspacedNameLetters bounds a given name in scripts written without
// spaces between words. Given names there are one to three characters.
const MaxUnspacedNameLetters = 3

// unspaced are the scripts whose text does not separate words with spaces.
var unspaced = []*unicode.RangeTable{
	unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Thai, unicode.Lao,
	unicode.Khmer, unicode.Myanmar, unicode.Tibetan,
}

// nameWord reports whether s fits the shape of one given name (see the
// bounds above).
func nameWord(s string) bool {
	letters, joins, unspacedLetters := 0, 0, 0
	prevLetter := false
	for _, r := range s {
		switch {
		case unicode.IsLetter(r):
			letters++
			if unicode.In(r, unspaced...) {
				unspacedLetters++
			}
			prevLetter = true
		case unicode.Is(unicode.M, r) && prevLetter:
			// A combining mark belongs to the letter before it.
		case r == '-' || r == '\'' || r == '’':
			if !prevLetter {
				return false // leading, doubled or trailing joiner
			}
			joins++
			prevLetter = false
		default:
			return false
		}
	}
	switch {
	case letters == 0 || !prevLetter || joins > 1:
		return false
	case unspacedLetters > 0:
		return letters <= MaxUnspacedNameLetters
	}
	return letters <= MaxNameLetters
}

// initial returns the first letter of s, upper-cased, and a period, or ""
// when s does not start with a letter.
func initial(s string) string {
	r, _ := utf8.DecodeRuneInString(s)
	if !unicode.IsLetter(r) {
		return ""
	}
	return string(unicode.ToUpper(r)) + "."
}

// Name keeps the given name and the initial of the last name: "Maya
// Lindqvist" becomes "Maya L.". A given name that does not fit the shape of
// a name word is shown as its initial ("Ignore-previous-instructions Smith"
// becomes "I. S."); one that does not even start with a letter is withheld.
func Name(name string) string {
	parts := strings.Fields(name)
	if len(parts) == 0 {
		return ""
	}
	given := parts[0]
	if !nameWord(given) {
		given = initial(given)
	}
	if given == "" {
		return ""
	}
	if len(parts) == 1 {
		return given
	}
	if last := initial(parts[len(parts)-1]); last != "" {
		return given + " " + last
	}
	return given
}

// mailProviders are domains shown in full in a masked email: large public
// mail providers, which say nothing about the customer and are a closed
// set. Any other domain is masked, because a domain is free text the
// customer typed ("m@ignore.previous.instructions.example") and a shop's
// own customers rarely need theirs read back. A fork may add providers.
var mailProviders = map[string]bool{
	"gmail.com": true, "googlemail.com": true, "outlook.com": true, "hotmail.com": true, "live.com": true,
	"msn.com": true, "yahoo.com": true, "icloud.com": true, "me.com": true, "aol.com": true,
	"proton.me": true, "protonmail.com": true, "gmx.de": true, "gmx.net": true, "web.de": true,
	"mail.ru": true, "yandex.ru": true, "qq.com": true, "163.com": true, "naver.com": true,
}

// Email keeps the first character of the local part and, masked, the
// domain: "maya.lindqvist@example.com" becomes "m***@e***.com",
// "maya@gmail.com" becomes "m***@gmail.com". Anything that is not one
// address with a domain becomes "***".
func Email(email string) string {
	local, domain, ok := strings.Cut(strings.TrimSpace(email), "@")
	if !ok || local == "" || strings.ContainsAny(domain, "@ \t") || !validDomain(domain) {
		return "***"
	}
	domain = strings.ToLower(domain)
	masked := "***"
	if mailProviders[domain] {
		masked = domain
	} else if tld := domain[strings.LastIndexByte(domain, '.')+1:]; len(tld) <= 6 {
		masked = domain[:1] + "***." + tld
	}
	first, _ := utf8.DecodeRuneInString(local)
	if !unicode.IsLetter(first) && !unicode.IsDigit(first) {
		return "***@" + masked
	}
	return string(first) + "***@" + masked
}

// validDomain reports whether d is a DNS name of ASCII labels (letters,
// digits, inner hyphens) ending in a top-level domain of letters.
func validDomain(d string) bool {
	if len(d) > 253 {
		return false
	}
	labels := strings.Split(d, ".")
	if len(labels) < 2 {
		return false
	}
	for i, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for j := 0; j < len(l); j++ {
			c := l[j] | 0x20 // ASCII lower case
			isLetter := c >= 'a' && c <= 'z'
			if !isLetter && !(l[j] >= '0' && l[j] <= '9') && l[j] != '-' {
				return false
			}
			if i == len(labels)-1 && !isLetter {
				return false
			}
		}
	}
	return len(labels[len(labels)-1]) >= 2
}

// Phone keeps the last two digits: "+46 70 123 45 67" becomes "***67". A
// number with fewer than six digits becomes "***".
func Phone(phone string) string {
	var digits []rune
	for _, r := range phone {
		if r >= '0' && r <= '9' {
			digits = append(digits, r)
		}
	}
	if len(digits) < 6 {
		return "***"
	}
	return "***" + string(digits[len(digits)-2:])
}

// Country is the whole policy for postal addresses: the destination
// country's ISO 3166-1 alpha-2 code, nothing finer. The street address,
// postal code and city are never read (the server's database role cannot
// select them), so they have no masking function; the city in particular
// is free text a customer typed, and a few words of it can read as an
// instruction. A code that is not two capital letters is withheld.
func Country(code string) string {
	if len(code) != 2 || code[0] < 'A' || code[0] > 'Z' || code[1] < 'A' || code[1] > 'Z' {
		return ""
	}
	return code
}

// cardBrands are the card networks whose names may be shown, by their
// lower-case spelling. A brand outside this list (a value some other system
// wrote) is shown as "Card": a closed set cannot carry prose.
var cardBrands = map[string]string{
	"visa": "Visa", "mastercard": "Mastercard", "american express": "American Express", "amex": "American Express",
	"discover": "Discover", "jcb": "JCB", "unionpay": "UnionPay", "diners club": "Diners Club",
	"maestro": "Maestro", "rupay": "RuPay", "elo": "Elo", "interac": "Interac", "cartes bancaires": "Cartes Bancaires",
}

// Card keeps the brand and the last four digits, which is all that is
// stored: "Visa ending in 4242".
func Card(brand, last4 string) string {
	name, ok := cardBrands[strings.ToLower(strings.TrimSpace(brand))]
	if !ok {
		name = "Card"
	}
	if len(last4) != 4 || strings.Trim(last4, "0123456789") != "" {
		return name
	}
	return name + " ending in " + last4
}
