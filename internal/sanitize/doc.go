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
// Compared with github/github-mcp-server's pkg/sanitize, the state of the
// art this was measured against: that package removes a list of invisible
// code points and runs an HTML policy and a Markdown parser, because it
// must keep GitHub Markdown intact for round trips. Here the text is only
// ever shown, never written back, so it can be stricter and simpler: an
// allow-list of categories instead of a deny-list of code points (so
// unassigned code points, private use and new format characters are covered
// before anyone lists them), NFC, a cap on stacked combining marks, markup
// characters replaced rather than parsed (no parser differential), a length
// cap that never separates a character from its combining marks (a longer
// cluster, such as an emoji sequence, may be cut), a count of what was removed so the model can
// say so, and a fuzz test that checks idempotence and judges survivors by
// the unicode package's tables rather than by this package's own rules.
//
// Imports: x/text (unicode/norm).
package sanitize
