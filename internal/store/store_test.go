package store_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/example/order-mcp/internal/dbtest"
	"github.com/example/order-mcp/internal/store"
)

var dsn string

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m, &dsn)) }

// orderIn returns the id of one of customer's seeded orders in status.
func orderIn(t *testing.T, s *store.Store, customerID, status string) string {
	t.Helper()
	orders, err := s.ListRecentOrders(context.Background(), store.StaffAccess(), customerID, status, 25)
	if err != nil {
		t.Fatal(err)
	}
	if len(orders) == 0 {
		t.Fatalf("no %s order for %s in the seed", status, customerID)
	}
	return orders[0].ID
}

func TestGetOrderReturnsTimelineAndShipment(t *testing.T) {
	ctx := context.Background()
	s := dbtest.App(t, dsn, store.Options{})
	alice := store.DemoCustomers()[0]
	id := orderIn(t, s, alice.ID, store.StatusDelivered)

	o, err := s.GetOrder(ctx, store.CustomerAccess(alice.ID), id)
	if err != nil {
		t.Fatal(err)
	}
	if o.ID != id || o.CustomerID != alice.ID || o.Status != store.StatusDelivered {
		t.Fatalf("got order %s of %s in %s", o.ID, o.CustomerID, o.Status)
	}
	var statuses []string
	for i, e := range o.Events {
		statuses = append(statuses, e.Status)
		if i > 0 && e.OccurredAt.Before(o.Events[i-1].OccurredAt) {
			t.Errorf("timeline out of order at %d", i)
		}
	}
	want := []string{store.StatusPending, store.StatusProcessing, store.StatusShipped, store.StatusDelivered}
	if !slices.Equal(statuses, want) {
		t.Errorf("timeline %v, want %v", statuses, want)
	}
	if o.Shipment == nil || o.Shipment.TrackingNumber == "" || o.Shipment.DeliveredAt == nil {
		t.Errorf("delivered order without a complete shipment: %+v", o.Shipment)
	}
	if o.Contact.Email != alice.Email {
		t.Errorf("contact email %q, want the stored one", o.Contact.Email)
	}
}

func TestCustomerScoping(t *testing.T) {
	ctx := context.Background()
	s := dbtest.App(t, dsn, store.Options{})
	customers := store.DemoCustomers()
	alice, bob := customers[0], customers[1]
	bobsOrder := orderIn(t, s, bob.ID, store.StatusPending)

	tests := []struct {
		name    string
		access  store.Access
		orderID string
		wantErr error
	}{
		{"OwnOrderIsFound", store.CustomerAccess(bob.ID), bobsOrder, nil},
		{"OtherCustomersOrderIsNotFound", store.CustomerAccess(alice.ID), bobsOrder, store.ErrNotFound},
		{"MissingOrderIsNotFound", store.CustomerAccess(alice.ID), "ord_0000000000000000", store.ErrNotFound},
		{"StaffSeesAnyOrder", store.StaffAccess(), bobsOrder, nil},
		{"NoBindingFailsClosed", store.Access{}, bobsOrder, store.ErrNoAccess},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := s.GetOrder(ctx, tt.access, tt.orderID)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && o.ID != tt.orderID {
				t.Fatalf("got order %s", o.ID)
			}
		})
	}

	t.Run("ListingAnotherCustomerIsEmpty", func(t *testing.T) {
		orders, err := s.ListRecentOrders(ctx, store.CustomerAccess(alice.ID), bob.ID, "", 25)
		if err != nil || len(orders) != 0 {
			t.Fatalf("alice listing bob: %d orders, err %v", len(orders), err)
		}
	})
	t.Run("ListingIsNewestFirstAndBounded", func(t *testing.T) {
		orders, err := s.ListRecentOrders(ctx, store.CustomerAccess(alice.ID), alice.ID, "", 3)
		if err != nil || len(orders) != 3 {
			t.Fatalf("got %d orders, err %v", len(orders), err)
		}
		for i := 1; i < len(orders); i++ {
			if orders[i].PlacedAt.After(orders[i-1].PlacedAt) {
				t.Errorf("order %d is newer than order %d", i, i-1)
			}
		}
	})
}

