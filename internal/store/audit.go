package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// AuditEntry is one row of the audit trail. internal/audit builds entries
// and seals them; this file only stores and reads them.
type AuditEntry struct {
	Seq           int64
	RecordedAt    time.Time
	Kind          string // tool_call, refusal, admin
	Principal     string
	CredentialID  string
	Transport     string
	Action        string // tool name, admin command, or what was refused
	ObjectIDs     []string
	Decision      string // allowed, denied
	Outcome       string
	Reason        string
	Source        string // client address, for refusals before MCP
	Count         int
	LatencyMicros int64
	CorrelationID string
	Arguments     string // redacted JSON
	PrevHMAC      []byte
	HMAC          []byte
}

// Sealer computes an entry's chain link from its content and PrevHMAC. It is
// implemented by internal/audit with a key the database never sees.
type Sealer interface {
	Seal(e *AuditEntry) []byte
}

// AuditChainLockKey serializes audit appends across every process writing to the
// database (serve replicas, stdio processes, the command line), so the
// chain has one order. The lock is transaction-scoped: it is released by the
// commit that makes the batch durable.
const AuditChainLockKey int64 = 0x6f72646d63706175 // "ordmcpau"

const lockAuditSQL = `-- name: lock_audit_chain
SELECT pg_advisory_xact_lock($1)`

const auditHeadSQL = `-- name: audit_chain_head
SELECT seq, hmac FROM audit_log ORDER BY seq DESC LIMIT 1`

const insertAuditSQL = `-- name: insert_audit
INSERT INTO audit_log (seq, recorded_at, kind, principal, credential_id, transport, action,
                       object_ids, decision, outcome, reason, source, count, latency_us,
                       correlation_id, arguments, prev_hmac, hmac)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`

// GenesisHMAC returns the PrevHMAC of the first entry: 32 zero bytes (a
// fresh slice each time, so no caller can change it for the others).
func GenesisHMAC() []byte { return make([]byte, 32) }

// AppendAudit appends entries to the audit trail in one transaction: one
// commit (one fsync) for the whole batch.
func (s *Store) AppendAudit(ctx context.Context, seal Sealer, entries []*AuditEntry) error {
	err := s.run(ctx, func(c *pgxpool.Conn) error {
		return pgx.BeginTxFunc(ctx, c, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
			return appendAudit(ctx, tx, seal, entries)
		})
	})
	return translate("append audit", err)
}

// appendAudit chains and inserts entries inside tx, holding the chain lock
// until tx ends. tx must be READ COMMITTED, so that the head it reads after
// the lock is the one the previous holder committed.
func appendAudit(ctx context.Context, tx pgx.Tx, seal Sealer, entries []*AuditEntry) error {
	if _, err := tx.Exec(ctx, lockAuditSQL, AuditChainLockKey); err != nil {
		return err
	}
	var (
		seq  int64
		prev = GenesisHMAC()
	)
	if err := tx.QueryRow(ctx, auditHeadSQL).Scan(&seq, &prev); err != nil && err != pgx.ErrNoRows {
		return err
	}
	batch := &pgx.Batch{}
	for _, e := range entries {
		seq++
		e.Seq = seq
		// Postgres keeps microseconds: seal exactly what will be read back.
		e.RecordedAt = e.RecordedAt.UTC().Truncate(time.Microsecond)
		if e.Count == 0 {
			e.Count = 1
		}
		if e.ObjectIDs == nil {
			e.ObjectIDs = []string{}
		}
		e.PrevHMAC = prev
		e.HMAC = seal.Seal(e)
		prev = e.HMAC
		batch.Queue(insertAuditSQL, e.Seq, e.RecordedAt, e.Kind, e.Principal, e.CredentialID, e.Transport,
			e.Action, e.ObjectIDs, e.Decision, e.Outcome, e.Reason, e.Source, e.Count, e.LatencyMicros,
			e.CorrelationID, e.Arguments, e.PrevHMAC, e.HMAC)
	}
	return tx.SendBatch(ctx, batch).Close()
}

const readAuditSQL = `-- name: read_audit
SELECT seq, recorded_at, kind, principal, credential_id, transport, action, object_ids, decision,
       outcome, reason, source, count, latency_us, correlation_id, arguments, prev_hmac, hmac
  FROM audit_log
 ORDER BY seq`

// ReadAudit calls fn for every entry in chain order. Administrative: the
// server's role cannot read the trail back.
func (s *Store) ReadAudit(ctx context.Context, fn func(*AuditEntry) error) error {
	rows, err := s.pool.Query(ctx, readAuditSQL)
	if err != nil {
		return translate("read audit", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e AuditEntry
		if err := rows.Scan(&e.Seq, &e.RecordedAt, &e.Kind, &e.Principal, &e.CredentialID, &e.Transport,
			&e.Action, &e.ObjectIDs, &e.Decision, &e.Outcome, &e.Reason, &e.Source, &e.Count,
			&e.LatencyMicros, &e.CorrelationID, &e.Arguments, &e.PrevHMAC, &e.HMAC); err != nil {
			return translate("read audit", err)
		}
		e.RecordedAt = e.RecordedAt.UTC()
		if err := fn(&e); err != nil {
			return err
		}
	}
	return translate("read audit", rows.Err())
}
