package audit

import (
	"context"
	"errors"
	"log/slog"
	"strings"
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

// ErrSpilled means the record is durable in the spill directory, not yet
// in the trail: Postgres could not take it. Callers treat it like any
// other failure to commit (a tool result is withheld), but the record is
// not lost: it is appended when Postgres is back.
var ErrSpilled = errors.New("audit record spilled to local disk: Postgres could not take it")

// maxBatch bounds one group commit.
const maxBatch = 512

// Observer is told what the writer does, for metrics. Every method must
// be cheap and must not block.
type Observer interface {
	// Committed reports one batch committed to the trail.
	Committed(records int, took time.Duration)
	// Spilled reports records written to the spill directory.
	Spilled(records int)
	// Lost reports records neither committed nor spilled.
	Lost(records int)
	// Replayed reports spilled records appended to the trail.
	Replayed(records int)
	// Queue reports the number of records waiting to be committed.
	Queue(depth int)
}

// Options configure a Writer.
type Options struct {
	// Spill, when set, keeps records Postgres cannot take (see spill.go).
	Spill *Spill
	// Retries is how often a failed batch is tried again before it is
	// spilled; Backoff the wait before the first retry, doubled each time.
	// Zero means 2 retries, 100 ms apart then 200 ms; negative, none.
	Retries int
	Backoff time.Duration
	// ReplayEvery is how often spilled records are tried again. Zero means
	// 5 seconds.
	ReplayEvery time.Duration
	// Observer is told about commits, spills and the queue. Nil: nobody.
	Observer Observer
}

// Writer appends records with group commit. There is one per process.
//
// The guarantee, exactly: a record handed to Write is committed to the
// trail before Write returns nil. When Postgres cannot take it after the
// retries, it is written to the spill directory, fsynced, and Write
// returns ErrSpilled: durable on local disk, appended at the head of the
// chain when Postgres is back (marked replayed, with its original time).
// Only when both fail is it lost, and Write says so (and logs it at ERROR,
// redacted). A record is never in the trail twice.
type Writer struct {
	db     Appender
	sealer *Sealer
	logger *slog.Logger
	opts   Options

	mu        sync.RWMutex // guards closed; read-held while sending on queue
	closed    bool
	closeOnce sync.Once
	queue     chan *pending
	done      chan struct{}
	refusals  *refusals
	stopTick  chan struct{}
	tickers   sync.WaitGroup
}

type pending struct {
	entry *store.AuditEntry
	err   chan error
}

// NewWriter starts a writer. Close it to drain it.
func NewWriter(db Appender, sealer *Sealer, logger *slog.Logger, opts Options) *Writer {
	if opts.Retries == 0 {
		opts.Retries = 2
	}
	if opts.Backoff <= 0 {
		opts.Backoff = 100 * time.Millisecond
	}
	if opts.ReplayEvery <= 0 {
		opts.ReplayEvery = 5 * time.Second
	}
	if opts.Observer == nil {
		opts.Observer = nobody{}
	}
	w := &Writer{
		db:       db,
		sealer:   sealer,
		logger:   logger,
		opts:     opts,
		queue:    make(chan *pending, 4*maxBatch),
		done:     make(chan struct{}),
		refusals: newRefusals(),
		stopTick: make(chan struct{}),
	}
	go w.loop()
	w.tickers.Add(1)
	go w.every(10*time.Second, func(ctx context.Context) { w.flushRefusals(ctx, false) })
	if opts.Spill != nil {
		w.tickers.Add(1)
		go w.every(opts.ReplayEvery, w.replay)
		go w.replay(context.Background()) // what an earlier run left behind
	}
	return w
}

// Sealer returns the sealer, for records committed inside a store
// transaction (see Call.ForTx).
func (w *Writer) Sealer() *Sealer { return w.sealer }

// Write appends e and returns once it is committed (nil), spilled
// (ErrSpilled) or lost (another error). If ctx ends first, Write returns
// ctx's error; the record is still committed or spilled.
func (w *Writer) Write(ctx context.Context, e *store.AuditEntry) error {
	if e.RecordedAt.IsZero() {
		e.RecordedAt = time.Now()
	}
	if e.RecordID == "" {
		e.RecordID = NewRecordID()
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
		w.opts.Observer.Queue(len(w.queue))
		entries := make([]*store.AuditEntry, len(batch))
		for i, p := range batch {
			entries[i] = p.entry
		}
		err := w.commit(entries)
		for _, p := range batch {
			p.err <- err
		}
	}
}

// commit appends entries, retrying, then spilling. Not the callers'
// contexts: a caller giving up must not abort everyone else's records.
func (w *Writer) commit(entries []*store.AuditEntry) error {
	var err error
	wait := w.opts.Backoff
	for attempt := 0; attempt <= max(0, w.opts.Retries); attempt++ {
		if attempt > 0 {
			time.Sleep(wait)
			wait *= 2
		}
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = w.db.AppendAudit(ctx, w.sealer, entries)
		cancel()
		if err == nil {
			w.opts.Observer.Committed(len(entries), time.Since(start))
			return nil
		}
	}
	w.logger.Error("audit append failed", slog.Int("records", len(entries)), slog.String("error", err.Error()))
	if w.opts.Spill == nil {
		w.lost(entries, err)
		return err
	}
	// The caller of a tool call not committed withholds its result (the
	// MCP layer's rule): the spilled record says so, with what the call
	// would have returned. A refusal (any other outcome) has nothing to
	// withhold and is answered as it is.
	for _, e := range entries {
		if e.Kind == "tool_call" && e.Outcome == "ok" {
			e.Reason = strings.TrimSpace(e.Reason + " result withheld: the audit trail could not take the record (intended outcome: " + e.Outcome + ")")
			e.Outcome = "withheld"
		}
	}
	if serr := w.opts.Spill.Write(entries); serr != nil {
		w.lost(entries, errors.Join(err, serr))
		return errors.Join(err, serr)
	}
	w.opts.Observer.Spilled(len(entries))
	w.logger.Warn("audit records spilled to local disk; they are appended when Postgres is back",
		slog.Int("records", len(entries)), slog.String("dir", w.opts.Spill.Dir()))
	return ErrSpilled
}

// lost logs records that could be neither committed nor spilled: the log
// is the last place they exist (redacted, as every log line).
func (w *Writer) lost(entries []*store.AuditEntry, err error) {
	w.opts.Observer.Lost(len(entries))
	for _, e := range entries {
		w.logger.LogAttrs(context.Background(), slog.LevelError, "audit record lost",
			slog.String("record_id", e.RecordID), slog.String("kind", e.Kind), slog.String("action", e.Action),
			slog.String("principal", e.Principal), slog.String("decision", e.Decision), slog.String("outcome", e.Outcome),
			slog.String("correlation_id", e.CorrelationID), slog.Time("recorded_at", e.RecordedAt),
			slog.String("error", err.Error()))
	}
}

// replay appends what the spill directory holds, if Postgres takes it.
func (w *Writer) replay(ctx context.Context) {
	if w.opts.Spill.Pending() == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	n, err := w.opts.Spill.Replay(ctx, w.db)
	if n > 0 {
		w.opts.Observer.Replayed(n)
		w.logger.Info("spilled audit records appended to the trail", slog.Int("records", n))
	}
	if err != nil {
		w.logger.Warn("spilled audit records not replayed yet", slog.String("error", err.Error()))
	}
}

func (w *Writer) every(d time.Duration, f func(context.Context)) {
	defer w.tickers.Done()
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-w.stopTick:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), d)
			f(ctx)
			cancel()
		}
	}
}

