package tools_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/example/order-mcp/internal/audit"
	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/demo"
	"github.com/example/order-mcp/internal/store"
	"github.com/example/order-mcp/internal/tools"
)

// FuzzToolArgs throws arbitrary arguments at every tool of tools.All(),
// and holds Tool.Check, which the MCP layer runs before anything else
// reads them, to what it promises:
//
//   - it never panics;
//   - a refusal is an *InputError naming "arguments" or one of the tool's
//     own schema properties, and its message never repeats the input: a
//     token of eight or more letters, digits or underscores from the input
//     that shows up in the message is changed, letter by letter, and the
//     changed token must not show up in the new message (so a word the
//     message contains anyway, like "customer_request", is no finding,
//     while an echoed value is);
//   - it is at least as strict as the tool's input schema: arguments it
//     accepts pass the schema as the go-sdk applies it (resolved with
//     its defaults validated, defaults applied, then validated), with
//     absent and null arguments read as no arguments, as Check reads them;
//   - arguments it accepts get through the rest of the way: sent to the
//     tools' real registration on a go-sdk server (over an in-memory
//     session), the SDK hands them to the handler without a protocol error
//     or a panic, the handler's own parse accepts them, and the ids it
//     hands the store are ids the arguments named (or the caller's own
//     customer).
//
// Seeds beyond these are in testdata/fuzz/FuzzToolArgs.
func FuzzToolArgs(f *testing.F) {
	for _, seed := range []string{
		``, `null`, `{}`, `[]`, `"ord_7QK2M9XWBR4TZP3H"`, `{"order_id":"ord_7QK2M9XWBR4TZP3H"}`,
		`{"order_id":"ord_7QK2M9XWBR4TZP3H","reason":"duplicate_order"}`,
		`{"order_id":"ord_7QK2M9XWBR4TZP3H","reason":"customer_requests"}`,
		`{"order_id":"ORD_7QK2M9XWBR4TZP3H"}`, `{"ORDER_ID":"ord_7QK2M9XWBR4TZP3H"}`,
		`{"order_id":"ord_7QK2M9XWBR4TZP3H","order_id":"ord_canaryCANARY1234"}`,
		`{"order_id":"ord_7QK2M9XWBR4TZP3I"}`, `{"order_id":"ord_7qk2m9xwbr4tzp3h"}`,
		`{"order_id":"ord_7QK2M9XWBR4TZP3H\n"}`, `{"order_id":"ord_7QK2M9XWBR4TZP3\u0048"}`,
		`{"order_id":"canary_value_Q9Z7"}`, `{"canary_key_Q9Z7":1}`, `{"order_id":null}`, `{"order_id":12345678}`,
		`{"customer_id":"cus_7QK2M9XWBR4TZP3H","status":"shipped","limit":25}`,
		`{"limit":10.0}`, `{"limit":1e1}`, `{"limit":0}`, `{"limit":26}`, `{"limit":-1}`, `{"limit":"10"}`,
		`{"status":"SHIPPED"}`, `{"status":""}`, `{"customer_id":""}`,
		`{"order_id":"ord_7QK2M9XWBR4TZP3H"} trailing`, `{"order_id":"ord_7QK2M9XWBR4TZP3H",}`,
	} {
		f.Add([]byte(seed))
	}

	customer := demo.Customers()[0].ID
	probe := newToolProbe(f, customer)
	all := tools.All()
	schemas := map[string]*jsonschema.Resolved{}
	for _, tool := range all {
		rs, err := tool.Def().InputSchema.(*jsonschema.Schema).Resolve(&jsonschema.ResolveOptions{ValidateDefaults: true})
		if err != nil {
			f.Fatalf("%s: input schema: %v", tool.Name(), err)
		}
		schemas[tool.Name()] = rs
	}

	f.Fuzz(func(t *testing.T, args []byte) {
		for _, tool := range all {
			err := tool.Check(json.RawMessage(args))
			if err != nil {
				checkRefusal(t, tool, args, err)
				continue
			}
			if err := schemaAccepts(schemas[tool.Name()], args); err != nil {
				t.Fatalf("%s: Check accepted %q, which the input schema refuses: %v", tool.Name(), args, err)
			}
			probe.call(t, tool.Name(), args)
		}
	})
}

