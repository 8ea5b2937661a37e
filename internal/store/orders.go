package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Order statuses, as stored.
const (
	StatusPending    = "pending"
	StatusProcessing = "processing"
	StatusShipped    = "shipped"
	StatusDelivered  = "delivered"
	StatusCancelled  = "cancelled"
	StatusReturned   = "returned"
)

// Statuses lists every order status, in lifecycle order.
func Statuses() []string {
	return []string{StatusPending, StatusProcessing, StatusShipped, StatusDelivered, StatusCancelled, StatusReturned}
}

// Order is one order as the tools may see it. It deliberately has no field
// for internal_note, cost or fraud flags: the server's database role cannot
// even select those columns.
type Order struct {
	ID          string
	CustomerID  string
	Status      string
	PlacedAt    time.Time
	UpdatedAt   time.Time
	ItemCount   int
	TotalCents  int64
	Currency    string
	CardBrand   string
	CardLast4   string
	CancelledAt *time.Time
	// DeliveryInstructions is raw text the customer typed: untrusted.
	DeliveryInstructions string
	Contact              Contact
	Shipment             *Shipment
	Events               []OrderEvent
}

// Contact is the customer's contact data as stored. Callers must pass it
// through the output policy (internal/privacy) before it leaves the server.
type Contact struct {
	Name        string
	Email       string
	Phone       string
	CountryCode string
}

// Shipment is an order's shipment, if it has shipped.
type Shipment struct {
	Carrier           string
	TrackingNumber    string
	ShippedAt         time.Time
	EstimatedDelivery *time.Time
	DeliveredAt       *time.Time
}

// OrderEvent is one step of an order's status timeline. Its stored
// description is written for staff systems and not read here: the tools
// describe each status with fixed text of their own.
type OrderEvent struct {
	Status     string
	OccurredAt time.Time
}

// OrderSummary is one line of an order list.
type OrderSummary struct {
	ID         string
	Status     string
	PlacedAt   time.Time
	ItemCount  int
	TotalCents int64
	Currency   string
}

// Each statement repeats the access binding in its WHERE clause
// ("customer_id = $2 OR $3") on top of row-level security: the Go side and
// the database side each hold on their own. The timeline is read by the
// same statement, as two arrays in the same order, so the order and its
// timeline come from one snapshot in one round trip.
const getOrderSQL = `-- name: get_order
SELECT o.id, o.customer_id, o.status, o.placed_at, o.updated_at, o.item_count,
       o.total_cents, o.currency, o.card_brand, o.card_last4, o.cancelled_at,
       o.delivery_instructions,
       c.name, c.email, c.phone, c.country_code,
       s.carrier, s.tracking_number, s.shipped_at, s.estimated_delivery, s.delivered_at,
       t.statuses, t.occurred
  FROM orders o
  JOIN customers c ON c.id = o.customer_id
  LEFT JOIN shipments s ON s.order_id = o.id
 CROSS JOIN LATERAL (
       SELECT coalesce(array_agg(e.status ORDER BY e.occurred_at, e.id), '{}') AS statuses,
              coalesce(array_agg(e.occurred_at ORDER BY e.occurred_at, e.id), '{}') AS occurred
         FROM order_events e
        WHERE e.order_id = o.id
          AND (e.customer_id = $2 OR $3)) t
 WHERE o.id = $1
   AND (o.customer_id = $2 OR $3)
   AND NOT EXISTS (SELECT 1 FROM canaries k WHERE k.id IN (o.id, o.customer_id))`

// isCanarySQL asks whether an id a caller named is a canary record
// (canaries.go). It runs with every lookup, in the same round trip,
// whatever the lookup found, so a canary costs exactly what a missing id
// costs.
const isCanarySQL = `-- name: is_canary
SELECT EXISTS (SELECT 1 FROM canaries WHERE id = $1)`

