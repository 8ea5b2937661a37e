package refusal

import (
	"fmt"
	"net/http"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The application's own JSON-RPC codes. JSON-RPC reserves -32768..-32000
// for the protocol, and MCP 2026-07-28 reserves -32020..-32099 for codes
// the specification defines (implementations MUST NOT emit others from
// it), so these lie outside both, in a block whose last three digits
// recall the HTTP status of the same refusal.
const (
	CodeUnauthenticated = -31401
	CodeForbidden       = -31403
	CodeRateLimited     = -31429
	// CodeUnavailable: a dependency (the database, the credential or limit
	// store) could not answer in time; retry later.
	CodeUnavailable = -31503
)

// Kind is one way the server says no, or fails. Every client-facing
// refusal text, JSON-RPC code and HTTP status lives in the table below,
// once: the MCP gate, the HTTP layer, the stdio writer and the SDK-error
// rewriting all read it, so one kind of refusal looks the same wherever
// it happens.
type Kind int

// The kinds. Those answered as a tool result (isError: true), which a model
// reads and can act on, have no JSON-RPC code.
const (
	_ Kind = iota

	// Authentication and authorization.
	MissingCredential
	TokenInQuery
	InvalidCredential
	Unauthenticated // inside the MCP layer: stdio's key no longer valid
	MissingScope    // format: missing scopes, tool
	ScopeStepUp     // over HTTP, before the MCP layer: format: scopes the tool requires
	NoBinding
	ForeignCustomer // tool result

	// Limits.
	RateLimited // format: what, seconds
	TooManySessions

	// Dependencies.
	Unavailable

	// Requests the server will not read.
	BodyTooLarge
	UnreadableBody
	MalformedPayload
	ForeignHost
	ForeignOrigin

	// The protocol (texts for errors the go-sdk words itself, whose own
	// texts can quote input).
	ParseError
	InvalidRequest
	MethodNotFound
	InvalidParams
	UnknownTool
	UnsupportedVersion
	HeaderMismatch
	MissingCapabilities
	RequestFailed

	// The SDK's transport-level answers (HTTP statuses it writes itself).
	BadTransportRequest
	TransportForbidden
	UnknownSession
	HTTPMethodNotAllowed
	NotAcceptable
	UnsupportedMediaType

	// Tool outcomes a model can act on (tool results).
	InvalidArgument // format: field, rule
	NotFound
	NotCancellable
	QuotaExceeded

	// The human confirmation of destructive calls (tool results).
	ConfirmationUnavailable // format: tool
	Declined
	ConfirmationInvalid
	ConfirmationExpired
	ConfirmationAnswered

	// Anything else.
	Internal     // format: correlation id
	InternalHTTP // a panic before the MCP layer: no id to give
)

type entry struct {
	name    string // stable: the audit outcome and the access log's "refused"
	code    int64  // JSON-RPC code; 0 for a tool result
	status  int    // HTTP status when refused before the MCP layer; 0 when not
	message string // fixed text, a format for the kinds that say so
	denied  bool   // an access decision, for the audit trail
}

var table = [...]entry{
	MissingCredential: {"missing_credential", CodeUnauthenticated, http.StatusUnauthorized,
		"Authentication required: send Authorization: Bearer <api key or token>.", true},
	TokenInQuery: {"token_in_query", CodeUnauthenticated, http.StatusUnauthorized,
		"Credentials are only accepted in the Authorization header.", true},
	InvalidCredential: {"invalid_credential", CodeUnauthenticated, http.StatusUnauthorized,
		"Invalid credential.", true},
	Unauthenticated: {"unauthenticated", CodeUnauthenticated, http.StatusUnauthorized,
		"Unauthenticated: the credential is missing, unknown, expired or revoked. Check the API key this client is configured with.", true},
	MissingScope: {"denied", CodeForbidden, http.StatusForbidden,
		"Forbidden: this credential lacks the scope %s required by %s.", true},
	ScopeStepUp: {"insufficient_scope", CodeForbidden, http.StatusForbidden,
		"Forbidden: this credential lacks the scope %s this tool requires.", true},
	NoBinding: {"denied", CodeForbidden, http.StatusForbidden,
		"Forbidden: this credential is bound to no customer and is not staff.", true},
	ForeignCustomer: {"foreign_customer", 0, 0,
		"Not allowed: this credential can only list its own customer's orders. Omit customer_id.", true},

	RateLimited: {"rate_limited", CodeRateLimited, http.StatusTooManyRequests,
		"Too many requests: the limit on %s was reached. Retry in %d seconds.", true},
	TooManySessions: {"too_many_sessions", CodeRateLimited, http.StatusTooManyRequests,
		"Too many open sessions for this credential. Close one (DELETE) or wait for one to expire.", true},

	Unavailable: {"unavailable", CodeUnavailable, http.StatusServiceUnavailable,
		"Temporarily unavailable. Please retry shortly.", false},

	BodyTooLarge:   {"body_too_large", jsonrpc.CodeInvalidRequest, http.StatusRequestEntityTooLarge, "Request body too large.", true},
	UnreadableBody: {"unreadable_body", jsonrpc.CodeParseError, http.StatusBadRequest, "Could not read the request body.", true},
	MalformedPayload: {"malformed_payload", jsonrpc.CodeInvalidRequest, http.StatusBadRequest,
		"Bad request: send exactly one JSON-RPC request object (batches are not accepted).", true},
	ForeignHost:   {"foreign_host", jsonrpc.CodeInvalidRequest, http.StatusForbidden, "Forbidden: unknown Host.", true},
	ForeignOrigin: {"foreign_origin", jsonrpc.CodeInvalidRequest, http.StatusForbidden, "Forbidden: this origin may not call the MCP endpoint.", true},

	ParseError:          {"parse_error", jsonrpc.CodeParseError, http.StatusBadRequest, "Parse error: send one JSON-RPC message at a time.", true},
	InvalidRequest:      {"invalid_request", jsonrpc.CodeInvalidRequest, http.StatusBadRequest, "Invalid request.", true},
	MethodNotFound:      {"method_not_found", jsonrpc.CodeMethodNotFound, http.StatusNotFound, "Method not available on this server.", true},
	InvalidParams:       {"invalid_params", jsonrpc.CodeInvalidParams, http.StatusBadRequest, "Invalid parameters.", true},
	UnknownTool:         {"unknown_tool", jsonrpc.CodeInvalidParams, 0, "Unknown tool. Call tools/list to see the tools this credential may use.", true},
	UnsupportedVersion:  {"unsupported_version", mcp.CodeUnsupportedProtocolVersion, http.StatusBadRequest, "Unsupported protocol version.", true},
	HeaderMismatch:      {"header_mismatch", mcp.CodeHeaderMismatch, http.StatusBadRequest, "Header mismatch: the MCP request headers must agree with the request body.", true},
	MissingCapabilities: {"missing_capabilities", mcp.CodeMissingRequiredClientCapabilities, http.StatusBadRequest, "This request needs a client capability the client did not declare.", true},
	RequestFailed:       {"request_failed", 0, 0, "Request failed.", true},

	BadTransportRequest: {"transport_400", jsonrpc.CodeInvalidRequest, http.StatusBadRequest,
		"Bad request: send one JSON-RPC request with Content-Type application/json and Accept application/json, text/event-stream.", true},
	TransportForbidden:   {"transport_403", jsonrpc.CodeInvalidRequest, http.StatusForbidden, "Forbidden.", true},
	UnknownSession:       {"transport_404", jsonrpc.CodeInvalidRequest, http.StatusNotFound, "Not found: unknown or expired session.", true},
	HTTPMethodNotAllowed: {"transport_405", jsonrpc.CodeInvalidRequest, http.StatusMethodNotAllowed, "Method not allowed.", true},
	NotAcceptable: {"transport_406", jsonrpc.CodeInvalidRequest, http.StatusNotAcceptable,
		"Not acceptable: Accept must allow application/json and text/event-stream.", true},
	UnsupportedMediaType: {"transport_415", jsonrpc.CodeInvalidRequest, http.StatusUnsupportedMediaType, "Content-Type must be application/json.", true},

	InvalidArgument: {"invalid_input", 0, 0, "Invalid %s: %s", false},
	NotFound:        {"not_found", 0, 0, "Order not found. Check the order id; only orders this credential may see can be looked up.", false},
	NotCancellable:  {"not_cancellable", 0, 0, "This order has already shipped (or was delivered or returned) and can no longer be cancelled.", false},
	QuotaExceeded:   {"quota_exceeded", 0, 0, "The daily cancellation limit for this customer has been reached. Try again tomorrow or contact support.", true},

	ConfirmationUnavailable: {"confirmation_unavailable", 0, 0,
		"Nothing was changed: this server runs %s only after the user confirms it through the client (CANCEL_CONFIRMATION=required), " +
			"and this client cannot be asked: it declared no form elicitation, or it is a stateless HTTP client of protocol 2025-11-25. " +
			"Use a client that supports elicitation, or ask the server's operator.", true},
	Declined: {"declined", 0, 0,
		"Nothing was changed: the user did not confirm. Do not call this tool again for the same request unless the user asks for it anew.", false},
	ConfirmationInvalid: {"confirmation_invalid", 0, 0,
		"Nothing was changed: this confirmation does not belong to this call (it was altered, or issued for another caller or other arguments). " +
			"Call the tool again to ask the user anew.", true},
	ConfirmationExpired: {"confirmation_expired", 0, 0,
		"Nothing was changed: the confirmation expired before it was answered. Call the tool again to ask the user anew.", true},
	ConfirmationAnswered: {"confirmation_answered", 0, 0,
		"Nothing was changed: this confirmation was already answered, and an answer counts once. Call the tool again to ask the user anew.", true},

	Internal:     {"error", jsonrpc.CodeInternalError, http.StatusInternalServerError, "Internal error, reference %s. Please try again later.", false},
	InternalHTTP: {"panic", jsonrpc.CodeInternalError, http.StatusInternalServerError, "Internal error.", false},
}

// Name is the kind's stable name: the audit outcome, and the reason the
// access log and the refusal aggregate record.
func (k Kind) Name() string { return table[k].name }

// Code is the JSON-RPC error code, or 0 for a kind answered as a tool
// result.
func (k Kind) Code() int64 { return table[k].code }

// HTTPStatus is the status of this refusal when the HTTP layer makes it.
func (k Kind) HTTPStatus() int { return table[k].status }

// Denied reports whether the kind is an access decision (the audit
// trail's decision "denied") rather than a failure.
func (k Kind) Denied() bool { return table[k].denied }

// Message is the client-facing text. The kinds whose text is a format
// take their arguments here; every argument must be text of this server's
// (a scope, a tool name from the tool list, a number, a correlation id),
// never the client's.
func (k Kind) Message(args ...any) string {
	if len(args) == 0 {
		return table[k].message
	}
	return fmt.Sprintf(table[k].message, args...)
}

// Error is the kind as a JSON-RPC error, with data when given.
func (k Kind) Error(data []byte, args ...any) *jsonrpc.Error {
	return &jsonrpc.Error{Code: k.Code(), Message: k.Message(args...), Data: data}
}

// Kinds lists every kind, for tests that check the table.
func Kinds() []Kind {
	out := make([]Kind, 0, len(table)-1)
	for k := range table {
		if k > 0 {
			out = append(out, Kind(k))
		}
	}
	return out
}

// ByHTTPStatus returns the kind of an HTTP error the go-sdk's transport
// wrote itself, without a JSON-RPC body.
func ByHTTPStatus(status int) Kind {
	switch status {
	case http.StatusBadRequest:
		return BadTransportRequest
	case http.StatusForbidden:
		return TransportForbidden // a session of another principal (the Host check runs before the SDK's)
	case http.StatusNotFound:
		return UnknownSession
	case http.StatusMethodNotAllowed:
		return HTTPMethodNotAllowed
	case http.StatusNotAcceptable:
		return NotAcceptable
	case http.StatusRequestEntityTooLarge:
		return BodyTooLarge
	case http.StatusUnsupportedMediaType:
		return UnsupportedMediaType
	}
	return RequestFailed
}

// ByCode returns the kind the go-sdk means by a JSON-RPC code it produced
// itself, for replacing its text with ours.
func ByCode(code int64) Kind {
	switch code {
	case jsonrpc.CodeParseError:
		return ParseError
	case 0, jsonrpc.CodeInvalidRequest: // the SDK returns some errors without a code
		return InvalidRequest
	case jsonrpc.CodeMethodNotFound:
		return MethodNotFound
	case jsonrpc.CodeInvalidParams:
		return InvalidParams
	case jsonrpc.CodeInternalError, mcp.CodeURLElicitationRequired:
		// The server never asks for URL elicitation, and a 2026-07-28
		// client must never receive that code: whatever produced it is a
		// bug, reported as one.
		return InternalHTTP
	case mcp.CodeUnsupportedProtocolVersion:
		return UnsupportedVersion
	case mcp.CodeHeaderMismatch:
		return HeaderMismatch
	case mcp.CodeMissingRequiredClientCapabilities:
		return MissingCapabilities
	}
	return RequestFailed
}