// Close stops accepting records, flushes aggregated refusals, and waits
// until every accepted record is committed or spilled, or ctx ends.
// Graceful shutdown calls it after the servers have stopped, so no record
// is lost. It is safe to call more than once, and concurrently.
func (w *Writer) Close(ctx context.Context) error {
	w.closeOnce.Do(func() {
		close(w.stopTick)
		w.tickers.Wait()
		w.flushRefusals(ctx, true)
		w.mu.Lock()
		w.closed = true
		close(w.queue)
		w.mu.Unlock()
	})
	select {
	case <-w.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if w.opts.Spill != nil {
		w.replay(ctx) // a last chance for what this run spilled
	}
	return nil
}

// Admin records an administrative command.
func (w *Writer) Admin(ctx context.Context, action, outcome string, objectIDs ...string) error {
	return w.Write(ctx, &store.AuditEntry{
		Kind: "admin", Principal: "cli", Transport: "cli", Action: action,
		ObjectIDs: objectIDs, Decision: "allowed", Outcome: outcome,
	})
}

type nobody struct{}

func (nobody) Committed(int, time.Duration) {}
func (nobody) Spilled(int)                  {}
func (nobody) Lost(int)                     {}
func (nobody) Replayed(int)                 {}
func (nobody) Queue(int)                    {}
