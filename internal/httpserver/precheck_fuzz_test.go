package httpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// FuzzPrecheckAgreesWithSDK holds the JSON-RPC pre-check (readRequest,
// behind inspect) to its one promise: whenever it accepts a body, the
// go-sdk reads the same request out of it. The HTTP layer decides the
// scope step-up and the per-principal tool budget on what readRequest
// returns, so a body it reads as get_order_status while the SDK runs
// cancel_order would let a read-only caller through to a write. The
// pre-check may refuse more than the SDK (a refusal costs the caller one
// 400), never see less.
//
// The SDK's reading is taken from the SDK itself, twice:
//
//   - its message decoder (jsonrpc.DecodeMessage) must find a request with
//     the same method, or, when readRequest saw no method, no request;
//   - a bare go-sdk server behind the SDK's Streamable HTTP handler, set up
//     as ours is (stateless, JSON answers) but with no MCP-Protocol-Version
//     header, so that the SDK also unpacks batches, records every request
//     its method dispatch receives. At most one may arrive, its method must
//     be readRequest's, and for tools/call the tool name and arguments
//     the SDK decoded into mcp.CallToolParamsRaw must be readRequest's.
//
// The seeds are the classic parser-differential shapes (batches,
// duplicate and case-variant keys, trailing data, escapes in names,
// nulls, deep nesting); more are in testdata/fuzz/FuzzPrecheckAgreesWithSDK.
func FuzzPrecheckAgreesWithSDK(f *testing.F) {
	for _, seed := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_order_status","arguments":{"order_id":"ord_7QK2M9XWBR4TZP3H"}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"cancel_order","arguments":{"order_id":"ord_7QK2M9XWBR4TZP3H","reason":"duplicate_order"}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`{"jsonrpc":"2.0","id":"a","result":{}}`,
		// Batches: one call must not ride on another's scope check.
		`[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"cancel_order","arguments":{}}}]`,
		` [{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"cancel_order"}}]`,
		// Duplicate keys, at the top and inside params.
		`{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call","params":{"name":"cancel_order"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_order_status","name":"cancel_order","arguments":{}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_order_status","arguments":{},"arguments":{"order_id":"x"}}}`,
		// Keys that differ only in case: encoding/json folds them, the SDK does not.
		`{"jsonrpc":"2.0","id":1,"Method":"tools/call","method":"tools/list","params":{"name":"cancel_order"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"NAME":"get_order_status","name":"cancel_order"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"Name":"cancel_order"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"cancel_order","Arguments":{"order_id":"ord_7QK2M9XWBR4TZP3H"}}}`,
		// Trailing data: a second request, or junk, after the first.
		`{"jsonrpc":"2.0","id":1,"method":"tools/list"}{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"cancel_order"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/list"}]`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/list"} x`,
		// Escapes in the method and the tool name.
		`{"jsonrpc":"2.0","id":1,"method":"tools\/call","params":{"name":"cancel\u005forder"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools\u002fcall","params":{"name":"\u0063ancel_order"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call\u0000","params":{"name":"cancel_order"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"cancel_order\ud800"}}`,
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"cancel_order\xff\"}}",
		// Nulls where values are expected.
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":null}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":null,"arguments":null}}`,
		`{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"cancel_order"}}`,
		`{"jsonrpc":"2.0","id":1,"method":null}`,
		`null`,
		// Deep nesting, inside the arguments and around the message.
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_order_status","arguments":{"a":` + strings.Repeat(`[`, 70) + strings.Repeat(`]`, 70) + `}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_order_status","arguments":{"a":` + strings.Repeat(`[`, 60) + strings.Repeat(`]`, 60) + `}}}`,
		// The protocol version in _meta (the sessionless protocol).
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"cancel_order","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		method, tool, args, err := readRequest(body)
		if err != nil {
			return // the pre-check may refuse more than the SDK
		}

		msg, err := jsonrpc.DecodeMessage(body)
		if err != nil {
			t.Fatalf("pre-check accepted a body the SDK's decoder refuses (%v): %q", err, body)
		}
		if req, ok := msg.(*jsonrpc.Request); ok {
			if req.Method != method {
				t.Fatalf("pre-check read method %q, the SDK's decoder %q: %q", method, req.Method, body)
			}
		} else if method != "" || tool != "" {
			t.Fatalf("pre-check read method %q, tool %q from what the SDK decodes as a %T: %q", method, tool, msg, body)
		}

		seen := receiveWithSDK(t, body)
		if len(seen) > 1 {
			t.Fatalf("pre-check read one request (%q), the SDK received %d: %q", method, len(seen), body)
		}
		for _, got := range seen {
			if got.method != method {
				t.Fatalf("pre-check read method %q, the SDK dispatched %q: %q", method, got.method, body)
			}
			if got.method != "tools/call" {
				continue
			}
			if got.tool != tool {
				t.Fatalf("pre-check read tool %q, the SDK decoded %q: %q", tool, got.tool, body)
			}
			if !sameArguments(args, got.args) {
				t.Fatalf("pre-check read arguments %q, the SDK decoded %q: %q", args, got.args, body)
			}
		}
	})
}

// sdkRequest is one request as the go-sdk's method dispatch received it.
type sdkRequest struct {
	method string
	tool   string          // tools/call only
	args   json.RawMessage // tools/call only
}

// errRecorded stops the SDK's dispatch once a request is recorded: what a
// handler would do with it is not the question.
var errRecorded = errors.New("recorded")

// receiveWithSDK posts body to a fresh bare go-sdk server (a fresh one per
// body, so that a notification the SDK finishes after the HTTP answer can
// only be recorded against its own body) and returns what its method
// dispatch received.
func receiveWithSDK(t *testing.T, body []byte) []sdkRequest {
	t.Helper()
	var mu sync.Mutex
	var seen []sdkRequest
	server := mcp.NewServer(&mcp.Implementation{Name: "precheck-oracle", Version: "0"}, nil)
	server.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			r := sdkRequest{method: method}
			if p, ok := req.GetParams().(*mcp.CallToolParamsRaw); ok && p != nil {
				r.tool, r.args = p.Name, p.Arguments
			}
			mu.Lock()
			seen = append(seen, r)
			mu.Unlock()
			return nil, errRecorded
		}
	})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server },
		&mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true})
	req := httptest.NewRequest(http.MethodPost, "/mcp", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	h.ServeHTTP(httptest.NewRecorder(), req)
	mu.Lock()
	defer mu.Unlock()
	return append([]sdkRequest(nil), seen...)
}

// sameArguments compares raw arguments. Absent and JSON null are the same
// call (both mean "no arguments" to the tools' checks and to the SDK's
// schema validation); anything else must be the same bytes.
func sameArguments(a, b json.RawMessage) bool {
	none := func(m json.RawMessage) bool { return len(m) == 0 || string(m) == "null" }
	if none(a) || none(b) {
		return none(a) && none(b)
	}
	return bytes.Equal(a, b)
}
