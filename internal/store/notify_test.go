package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// These tests attack the in-memory answers (the key cache and the lock
// mirror) with what could make them wrong: a change made by plain SQL, a
// change made while the notification connection is down, a database that
// fails. None is timed: a test that waits for a notification polls with a
// generous bound.

// statementLog counts the statements a Store ran, by name.
type statementLog struct {
	mu    sync.Mutex
	names []string
}

func (l *statementLog) observe(e QueryEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.names = append(l.names, e.Name)
}

func (l *statementLog) count(name string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.names {
		if s == name {
			n++
		}
	}
	return n
}

// watched is one replica's view: a Store as the app role, its Watcher, and
// the caches on it. failConnect makes the Watcher's (re)connects fail.
type watched struct {
	store       *Store
	watcher     *Watcher
	keys        *KeyCache
	locks       *LockMirror
	log         *statementLog
	failConnect atomic.Bool
}

func newWatched(t *testing.T) *watched {
	t.Helper()
	r := &watched{log: &statementLog{}}
	s, err := Open(context.Background(), testDSN(t), Options{AsAppRole: true, Observe: r.log.observe})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	r.store = s
	r.watcher = s.NewWatcher(nil)
	connect := r.watcher.connect
	r.watcher.connect = func(ctx context.Context) (*pgx.Conn, error) {
		if r.failConnect.Load() {
			return nil, errors.New("test: connection refused")
		}
		return connect(ctx)
	}
	r.keys = NewKeyCache(s, r.watcher, time.Hour, nil)
	r.locks = NewLockMirror(s, r.watcher)
	r.watcher.Start()
	t.Cleanup(r.watcher.Close)
	return r
}

// eventually polls cond for up to 20 seconds: waiting for a notification,
// never measuring one.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("gave up waiting: %s", what)
}