// GetOrder returns one order with its contact data, shipment and timeline.
// An order of another customer returns ErrNotFound, and a canary order
// ErrCanary (which is also ErrNotFound), after running exactly the
// statements a missing order runs.
func (s *Store) GetOrder(ctx context.Context, a Access, orderID string) (*Order, error) {
	var (
		o                 Order
		carrier, tracking *string
		shippedAt         *time.Time
		eta, deliveredAt  *time.Time
		statuses          []string
		occurred          []time.Time
	)
	err := s.read(ctx, a, func(b *pgx.Batch) {
		b.Queue(getOrderSQL, orderID, a.customerID, a.anyCustomer)
		b.Queue(isCanarySQL, orderID)
	}, func(br pgx.BatchResults) error {
		err := br.QueryRow().Scan(
			&o.ID, &o.CustomerID, &o.Status, &o.PlacedAt, &o.UpdatedAt, &o.ItemCount,
			&o.TotalCents, &o.Currency, &o.CardBrand, &o.CardLast4, &o.CancelledAt,
			&o.DeliveryInstructions,
			&o.Contact.Name, &o.Contact.Email, &o.Contact.Phone, &o.Contact.CountryCode,
			&carrier, &tracking, &shippedAt, &eta, &deliveredAt,
			&statuses, &occurred)
		return canaryOr(br, err)
	})
	if err != nil {
		return nil, translate("get order", err)
	}
	if carrier != nil && tracking != nil && shippedAt != nil {
		o.Shipment = &Shipment{Carrier: *carrier, TrackingNumber: *tracking, ShippedAt: *shippedAt,
			EstimatedDelivery: eta, DeliveredAt: deliveredAt}
	}
	if len(statuses) != len(occurred) {
		return nil, fmt.Errorf("get order: timeline arrays disagree")
	}
	o.Events = make([]OrderEvent, len(statuses))
	for i := range statuses {
		o.Events[i] = OrderEvent{Status: statuses[i], OccurredAt: occurred[i]}
	}
	return &o, nil
}

const listRecentOrdersSQL = `-- name: list_recent_orders
SELECT id, status, placed_at, item_count, total_cents, currency
  FROM orders
 WHERE customer_id = $1
   AND (customer_id = $2 OR $3)
   AND ($4 = '' OR status = $4)
   AND NOT EXISTS (SELECT 1 FROM canaries k WHERE k.id IN (orders.id, orders.customer_id))
 ORDER BY placed_at DESC, id DESC
 LIMIT $5`

// ListRecentOrders returns customerID's orders, newest first, at most limit
// of them, optionally only those in one status. A customer-bound Access
// naming another customer gets an empty list, exactly as for a customer
// with no orders. A canary customer returns ErrCanary, after the same
// statements, and none of its orders.
func (s *Store) ListRecentOrders(ctx context.Context, a Access, customerID, status string, limit int) ([]OrderSummary, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("list recent orders: limit must be positive")
	}
	var out []OrderSummary
	err := s.read(ctx, a, func(b *pgx.Batch) {
		b.Queue(listRecentOrdersSQL, customerID, a.customerID, a.anyCustomer, status, limit)
		b.Queue(isCanarySQL, customerID)
	}, func(br pgx.BatchResults) error {
		rows, err := br.Query()
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (OrderSummary, error) {
			var o OrderSummary
			err := r.Scan(&o.ID, &o.Status, &o.PlacedAt, &o.ItemCount, &o.TotalCents, &o.Currency)
			return o, err
		})
		return canaryOr(br, err)
	})
	if err != nil {
		return nil, translate("list recent orders", err)
	}
	return out, nil
}

// CancelRequest asks for one order to be cancelled.
type CancelRequest struct {
	OrderID string
	// Reason is one of the closed set the tool accepts; it is stored and
	// shown in the timeline as fixed text, never as caller prose.
	Reason string
	// DailyQuota is how many orders one customer may have cancelled in 24
	// hours. It is checked in the same transaction, under a per-customer
	// lock, so concurrent calls cannot overshoot it. Must be positive.
	DailyQuota int
}

// CancelOutcome is the result of a successful (or already done) cancellation.
type CancelOutcome struct {
	OrderID          string
	Status           string
	CancelledAt      time.Time
	AlreadyCancelled bool
}

const lockOrderSQL = `-- name: lock_order_for_cancel
SELECT customer_id, status, cancelled_at
  FROM orders
 WHERE id = $1
   AND (customer_id = $2 OR $3)
   AND NOT EXISTS (SELECT 1 FROM canaries k WHERE k.id IN (orders.id, orders.customer_id))
   FOR UPDATE`

