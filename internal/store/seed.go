package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// SeedData is a dataset to load (internal/demo builds the demo one).
type SeedData struct {
	Customers []SeedCustomer
	Orders    []SeedOrder
	// Canaries are ids of the rows above to mark as canary records
	// (canaries.go): no legitimate flow touches them.
	Canaries []string
}

// SeedCustomer is one customer row.
type SeedCustomer struct {
	ID, Name, Email, Phone, Address, City, PostalCode, Country string
	CreatedAt                                                  time.Time
}

// SeedOrder is one order row with its timeline and shipment.
type SeedOrder struct {
	ID, CustomerID, Status             string
	PlacedAt                           time.Time
	ItemCount                          int
	TotalCents                         int64
	Currency, CardBrand, CardLast4     string
	DeliveryInstructions, InternalNote string
	CostCents                          int64
	FraudFlag                          bool
	CancelledAt                        *time.Time
	CancelReason                       *string
	Events                             []SeedEvent
	Shipment                           *SeedShipment
}

// SeedEvent is one step of an order's timeline.
type SeedEvent struct {
	Status      string
	OccurredAt  time.Time
	Description string
}

// SeedShipment is an order's shipment.
type SeedShipment struct {
	Carrier, TrackingNumber string
	ShippedAt               time.Time
	EstimatedDelivery       time.Time
	DeliveredAt             *time.Time
}

// SeedResult says what Seed inserted.
type SeedResult struct {
	Customers, Orders, Canaries int
}

// Seed loads data. It is idempotent: rows that exist are left as they are,
// and an order that exists keeps its timeline. Administrative: it runs as
// the schema owner, with a staff binding so that it also works where the
// owner is not a superuser and row-level security applies to it.
func (s *Store) Seed(ctx context.Context, data SeedData) (SeedResult, error) {
	var res SeedResult
	err := s.inTx(ctx, StaffAccess(), pgx.ReadWrite, func(tx pgx.Tx) error {
		for _, c := range data.Customers {
			tag, err := tx.Exec(ctx, `-- name: seed_customer
INSERT INTO customers (id, name, email, phone, address_line1, city, postal_code, country_code, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING`,
				c.ID, c.Name, c.Email, c.Phone, c.Address, c.City, c.PostalCode, c.Country, c.CreatedAt)
			if err != nil {
				return err
			}
			res.Customers += int(tag.RowsAffected())
		}
		for _, o := range data.Orders {
			n, err := seedOrder(ctx, tx, o)
			if err != nil {
				return err
			}
			res.Orders += n
		}
		for _, id := range data.Canaries {
			tag, err := tx.Exec(ctx, `-- name: seed_canary
INSERT INTO canaries (id) VALUES ($1) ON CONFLICT (id) DO NOTHING`, id)
			if err != nil {
				return err
			}
			res.Canaries += int(tag.RowsAffected())
		}
		return nil
	})
	return res, translate("seed", err)
}

func seedOrder(ctx context.Context, tx pgx.Tx, o SeedOrder) (int, error) {
	tag, err := tx.Exec(ctx, `-- name: seed_order
INSERT INTO orders (id, customer_id, status, placed_at, updated_at, item_count, total_cents, currency,
                    card_brand, card_last4, delivery_instructions, internal_note, cost_cents, fraud_flag,
                    cancelled_at, cancel_reason)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
ON CONFLICT (id) DO NOTHING`,
		o.ID, o.CustomerID, o.Status, o.PlacedAt, o.PlacedAt, o.ItemCount, o.TotalCents, o.Currency,
		o.CardBrand, o.CardLast4, o.DeliveryInstructions, o.InternalNote, o.CostCents, o.FraudFlag,
		o.CancelledAt, o.CancelReason)
	if err != nil || tag.RowsAffected() == 0 {
		return 0, err // already seeded: leave its timeline alone too
	}
	for _, e := range o.Events {
		if _, err := tx.Exec(ctx, `-- name: seed_order_event
INSERT INTO order_events (order_id, customer_id, status, occurred_at, description) VALUES ($1, $2, $3, $4, $5)`,
			o.ID, o.CustomerID, e.Status, e.OccurredAt, e.Description); err != nil {
			return 0, err
		}
	}
	if s := o.Shipment; s != nil {
		if _, err := tx.Exec(ctx, `-- name: seed_shipment
INSERT INTO shipments (order_id, customer_id, carrier, tracking_number, shipped_at, estimated_delivery, delivered_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			o.ID, o.CustomerID, s.Carrier, s.TrackingNumber, s.ShippedAt, s.EstimatedDelivery, s.DeliveredAt); err != nil {
			return 0, err
		}
	}
	return 1, nil
}
