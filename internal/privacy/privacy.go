package privacy

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Every value a customer typed is returned only in a shape that cannot
// carry prose: a value that does not fit its shape is withheld rather than
// cleaned. (Text that is useful as prose, the delivery instructions, is
// returned only in a field labelled untrusted; see internal/sanitize.)

// domainRE is a DNS name: labels of letters, digits and hyphens.
var domainRE = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$`)

// Email keeps the first character of the local part and the domain:
// "maya.lindqvist@example.com" becomes "m***@example.com". Anything that is
// not an address with a DNS domain becomes "***".
func Email(email string) string {
	local, domain, ok := strings.Cut(strings.TrimSpace(email), "@")
	if !ok || local == "" || len(domain) > 253 || !domainRE.MatchString(domain) {
		return "***"
	}
	first, _ := utf8.DecodeRuneInString(local)
	if !unicode.IsLetter(first) && !unicode.IsDigit(first) {
		return "***@" + domain
	}
	return string(first) + "***@" + domain
}

// word reports whether s is one word of a name or a place: letters and
// combining marks, with inner apostrophes, hyphens and periods, at most
// max runes.
func word(s string, max int) bool {
	n := 0
	for i, r := range s {
		n++
		switch {
		case unicode.IsLetter(r), unicode.Is(unicode.M, r):
		case (r == '\'' || r == '-' || r == '.' || r == '’') && i > 0:
		default:
			return false
		}
	}
	return n > 0 && n <= max
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

// Name keeps the first given name and the initial of the last name: "Maya
// Lindqvist" becomes "Maya L.". A name that is not made of words (see
// word) is withheld: "".
func Name(name string) string {
	parts := strings.Fields(name)
	if len(parts) == 0 || !word(parts[0], 32) {
		return ""
	}
	if len(parts) == 1 {
		return parts[0]
	}
	last, _ := utf8.DecodeRuneInString(parts[len(parts)-1])
	if !unicode.IsLetter(last) {
		return parts[0]
	}
	return parts[0] + " " + string(unicode.ToUpper(last)) + "."
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
