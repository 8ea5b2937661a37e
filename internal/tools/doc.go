// Package tools is the whole surface the model can reach: narrowly scoped
// tools, listed in one place (All, Register). The README's table of tools
// is generated from All (reference.go, `make docs`), so it names every
// tool and nothing else; docs/ADDING-A-TOOL.md walks through adding one.
//
// Checklist: "Capability access: only expose what's strictly necessary".
// There is no query tool, no shell, no "admin" tool: each tool does one
// fixed thing with fixed SQL, and each declares next to its definition the
// scopes a caller needs (the MCP layer enforces them before any handler
// runs, and hides tools a caller may not call from tools/list).
//
// Every tool follows the same shape, so a new one can be added by copying:
//
//   - an input type with an explicit, strict JSON schema next to it
//     (additionalProperties false, patterns, maximum lengths, enums,
//     bounded integers), and a parse method that turns the raw strings
//     into domain types (OrderID, CustomerID) so the handler never touches
//     an unchecked string;
//   - an output type that is an allow-list: only fields written into it
//     leave the server, personal data only through internal/privacy, and
//     untrusted text only through internal/sanitize, in a field that says so;
//   - a handler that gets the caller from the context and the data binding
//     from the caller, and returns store errors unchanged: the MCP layer
//     maps every error to a safe message in one place.
//
// Imports: internal/audit, internal/auth, internal/confirm, internal/privacy, internal/refusal,
// internal/sanitize, internal/store, the go-sdk and jsonschema-go (the input
// schemas).
package tools
