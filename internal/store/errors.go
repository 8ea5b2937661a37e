package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Sentinel errors callers test for with errors.Is. Their texts are fixed and
// safe, but the MCP layer maps them to its own messages anyway.
var (
	// ErrNotFound means no row matched. A row that exists but belongs to
	// another customer is reported exactly the same way.
	ErrNotFound = errors.New("not found")
	// ErrNotCancellable means the order has moved past the point where it can
	// be cancelled (shipped, delivered or returned).
	ErrNotCancellable = errors.New("order can no longer be cancelled")
	// ErrCancelQuota means the customer reached the daily cancellation quota.
	ErrCancelQuota = errors.New("daily cancellation quota reached")
	// ErrNoAccess means a statement was attempted without a customer or staff
	// binding. It is a programming error, and it fails closed.
	ErrNoAccess = errors.New("no access binding for this statement")
	// ErrUnsafeRole means the server's effective database role could bypass
	// the database-side controls (see Store.CheckLeastPrivilege).
	ErrUnsafeRole = errors.New("unsafe database role")
	// ErrNotMigrated means the schema the server needs is not there.
	ErrNotMigrated = errors.New("database not migrated")
	// ErrBusy means no pooled connection became free within the acquire
	// timeout: the database is saturated, and the call is shed rather than
	// queued. Retrying shortly is the right thing to do.
	ErrBusy = errors.New("database busy: no connection free")
)

// DBError is a database failure reduced to what an operator may log: the
// operation, the SQLSTATE code and the constraint name. The driver's message
// and detail text are dropped on purpose: they can quote row values.
type DBError struct {
	Op         string
	Code       string
	Constraint string
}

func (e *DBError) Error() string {
	if e.Constraint != "" {
		return fmt.Sprintf("%s: postgres error %s (constraint %s)", e.Op, e.Code, e.Constraint)
	}
	return fmt.Sprintf("%s: postgres error %s", e.Op, e.Code)
}

// translate maps a driver error to this package's errors. It is applied once,
// at the edge of every exported method.
func translate(op string, err error) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrNotCancellable),
		errors.Is(err, ErrCancelQuota), errors.Is(err, ErrNoAccess), errors.Is(err, ErrBusy),
		errors.Is(err, ErrNoAuditRecord), errors.Is(err, ErrAnswered):
		return err
	case errors.Is(err, pgx.ErrNoRows):
		return ErrNotFound
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w", op, err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return &DBError{Op: op, Code: pgErr.Code, Constraint: pgErr.ConstraintName}
	}
	// Connection-level failures (refused, TLS, timeout). Their text names
	// hosts, not data; it is still only ever logged, never shown to a client.
	return fmt.Errorf("%s: %w", op, err)
}
