package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/example/order-mcp/internal/dbtest"
	"github.com/example/order-mcp/internal/demo"
	"github.com/example/order-mcp/internal/store"
)

// TestCanaryDoesTheWorkOfAMissingID: every store method a tool calls with
// an id treats a canary record as missing (no row of it returned, none
// changed) after exactly the statements, with exactly the row counts, of
// an id that exists nowhere, for staff and customer bindings alike; and
// it says ErrCanary, which is also ErrNotFound, so that only what looks
// for it can tell.
func TestCanaryDoesTheWorkOfAMissingID(t *testing.T) {
	ctx := context.Background()
	s, trace := tracedStore(t)
	owner := dbtest.Owner(t, dsn)
	planted, err := demo.Canaries(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	res, err := owner.Seed(ctx, planted)
	if err != nil || res.Canaries != len(planted.Canaries) || res.Customers != 1 {
		t.Fatalf("planting canaries: %+v %v", res, err)
	}
	canaryCustomer := planted.Customers[0].ID
	var pending string
	for _, o := range planted.Orders {
		if o.Status == store.StatusPending {
			pending = o.ID
		}
	}
	const missingOrder, missingCustomer = "ord_ZZZZZZZZZZZZZZZZ", "cus_ZZZZZZZZZZZZZZZZ"
	bindings := map[string]store.Access{
		"Staff":           store.StaffAccess(),
		"AnotherCustomer": store.CustomerAccess(demo.Customers()[0].ID),
		"TheCanaryItself": store.CustomerAccess(canaryCustomer), // a key somehow bound to it
	}
	for name, a := range bindings {
		calls := map[string]func(id string) error{
			"GetOrder": func(id string) error { _, err := s.GetOrder(ctx, a, id); return err },
			"ListRecentOrders": func(id string) error {
				if id == pending {
					id = canaryCustomer
				} else {
					id = missingCustomer
				}
				orders, err := s.ListRecentOrders(ctx, a, id, "", 25)
				if len(orders) > 0 {
					t.Errorf("listed %d orders", len(orders))
				}
				return err
			},
			"CancelOrder": func(id string) error {
				_, err := s.CancelOrder(ctx, write(a), store.CancelRequest{OrderID: id, Reason: "customer_request", DailyQuota: 100})
				return err
			},
		}
		for call, f := range calls {
			t.Run(name+"/"+call, func(t *testing.T) {
				missing, merr := trace(func() error { return f(missingOrder) })
				canary, cerr := trace(func() error { return f(pending) })
				if !slices.Equal(canary, missing) {
					t.Fatalf("different work:\ncanary:  %+v\nmissing: %+v", canary, missing)
				}
				if !errors.Is(cerr, store.ErrCanary) || !errors.Is(cerr, store.ErrNotFound) {
					t.Fatalf("canary: %v, want ErrCanary (which is ErrNotFound)", cerr)
				}
				if errors.Is(merr, store.ErrCanary) {
					t.Fatalf("a missing id is reported as a canary: %v", merr)
				}
			})
		}
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var status string
	if err := conn.QueryRow(ctx, "SELECT status FROM orders WHERE id = $1", pending).Scan(&status); err != nil || status != store.StatusPending {
		t.Fatalf("the canary order is %q (%v), want it left pending", status, err)
	}
}
