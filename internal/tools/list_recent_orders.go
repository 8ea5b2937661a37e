package tools

import (
	"context"
	"errors"
	"slices"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/store"
)

// Page size bounds for list_recent_orders.
const (
	defaultPageSize = 10
	maxPageSize     = 25
)

// ListRecentOrdersInput is the input of list_recent_orders.
// Optional fields are pointers, so that "absent" and "empty" differ: an
// explicit "" or 0 is refused, exactly as the schema refuses it.
type ListRecentOrdersInput struct {
	CustomerID *string `json:"customer_id,omitempty"`
	Status     *string `json:"status,omitempty"`
	Limit      *int    `json:"limit,omitempty"`
}

func listRecentOrdersInputSchema() *jsonschema.Schema {
	return strictObject(map[string]*jsonschema.Schema{
		"customer_id": idSchema(customerIDPattern,
			`Whose orders to list. Staff callers must give it; callers bound to a customer omit it (they can only list their own).`),
		"status": enumSchema("Only list orders in this status.", "", store.Statuses()...),
		"limit":  intSchema("How many orders to return, newest first.", 1, maxPageSize, defaultPageSize),
	})
}

// listRequest is a parsed ListRecentOrdersInput.
type listRequest struct {
	customer *CustomerID // nil: the caller's own customer
	status   string
	limit    int
}

func (in ListRecentOrdersInput) parse() (listRequest, error) {
	req := listRequest{limit: defaultPageSize}
	if in.CustomerID != nil {
		id, err := ParseCustomerID(*in.CustomerID)
		if err != nil {
			return req, err
		}
		req.customer = &id
	}
	if in.Status != nil {
		if !slices.Contains(store.Statuses(), *in.Status) {
			return req, &InputError{Field: "status", Rule: "must be one of pending, processing, shipped, delivered, cancelled, returned."}
		}
		req.status = *in.Status
	}
	if in.Limit != nil {
		if *in.Limit < 1 || *in.Limit > maxPageSize {
			return req, &InputError{Field: "limit", Rule: "must be between 1 and 25."}
		}
		req.limit = *in.Limit
	}
	return req, nil
}

func (in ListRecentOrdersInput) validate() error { _, err := in.parse(); return err }

// OrderList is the output of list_recent_orders.
type OrderList struct {
	CustomerID string         `json:"customer_id" jsonschema:"whose orders these are"`
	Orders     []OrderSummary `json:"orders" jsonschema:"orders, newest first"`
	Limit      int            `json:"limit" jsonschema:"the page size that was applied"`
}

// OrderSummary is one order in a list.
type OrderSummary struct {
	OrderID   string `json:"order_id" jsonschema:"the order id; pass it to get_order_status for details"`
	Status    string `json:"status" jsonschema:"current status"`
	PlacedAt  string `json:"placed_at" jsonschema:"when the order was placed (RFC 3339, UTC)"`
	ItemCount int    `json:"item_count" jsonschema:"number of items"`
	Total     Money  `json:"total" jsonschema:"order total"`
}

const listRecentOrdersDescription = `List a customer's most recent orders, newest first (at most 25). ` +
	`Callers bound to a customer list their own orders and omit customer_id; staff callers must name the customer. ` +
	`Optionally filter by status.`

func listRecentOrdersTool() Tool {
	return Define(&mcp.Tool{
		Name:        "list_recent_orders",
		Title:       "List recent orders",
		Description: listRecentOrdersDescription,
		InputSchema: listRecentOrdersInputSchema(),
		Annotations: &mcp.ToolAnnotations{
			Title:          "List recent orders",
			ReadOnlyHint:   true,
			IdempotentHint: true,
			OpenWorldHint:  ptr(false),
		},
	}, []auth.Scope{auth.ScopeRead}, listRecentOrders, ReadsPrivateData())
}

func listRecentOrders(ctx context.Context, c *Call, in ListRecentOrdersInput) (OrderList, error) {
	req, err := in.parse()
	if err != nil {
		return OrderList{}, err
	}
	var customerID string
	switch {
	case req.customer == nil && c.Access.IsStaff():
		return OrderList{}, errCustomerRequired
	case req.customer == nil:
		customerID = c.Access.CustomerID()
	case !c.Access.IsStaff() && req.customer.String() != c.Access.CustomerID():
		c.Touch(req.customer.String())
		return OrderList{}, ErrForeignCustomer
	default:
		customerID = req.customer.String()
	}
	c.Touch(customerID)
	orders, err := c.Deps.Store.ListRecentOrders(ctx, c.Access, customerID, req.status, req.limit)
	if errors.Is(err, store.ErrCanary) {
		// A canary customer is answered as a customer with no orders, which
		// is what an id that exists nowhere gets; the MCP layer raises the
		// alarm.
		c.reachedCanary()
		orders, err = nil, nil
	}
	if err != nil {
		return OrderList{}, err
	}
	out := OrderList{CustomerID: customerID, Orders: make([]OrderSummary, 0, len(orders)), Limit: req.limit}
	for _, o := range orders {
		out.Orders = append(out.Orders, OrderSummary{
			OrderID: orderID(o.ID), Status: status(o.Status), PlacedAt: timestamp(o.PlacedAt),
			ItemCount: o.ItemCount, Total: money(o.TotalCents, o.Currency),
		})
	}
	return out, nil
}
