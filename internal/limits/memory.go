package limits

import (
	"context"
	"sync"
	"time"

	"github.com/ulule/limiter/v3"
	"github.com/ulule/limiter/v3/drivers/store/common"
)

// MaxCounters is the most counters a MemoryStore holds: twice the 100,000
// distinct callers and addresses that must fit within one window. An entry
// costs about 75 bytes for an address ("ip:" and an IPv4 address or IPv6
// /64) and about 115 for a 50-byte caller key (measured: a 32-byte map
// slot of string header and counter, the key's bytes, and the map's spare
// room), so a store full of addresses takes about 15 MB.
const MaxCounters = 200_000

// MemoryStore is an in-memory limiter.Store of fixed-window counters, with
// the same answers as ulule/limiter's memory store (one counter per key,
// whatever the rate; a window opens at a key's first count and lasts the
// rate's period) and a cap on its size, which that store lacks: it only
// forgets expired counters every minute, so a crowd of addresses (an IPv6
// attacker has a /64 per request to spare) could grow it without bound
// within one window.
//
// Checklist: "Rate limiting: prevent abuse and brute-force attacks"; its
// cap is MaxCounters. It needs no goroutine: expired counters are swept
// when a new key finds the store full, which is also when anything is
// evicted.
//
// At the cap, a new key first sweeps every expired counter. If that leaves
// less than a sixteenth of the cap free, live counters are evicted until a
// sixteenth is free (so a sweep, a scan of the whole map, happens at most
// once per that many new keys): each time the one whose window ends
// soonest among a random sample of evictionSample, which is cheap and
// close to evicting the soonest-ending overall. Each is counted in Evicted.
// The counter being counted is never evicted: only a key not yet in the
// store makes room, before it is added. The trade-off is deliberate:
//
//   - Refusing new keys at the cap would fail closed for everybody: an
//     attacker who fills the store would lock out every caller it has not
//     seen yet, a denial of service bought with one request per address.
//   - Evicting lets a flood of new keys reset a counter early, so its owner
//     gets a fresh budget. Evicting windows that end soon bounds that gain
//     by what the window had left, and spares the long windows (the
//     enumeration throttle's hour) for the minute-long ones. To evict
//     anything, a flood must bring MaxCounters new keys within one window,
//     each from an address (an IPv6 /64) or caller of its own, since the
//     per-address and per-caller limits bound what one of them can count;
//     and Evicted shows it happening (the metric
//     order_mcp_rate_limit_evictions_total).
//   - The budget of destructive tools lives in a store of its own
//     (MemoryStores), where only callers that passed authentication and
//     called a destructive tool have counters: a flood of addresses cannot
//     evict it. With several replicas it lives in Redis, and the
//     per-customer daily quota of cancellations is in Postgres whatever
//     happens here.
type MemoryStore struct {
	max  int
	now  func() time.Time
	mu   sync.Mutex
	keys map[string]counter
	// evicted counts live counters evicted to make room.
	evicted uint64
}

// counter is one key's window: its count and when it ends, in Unix
// nanoseconds (after that instant it is expired).
type counter struct{ count, expires int64 }

// NewMemoryStore returns an empty store holding at most capacity counters
// (0: MaxCounters; tests pass small caps), on the clock now (nil:
// time.Now).
func NewMemoryStore(capacity int, now func() time.Time) *MemoryStore {
	if now == nil {
		now = time.Now
	}
	if capacity <= 0 {
		capacity = MaxCounters
	}
	return &MemoryStore{max: capacity, now: now, keys: make(map[string]counter)}
}

// Get implements limiter.Store: it counts one request.
func (s *MemoryStore) Get(ctx context.Context, key string, rate limiter.Rate) (limiter.Context, error) {
	return s.Increment(ctx, key, 1, rate)
}

// Increment implements limiter.Store: it counts n requests.
func (s *MemoryStore) Increment(_ context.Context, key string, n int64, rate limiter.Rate) (limiter.Context, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.keys[key]
	if !ok && len(s.keys) >= s.max {
		s.makeRoom(now.UnixNano())
	}
	if !ok || now.UnixNano() > c.expires { // a new window
		c = counter{count: n, expires: now.Add(rate.Period).UnixNano()}
	} else {
		c.count += n
	}
	s.keys[key] = c
	return common.GetContextFromState(now, rate, time.Unix(0, c.expires), c.count), nil
}

// Peek implements limiter.Store: the count so far, counting nothing.
func (s *MemoryStore) Peek(_ context.Context, key string, rate limiter.Rate) (limiter.Context, error) {
	now := s.now()
	count, expires := int64(0), now.Add(rate.Period)
	s.mu.Lock()
	if c, ok := s.keys[key]; ok && now.UnixNano() <= c.expires {
		count, expires = c.count, time.Unix(0, c.expires)
	}
	s.mu.Unlock()
	return common.GetContextFromState(now, rate, expires, count), nil
}

// Reset implements limiter.Store: it forgets key's counter.
func (s *MemoryStore) Reset(_ context.Context, key string, rate limiter.Rate) (limiter.Context, error) {
	now := s.now()
	s.mu.Lock()
	delete(s.keys, key)
	s.mu.Unlock()
	return common.GetContextFromState(now, rate, now.Add(rate.Period), 0), nil
}

// Len is how many counters the store holds, expired ones included.
func (s *MemoryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.keys)
}

// Evicted is how many live counters were evicted to make room, since the
// store was made: above zero, a flood of distinct keys filled it.
func (s *MemoryStore) Evicted() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.evicted
}

// evictionSample is how many counters makeRoom compares to pick one to
// evict: enough that a window of an hour is hardly ever picked among ones
// of a minute, few enough that picking costs nothing.
const evictionSample = 8

// makeRoom sweeps expired counters, then evicts live ones until a
// sixteenth of the cap is free, each the counter whose window ends soonest
// of a random sample (Go starts each iteration of a map at a random
// place). s.mu is held.
func (s *MemoryStore) makeRoom(now int64) {
	for k, c := range s.keys {
		if now > c.expires {
			delete(s.keys, k)
		}
	}
	for len(s.keys) > s.max-max(1, s.max/16) {
		var victim string
		var end int64
		seen := 0
		for k, c := range s.keys {
			if seen == 0 || c.expires < end {
				victim, end = k, c.expires
			}
			if seen++; seen == evictionSample {
				break
			}
		}
		delete(s.keys, victim)
		s.evicted++
	}
}
