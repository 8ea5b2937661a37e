package tools

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/example/order-mcp/internal/audit"
	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/store"
)

// All lists every tool the server exposes. This is the whole capability
// surface: a reviewer reads this list to know everything the model can
// do, and every test that attacks "each tool" iterates it, so a tool added
// here is attacked without anyone editing a test.
func All() []Tool {
	return []Tool{
		getOrderStatusTool(),
		listRecentOrdersTool(),
		cancelOrderTool(),
	}
}

// Store is what the tools need from the database. *store.Store implements
// it; it is declared here, where it is used. Every method takes the
// caller's data binding (reads) or a store.Write, which also carries the
// call's audit record (writes): a tool cannot reach a row without them.
type Store interface {
	GetOrder(ctx context.Context, a store.Access, orderID string) (*store.Order, error)
	ListRecentOrders(ctx context.Context, a store.Access, customerID, status string, limit int) ([]store.OrderSummary, error)
	CancelOrder(ctx context.Context, w store.Write, req store.CancelRequest) (store.CancelOutcome, error)
	// AnswerConfirmation records the first answer to a confirmation
	// (destructive.go); store.ErrAnswered when it has one already.
	AnswerConfirmation(ctx context.Context, nonce, answer string, expiresAt time.Time) error
}

// Deps are the tools' dependencies.
type Deps struct {
	Store Store
	// CancelDailyQuota is how many orders one customer may have cancelled in
	// 24 hours, whoever asks. It bounds what an injected instruction can do
	// to a customer's order history.
	CancelDailyQuota int
	// Confirmation asks the user before a destructive tool acts
	// (destructive.go).
	Confirmation Confirmation
}

// Tool is one tool of the surface: what the model sees, the scopes a
// caller needs to see and call it, and what the MCP layer applies to it.
// Make one with Define.
type Tool struct {
	def         *mcp.Tool
	scopes      []auth.Scope
	looksUpByID bool
	privateData *bool // ReadsPrivateData, ReadsNoPrivateData; nil: undeclared
	flow        DataFlow
	decode      func(args json.RawMessage) (any, error)
	register    func(s *mcp.Server, d Deps)
}

// Name is the tool's name, as the model calls it.
func (t Tool) Name() string { return t.def.Name }

// Def is the tool's definition as clients see it (name, description,
// schemas, annotations). It must not be modified.
func (t Tool) Def() *mcp.Tool { return t.def }

// Scopes are the scopes a caller needs, all of them.
func (t Tool) Scopes() []auth.Scope { return slices.Clone(t.scopes) }

// LooksUpByID reports whether the tool takes an object id a caller could
// guess: the MCP layer applies the enumeration throttle to it.
func (t Tool) LooksUpByID() bool { return t.looksUpByID }

// Decode parses and validates raw arguments before the handler runs:
// unknown and missing arguments, explicit nulls, wrong types and domain
// rules. It returns an *InputError whose message names the field and the
// rule without echoing the value. Pass what it returns to the handler with
// WithInput: the arguments are then decoded once per call.
func (t Tool) Decode(args json.RawMessage) (any, error) { return t.decode(args) }

// Check is Decode without the result.
func (t Tool) Check(args json.RawMessage) error { _, err := t.decode(args); return err }

// Destructive reports whether the tool changes or deletes data. Following
// the MCP annotations' defaults, a tool that is not declared read-only is
// destructive unless it says otherwise, so a new tool that forgets its
// annotations is charged to the small budget for destructive calls
// (RATE_LIMIT_CANCEL) rather than escaping it.
func (t Tool) Destructive() bool { return destructive(t.def) }

func destructive(def *mcp.Tool) bool {
	a := def.Annotations
	if a == nil {
		return true
	}
	return !a.ReadOnlyHint && (a.DestructiveHint == nil || *a.DestructiveHint)
}

// Option declares something the MCP layer applies to a tool.
type Option func(*Tool)

// LooksUpByID puts the tool under the enumeration throttle. Every tool that
// takes an object id (order_id) must say so; a test checks.
func LooksUpByID() Option { return func(t *Tool) { t.looksUpByID = true } }

