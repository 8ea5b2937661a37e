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

// setReadAccessSQL binds a read: the same binding as setAccessSQL, and the
// transaction made read-only, so that even a statement that somehow carried
// a write (a data-modifying CTE) would be refused by Postgres. Setting
// transaction_read_only on is allowed at any point of a transaction (only
// turning it off is not).
const setReadAccessSQL = `-- name: set_access
SELECT set_config('app.customer_id', $1, true), set_config('app.any_customer', $2, true),
       set_config('transaction_read_only', 'on', true)`

func (a Access) anyCustomerSetting() string {
	if a.anyCustomer {
		return "on"
	}
	return "off"
}

// read runs one read bound to a in a single round trip: the binding
// (setReadAccessSQL) and the read are sent together as one pipelined batch,
// which Postgres runs as one implicit transaction, so the binding holds for
// the read and ends with it. queue adds the read's statements to the batch;
// scan reads their results, in order. Each read is a single statement, so
// it sees one snapshot: an order and its timeline always agree.
func (s *Store) read(ctx context.Context, a Access, queue func(*pgx.Batch), scan func(pgx.BatchResults) error) error {
	if !a.valid() {
		return ErrNoAccess
	}
	return s.run(ctx, func(c *pgxpool.Conn) error {
		b := &pgx.Batch{}
		b.Queue(setReadAccessSQL, a.customerID, a.anyCustomerSetting())
		queue(b)
		br := c.SendBatch(ctx, b)
		_, err := br.Exec()
		if err == nil {
			err = scan(br)
		}
		return errors.Join(err, br.Close())
	})
}

// inTx runs fn in a transaction bound to a: writes, which need several
// statements deciding on what they read. Writes stay READ COMMITTED and
// take row locks (SELECT ... FOR UPDATE) where they decide on what they
// read. Reads use read (one round trip) instead.
func (s *Store) inTx(ctx context.Context, a Access, mode pgx.TxAccessMode, fn func(pgx.Tx) error) error {
	if !a.valid() {
		return ErrNoAccess
	}
	return s.run(ctx, func(c *pgxpool.Conn) error {
		return pgx.BeginTxFunc(ctx, c, pgx.TxOptions{AccessMode: mode, IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, setAccessSQL, a.customerID, a.anyCustomerSetting()); err != nil {
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
