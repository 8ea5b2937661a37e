package privacy

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Email keeps the first character of the local part and the domain:
// "maya.lindqvist@example.com" becomes "m***@example.com". Something that
// is not an address becomes "***".
func Email(email string) string {
	local, domain, ok := strings.Cut(strings.TrimSpace(email), "@")
	if !ok || local == "" || domain == "" || strings.Contains(domain, "@") {
		return "***"
	}
	first, _ := utf8.DecodeRuneInString(local)
	return string(first) + "***@" + domain
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
// Lindqvist" becomes "Maya L.".
func Name(name string) string {
	parts := strings.Fields(name)
	switch len(parts) {
	case 0:
		return ""
	case 1:
		return parts[0]
	}
	last, _ := utf8.DecodeRuneInString(parts[len(parts)-1])
	return parts[0] + " " + string(unicode.ToUpper(last)) + "."
}

// Place is the whole policy for postal addresses: city and country only.
// The street address and postal code are never read (the server's database
// role cannot select them), so they have no masking function.
func Place(city, countryCode string) string {
	if city == "" {
		return countryCode
	}
	return city + ", " + countryCode
}

// Card keeps the brand and the last four digits, which is all that is
// stored: "Visa ending in 4242".
func Card(brand, last4 string) string {
	if len(last4) != 4 {
		return brand
	}
	return brand + " ending in " + last4
}