// Handler is a tool's implementation: it gets its parsed input and the
// Call, which holds the caller's data binding and the SDK's request.
type Handler[In input, Out any] func(ctx context.Context, c *Call, in In) (Out, error)

// input is implemented by every input type: validate runs the domain
// rules (the same ones its parse method applies).
type input interface{ validate() error }

// Define declares a tool in one call: its definition (with an explicit,
// strict input schema), the scopes a caller needs, and the typed handler.
// The argument check is derived from the schema: its properties are the
// accepted arguments, its required list the required ones. The output
// schema is derived from Out (see outputSchema).
//
// The tool is registered with the SDK's low-level AddTool: the MCP layer
// has already decoded and checked the arguments (Decode) by the time the
// handler runs, more strictly than the schema and with messages that never
// quote a value, so the SDK's generic path would only decode and validate
// them a second time. That the result always matches the output schema is
// a property of Out, checked by the tests for every tool and order.
func Define[In input, Out any](def *mcp.Tool, scopes []auth.Scope, h Handler[In, Out], opts ...Option) Tool {
	schema, ok := def.InputSchema.(*jsonschema.Schema)
	if !ok || schema.Type != "object" {
		panic("tools.Define: " + def.Name + " needs an explicit object input schema")
	}
	if len(scopes) == 0 {
		panic("tools.Define: " + def.Name + " declares no scope")
	}
	d := *def
	if d.OutputSchema == nil {
		d.OutputSchema = outputSchema[Out]()
	}
	decode := func(args json.RawMessage) (In, error) { return decodeInput[In](args, schema) }
	t := Tool{
		def:    &d,
		scopes: slices.Clone(scopes),
		decode: func(args json.RawMessage) (any, error) { return decode(args) },
		register: func(s *mcp.Server, deps Deps) {
			s.AddTool(&d, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				in, ok := inputFrom[In](ctx, req)
				if !ok { // not decoded by the MCP layer: decode now, never skip it
					var err error
					if in, err = decode(req.Params.Arguments); err != nil {
						return errorResult(err), nil
					}
				}
				c, err := newCall(ctx, req, deps)
				if err != nil {
					return errorResult(err), nil
				}
				c.input, c.destructive = in, destructive(&d)
				out, err := h(ctx, c, in)
				if errors.Is(err, store.ErrCanary) {
					c.reachedCanary() // answered as "not found"; the MCP layer raises the alarm
				}
				if err != nil {
					var ask *question
					if errors.As(err, &ask) { // the user must confirm first
						return c.ask(ctx, ask)
					}
					var wire *jsonrpc.Error
					if errors.As(err, &wire) {
						return nil, wire
					}
					return errorResult(err), nil
				}
				b, err := json.Marshal(out)
				if err != nil {
					return nil, err
				}
				// The structured result, and the same JSON as text for clients
				// that read only content (as the MCP specification suggests).
				return &mcp.CallToolResult{
					StructuredContent: json.RawMessage(b),
					Content:           []mcp.Content{&mcp.TextContent{Text: string(b)}},
				}, nil
			})
		},
	}
	for _, o := range opts {
		o(&t)
	}
	// The data-flow labels go into the definition's _meta, so that every
	// client sees them in tools/list (and the golden files pin them).
	t.flow = dataFlow(&t)
	d.Meta = maps.Clone(d.Meta)
	if d.Meta == nil {
		d.Meta = mcp.Meta{}
	}
	d.Meta[DataFlowMetaKey] = t.flow
	return t
}

// errorResult is a failed call as the SDK reports a handler's error: the
// MCP layer maps it (GetError) to what the model may see.
func errorResult(err error) *mcp.CallToolResult {
	var r mcp.CallToolResult
	r.SetError(err)
	return &r
}

type inputKey struct{}

type decodedInput struct {
	params *mcp.CallToolParamsRaw
	in     any
}

// WithInput hands the arguments Decode returned for req to the tool's
// handler.
func WithInput(ctx context.Context, req *mcp.CallToolRequest, in any) context.Context {
	return context.WithValue(ctx, inputKey{}, decodedInput{params: req.Params, in: in})
}