func ownerConn(t *testing.T) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), testDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// newKey stores a staff key with a random id and returns the id.
func newKey(t *testing.T) string {
	t.Helper()
	s, err := Open(context.Background(), testDSN(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	id := string(b)
	sum := sha256.Sum256(b)
	if err := s.CreateAPIKey(context.Background(), APIKey{KeyID: id, Name: "notify test", SecretSHA256: sum[:],
		Scopes: []string{"orders:read", "orders:read:any"}}); err != nil {
		t.Fatal(err)
	}
	return id
}

func (r *watched) lookup(t *testing.T, id string) APIKey {
	t.Helper()
	k, err := r.keys.LookupAPIKey(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestKeyCacheAnswersFromMemoryOnlyWhileListening(t *testing.T) {
	r := newWatched(t)
	eventually(t, "the watcher to listen", r.watcher.Healthy)
	id := newKey(t)

	r.lookup(t, id)
	r.lookup(t, id)
	if n := r.log.count("lookup_api_key"); n != 1 {
		t.Fatalf("two lookups of one key ran %d statements, want 1 (the second from memory)", n)
	}

	// The notification connection goes away and cannot come back: every
	// lookup reads the database, and nothing is cached meanwhile.
	r.failConnect.Store(true)
	terminateListeners(t)
	eventually(t, "the watcher to notice", func() bool { return !r.watcher.Healthy() })
	before := r.log.count("lookup_api_key")
	r.lookup(t, id)
	r.lookup(t, id)
	if n := r.log.count("lookup_api_key") - before; n != 2 {
		t.Fatalf("without notifications, two lookups ran %d statements, want 2", n)
	}
	// A revocation nobody is told about is seen at once.
	if _, err := ownerConn(t).Exec(context.Background(), "UPDATE api_keys SET revoked_at = now() WHERE key_id = $1", id); err != nil {
		t.Fatal(err)
	}
	if k := r.lookup(t, id); k.RevokedAt == nil {
		t.Fatal("a key revoked while notifications were down was still answered as valid")
	}
	if r.keys.Len() != 0 {
		t.Fatalf("%d keys cached while notifications were down", r.keys.Len())
	}
}

func TestKeyCacheDropsAKeyChangedByPlainSQL(t *testing.T) {
	r := newWatched(t)
	eventually(t, "the watcher to listen", r.watcher.Healthy)
	owner := ownerConn(t)
	for _, change := range []string{
		"UPDATE api_keys SET revoked_at = now() WHERE key_id = $1",
		"UPDATE api_keys SET expires_at = now() - interval '1 minute' WHERE key_id = $1",
		"UPDATE api_keys SET scopes = '{orders:read}' WHERE key_id = $1",
		"DELETE FROM api_keys WHERE key_id = $1",
	} {
		t.Run(strings.Fields(change)[0]+" "+strings.Fields(change)[3], func(t *testing.T) {
			id := newKey(t)
			before := r.lookup(t, id)
			r.lookup(t, id) // from memory now
			if _, err := owner.Exec(context.Background(), change, id); err != nil {
				t.Fatal(err)
			}
			eventually(t, "the cache to see the change", func() bool {
				k, err := r.keys.LookupAPIKey(context.Background(), id)
				if errors.Is(err, ErrNotFound) {
					return strings.HasPrefix(change, "DELETE")
				}
				if err != nil {
					t.Fatal(err)
				}
				return k.RevokedAt != nil || !ptrTime(k.ExpiresAt).Equal(ptrTime(before.ExpiresAt)) || len(k.Scopes) != len(before.Scopes)
			})
		})
	}
}

func ptrTime(p *time.Time) time.Time {
	if p == nil {
		return time.Time{}
	}
	return *p
}

func TestKeyCacheNeverCachesAnUnknownKeyOrAnError(t *testing.T) {
	r := newWatched(t)
	eventually(t, "the watcher to listen", r.watcher.Healthy)

	// Unknown, then created: works at once.
	id := newKey(t)
	owner := ownerConn(t)
	if _, err := owner.Exec(context.Background(), "DELETE FROM api_keys WHERE key_id = $1", id); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the deletion to be seen", func() bool {
		_, err := r.keys.LookupAPIKey(context.Background(), id)
		return errors.Is(err, ErrNotFound)
	})
	sum := sha256.Sum256([]byte(id))
	if _, err := owner.Exec(context.Background(),
		"INSERT INTO api_keys (key_id, name, secret_sha256, scopes) VALUES ($1, 'again', $2, '{orders:read}')", id, sum[:]); err != nil {
		t.Fatal(err)
	}
	if k := r.lookup(t, id); k.Name != "again" {
		t.Fatalf("a key created after a miss: %+v", k)
	}

	// A cached key, then the database fails and the notifications stop:
	// the lookup fails; the cached answer is not given.
	r.lookup(t, id)
	r.failConnect.Store(true)
	terminateListeners(t)
	eventually(t, "the watcher to notice", func() bool { return !r.watcher.Healthy() })
	r.store.Close()
	if k, err := r.keys.LookupAPIKey(context.Background(), id); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("with the database gone the cache answered %+v, %v; want an infrastructure error", k, err)
	}
}

func TestKeyCacheForgetsEverythingOnReconnect(t *testing.T) {
	r := newWatched(t)
	eventually(t, "the watcher to listen", r.watcher.Healthy)
	id := newKey(t)
	r.lookup(t, id)
	if r.keys.Len() != 1 {
		t.Fatal("the key was not cached")
	}
	terminateListeners(t) // reconnects at once
	eventually(t, "the cache to be forgotten and the watcher back", func() bool {
		return r.keys.Len() == 0 && r.watcher.Healthy()
	})
}

func TestKeyCacheTrustsAnEntryForItsTTLOnly(t *testing.T) {
	log := &statementLog{}
	s, err := Open(context.Background(), testDSN(t), Options{AsAppRole: true, Observe: log.observe})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	w := s.NewWatcher(nil)
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	c := NewKeyCache(s, w, time.Minute, func() time.Time { return time.Unix(0, now.Load()) })
	w.Start()
	t.Cleanup(w.Close)
	eventually(t, "the watcher to listen", w.Healthy)
	id := newKey(t)
	for range 2 {
		if _, err := c.LookupAPIKey(context.Background(), id); err != nil {
			t.Fatal(err)
		}
	}
	now.Add(int64(time.Minute))
	if _, err := c.LookupAPIKey(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if n := log.count("lookup_api_key"); n != 2 {
		t.Fatalf("%d lookups in the database, want 2 (the first, and the one after the TTL)", n)
	}
}

func TestLockMirrorSharesLocksAcrossReplicas(t *testing.T) {
	a, b := newWatched(t), newWatched(t)
	eventually(t, "both watchers to listen", func() bool { return a.watcher.Healthy() && b.watcher.Healthy() })
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	until := now.Add(time.Hour)
	bucket := "auth:test-" + newKey(t)

	// A lock earned on a reaches b by notification.
	if _, err := a.locks.UpdateLockout(ctx, bucket, func(st *LockoutState) { st.LockedUntil = until }); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b to see a's lock", func() bool {
		u, err := b.locks.LockedUntil(ctx, []string{bucket}, now)
		return err == nil && u.Equal(until)
	})
	before := b.log.count("locked_until")
	if u, _ := b.locks.LockedUntil(ctx, []string{"auth:never-failed", bucket}, now); !u.Equal(until) {
		t.Fatalf("b answers %v", u)
	}
	if b.log.count("locked_until") != before {
		t.Fatal("b read the table while listening")
	}

	// A lock lifted by plain SQL is lifted everywhere.
	if _, err := ownerConn(t).Exec(ctx, "UPDATE auth_lockouts SET locked_until = NULL WHERE bucket = $1", bucket); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b to see the lock lifted", func() bool {
		u, err := b.locks.LockedUntil(ctx, []string{bucket}, now)
		return err == nil && u.IsZero()
	})

	// A lock made while b is not listening: b reads the table meanwhile,
	// and reloads every lock when it is back.
	b.failConnect.Store(true)
	terminateListeners(t)
	eventually(t, "b to notice", func() bool { return !b.watcher.Healthy() })
	if _, err := a.locks.UpdateLockout(ctx, bucket, func(st *LockoutState) { st.LockedUntil = until }); err != nil {
		t.Fatal(err)
	}
	if u, err := b.locks.LockedUntil(ctx, []string{bucket}, now); err != nil || !u.Equal(until) {
		t.Fatalf("b, not listening, answers %v, %v", u, err)
	}
	b.failConnect.Store(false)
	eventually(t, "b to listen again", b.watcher.Healthy)
	before = b.log.count("locked_until")
	if u, err := b.locks.LockedUntil(ctx, []string{bucket}, now); err != nil || !u.Equal(until) {
		t.Fatalf("b, back, answers %v, %v", u, err)
	}
	if b.log.count("locked_until") != before {
		t.Fatal("b read the table after reloading")
	}
}

// terminateListeners ends every notification connection to the test
// database, as a Postgres restart or a network cut would.
func terminateListeners(t *testing.T) {
	t.Helper()
	_, err := ownerConn(t).Exec(context.Background(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE application_name = 'order-mcp-listen' AND datname = current_database()`)
	if err != nil {
		t.Fatal(err)
	}
}
