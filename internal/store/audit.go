package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// AuditEntry is one row of the audit trail. internal/audit builds entries
// and seals them; this file only stores and reads them.
type AuditEntry struct {
	Seq           int64
	RecordID      string // random, given when the record is made: never inserted twice
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
	TraceID       string
	Arguments     string // redacted JSON
	Replayed      bool   // appended from the spill directory after an outage
	SealKeyID     string // which key sealed it ("" for rows of the first version)
	PrevHMAC      []byte
	HMAC          []byte
	// Fallback, when set, is appended instead of this record if this
	// record is already in the trail (see migrations/00011). It is not a
	// column.
	Fallback *AuditEntry `json:"-"`
}

// Sealer computes an entry's chain link from its content and PrevHMAC,
// and says which key it seals with. It is implemented by internal/audit
// with a key the database never sees.
type Sealer interface {
	KeyID() string
	Seal(e *AuditEntry) []byte
}

// AuditChainLockKey serializes audit appends across every process writing
// to the database (serve replicas, stdio processes, the command line), so
// the chain has one order. The lock is transaction-scoped: it is released
// by the commit that makes the batch durable.
const AuditChainLockKey int64 = 0x6f72646d63706175 // "ordmcpau"

const lockAuditSQL = `-- name: lock_audit_chain
SELECT pg_advisory_xact_lock($1)`

const auditHeadSQL = `-- name: audit_chain_head
SELECT seq, hmac FROM audit_log ORDER BY seq DESC LIMIT 1`

const auditRecordedSQL = `-- name: audit_records_present
SELECT record_id FROM audit_log WHERE record_id = ANY($1)`

// insertAuditSQL appends a whole batch in one statement: each parameter is
// one column, as an array with an element per record (object ids, a list
// per record, travel as a JSON array each).
const insertAuditSQL = `-- name: insert_audit
INSERT INTO audit_log (seq, record_id, recorded_at, kind, principal, credential_id, transport, action,
                       object_ids, decision, outcome, reason, source, count, latency_us,
                       correlation_id, trace_id, arguments, replayed, seal_key_id, prev_hmac, hmac)
SELECT u.seq, u.record_id, u.recorded_at, u.kind, u.principal, u.credential_id, u.transport, u.action,
       ARRAY(SELECT x FROM jsonb_array_elements_text(u.object_ids) WITH ORDINALITY AS t(x, n) ORDER BY n),
       u.decision, u.outcome, u.reason, u.source, u.count, u.latency_us,
       u.correlation_id, u.trace_id, u.arguments, u.replayed, u.seal_key_id, u.prev_hmac, u.hmac
  FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::text[],
              $8::text[], $9::jsonb[], $10::text[], $11::text[], $12::text[], $13::text[], $14::integer[],
              $15::bigint[], $16::text[], $17::text[], $18::text[], $19::boolean[], $20::text[], $21::bytea[],
              $22::bytea[])
       AS u(seq, record_id, recorded_at, kind, principal, credential_id, transport, action, object_ids,
            decision, outcome, reason, source, count, latency_us, correlation_id, trace_id, arguments,
            replayed, seal_key_id, prev_hmac, hmac)`

// auditColumns holds a batch column by column, for insertAuditSQL.
type auditColumns struct {
	seq                                                        []int64
	recordID, kind, principal, credentialID, transport, action []string
	objectIDs                                                  [][]byte
	decision, outcome, reason, source                          []string
	count                                                      []int32
	latency                                                    []int64
	correlationID, traceID, arguments, sealKeyID               []string
	recordedAt                                                 []time.Time
	replayed                                                   []bool
	prevHMAC, hmac                                             [][]byte
}