// inputFrom returns the decoded arguments of this very request, if the MCP
// layer decoded them.
func inputFrom[In any](ctx context.Context, req *mcp.CallToolRequest) (In, bool) {
	d, ok := ctx.Value(inputKey{}).(decodedInput)
	if !ok || d.params != req.Params {
		var zero In
		return zero, false
	}
	in, ok := d.in.(In)
	return in, ok
}

// Register adds every tool to s and returns them by name, for the layers
// that enforce their declarations.
func Register(s *mcp.Server, d Deps) map[string]Tool {
	byName := make(map[string]Tool)
	for _, t := range All() {
		t.register(s, d)
		byName[t.Name()] = t
	}
	return byName
}

// Scopes returns the scopes each tool needs, by tool name.
func Scopes() map[string][]auth.Scope {
	out := make(map[string][]auth.Scope)
	for _, t := range All() {
		out[t.Name()] = t.Scopes()
	}
	return out
}

// Call is one tool call as a handler sees it.
type Call struct {
	// Request is the SDK's request: its session, its per-request _meta and
	// client capabilities (for asking the user to confirm).
	Request *mcp.CallToolRequest
	// Principal is the authenticated caller.
	Principal *auth.Principal
	// Access is the caller's data binding: every store read takes it.
	Access store.Access
	// Deps are the tools' dependencies.
	Deps Deps

	record *audit.Call
	// input is the decoded arguments, whose digest binds a confirmation.
	input any
	// destructive tools write only once Confirm allowed it (confirmed,
	// with the reason for the audit record), charging their budget
	// through charge (destructive.go).
	destructive bool
	confirmed   bool
	because     string
	charge      func(context.Context) error
}

// errNoPrincipal means a handler ran without a caller in its context. The
// MCP layer always puts one there, so this is a bug, and it fails closed.
var errNoPrincipal = errors.New("tool handler ran without an authenticated principal")

// errNoRecord means a write was attempted without the call's audit
// record. The MCP layer always starts one, so this is a bug: no write.
var errNoRecord = errors.New("tool handler ran without an audit record")

func newCall(ctx context.Context, req *mcp.CallToolRequest, d Deps) (*Call, error) {
	p := auth.PrincipalFrom(ctx)
	if p == nil {
		return nil, errNoPrincipal
	}
	a, err := p.Access()
	if err != nil {
		return nil, err
	}
	return &Call{Request: req, Principal: p, Access: a, Deps: d, record: audit.CallFrom(ctx), charge: chargeFrom(ctx)}, nil
}

// Touch records the objects the call reads or changes, for the audit
// trail.
func (c *Call) Touch(ids ...string) {
	if c.record != nil {
		c.record.Touch(ids...)
	}
}

// Write returns what a store write needs: the caller's binding and this
// call's audit record, which the store commits in the same transaction as
// the change. Call Committed once the write succeeded.
//
// A destructive tool's write needs Confirm's leave and is charged to the
// caller's budget for destructive calls here, on the round that acts.
func (c *Call) Write(ctx context.Context) (store.Write, error) {
	if c.record == nil {
		return store.Write{}, errNoRecord
	}
	if c.destructive {
		switch {
		case !c.confirmed:
			return store.Write{}, errUnconfirmed
		case c.charge == nil:
			return store.Write{}, errNoCharge
		}
		if err := c.charge(ctx); err != nil {
			return store.Write{}, err
		}
	}
	c.record.Decide(true, c.because)
	entry, seal := c.record.ForTx()
	return store.NewWrite(c.Access, entry, seal), nil
}

// Committed marks the call's audit record as committed by a store write,
// so the MCP layer does not write it a second time.
func (c *Call) Committed() {
	if c.record != nil {
		c.record.Committed()
	}
}

// ErrForeignCustomer refuses a customer-bound caller that names another
// customer. The refusal is the same for every other id, existing or not, so
// it reveals nothing about other customers.
var ErrForeignCustomer = errors.New("customer-bound caller named another customer")

// errCustomerRequired refuses a staff caller that did not say which
// customer's orders to list.
var errCustomerRequired = &InputError{Field: "customer_id", Rule: "required for staff callers: name the customer whose orders to list."}

func ptr[T any](v T) *T { return &v }
