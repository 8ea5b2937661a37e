package audit

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/example/order-mcp/internal/store"
)

// Appender is what the writer needs from the database.
type Appender interface {
	AppendAudit(ctx context.Context, seal store.Sealer, entries []*store.AuditEntry) error
}

// ErrClosed is returned for records written after Close. Callers fail
// closed: a tool result is not released without its audit record.
var ErrClosed = errors.New("audit writer is closed")

// maxBatch bounds one group commit.
const maxBatch = 512

// Writer appends records with group commit. There is one per process.
type Writer struct {
	db     Appender
	sealer *Sealer
	logger *slog.Logger

	mu        sync.RWMutex // guards closed; read-held while sending on queue
	closed    bool
	closeOnce sync.Once
	queue     chan *pending
	done      chan struct{}
	refusals  *refusals
	stopTick  chan struct{}
}

type pending struct {
	entry *store.AuditEntry
	err   chan error
}

// NewWriter starts a writer. Close it to drain it.
func NewWriter(db Appender, sealer *Sealer, logger *slog.Logger) *Writer {
	w := &Writer{
		db:       db,
		sealer:   sealer,
		logger:   logger,
		queue:    make(chan *pending, 4*maxBatch),
		done:     make(chan struct{}),
		refusals: newRefusals(),
		stopTick: make(chan struct{}),
	}
	go w.loop()
	go w.flushRefusalsEvery(10 * time.Second)
	return w
}

// Sealer returns the sealer, for records committed inside a store
// transaction (see Call.ForTx).
func (w *Writer) Sealer() *Sealer { return w.sealer }

// Write appends e and returns once it is committed, or with the error that
// prevented it. If ctx ends first, Write returns ctx's error; the record is
// still committed.
func (w *Writer) Write(ctx context.Context, e *store.AuditEntry) error {
	if e.RecordedAt.IsZero() {
		e.RecordedAt = time.Now()
	}
	p := &pending{entry: e, err: make(chan error, 1)}
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return ErrClosed
	}
	select {
	case w.queue <- p: // room in the queue: the record is accepted, whatever ctx says
	default:
		select {
		case w.queue <- p:
		case <-ctx.Done(): // the queue is full and the caller gives up
			w.mu.RUnlock()
			return ctx.Err()
		}
	}
	w.mu.RUnlock()
	select {
	case err := <-p.err:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// loop is the single committer: it takes whatever has queued up while the
// previous batch was committing and commits it in one transaction.
func (w *Writer) loop() {
	defer close(w.done)
	for first := range w.queue {
		batch := []*pending{first}
	gather:
		for len(batch) < maxBatch {
			select {
			case p, ok := <-w.queue:
				if !ok {
					break gather
				}
				batch = append(batch, p)
			default:
				break gather
			}
		}
		entries := make([]*store.AuditEntry, len(batch))
		for i, p := range batch {
			entries[i] = p.entry
		}
		// Not the callers' contexts: a caller giving up must not abort the
		// commit of everyone else's records.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := w.db.AppendAudit(ctx, w.sealer, entries)
		cancel()
		if err != nil {
			w.logger.Error("audit append failed", slog.Int("records", len(entries)), slog.String("error", err.Error()))
		}
		for _, p := range batch {
			p.err <- err
		}
	}
}

// Close stops accepting records, flushes aggregated refusals, and waits
// until every accepted record is committed or ctx ends. Graceful shutdown
// calls it after the servers have stopped, so no record is lost. It is safe
// to call more than once, and concurrently.
func (w *Writer) Close(ctx context.Context) error {
	w.closeOnce.Do(func() {
		close(w.stopTick)
		w.flushRefusals(ctx, true)
		w.mu.Lock()
		w.closed = true
		close(w.queue)
		w.mu.Unlock()
	})
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Admin records an administrative command.
func (w *Writer) Admin(ctx context.Context, action, outcome string, objectIDs ...string) error {
	return w.Write(ctx, &store.AuditEntry{
		Kind: "admin", Principal: "cli", Transport: "cli", Action: action,
		ObjectIDs: objectIDs, Decision: "allowed", Outcome: outcome,
	})
}
