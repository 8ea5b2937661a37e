package mcpserver

import (
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// traceID returns the trace id of the W3C trace context the client sent
// with a call, or "": from the request's params._meta ("traceparent", the
// key MCP 2026-07-28 reserves for it), else from the HTTP header of the
// same name. The value is validated strictly against the W3C Trace Context
// format before anything of it is used: a client's text must not reach the
// log or the audit trail by way of a header.
func traceID(req *mcp.CallToolRequest) string {
	if v, ok := req.Params.Meta["traceparent"].(string); ok {
		return parseTraceparent(v)
	}
	if extra := req.GetExtra(); extra != nil && extra.Header != nil {
		if vs := extra.Header.Values("traceparent"); len(vs) == 1 {
			return parseTraceparent(vs[0])
		}
	}
	return ""
}

// parseTraceparent returns the trace id of a traceparent value
// ("00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>"), or "" when the
// value is not one: a version other than 00, upper-case or non-hex
// digits, an all-zero trace or parent id, or anything extra (W3C Trace
// Context, section 3.2).
func parseTraceparent(v string) string {
	if len(v) != 55 || v[0:3] != "00-" || v[35] != '-' || v[52] != '-' {
		return ""
	}
	trace, parent, flags := v[3:35], v[36:52], v[53:55]
	if !lowerHex(trace) || !lowerHex(parent) || !lowerHex(flags) || allZero(trace) || allZero(parent) {
		return ""
	}
	return trace
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func allZero(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '0' {
			return false
		}
	}
	return true
}