// schemaAccepts applies a tool's input schema to arguments as the go-sdk's
// typed tools do (defaults, then validation), reading absent and null
// arguments as an empty object.
func schemaAccepts(rs *jsonschema.Resolved, args []byte) (err error) {
	var m map[string]any
	if len(args) > 0 {
		if err := json.Unmarshal(args, &m); err != nil {
			return err
		}
	}
	if m == nil {
		m = map[string]any{}
	}
	defer func() {
		if r := recover(); r != nil { // ApplyDefaults panics on what it cannot assign
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	var instance any = m
	if err := rs.ApplyDefaults(&instance); err != nil {
		return err
	}
	return rs.Validate(instance)
}

// checkRefusal holds a refusal to its shape and makes sure it does not
// echo the input.
func checkRefusal(t *testing.T, tool tools.Tool, args []byte, err error) {
	t.Helper()
	var ie *tools.InputError
	if !errors.As(err, &ie) {
		t.Fatalf("%s: refusal %T %v is not an *InputError: %q", tool.Name(), err, err, args)
	}
	schema := tool.Def().InputSchema.(*jsonschema.Schema)
	if _, known := schema.Properties[ie.Field]; !known && ie.Field != "arguments" {
		t.Fatalf("%s: refusal names field %q, which is not the tool's: %q", tool.Name(), ie.Field, args)
	}
	msg := err.Error()
	for _, token := range distinctiveTokens(args) {
		if !strings.Contains(msg, token) {
			continue
		}
		changed := shiftToken(token)
		again := tool.Check(json.RawMessage(bytes.ReplaceAll(args, []byte(token), []byte(changed))))
		if again != nil && strings.Contains(again.Error(), changed) {
			t.Fatalf("%s: the refusal repeats the input (%q, then %q): %q", tool.Name(), token, changed, again.Error())
		}
	}
}

// distinctiveTokens returns the runs of eight or more ASCII letters, digits
// and underscores in b.
func distinctiveTokens(b []byte) []string {
	var out []string
	isWord := func(c byte) bool {
		return c == '_' || ('0' <= c && c <= '9') || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
	}
	for i := 0; i < len(b); {
		j := i
		for j < len(b) && isWord(b[j]) {
			j++
		}
		if j-i >= 8 {
			out = append(out, string(b[i:j]))
		}
		if j == i {
			j++
		}
		i = j
	}
	return out
}

// shiftToken changes every letter and digit of a token to the next one in
// its class (z to a, 9 to 0), keeping case, underscores and the token's
// JSON role (a number stays a number, a string stays a string).
func shiftToken(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case c == 'z', c == 'Z':
			b[i] = c - 25
		case c == '9':
			b[i] = '0'
		case c != '_':
			b[i] = c + 1
		}
	}
	return string(b)
}

// toolProbe is the tools' real registration on a bare go-sdk server, with
// a caller bound to one customer and an audit record in every call's
// context, and a store that records what the handlers ask of it and
// answers "not found". The middleware keeps what each handler returned.
type toolProbe struct {
	cs       *mcp.ClientSession
	store    *probeStore
	customer string

	mu       sync.Mutex
	result   error // the error the last tool call returned
	done     bool  // whether the last call reached the tools/call dispatch
	panicked any   // what the last call panicked with, if it did
}

