package tools

import (
	"context"
	"slices"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/store"
)

// cancelReasons is the closed set of reasons cancel_order accepts. A closed
// set, not free text: nothing the model writes is stored.
var cancelReasons = []string{"customer_request", "duplicate_order", "ordered_by_mistake", "delivery_too_slow"}

// CancelOrderInput is the input of cancel_order.
type CancelOrderInput struct {
	OrderID string  `json:"order_id"`
	Reason  *string `json:"reason,omitempty"`
}

func cancelOrderInputSchema() *jsonschema.Schema {
	return strictObject(map[string]*jsonschema.Schema{
		"order_id": idSchema(orderIDPattern, `The order to cancel, e.g. "ord_7QK2M9XWBR4TZP3H".`),
		"reason":   enumSchema("Why the customer wants to cancel.", "customer_request", cancelReasons...),
	}, "order_id")
}

type cancelRequest struct {
	order  OrderID
	reason string
}

func (in CancelOrderInput) parse() (cancelRequest, error) {
	id, err := ParseOrderID(in.OrderID)
	if err != nil {
		return cancelRequest{}, err
	}
	reason := "customer_request"
	if in.Reason != nil {
		reason = *in.Reason
	}
	if !slices.Contains(cancelReasons, reason) {
		return cancelRequest{}, &InputError{Field: "reason", Rule: "must be one of customer_request, duplicate_order, ordered_by_mistake, delivery_too_slow."}
	}
	return cancelRequest{order: id, reason: reason}, nil
}

func (in CancelOrderInput) validate() error { _, err := in.parse(); return err }

// CancelResult is the output of cancel_order.
type CancelResult struct {
	OrderID          string `json:"order_id" jsonschema:"the order id"`
	Status           string `json:"status" jsonschema:"the order's status after the call: cancelled"`
	CancelledAt      string `json:"cancelled_at" jsonschema:"when the order was cancelled (RFC 3339, UTC)"`
	AlreadyCancelled bool   `json:"already_cancelled" jsonschema:"true when the order was already cancelled and nothing changed"`
}

const cancelOrderDescription = `Cancel an order that has not shipped yet (status pending or processing). ` +
	`Only do this when the customer explicitly asked for this specific order to be cancelled; confirm the order id with them first. ` +
	`Cancelling an already cancelled order changes nothing and reports already_cancelled. Shipped, delivered or returned orders cannot be cancelled.`

func cancelOrderTool() Tool {
	return Define(&mcp.Tool{
		Name:        "cancel_order",
		Title:       "Cancel order",
		Description: cancelOrderDescription,
		InputSchema: cancelOrderInputSchema(),
		Annotations: &mcp.ToolAnnotations{
			Title:           "Cancel order",
			ReadOnlyHint:    false,
			DestructiveHint: ptr(true),
			IdempotentHint:  true,
			OpenWorldHint:   ptr(false),
		},
	}, []auth.Scope{auth.ScopeCancel}, cancelOrder, LooksUpByID(), ReadsPrivateData())
}

func cancelOrder(ctx context.Context, c *Call, in CancelOrderInput) (CancelResult, error) {
	req, err := in.parse()
	if err != nil {
		return CancelResult{}, err
	}
	c.Touch(req.order.String())
	// The cancellation and its audit record commit together.
	w, err := c.Write()
	if err != nil {
		return CancelResult{}, err
	}
	out, err := c.Deps.Store.CancelOrder(ctx, w,
		store.CancelRequest{OrderID: req.order.String(), Reason: req.reason, DailyQuota: c.Deps.CancelDailyQuota})
	if err != nil {
		return CancelResult{}, err
	}
	if !out.AlreadyCancelled {
		c.Committed()
	}
	return CancelResult{
		OrderID: out.OrderID, Status: out.Status, CancelledAt: timestamp(out.CancelledAt),
		AlreadyCancelled: out.AlreadyCancelled,
	}, nil
}
