// Package sanitize cleans untrusted text before a model reads it.
//
// Checklist: "Input validation: validate and sanitize all incoming data".
// Text that came from outside the trust boundary (here: the delivery
// instructions a customer typed at checkout) is useful to return, but it can
// carry prompt injection, some of it invisible to the humans reviewing the
// conversation: Unicode tag characters that spell out instructions, bidi
// overrides that make text read differently than it is stored, zero-width
// characters that split words past filters. Text runs through
// UntrustedText, and tools return it in a field whose name and description
// say it is untrusted customer text, never merged into anything the model
// could take as instructions.
//
// The rules are by Unicode category, not a hand-made list of bad code points
// (which is always one code point short). See UntrustedText.
//
// Imports: the standard library and golang.org/x/text/unicode/norm only.
package sanitize