const lockCustomerCancelsSQL = `-- name: lock_customer_cancels
SELECT pg_advisory_xact_lock(hashtextextended('cancel:' || $1, 0))`

const countRecentCancelsSQL = `-- name: count_recent_cancels
SELECT count(*)
  FROM orders
 WHERE customer_id = $1
   AND cancelled_at > now() - interval '24 hours'`

const cancelOrderSQL = `-- name: cancel_order
UPDATE orders
   SET status = 'cancelled', cancelled_at = now(), updated_at = now(), cancel_reason = $4
 WHERE id = $1
   AND (customer_id = $2 OR $3)
   AND status IN ('pending', 'processing')
RETURNING cancelled_at`

const insertCancelEventSQL = `-- name: insert_cancel_event
INSERT INTO order_events (order_id, customer_id, status, occurred_at, description)
VALUES ($1, $2, 'cancelled', $3, $4)`

// CancelOrder cancels an order that has not shipped yet. Cancelling an order
// that is already cancelled succeeds without changing anything
// (AlreadyCancelled), so a retried call is harmless. Orders past
// processing return ErrNotCancellable; another customer's order returns
// ErrNotFound, and a canary order ErrCanary, which is never changed.
func (s *Store) CancelOrder(ctx context.Context, w Write, req CancelRequest) (CancelOutcome, error) {
	if err := w.valid(); err != nil {
		return CancelOutcome{}, err
	}
	a := w.access
	if req.DailyQuota <= 0 {
		return CancelOutcome{}, errors.New("cancel order: daily quota must be positive")
	}
	out := CancelOutcome{OrderID: req.OrderID}
	err := s.inTx(ctx, a, pgx.ReadWrite, func(tx pgx.Tx) error {
		var (
			customerID, status string
			cancelledAt        *time.Time
		)
		err := tx.QueryRow(ctx, lockOrderSQL, req.OrderID, a.customerID, a.anyCustomer).
			Scan(&customerID, &status, &cancelledAt)
		if errors.Is(err, pgx.ErrNoRows) {
			// Missing, another customer's, or a canary: the same next
			// statement for each, and the same answer but for the name.
			var canary bool
			if err := tx.QueryRow(ctx, isCanarySQL, req.OrderID).Scan(&canary); err != nil {
				return err
			}
			if canary {
				return ErrCanary
			}
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		switch status {
		case StatusCancelled:
			out.Status, out.AlreadyCancelled = StatusCancelled, true
			if cancelledAt != nil {
				out.CancelledAt = *cancelledAt
			}
			return nil
		case StatusPending, StatusProcessing:
		default:
			return ErrNotCancellable
		}
		if _, err := tx.Exec(ctx, lockCustomerCancelsSQL, customerID); err != nil {
			return err
		}
		var recent int
		if err := tx.QueryRow(ctx, countRecentCancelsSQL, customerID).Scan(&recent); err != nil {
			return err
		}
		if recent >= req.DailyQuota {
			return ErrCancelQuota
		}
		if err := tx.QueryRow(ctx, cancelOrderSQL, req.OrderID, a.customerID, a.anyCustomer, req.Reason).
			Scan(&out.CancelledAt); err != nil {
			return err
		}
		out.Status = StatusCancelled
		if _, err := tx.Exec(ctx, insertCancelEventSQL, req.OrderID, customerID, out.CancelledAt,
			cancelEventText(req.Reason)); err != nil {
			return err
		}
		w.record.Outcome = "cancelled"
		w.record.ObjectIDs = []string{req.OrderID}
		return appendAudit(ctx, tx, w.seal, []*AuditEntry{w.record})
	})
	if err != nil {
		return CancelOutcome{}, translate("cancel order", err)
	}
	return out, nil
}

// cancelEventText is the timeline line for a cancellation: fixed text per
// reason, so nothing a caller typed ends up in the timeline.
func cancelEventText(reason string) string {
	switch reason {
	case "duplicate_order":
		return "Order cancelled: duplicate order."
	case "ordered_by_mistake":
		return "Order cancelled: ordered by mistake."
	case "delivery_too_slow":
		return "Order cancelled: delivery estimate too late."
	default:
		return "Order cancelled at the customer's request."
	}
}