func newToolProbe(f *testing.F, customer string) *toolProbe {
	p := &toolProbe{store: &probeStore{}, customer: customer}
	s := mcp.NewServer(&mcp.Implementation{Name: "tool-probe", Version: "0"}, nil)
	tools.Register(s, tools.Deps{Store: p.store, CancelDailyQuota: 1})
	caller := &auth.Principal{Subject: "fuzz", Method: "api_key", CustomerID: customer, Scopes: auth.KnownScopes()}
	records := &audit.Writer{} // never written to: the probe store commits nothing
	s.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (res mcp.Result, err error) {
			if method != "tools/call" {
				return next(ctx, method, req)
			}
			ctx = auth.WithPrincipal(ctx, caller)
			ctx = audit.WithCall(ctx, records.NewCall("fuzz", "memory", audit.NewCorrelationID()))
			defer func() { // as the MCP layer's recovery does, so that the fuzzer reports a panic
				if r := recover(); r != nil {
					p.mu.Lock()
					defer p.mu.Unlock()
					p.done, p.panicked = true, r
					res, err = nil, errors.New("panic")
				}
			}()
			res, err = next(ctx, method, req)
			p.mu.Lock()
			defer p.mu.Unlock()
			p.done = true
			p.result = err
			if r, ok := res.(*mcp.CallToolResult); ok && r.IsError {
				p.result = r.GetError()
				if p.result == nil {
					p.result = errors.New("tool error without a Go error")
				}
			}
			return res, err
		}
	})
	ct, st := mcp.NewInMemoryTransports()
	ctx := context.Background()
	ss, err := s.Connect(ctx, st, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = ss.Close() })
	client := mcp.NewClient(&mcp.Implementation{Name: "fuzz", Version: "0"}, nil)
	p.cs, err = client.Connect(ctx, ct, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = p.cs.Close() })
	return p
}

// call sends arguments Check accepted to the tool through the SDK and
// fails unless the handler parsed them and acted on ids they name.
func (p *toolProbe) call(t *testing.T, name string, args []byte) {
	t.Helper()
	p.mu.Lock()
	p.done, p.result, p.panicked = false, nil, nil
	p.mu.Unlock()
	p.store.reset()

	var sent any // empty arguments are sent as none; anything else as it is
	if len(args) > 0 {
		sent = json.RawMessage(args)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := p.cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: sent})
	p.mu.Lock()
	done, result, panicked := p.done, p.result, p.panicked
	p.mu.Unlock()
	switch {
	case panicked != nil:
		t.Fatalf("%s: Check accepted %q, and the call panicked: %v", name, args, panicked)
	case err != nil:
		t.Fatalf("%s: Check accepted %q, the SDK answered with a protocol error: %v", name, args, err)
	case !done:
		t.Fatalf("%s: Check accepted %q, and the call never reached the tool", name, args)
	}
	var ie *tools.InputError
	switch {
	case errors.As(result, &ie):
		t.Fatalf("%s: Check accepted %q, the handler's own parse refused it: %v", name, args, result)
	case result != nil && !errors.Is(result, store.ErrNotFound) && !errors.Is(result, tools.ErrForeignCustomer):
		t.Fatalf("%s: Check accepted %q, the SDK refused it before the handler: %v", name, args, result)
	}

	var named []string
	var decoded any
	if json.Unmarshal(args, &decoded) == nil {
		named = stringsIn(decoded)
	}
	for _, id := range p.store.ids() {
		if id != p.customer && !slices.Contains(named, id) {
			t.Fatalf("%s: the handler asked the store for %q, which %q does not name", name, id, args)
		}
	}
}

// stringsIn returns every string value in a decoded JSON value.
func stringsIn(v any) []string {
	var out []string
	switch t := v.(type) {
	case map[string]any:
		for _, val := range t {
			out = append(out, stringsIn(val)...)
		}
	case []any:
		for _, val := range t {
			out = append(out, stringsIn(val)...)
		}
	case string:
		out = append(out, t)
	}
	return out
}

// probeStore implements tools.Store: it records the ids each call asked
// for and finds nothing.
type probeStore struct {
	mu    sync.Mutex
	asked []string
}

func (s *probeStore) record(ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asked = append(s.asked, ids...)
}

func (s *probeStore) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asked = nil
}

func (s *probeStore) ids() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.asked)
}

func (s *probeStore) GetOrder(_ context.Context, _ store.Access, orderID string) (*store.Order, error) {
	s.record(orderID)
	return nil, store.ErrNotFound
}

func (s *probeStore) ListRecentOrders(_ context.Context, _ store.Access, customerID, _ string, _ int) ([]store.OrderSummary, error) {
	s.record(customerID)
	return nil, store.ErrNotFound
}

func (s *probeStore) CancelOrder(_ context.Context, _ store.Write, req store.CancelRequest) (store.CancelOutcome, error) {
	s.record(req.OrderID)
	return store.CancelOutcome{}, store.ErrNotFound
}

func (s *probeStore) AnswerConfirmation(context.Context, string, string, time.Time) error {
	return store.ErrAnswered // never reached: every order is "not found" before anyone is asked
}
