package httpserver_test

// Helpers for cancelling through the user's confirmation over raw HTTP.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/example/order-mcp/internal/testenv"
)

// A raw request (helpers_test.go) speaks 2025-11-25 without a session: the server
// cannot send such a client a question, so under the production default
// (CANCEL_CONFIRMATION=required) it cannot cancel. A raw client that
// cancels speaks 2026-07-28, declares form elicitation, and answers the
// server's question as a go-sdk client whose user accepts would: confirmed
// does that.

// as2026 returns a tools/call body as a 2026-07-28 client sends it (the
// protocol version and client capabilities in _meta), carrying state and
// answer when state is set, and the headers that go with it.
func as2026(t testing.TB, body, state string, answer map[string]any) (string, map[string]string) {
	t.Helper()
	var msg map[string]any
	if err := json.Unmarshal([]byte(body), &msg); err != nil {
		t.Fatalf("not a JSON-RPC body: %v", err)
	}
	params, _ := msg["params"].(map[string]any)
	if params == nil {
		params = map[string]any{}
		msg["params"] = params
	}
	params["_meta"] = map[string]any{
		"io.modelcontextprotocol/protocolVersion":    testenv.Protocol20260728,
		"io.modelcontextprotocol/clientCapabilities": map[string]any{"elicitation": map[string]any{"form": map[string]any{}}},
	}
	if state != "" {
		params["requestState"] = state
		params["inputResponses"] = map[string]any{"confirm": answer}
	}
	header := map[string]string{"MCP-Protocol-Version": testenv.Protocol20260728, "Mcp-Method": fmt.Sprint(msg["method"])}
	if name, ok := params["name"].(string); ok {
		header["Mcp-Name"] = name
	}
	return jsonOf(msg), header
}

// askedToConfirm returns the state of an answer that asks the user to
// confirm (an input_required result), if it is one.
func askedToConfirm(r response) (string, bool) {
	var m struct {
		Result *struct {
			ResultType    string                     `json:"resultType"`
			RequestState  string                     `json:"requestState"`
			InputRequests map[string]json.RawMessage `json:"inputRequests"`
		} `json:"result"`
	}
	if r.status != http.StatusOK || json.Unmarshal([]byte(r.body), &m) != nil || m.Result == nil ||
		m.Result.ResultType != "input_required" || m.Result.RequestState == "" || len(m.Result.InputRequests) != 1 {
		return "", false
	}
	return m.Result.RequestState, true
}

// accept is a user's "yes" to a confirmation.
var accept = map[string]any{"action": "accept", "content": map[string]any{"confirm": true}}

// confirmed sends r (a tools/call) as a 2026-07-28 client whose user
// accepts every confirmation: when the server asks, it sends the retry
// with the state and the user's "accept", and returns the retry's answer;
// any other first answer (a refusal before the question, or a tool that
// asks nothing) is returned as it is.
func confirmed(t testing.TB, c *http.Client, base string, r request) response {
	t.Helper()
	orig, extra := r.body, r.header
	var header map[string]string
	r.body, header = as2026(t, orig, "", nil)
	r.header = merge(header, extra)
	first := do(t, c, base, r)
	state, asked := askedToConfirm(first)
	if !asked {
		return first
	}
	r.body, header = as2026(t, orig, state, accept)
	r.header = merge(header, extra)
	return do(t, c, base, r)
}

// merge is a copy of a with b's entries on top.
func merge(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}
