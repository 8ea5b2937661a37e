package tools

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/example/order-mcp/internal/audit"
	"github.com/example/order-mcp/internal/security"
	"github.com/example/order-mcp/internal/store"
)

// Store is what the tools need from the database. *store.Store implements
// it; it is declared here, where it is used.
type Store interface {
	GetOrder(ctx context.Context, a store.Access, orderID string) (*store.Order, error)
	ListRecentOrders(ctx context.Context, a store.Access, customerID, status string, limit int) ([]store.OrderSummary, error)
	CancelOrder(ctx context.Context, a store.Access, req store.CancelRequest) (store.CancelOutcome, error)
}

// Deps are the tools' dependencies.
type Deps struct {
	Store Store
	// CancelDailyQuota is how many orders one customer may have cancelled in
	// 24 hours, whoever asks. It bounds what an injected instruction can do
	// to a customer's order history.
	CancelDailyQuota int
}

// Tool is one tool of the surface: its definition, the scopes a caller
// needs to see and call it, and how to explain invalid arguments.
type Tool struct {
	Def    *mcp.Tool
	Scopes []string
	// LooksUpByID marks a tool that takes an object id a caller could
	// guess (order_id): the MCP layer applies the enumeration throttle to
	// it. Every tool with an id argument sets it.
	LooksUpByID bool
	// Check validates raw arguments before the handler runs: unknown
	// arguments, wrong types and domain rules. It returns an *InputError
	// whose message names the field and the rule without echoing the value.
	Check func(args json.RawMessage) error
	add   func(s *mcp.Server, d Deps)
}

// Destructive reports whether the tool changes or deletes data. Following
// the MCP annotations' defaults, a tool that is not declared read-only is
// destructive unless it says otherwise, so a new tool that forgets its
// annotations is charged to the small budget for destructive calls
// (RATE_LIMIT_CANCEL) rather than escaping it.
func (t Tool) Destructive() bool {
	a := t.Def.Annotations
	if a == nil {
		return true
	}
	return !a.ReadOnlyHint && (a.DestructiveHint == nil || *a.DestructiveHint)
}

// All lists every tool the server exposes. This is the whole capability
// surface: a reviewer reads this list to know everything the model can do.
func All() []Tool {
	return []Tool{
		getOrderStatusTool(),
		listRecentOrdersTool(),
		cancelOrderTool(),
	}
}

// Register adds every tool to s and returns them by name, for the layers
// that enforce their scopes.
func Register(s *mcp.Server, d Deps) map[string]Tool {
	byName := make(map[string]Tool)
	for _, t := range All() {
		t.add(s, d)
		byName[t.Def.Name] = t
	}
	return byName
}

// Scopes returns the scopes each tool needs, by tool name.
func Scopes() map[string][]string {
	out := make(map[string][]string)
	for _, t := range All() {
		out[t.Def.Name] = t.Scopes
	}
	return out
}

// errNoPrincipal means a handler ran without a caller in its context. The
// MCP layer always puts one there, so this is a bug, and it fails closed.
var errNoPrincipal = errors.New("tool handler ran without an authenticated principal")

// ErrForeignCustomer refuses a customer-bound caller that names another
// customer. The refusal is the same for every other id, existing or not, so
// it reveals nothing about other customers.
var ErrForeignCustomer = errors.New("customer-bound caller named another customer")

// errCustomerRequired refuses a staff caller that did not say which
// customer's orders to list.
var errCustomerRequired = &InputError{Field: "customer_id", Rule: "required for staff callers: name the customer whose orders to list."}

// caller returns the principal of the current call and its data binding.
func caller(ctx context.Context) (*security.Principal, store.Access, error) {
	p := security.PrincipalFrom(ctx)
	if p == nil {
		return nil, store.Access{}, errNoPrincipal
	}
	a, err := p.Access()
	return p, a, err
}

// touch records the objects a call reached, for the audit trail.
func touch(ctx context.Context, ids ...string) {
	if c := audit.CallFrom(ctx); c != nil {
		c.Touch(ids...)
	}
}

func ptr[T any](v T) *T { return &v }
