package store_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/example/order-mcp/internal/dbtest"
	"github.com/example/order-mcp/internal/demo"
	"github.com/example/order-mcp/internal/store"
	"github.com/example/order-mcp/internal/testenv"
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
	alice := demo.Customers()[0]
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
	customers := demo.Customers()
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

	// The same attacks through a connection that bypasses row-level
	// security (the owner, a superuser here): the customer filter in every
	// statement must hold on its own, as docs/ACCESS.md promises.
	t.Run("GoFilterHoldsWithoutRowLevelSecurity", func(t *testing.T) {
		owner := dbtest.Owner(t, dsn)
		asAlice := store.CustomerAccess(alice.ID)
		if _, err := owner.GetOrder(ctx, asAlice, bobsOrder); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("get of bob's order as alice: %v, want ErrNotFound", err)
		}
		if orders, err := owner.ListRecentOrders(ctx, asAlice, bob.ID, "", 25); err != nil || len(orders) != 0 {
			t.Errorf("alice listing bob: %d orders, err %v", len(orders), err)
		}
		_, err := owner.CancelOrder(ctx, write(asAlice), store.CancelRequest{OrderID: bobsOrder, Reason: "customer_request", DailyQuota: 5})
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("cancel of bob's order as alice: %v, want ErrNotFound", err)
		}
		if o, err := owner.GetOrder(ctx, store.StaffAccess(), bobsOrder); err != nil || o.Status != store.StatusPending {
			t.Errorf("bob's order after the attempt: %+v %v", o.Status, err)
		}
	})

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
	s, traced := tracedStore(t)
	customers := demo.Customers()
	alice, bob := customers[0], customers[1]
	bobsOrder := orderIn(t, s, bob.ID, store.StatusShipped)

	trace := func(id string) []store.QueryEvent {
		events, err := traced(func() error { _, err := s.GetOrder(ctx, store.CustomerAccess(alice.ID), id); return err })
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("lookup of %s: %v", id, err)
		}
		return events
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

// tracedStore returns an application store and a function that runs f
// and returns the statements f ran (name, rows, SQLSTATE), for tests that
// compare the work two calls do.
func tracedStore(t *testing.T) (*store.Store, func(f func() error) ([]store.QueryEvent, error)) {
	t.Helper()
	var (
		mu     sync.Mutex
		events []store.QueryEvent
	)
	s := dbtest.App(t, dsn, store.Options{Observe: func(e store.QueryEvent) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, store.QueryEvent{Name: e.Name, Rows: e.Rows, Code: e.Code})
	}})
	return s, func(f func() error) ([]store.QueryEvent, error) {
		mu.Lock()
		events = nil
		mu.Unlock()
		err := f()
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(events), err
	}
}

func TestCancelOrder(t *testing.T) {
	ctx := context.Background()
	owner := dbtest.Owner(t, dsn)
	s := dbtest.App(t, dsn, store.Options{})
	customers := demo.Customers()
	carol, dave := customers[2], customers[3]
	pending := orderIn(t, owner, carol.ID, store.StatusPending)
	shipped := orderIn(t, owner, carol.ID, store.StatusShipped)
	req := func(id string) store.CancelRequest {
		return store.CancelRequest{OrderID: id, Reason: "customer_request", DailyQuota: 5}
	}

	t.Run("OtherCustomerCannotCancel", func(t *testing.T) {
		_, err := s.CancelOrder(ctx, write(store.CustomerAccess(dave.ID)), req(pending))
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
	})
	t.Run("PendingOrderIsCancelled", func(t *testing.T) {
		out, err := s.CancelOrder(ctx, write(store.CustomerAccess(carol.ID)), req(pending))
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
		out, err := s.CancelOrder(ctx, write(store.CustomerAccess(carol.ID)), req(pending))
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
		_, err := s.CancelOrder(ctx, write(store.CustomerAccess(carol.ID)), req(shipped))
		if !errors.Is(err, store.ErrNotCancellable) {
			t.Fatalf("err = %v, want ErrNotCancellable", err)
		}
	})
	t.Run("DailyQuotaStopsMassCancellation", func(t *testing.T) {
		processing := orderIn(t, owner, carol.ID, store.StatusProcessing)
		q := req(processing)
		q.DailyQuota = 1 // carol already cancelled one order today
		_, err := s.CancelOrder(ctx, write(store.CustomerAccess(carol.ID)), q)
		if !errors.Is(err, store.ErrCancelQuota) {
			t.Fatalf("err = %v, want ErrCancelQuota", err)
		}
		o, _ := s.GetOrder(ctx, store.CustomerAccess(carol.ID), processing)
		if o.Status != store.StatusProcessing {
			t.Fatalf("order changed to %s despite the quota", o.Status)
		}
	})
}

