package tools

import (
	"context"
	"fmt"
	"slices"
	"time"

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
	// The same access-bound read as get_order_status first: "not found"
	// (another customer's order too), "already cancelled" (the idempotent
	// answer) and "no longer cancellable" are answered at once, exactly as
	// without confirmation, so asking reveals nothing and is asked only
	// about a cancellation that can happen.
	o, err := c.Deps.Store.GetOrder(ctx, c.Access, req.order.String())
	if err != nil {
		return CancelResult{}, err
	}
	switch o.Status {
	case store.StatusCancelled:
		return alreadyCancelled(o), nil
	case store.StatusPending, store.StatusProcessing:
	default:
		return CancelResult{}, store.ErrNotCancellable
	}
	if err := c.Confirm(ctx, cancelQuestion(o), "Cancel order "+orderID(o.ID)); err != nil {
		return CancelResult{}, err
	}
	// The cancellation and its audit record commit together. The store
	// decides again, under a row lock: the order may have moved since the
	// question was asked.
	w, err := c.Write(ctx)
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

// alreadyCancelled is the idempotent answer for an order found cancelled.
func alreadyCancelled(o *store.Order) CancelResult {
	var at time.Time
	if o.CancelledAt != nil {
		at = *o.CancelledAt
	}
	return CancelResult{OrderID: o.ID, Status: store.StatusCancelled, CancelledAt: timestamp(at), AlreadyCancelled: true}
}

// cancelQuestion is what the user is asked before an order is cancelled:
// fixed words and values the server controls and has checked (the order
// id's shape, a status from the closed set, a count, an amount in an ISO
// currency), never the customer's own text (names, delivery instructions)
// and never a request for a secret.
func cancelQuestion(o *store.Order) string {
	items := "items"
	if o.ItemCount == 1 {
		items = "item"
	}
	total := money(o.TotalCents, o.Currency)
	return fmt.Sprintf("Cancel order %s? It is %s, with %d %s, total %s %s. A cancelled order cannot be reinstated.",
		orderID(o.ID), status(o.Status), o.ItemCount, items, total.Amount, total.Currency)
}
