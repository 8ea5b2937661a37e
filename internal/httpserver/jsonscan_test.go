package httpserver

import (
	"strings"
	"testing"
)

// TestScanRequestRefusesWhatCouldReadTwoWays: each body here could be read
// differently by two JSON decoders (or is not one JSON-RPC request), and
// the pre-check refuses it; the well-formed ones next to them are read.
func TestScanRequestRefusesWhatCouldReadTwoWays(t *testing.T) {
	call := func(params string) string {
		return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":` + params + `}`
	}
	refused := map[string]string{
		"Batch":                     `[` + call(`{"name":"cancel_order"}`) + `]`,
		"TrailingRequest":           call(`{"name":"get_order_status"}`) + `{}`,
		"DuplicateKey":              call(`{"name":"get_order_status","name":"cancel_order"}`),
		"CaseVariantKey":            call(`{"name":"get_order_status","NAME":"cancel_order"}`),
		"UnicodeCaseVariantKey":     `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"},"\u212aey":1,"key":2}`,
		"EscapedDuplicateKey":       call(`{"name":"get_order_status","n\u0061me":"cancel_order"}`),
		"LoneHighSurrogate":         call(`{"name":"cancel_order\ud800"}`),
		"LoneLowSurrogate":          call(`{"name":"\udc00cancel_order"}`),
		"InvalidUTF8":               call("{\"name\":\"cancel_order\xff\"}"),
		"ControlCharacter":          call("{\"name\":\"cancel\norder\"}"),
		"BadEscape":                 call(`{"name":"cancel\xorder"}`),
		"TooDeep":                   call(`{"name":"x","arguments":` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}`),
		"NoVersion":                 `{"id":1,"method":"tools/list"}`,
		"WrongVersion":              `{"jsonrpc":"1.0","id":1,"method":"tools/list"}`,
		"MethodNotAString":          `{"jsonrpc":"2.0","id":1,"method":["tools/call"]}`,
		"ToolCallWithoutName":       call(`{"arguments":{}}`),
		"ToolCallParamsNotAnObject": call(`[{"name":"cancel_order"}]`),
		"NameNotAString":            call(`{"name":{"x":"cancel_order"}}`),
		"ObjectID":                  `{"jsonrpc":"2.0","id":{},"method":"tools/list"}`,
		"NeitherRequestNorResponse": `{"jsonrpc":"2.0"}`,
		"NumberLeadingZero":         call(`{"name":"x","arguments":{"limit":01}}`),
		"ByteOrderMark":             "\ufeff" + call(`{"name":"x"}`),
	}
	for name, body := range refused {
		t.Run(name, func(t *testing.T) {
			if req, err := scanRequest([]byte(body)); err == nil {
				t.Fatalf("accepted as %+v", req)
			}
		})
	}
	read := []struct{ body, method, tool, args string }{
		{call(`{"name":"get_order_status","arguments":{"order_id":"ord_1"}}`), "tools/call", "get_order_status", `{"order_id":"ord_1"}`},
		{call(`{"name":"get\u005forder_status"}`), "tools/call", "get_order_status", ""},
		{`{"jsonrpc":"2.0","id":"a","method":"tools\/list"}`, "tools/list", "", ""},
		{`{"jsonrpc":"2.0","id":7,"result":{}}`, "", "", ""},
		{call(`{"name":"x","arguments":{"t":"\ud83d\ude00 \ufffd","n":-1.5e3}}`), "tools/call", "x", `{"t":"\ud83d\ude00 \ufffd","n":-1.5e3}`},
	}
	for _, r := range read {
		req, err := scanRequest([]byte(r.body))
		if err != nil || req.method != r.method || req.tool != r.tool || string(req.args) != r.args {
			t.Errorf("%s: read %+v, %v; want %q %q %q", r.body, req, err, r.method, r.tool, r.args)
		}
	}
}