// cancellable returns a customer's orders that may still be cancelled.
func cancellable(t *testing.T, s *store.Store, customerID string) []string {
	t.Helper()
	var ids []string
	for _, st := range []string{store.StatusPending, store.StatusProcessing} {
		orders, err := s.ListRecentOrders(context.Background(), store.StaffAccess(), customerID, st, 25)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range orders {
			ids = append(ids, o.ID)
		}
	}
	if len(ids) < 2 {
		t.Fatalf("%s has %d cancellable orders in the seed, want at least 2", customerID, len(ids))
	}
	return ids
}

// concurrently runs f for each id at the same moment and collects results.
func concurrently(ids []string, f func(id string) (store.CancelOutcome, error)) ([]store.CancelOutcome, []error) {
	outs, errs := make([]store.CancelOutcome, len(ids)), make([]error, len(ids))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, id := range ids {
		wg.Go(func() {
			<-start
			outs[i], errs[i] = f(id)
		})
	}
	close(start)
	wg.Wait()
	return outs, errs
}

// TestCancelUnderConcurrency attacks cancel_order's guards with parallel
// calls: a prompt-injected "cancel everything" fired at once must not
// overshoot the customer's daily quota, and a repeated cancellation must
// stay idempotent rather than fail as "not found".
func TestCancelUnderConcurrency(t *testing.T) {
	ctx := context.Background()
	s := dbtest.App(t, dsn, store.Options{MaxConns: 20})
	customers := demo.Customers()

	// Two cancellations of different orders of one customer, daily quota 1.
	// Each appends its audit record in its own transaction, so holding the
	// audit chain's lock stalls a cancellation after it has counted the
	// day's cancels: both are in flight at once. Only when both wait on a
	// lock is the audit lock released; the customer's cancel lock must have
	// made the second wait before counting, so it sees the first's cancel.
	t.Run("QuotaHoldsAgainstParallelCancels", func(t *testing.T) {
		c := customers[5]
		ids := cancellable(t, s, c.ID)[:2]
		release := testenv.HoldAuditChainLock(t, dsn)
		done := make(chan struct{})
		var (
			outs []store.CancelOutcome
			errs []error
		)
		go func() {
			defer close(done)
			outs, errs = concurrently(ids, func(id string) (store.CancelOutcome, error) {
				return s.CancelOrder(ctx, write(store.CustomerAccess(c.ID)), store.CancelRequest{
					OrderID: id, Reason: "customer_request", DailyQuota: 1,
				})
			})
		}()
		waitForLockWaiters(t, 2)
		release()
		<-done
		cancelled := 0
		for i := range ids {
			switch {
			case errs[i] == nil && !outs[i].AlreadyCancelled:
				cancelled++
			case errs[i] != nil && !errors.Is(errs[i], store.ErrCancelQuota):
				t.Errorf("cancel %s: %v", ids[i], errs[i])
			}
		}
		if cancelled != 1 {
			t.Fatalf("quota 1: %d of %d parallel cancellations went through", cancelled, len(ids))
		}
	})

	t.Run("RepeatedCancelStaysIdempotent", func(t *testing.T) {
		c := customers[4]
		id := cancellable(t, s, c.ID)[0]
		same := []string{id, id, id, id, id}
		outs, errs := concurrently(same, func(id string) (store.CancelOutcome, error) {
			return s.CancelOrder(ctx, write(store.CustomerAccess(c.ID)), store.CancelRequest{OrderID: id, Reason: "customer_request", DailyQuota: 5})
		})
		fresh := 0
		for i := range same {
			if errs[i] != nil {
				t.Fatalf("call %d: %v (a concurrent repeat must answer already cancelled)", i, errs[i])
			}
			if !outs[i].AlreadyCancelled {
				fresh++
			}
		}
		if fresh != 1 {
			t.Fatalf("%d calls each report having cancelled the order, want 1", fresh)
		}
	})
}

// fixedSealer stands in for the audit package's HMAC: these tests look at
// cancellations, not at the chain.
type fixedSealer struct{}

func (fixedSealer) Seal(*store.AuditEntry) []byte { return make([]byte, 32) }
func (fixedSealer) KeyID() string                 { return "fixed" }

