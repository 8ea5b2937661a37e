package store

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Access says whose rows a statement may touch. It is the database half of
// object-level authorization (OWASP API1): the MCP layer decides who the
// caller is, and every customer-data statement runs under an Access that
// binds it to one customer or to staff.
//
// The zero Access binds nothing and every method refuses it with ErrNoAccess:
// forgetting to set it fails closed.
type Access struct {
	customerID  string
	anyCustomer bool
}

// CustomerAccess limits statements to one customer's rows.
func CustomerAccess(customerID string) Access { return Access{customerID: customerID} }

// StaffAccess lets statements read any customer's rows. Only callers with
// orders:read:any and no customer binding get it.
func StaffAccess() Access { return Access{anyCustomer: true} }

// CustomerID returns the bound customer, or "" for staff.
func (a Access) CustomerID() string { return a.customerID }

// IsStaff reports whether a is a staff binding.
func (a Access) IsStaff() bool { return a.anyCustomer }

func (a Access) valid() bool { return a.anyCustomer != (a.customerID != "") }

// setAccessSQL binds the transaction for row-level security. The values are
// parameters, never spliced into SQL, and the third argument of set_config
// (is_local = true) scopes them to this transaction, so a pooled connection
// never carries one caller's binding into the next caller's work.
const setAccessSQL = `-- name: set_access
SELECT set_config('app.customer_id', $1, true), set_config('app.any_customer', $2, true)`

// inTx runs fn in a transaction bound to a. Read-only work passes
// pgx.ReadOnly, so that even a statement that somehow carried a write (a
// data-modifying CTE) would be refused by Postgres; it also reads one
// snapshot (REPEATABLE READ), so an order and its timeline, read by two
// statements, always agree. (A read-only transaction never fails to
// serialize.) Writes stay READ COMMITTED and take row locks
// (SELECT ... FOR UPDATE) where they decide on what they read.
func (s *Store) inTx(ctx context.Context, a Access, mode pgx.TxAccessMode, fn func(pgx.Tx) error) error {
	if !a.valid() {
		return ErrNoAccess
	}
	iso := pgx.ReadCommitted
	if mode == pgx.ReadOnly {
		iso = pgx.RepeatableRead
	}
	return s.run(ctx, func(c *pgxpool.Conn) error {
		return pgx.BeginTxFunc(ctx, c, pgx.TxOptions{AccessMode: mode, IsoLevel: iso}, func(tx pgx.Tx) error {
			anyCustomer := "off"
			if a.anyCustomer {
				anyCustomer = "on"
			}
			if _, err := tx.Exec(ctx, setAccessSQL, a.customerID, anyCustomer); err != nil {
				return err
			}
			return fn(tx)
		})
	})
}

// Write binds a write a tool makes: whose rows it may touch, and the audit
// record that must commit in the same transaction as the change. Store
// methods that change customer data take a Write rather than an Access, so
// a tool's change cannot commit without its record; the zero Write is
// refused. (Bookkeeping writes, such as lockouts or a key's last use, are
// not a tool's writes and do not take one.)
type Write struct {
	access Access
	record *AuditEntry
	seal   Sealer
}

// NewWrite returns the binding of one write: a, and the record to append
// (its Outcome and ObjectIDs are filled in by the method) sealed by seal.
func NewWrite(a Access, record *AuditEntry, seal Sealer) Write {
	return Write{access: a, record: record, seal: seal}
}

// ErrNoAuditRecord refuses a write that comes without its audit record.
var ErrNoAuditRecord = errors.New("store: a tool's write needs its audit record")

func (w Write) valid() error {
	switch {
	case !w.access.valid():
		return ErrNoAccess
	case w.record == nil || w.seal == nil:
		return ErrNoAuditRecord
	}
	return nil
}
