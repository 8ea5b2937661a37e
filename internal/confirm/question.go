package confirm

import (
	"fmt"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Policy is the operator's choice (CANCEL_CONFIRMATION) for clients that
// cannot be asked.
type Policy string

// The policies.
const (
	// Required: a destructive tool runs only after the user confirmed it; a
	// client that cannot be asked is refused. The production default.
	Required Policy = "required"
	// IfSupported: ask when the client can be asked; otherwise run under the
	// budgets and quotas alone. The development default.
	IfSupported Policy = "if-supported"
	// Off: never ask.
	Off Policy = "off"
)

// ParsePolicy reads CANCEL_CONFIRMATION.
func ParsePolicy(s string) (Policy, error) {
	switch p := Policy(s); p {
	case Required, IfSupported, Off:
		return p, nil
	}
	return "", fmt.Errorf("unknown confirmation policy %q", s)
}

// protocolMultiRoundTrip is the first protocol version in which a result
// may carry input requests for the client to fulfil and retry (SEP-2322).
const protocolMultiRoundTrip = "2026-07-28"

// CanAsk reports whether the client of req can be asked to confirm: it
// declared form elicitation, and its answer can reach the server.
//
//   - From 2026-07-28 the answer comes back in the client's retry of the
//     same call, and the capabilities come with each request (its _meta;
//     req.ClientCapabilities reads them).
//   - Before 2026-07-28 the server must send elicitation/create and wait,
//     which needs a session (stdio, stateful HTTP); capabilities are
//     declared once, at initialize. A stateless request has no initialize
//     of its own (the SDK makes one up, with no capabilities), so a
//     stateless 2025-11-25 client cannot be asked, whatever its _meta
//     claims.
//
// The specification forbids sending a client input requests it did not
// declare: this is checked before any question is asked.
func CanAsk(req *mcp.CallToolRequest) bool {
	if req == nil || req.Session == nil {
		return false
	}
	var caps *mcp.ClientCapabilities
	if ip := req.Session.InitializeParams(); ip == nil || ip.ProtocolVersion >= protocolMultiRoundTrip {
		caps = req.ClientCapabilities()
	} else {
		caps = ip.Capabilities
	}
	return formElicitation(caps)
}

// InSession reports whether a question to the client of req is asked by
// the SDK within this very call (an older protocol: the SDK sends
// elicitation/create and calls the tool again with the answer) rather than
// returned to the client to answer in a new call (2026-07-28).
func InSession(req *mcp.CallToolRequest) bool {
	if req == nil || req.Session == nil {
		return false
	}
	ip := req.Session.InitializeParams()
	return ip != nil && ip.ProtocolVersion < protocolMultiRoundTrip
}

// formElicitation: an elicitation capability with neither mode named means
// form (the specification's rule for clients older than URL mode).
func formElicitation(c *mcp.ClientCapabilities) bool {
	if c == nil || c.Elicitation == nil {
		return false
	}
	return c.Elicitation.Form != nil || c.Elicitation.URL == nil
}

// RequestID is the id of the one input request a confirmation makes.
const RequestID = "confirm"

// field is the form's one property.
const field = "confirm"

// Question is the input request that asks the user: a form with a single
// required boolean. message must be built from fixed words and values the
// server controls (an order id, a status, a count, an amount), never from
// text a customer or the model typed, and must never ask for a secret: the
// client shows it to the user as the server's question.
func Question(message, title string) mcp.InputRequestMap {
	return mcp.InputRequestMap{RequestID: &mcp.ElicitParams{
		Mode:    "form",
		Message: message,
		RequestedSchema: &jsonschema.Schema{
			Type: "object",
			Properties: map[string]*jsonschema.Schema{
				field: {Type: "boolean", Title: title,
					Description: "Tick to confirm. Leave it, or decline, to change nothing."},
			},
			Required: []string{field},
		},
	}}
}

// Answer is the user's answer, as recorded.
type Answer string

// The answers.
const (
	// Accept: the client says its user accepted the form with confirm true.
	Accept Answer = "accept"
	// Decline: the user declined, or accepted with confirm false.
	Decline Answer = "decline"
	// Dismiss: the user closed the form without choosing ("cancel").
	Dismiss Answer = "cancel"
)

// ReadAnswer reads the user's answer from a retried call's inputResponses:
// exactly one response, to RequestID, an elicitation result. "accept"
// counts only with confirm exactly true; anything malformed is ErrInvalid,
// never a yes.
func ReadAnswer(responses mcp.InputResponseMap) (Answer, error) {
	if len(responses) != 1 {
		return "", invalid(fmt.Sprintf("%d input responses, want one", len(responses)))
	}
	r, ok := responses[RequestID].(*mcp.ElicitResult)
	if !ok || r == nil {
		return "", invalid("no elicitation result for the confirmation")
	}
	switch r.Action {
	case "accept":
		if v, ok := r.Content[field].(bool); ok && v && len(r.Content) == 1 {
			return Accept, nil
		}
		if v, ok := r.Content[field].(bool); ok && !v && len(r.Content) == 1 {
			return Decline, nil
		}
		return "", invalid("accepted without a boolean confirm")
	case "decline":
		return Decline, nil
	case "cancel":
		return Dismiss, nil
	}
	return "", invalid("an answer that is neither accept, decline nor cancel")
}
