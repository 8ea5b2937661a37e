// Package logging builds the server's one slog handler pipeline and the
// redaction it starts with.
//
// Checklist: "Logging: mask sensitive fields in logs". Every log line passes
// through Redact before any sink sees it:
//
//   - by key: an attribute whose key names a secret or personal data
//     (authorization, token, api_key, password, secret, email, phone,
//     address, card, internal_note, delivery_instructions, ...), at any
//     depth of nested groups, is replaced by "[REDACTED]";
//   - by value: anything that looks like one of this project's API keys, a
//     JWT, a bearer credential, an email address, an international phone
//     number or a password inside a connection URL is masked wherever it
//     appears, in any attribute or in the message itself.
//
// The pipeline is built with samber/slog-multi: Pipe(redaction) in front of
// Fanout(sinks...). Two pitfalls are handled here rather than left to each
// caller: the redaction is an inline middleware that also wraps WithAttrs
// and WithGroup (a Handle-only middleware would miss attributes added with
// logger.With), and a fresh Pipe is built for every logger (reusing one Pipe
// value for a second handler silently drops the redaction).
//
// Logs go to stderr (stdout belongs to the stdio transport) as JSON lines
// in production, and as text lines (slog's key=value form) in development:
// New and NewFormat differ only in the handler at the end of the pipeline,
// so both formats carry exactly the same redacted record.
//
// Imports: slog-multi. Never another package of this module: every package
// logs through it.
package logging