func (c *auditColumns) add(e *AuditEntry) {
	ids, _ := json.Marshal(e.ObjectIDs)
	c.seq = append(c.seq, e.Seq)
	c.recordID = append(c.recordID, e.RecordID)
	c.recordedAt = append(c.recordedAt, e.RecordedAt)
	c.kind = append(c.kind, e.Kind)
	c.principal = append(c.principal, e.Principal)
	c.credentialID = append(c.credentialID, e.CredentialID)
	c.transport = append(c.transport, e.Transport)
	c.action = append(c.action, e.Action)
	c.objectIDs = append(c.objectIDs, ids)
	c.decision = append(c.decision, e.Decision)
	c.outcome = append(c.outcome, e.Outcome)
	c.reason = append(c.reason, e.Reason)
	c.source = append(c.source, e.Source)
	c.count = append(c.count, int32(e.Count))
	c.latency = append(c.latency, e.LatencyMicros)
	c.correlationID = append(c.correlationID, e.CorrelationID)
	c.traceID = append(c.traceID, e.TraceID)
	c.arguments = append(c.arguments, e.Arguments)
	c.replayed = append(c.replayed, e.Replayed)
	c.sealKeyID = append(c.sealKeyID, e.SealKeyID)
	c.prevHMAC = append(c.prevHMAC, e.PrevHMAC)
	c.hmac = append(c.hmac, e.HMAC)
}

func (c *auditColumns) args() []any {
	return []any{c.seq, c.recordID, c.recordedAt, c.kind, c.principal, c.credentialID, c.transport, c.action,
		c.objectIDs, c.decision, c.outcome, c.reason, c.source, c.count, c.latency, c.correlationID, c.traceID,
		c.arguments, c.replayed, c.sealKeyID, c.prevHMAC, c.hmac}
}

// GenesisHMAC returns the PrevHMAC of the first entry: 32 zero bytes (a
// fresh slice each time, so no caller can change it for the others).
func GenesisHMAC() []byte { return make([]byte, 32) }

// AppendAudit appends entries to the audit trail in one transaction, in
// two round trips: the chain lock and its head go in one pipelined batch,
// the batch's one insert and the commit in another. One commit (one fsync)
// for the whole batch. Entries whose RecordID is already in the trail (a
// batch whose commit was sent but never acknowledged, retried; a spill
// file replayed) are skipped, not inserted twice; Seq is 0 for them
// afterwards.
//
// Looking the record ids up costs a statement, and a fresh record cannot
// be there, so a batch of fresh records is inserted without it: the
// unique index on record_id refuses a record that is there after all, and
// the batch is then appended again, looking them up. Replayed records are
// always looked up.
func (s *Store) AppendAudit(ctx context.Context, seal Sealer, entries []*AuditEntry) error {
	lookUp := false
	for _, e := range entries {
		lookUp = lookUp || e.Replayed || e.Fallback != nil
	}
	err := s.appendAuditTx(ctx, seal, entries, lookUp)
	var pgErr *pgconn.PgError
	if !lookUp && errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "audit_log_record_id" {
		err = s.appendAuditTx(ctx, seal, entries, true)
	}
	return translate("append audit", err)
}

func (s *Store) appendAuditTx(ctx context.Context, seal Sealer, entries []*AuditEntry, lookUp bool) error {
	return s.run(ctx, func(c *pgxpool.Conn) error {
		head := &pgx.Batch{}
		head.Queue("BEGIN ISOLATION LEVEL READ COMMITTED")
		tail, err := chainBatch(ctx, c.Conn(), head, seal, entries, lookUp)
		if err != nil {
			return err
		}
		tail.Queue("COMMIT")
		err = c.SendBatch(ctx, tail).Close()
		if err != nil && !c.Conn().PgConn().IsClosed() {
			// The failed batch left its transaction open (aborted): end it
			// before the connection goes back to the pool.
			_, _ = c.Exec(context.WithoutCancel(ctx), "ROLLBACK")
		}
		return err
	})
}

// appendAudit chains and inserts entries inside tx, which must be READ
// COMMITTED, so that the head it reads after the lock is the one the
// previous holder committed; the lock is held until tx ends.
func appendAudit(ctx context.Context, tx pgx.Tx, seal Sealer, entries []*AuditEntry) error {
	tail, err := chainBatch(ctx, tx.Conn(), &pgx.Batch{}, seal, entries, false)
	if err != nil {
		return err
	}
	return tx.SendBatch(ctx, tail).Close()
}

