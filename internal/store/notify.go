package store

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// The channels the database notifies on, from triggers
// (migrations/00010_change_notifications.sql): a change of an API key (the
// payload is its key id) and a change of a lockout bucket's lock.
const (
	channelCredentials = "order_mcp_credentials"
	channelLockouts    = "order_mcp_lockouts"
)

// Watcher keeps one connection LISTENing for the database's change
// notifications and hands them to what this process keeps in memory (the
// key cache, the lock mirror). It is the reason those memories can be
// trusted, so it is also what says when they cannot:
//
//   - Healthy is true only while the connection is up and listening. While
//     it is not, every cache built on the Watcher reads the database on
//     every call, because a notification sent while nobody listens is lost.
//   - On every (re)connect, after LISTEN took effect and before Healthy
//     turns true, every subscriber is reset: whatever changed while the
//     connection was down is forgotten with everything else.
//   - Epoch changes on every notification and every reset. A cache notes it
//     before reading the database and keeps what it read only if it has not
//     changed, so a change that commits during the read is never hidden by
//     the read's older answer.
//
// The connection is checked every PingEvery: a connection that died
// silently (no reset from the network) turns Healthy false within that
// time, and the caches' own time-to-live bounds the rest.
type Watcher struct {
	connect func(context.Context) (*pgx.Conn, error)
	logger  *slog.Logger

	healthy atomic.Bool
	epoch   atomic.Uint64
	// resetWanted asks the session to reset every subscriber again (a
	// subscriber got a notification it cannot apply).
	resetWanted atomic.Bool

	mu   sync.Mutex
	subs map[string][]subscriber

	stop context.CancelFunc
	done chan struct{}
}

// subscriber is what a channel's notifications reach.
type subscriber struct {
	notify func(payload string)
	// reset forgets everything; it may read the database and fails the
	// (re)connect when it cannot (the Watcher retries).
	reset func(ctx context.Context) error
}

// PingEvery is how often the Watcher checks its connection while no
// notification arrives.
const PingEvery = 10 * time.Second

// NewWatcher returns a Watcher of s's database, on a connection of its own
// (one more than the pool's DB_MAX_CONNS). Build the caches on it
// (NewKeyCache, NewLockMirror), then Start it; Close stops it.
func (s *Store) NewWatcher(logger *slog.Logger) *Watcher {
	cfg := s.pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = "order-mcp-listen"
	return &Watcher{
		connect: func(ctx context.Context) (*pgx.Conn, error) { return pgx.ConnectConfig(ctx, cfg) },
		logger:  logger,
		subs:    make(map[string][]subscriber),
		done:    make(chan struct{}),
	}
}

// Start starts listening. Until the connection is up and every cache has
// been reset, Healthy is false and the caches read the database.
func (w *Watcher) Start() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stop != nil {
		panic("store: Watcher started twice")
	}
	ctx, stop := context.WithCancel(context.Background())
	w.stop = stop
	go w.loop(ctx)
}

// Healthy reports whether notifications are being received: caches may
// answer from memory only while it is true.
func (w *Watcher) Healthy() bool { return w != nil && w.healthy.Load() }

// Epoch is a number that changes whenever a notification arrives or the
// connection is re-established (see Watcher).
func (w *Watcher) Epoch() uint64 { return w.epoch.Load() }

// Close stops watching; Healthy is false from then on. It is safe to call
// on a Watcher that was never started.
func (w *Watcher) Close() {
	w.mu.Lock()
	stop := w.stop
	w.mu.Unlock()
	if stop != nil {
		stop()
		<-w.done
	}
	w.healthy.Store(false)
}

// subscribe adds a channel's subscriber; only before Start.
func (w *Watcher) subscribe(channel string, sub subscriber) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stop != nil {
		panic("store: subscribe after Watcher.Start")
	}
	w.subs[channel] = append(w.subs[channel], sub)
}

// requestReset makes the session reset every subscriber before it delivers
// the next notification. Only called from a subscriber's notify.
func (w *Watcher) requestReset() { w.resetWanted.Store(true) }

// resetAll resets every subscriber, unhealthy meanwhile.
func (w *Watcher) resetAll(ctx context.Context, subs map[string][]subscriber) error {
	w.healthy.Store(false)
	w.epoch.Add(1)
	for _, list := range subs {
		for _, s := range list {
			if err := s.reset(ctx); err != nil {
				return err
			}
		}
	}
	w.epoch.Add(1)
	w.healthy.Store(true)
	return nil
}

func (w *Watcher) loop(ctx context.Context) {
	defer close(w.done)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := w.session(ctx)
		w.healthy.Store(false)
		w.epoch.Add(1)
		if ctx.Err() != nil {
			return
		}
		if err != nil && w.logger != nil {
			// Reads go to the database until the connection is back: slower,
			// never wrong.
			w.logger.LogAttrs(ctx, slog.LevelWarn, "change notifications interrupted; reading credentials and locks from the database until they are back",
				slog.String("error", translate("listen", err).Error()))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// session is one connection's life: listen, reset, deliver.
func (w *Watcher) session(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := w.connect(cctx)
	cancel()
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	subs := w.subs // fixed since Start
	for ch := range subs {
		// Channel names are constants of this package, not input.
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return err
		}
	}
	// LISTEN is in force: from here on no change is missed, so what the
	// subscribers forget now is re-read fresh.
	if err := w.resetAll(ctx, subs); err != nil {
		return err
	}
	for {
		if w.resetWanted.Swap(false) {
			if err := w.resetAll(ctx, subs); err != nil {
				return err
			}
		}
		wctx, cancel := context.WithTimeout(ctx, PingEvery)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			w.epoch.Add(1)
			for _, s := range subs[n.Channel] {
				s.notify(n.Payload)
			}
		case ctx.Err() != nil:
			return nil
		case wctx.Err() != nil:
			// Quiet: check the connection is still alive.
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := conn.Ping(pctx)
			cancel()
			if err != nil {
				return err
			}
		default:
			return err
		}
	}
}