// TestNotFoundAndNotYoursDoTheSameWork proves, through the query tracer,
// that looking up another customer's order runs exactly the statements a
// lookup of a missing order runs and gets exactly as many rows (none): the
// two cases cannot be told apart by what the server does.
func TestNotFoundAndNotYoursDoTheSameWork(t *testing.T) {
	ctx := context.Background()
	var (
		mu     sync.Mutex
		events []store.QueryEvent
	)
	s := dbtest.App(t, dsn, store.Options{Observe: func(e store.QueryEvent) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, store.QueryEvent{Name: e.Name, Rows: e.Rows, Code: e.Code})
	}})
	customers := store.DemoCustomers()
	alice, bob := customers[0], customers[1]
	bobsOrder := orderIn(t, s, bob.ID, store.StatusShipped)

	trace := func(id string) []store.QueryEvent {
		mu.Lock()
		events = nil
		mu.Unlock()
		if _, err := s.GetOrder(ctx, store.CustomerAccess(alice.ID), id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("lookup of %s: %v", id, err)
		}
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(events)
	}
	notYours := trace(bobsOrder)
	missing := trace("ord_ZZZZZZZZZZZZZZZZ")
	if !slices.Equal(notYours, missing) {
		t.Fatalf("different work:\nnot yours: %+v\nmissing:   %+v", notYours, missing)
	}
	var sawLookup bool
	for _, e := range notYours {
		if e.Name == "get_order" {
			sawLookup = true
			if e.Rows != 0 {
				t.Errorf("get_order returned %d rows for another customer's order", e.Rows)
			}
		}
	}
	if !sawLookup {
		t.Fatalf("get_order did not run: %+v", notYours)
	}
}

func TestCancelOrder(t *testing.T) {
	ctx := context.Background()
	owner := dbtest.Owner(t, dsn)
	s := dbtest.App(t, dsn, store.Options{})
	customers := store.DemoCustomers()
	carol, dave := customers[2], customers[3]
	pending := orderIn(t, owner, carol.ID, store.StatusPending)
	shipped := orderIn(t, owner, carol.ID, store.StatusShipped)
	req := func(id string) store.CancelRequest {
		return store.CancelRequest{OrderID: id, Reason: "customer_request", DailyQuota: 5}
	}

	t.Run("OtherCustomerCannotCancel", func(t *testing.T) {
		_, err := s.CancelOrder(ctx, store.CustomerAccess(dave.ID), req(pending))
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
	})
	t.Run("PendingOrderIsCancelled", func(t *testing.T) {
		out, err := s.CancelOrder(ctx, store.CustomerAccess(carol.ID), req(pending))
		if err != nil || out.Status != store.StatusCancelled || out.AlreadyCancelled {
			t.Fatalf("got %+v, %v", out, err)
		}
		o, err := s.GetOrder(ctx, store.CustomerAccess(carol.ID), pending)
		if err != nil {
			t.Fatal(err)
		}
		if last := o.Events[len(o.Events)-1]; o.Status != store.StatusCancelled || last.Status != store.StatusCancelled {
			t.Fatalf("after cancel: status %s, last event %s", o.Status, last.Status)
		}
	})
	t.Run("CancellingAgainIsIdempotent", func(t *testing.T) {
		out, err := s.CancelOrder(ctx, store.CustomerAccess(carol.ID), req(pending))
		if err != nil || !out.AlreadyCancelled {
			t.Fatalf("got %+v, %v", out, err)
		}
		o, _ := s.GetOrder(ctx, store.CustomerAccess(carol.ID), pending)
		cancels := 0
		for _, e := range o.Events {
			if e.Status == store.StatusCancelled {
				cancels++
			}
		}
		if cancels != 1 {
			t.Fatalf("%d cancellation events after two calls", cancels)
		}
	})
	t.Run("ShippedOrderIsNotCancellable", func(t *testing.T) {
		_, err := s.CancelOrder(ctx, store.CustomerAccess(carol.ID), req(shipped))
		if !errors.Is(err, store.ErrNotCancellable) {
			t.Fatalf("err = %v, want ErrNotCancellable", err)
		}
	})
	t.Run("DailyQuotaStopsMassCancellation", func(t *testing.T) {
		processing := orderIn(t, owner, carol.ID, store.StatusProcessing)
		q := req(processing)
		q.DailyQuota = 1 // carol already cancelled one order today
		_, err := s.CancelOrder(ctx, store.CustomerAccess(carol.ID), q)
		if !errors.Is(err, store.ErrCancelQuota) {
			t.Fatalf("err = %v, want ErrCancelQuota", err)
		}
		o, _ := s.GetOrder(ctx, store.CustomerAccess(carol.ID), processing)
		if o.Status != store.StatusProcessing {
			t.Fatalf("order changed to %s despite the quota", o.Status)
		}
	})
}

func TestCheckLeastPrivilege(t *testing.T) {
	ctx := context.Background()
	owner := dbtest.Owner(t, dsn) // the test database's owner is a superuser here
	if err := owner.CheckLeastPrivilege(ctx); !errors.Is(err, store.ErrUnsafeRole) {
		t.Fatalf("owner connection passed the check: %v", err)
	}
	app := dbtest.App(t, dsn, store.Options{})
	if err := app.CheckLeastPrivilege(ctx); err != nil {
		t.Fatalf("app role failed the check: %v", err)
	}
}

func TestSeedIsIdempotent(t *testing.T) {
	owner := dbtest.Owner(t, dsn)
	res, err := owner.Seed(context.Background(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if res.Customers != 0 || res.Orders != 0 {
		t.Fatalf("second seed inserted %+v", res)
	}
}