// chainBatch sends batch with the chain lock, the head and the lookup of
// the entries' record ids appended, and returns the batch of inserts that
// extends the chain with the entries not yet recorded.
func chainBatch(ctx context.Context, conn *pgx.Conn, batch *pgx.Batch, seal Sealer, entries []*AuditEntry, lookUp bool) (*pgx.Batch, error) {
	ids := make([]string, 0, len(entries))
	for _, e := range entries {
		if e.RecordID == "" { // every record has an id (internal/audit gives one; callers here may not)
			var b [16]byte
			_, _ = rand.Read(b[:])
			e.RecordID = hex.EncodeToString(b[:])
		}
		ids = append(ids, e.RecordID)
		if e.Fallback != nil {
			ids = append(ids, e.Fallback.RecordID)
		}
	}
	batch.Queue(lockAuditSQL, AuditChainLockKey)
	var (
		seq     int64
		prev    = GenesisHMAC()
		present = map[string]bool{}
	)
	batch.Queue(auditHeadSQL).QueryRow(func(r pgx.Row) error {
		if err := r.Scan(&seq, &prev); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		return nil
	})
	if lookUp {
		batch.Queue(auditRecordedSQL, ids).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					return err
				}
				present[id] = true
			}
			return rows.Err()
		})
	}
	if err := conn.SendBatch(ctx, batch).Close(); err != nil {
		return nil, err
	}
	tail := &pgx.Batch{}
	var cols auditColumns
	for _, e := range entries {
		if present[e.RecordID] {
			e.Seq = 0
			if e.Fallback == nil || present[e.Fallback.RecordID] {
				continue
			}
			e = e.Fallback
		}
		present[e.RecordID] = true // and never twice within one batch
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
		e.SealKeyID = seal.KeyID()
		e.PrevHMAC = prev
		e.HMAC = seal.Seal(e)
		prev = e.HMAC
		cols.add(e)
	}
	if len(cols.seq) > 0 {
		tail.Queue(insertAuditSQL, cols.args()...)
	}
	return tail, nil
}

const readAuditSQL = `-- name: read_audit
SELECT seq, coalesce(record_id, ''), recorded_at, kind, principal, credential_id, transport, action, object_ids,
       decision, outcome, reason, source, count, latency_us, correlation_id, trace_id, arguments, replayed,
       seal_key_id, prev_hmac, hmac
  FROM audit_log
 WHERE seq > $1
 ORDER BY seq
 LIMIT $2`

// ReadAudit calls fn for every entry with seq after from, in chain order,
// at most limit of them (0: all). Administrative: the server's role cannot
// read the trail back.
func (s *Store) ReadAudit(ctx context.Context, from int64, limit int64, fn func(*AuditEntry) error) error {
	if limit <= 0 {
		limit = 1<<63 - 1
	}
	rows, err := s.pool.Query(ctx, readAuditSQL, from, limit)
	if err != nil {
		return translate("read audit", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e AuditEntry
		if err := rows.Scan(&e.Seq, &e.RecordID, &e.RecordedAt, &e.Kind, &e.Principal, &e.CredentialID, &e.Transport,
			&e.Action, &e.ObjectIDs, &e.Decision, &e.Outcome, &e.Reason, &e.Source, &e.Count,
			&e.LatencyMicros, &e.CorrelationID, &e.TraceID, &e.Arguments, &e.Replayed, &e.SealKeyID,
			&e.PrevHMAC, &e.HMAC); err != nil {
			return translate("read audit", err)
		}
		e.RecordedAt = e.RecordedAt.UTC()
		if err := fn(&e); err != nil {
			return err
		}
	}
	return translate("read audit", rows.Err())
}

const auditHeadSeqSQL = `-- name: audit_head_seq
SELECT coalesce(max(seq), 0) FROM audit_log`

// AuditHead returns the seq of the newest record (0 for an empty trail).
// Administrative.
func (s *Store) AuditHead(ctx context.Context) (int64, error) {
	var seq int64
	err := s.pool.QueryRow(ctx, auditHeadSeqSQL).Scan(&seq)
	return seq, translate("audit head", err)
}
