// Package sdkfix holds the workarounds for go-sdk behaviours that would
// undermine a control, each in one place, named for what it works around,
// and each linking the upstream issue or the SDK code it answers:
//
//   - errortext.go: the SDK's own error answers quote the request (method
//     names, raw params, Go type names); over stdio every such answer
//     leaves with the catalogue's fixed text (SafeWriter);
//   - httperrors.go: the same over Streamable HTTP, for error statuses,
//     errors inside successful answers and event streams, plus an answer
//     the SDK never wrote (a 503, never an empty 200);
//   - logs.go: SDK log records that any client can trigger at ERROR level
//     are demoted, so they cannot flood an operator's error alerts.
//
// When a fix lands upstream, its workaround here can go: the tests that
// attack the behaviour (internal/mcpserver, internal/httpserver) keep
// failing until the SDK really behaves.
//
// Imports: internal/refusal and the go-sdk's jsonrpc package.
package sdkfix