// waitForLockWaiters returns once n sessions wait on an advisory lock. It
// polls for up to 30 seconds: a bound on a hang, generous enough for a
// loaded machine, never a measurement.
func waitForLockWaiters(t *testing.T, n int) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		var waiting int
		if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_locks
			 WHERE locktype = 'advisory' AND NOT granted
			   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting >= n {
			return
		}
	}
	t.Fatalf("fewer than %d sessions ever waited on a lock", n)
}

// TestCheckLeastPrivilege: serve and stdio refuse to start as a role that
// could lift row-level security: a superuser, a role with BYPASSRLS, or one
// that owns (or inherits ownership of) a table.
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

	// Roles that are not superusers but could still lift row-level security.
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Close(ctx) })
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	unsafe := map[string][]string{
		"BypassRLS": {"CREATE ROLE %s LOGIN NOSUPERUSER BYPASSRLS"},
		"OwnsATable": {"CREATE ROLE %s LOGIN NOSUPERUSER",
			"CREATE TABLE public.%[1]s_probe (x int)", "ALTER TABLE public.%[1]s_probe OWNER TO %[1]s"},
		"InheritsOwnership": {"CREATE ROLE %[1]s_group NOLOGIN", "CREATE ROLE %[1]s LOGIN NOSUPERUSER IN ROLE %[1]s_group",
			"CREATE TABLE public.%[1]s_probe (x int)", "ALTER TABLE public.%[1]s_probe OWNER TO %[1]s_group"},
	}
	for name, setup := range unsafe {
		t.Run(name, func(t *testing.T) {
			role := "lp_" + strings.ToLower(name) + "_" + suffix
			t.Cleanup(func() {
				for _, q := range []string{"DROP TABLE IF EXISTS public.%[1]s_probe", "DROP ROLE IF EXISTS %[1]s", "DROP ROLE IF EXISTS %[1]s_group"} {
					if _, err := admin.Exec(ctx, fmt.Sprintf(q, role)); err != nil {
						t.Error(err)
					}
				}
			})
			for _, q := range setup {
				if _, err := admin.Exec(ctx, fmt.Sprintf(q, role)); err != nil {
					t.Fatal(err)
				}
			}
			u, err := url.Parse(dsn)
			if err != nil {
				t.Fatal(err)
			}
			u.User = url.User(role)
			s, err := store.Open(ctx, u.String(), store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.CheckLeastPrivilege(ctx); !errors.Is(err, store.ErrUnsafeRole) {
				t.Fatalf("role %s passed the check: %v", role, err)
			}
		})
	}
}

func TestSeedIsIdempotent(t *testing.T) {
	owner := dbtest.Owner(t, dsn)
	res, err := owner.Seed(context.Background(), demo.Dataset(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if res.Customers != 0 || res.Orders != 0 {
		t.Fatalf("second seed inserted %+v", res)
	}
}

// write binds a cancellation to a and to an audit record, as a tool call
// does (see tools.Call.Write).
func write(a store.Access) store.Write {
	return store.NewWrite(a, &store.AuditEntry{Kind: "tool_call", Action: "cancel_order", Decision: "allowed", Outcome: "refused"}, fixedSealer{})
}

// TestAToolWriteNeedsItsAuditRecord: a store method that changes customer
// data for a tool runs only with a binding and the call's audit record,
// which it commits with the change; without either, nothing runs.
func TestAToolWriteNeedsItsAuditRecord(t *testing.T) {
	ctx := context.Background()
	var statements []string
	s := dbtest.App(t, dsn, store.Options{Observe: func(e store.QueryEvent) { statements = append(statements, e.Name) }})
	c := demo.Customers()[4]
	req := store.CancelRequest{OrderID: "ord_0000000000000000", Reason: "customer_request", DailyQuota: 5}
	for name, w := range map[string]store.Write{
		"NoBindingAndNoRecord": {},
		"NoRecord":             store.NewWrite(store.CustomerAccess(c.ID), nil, fixedSealer{}),
		"NoSealer":             store.NewWrite(store.CustomerAccess(c.ID), &store.AuditEntry{}, nil),
		"NoBinding":            store.NewWrite(store.Access{}, &store.AuditEntry{}, fixedSealer{}),
	} {
		t.Run(name+"IsRefused", func(t *testing.T) {
			statements = nil
			if _, err := s.CancelOrder(ctx, w, req); !errors.Is(err, store.ErrNoAccess) && !errors.Is(err, store.ErrNoAuditRecord) {
				t.Fatalf("got %v, want ErrNoAccess or ErrNoAuditRecord", err)
			}
			if len(statements) != 0 {
				t.Fatalf("statements ran: %v", statements)
			}
		})
	}
}
