package store

import (
	"context"
	"sync"
	"time"
)

// MaxCachedKeys is the most API keys a KeyCache holds. Past it, entries are
// dropped (they are read again on their next use).
const MaxCachedKeys = 10_000

// KeyCache answers LookupAPIKey from memory: authentication then costs no
// database round trip for a key seen lately. It is only as good as the
// Watcher it is built on, so it is careful about when it trusts itself:
//
//   - A revocation, expiry change, re-scoping or deletion of a key, by the
//     CLI or by plain SQL, drops the key when it commits (a trigger on
//     api_keys notifies every replica).
//   - While the Watcher is not Healthy (its connection is down and a
//     notification could be missed), every lookup reads the database and
//     nothing is cached; on reconnect the whole cache is forgotten.
//   - An entry is trusted for at most ttl without a notification, a backstop
//     against anything the above did not foresee.
//   - Only keys that exist are cached. An unknown key id always reads the
//     database, so a key created a moment ago works at once, and a flood of
//     made-up ids cannot fill the cache (the lockout bounds the flood).
//   - A database error is returned as it is, never cached and never turned
//     into an answer.
//
// It caches the stored row (the secret's hash, scopes, binding, expiry,
// revocation): the Authenticator still compares the presented secret and
// checks revocation and expiry on every call, at the time of the call.
type KeyCache struct {
	store   *Store
	watcher *Watcher
	ttl     time.Duration
	now     func() time.Time

	mu      sync.Mutex
	entries map[string]cachedKey
}

type cachedKey struct {
	key APIKey
	at  time.Time
}

// NewKeyCache returns a cache of s's keys kept fresh by w. ttl <= 0 turns
// caching off (every lookup reads the database); now is the clock (nil:
// time.Now).
func NewKeyCache(s *Store, w *Watcher, ttl time.Duration, now func() time.Time) *KeyCache {
	if now == nil {
		now = time.Now
	}
	c := &KeyCache{store: s, watcher: w, ttl: ttl, now: now, entries: make(map[string]cachedKey)}
	w.subscribe(channelCredentials, subscriber{notify: c.forget, reset: func(context.Context) error {
		c.forget("*")
		return nil
	}})
	return c
}

// LookupAPIKey implements auth.KeyStore.
func (c *KeyCache) LookupAPIKey(ctx context.Context, keyID string) (APIKey, error) {
	if c.ttl <= 0 || !c.watcher.Healthy() {
		c.forget("*") // nothing kept that could be stale when trusted again
		return c.store.LookupAPIKey(ctx, keyID)
	}
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[keyID]
	c.mu.Unlock()
	if ok && now.Sub(e.at) < c.ttl && !e.at.After(now) {
		return e.key, nil
	}
	epoch := c.watcher.Epoch()
	k, err := c.store.LookupAPIKey(ctx, keyID)
	if err != nil {
		return k, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// Keep it only if nothing changed while it was read: a notification
	// that arrived meanwhile may be about this very key.
	if c.watcher.Healthy() && c.watcher.Epoch() == epoch {
		if len(c.entries) >= MaxCachedKeys {
			for id := range c.entries {
				delete(c.entries, id)
				if len(c.entries) < MaxCachedKeys*3/4 {
					break
				}
			}
		}
		c.entries[keyID] = cachedKey{key: k, at: now}
	}
	return k, nil
}

// TouchAPIKey implements auth.KeyStore.
func (c *KeyCache) TouchAPIKey(ctx context.Context, keyID string) error {
	return c.store.TouchAPIKey(ctx, keyID)
}

// Len is how many keys are cached.
func (c *KeyCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// forget drops one key, or every key for "*".
func (c *KeyCache) forget(keyID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if keyID == "*" {
		clear(c.entries)
		return
	}
	delete(c.entries, keyID)
}
