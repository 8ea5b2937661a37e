package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/example/order-mcp/bench/loadgen"
)

// revocation is how quickly the running server stopped accepting a key
// after it was revoked one way. Times are compared with revokedAt, the
// key's revoked_at as Postgres wrote it: now() of the revoking
// transaction, which is its start, so a little before its commit.
//
// The loop sends one call at a time, so its resolution is one call's
// latency: the server changed its mind somewhere between the send time of
// the last accepted call and the arrival of the first refusal. A server
// that reads the key on every call is refused from the first call sent
// after the commit; one with a credential cache shows its invalidation
// delay here.
type revocation struct {
	method    string
	revokedAt time.Time
	// committed is when the revocation was certainly committed: the
	// UPDATE returned, or the command exited.
	committed  time.Time
	revokeTook time.Duration
	// lastAccepted is when the last successful call was sent;
	// firstRefused when the first refused call was sent, and refusedAt
	// when its refusal arrived. refusal describes it.
	lastAccepted, firstRefused, refusedAt time.Time
	refusal                               string
	// acceptedAfterCommit counts calls sent after committed that still
	// succeeded: each is a call the revoked key should not have made.
	acceptedAfterCommit int
	calls               int
	// latency is the loop's mean call latency: its resolution.
	latency time.Duration
	problem string // set when the section could not measure
}

// since is t relative to the revocation, signed, in milliseconds.
func (r *revocation) since(t time.Time) string {
	if t.IsZero() {
		return "n/a"
	}
	return fmt.Sprintf("%+.1f ms", float64(t.Sub(r.revokedAt))/float64(time.Millisecond))
}

// revocationSection measures how long a revoked key keeps working, for a
// revocation made with the server's own command and for one made with
// plain SQL, as an operator or another tool might. A server that reads the
// key per call refuses at once; one that caches credentials must learn of
// the revocation (LISTEN/NOTIFY for the SQL path needs a trigger, not
// only a NOTIFY from the command).
func (b *bench) revocationSection(ctx context.Context) ([]*revocation, error) {
	b.printf("\n## Revocation: a loop of calls with a second key while it is revoked\n\n")
	var out []*revocation
	methods := []struct {
		name   string
		revoke func(ctx context.Context, keyID string) error
	}{
		{"server keys revoke", func(ctx context.Context, keyID string) error {
			_, err := command(ctx, "", b.server, []string{"keys", "revoke", keyID}, b.adminEnv)
			return err
		}},
		{"SQL UPDATE as the owner", b.db.revokeWithSQL},
	}
	for _, m := range methods {
		r, err := b.measureRevocation(ctx, m.name, m.revoke)
		if err != nil {
			return nil, err
		}
		if r.problem != "" {
			b.printf("%-24s %s\n", r.method, r.problem)
		} else {
			b.printf("%-24s accepted until a call sent at %s, refused from a call sent at %s (refusal arrived %s: %s); %d call(s) accepted after the commit; revoking took %s; loop call latency %s\n",
				r.method, r.since(r.lastAccepted), r.since(r.firstRefused), r.since(r.refusedAt), r.refusal,
				r.acceptedAfterCommit, ms(r.revokeTook), ms(r.latency))
		}
		out = append(out, r)
	}
	return out, nil
}

// measureRevocation mints a key, warms it up (a server with a credential
// cache caches it), calls with it in a loop, revokes it, and waits for the
// loop's first refusal.
func (b *bench) measureRevocation(ctx context.Context, method string, revoke func(context.Context, string) error) (*revocation, error) {
	r := &revocation{method: method}
	key, err := b.mintKey(ctx, "bench-revoke")
	if err != nil {
		return nil, err
	}
	keyID := strings.Split(key, "_")[1] // osmcp_<key id>_<secret>
	c := loadgen.NewCaller(loadgen.Target{URL: b.real.target.URL, Key: key}, 1)
	defer c.Close()
	var buf bytes.Buffer
	for i := range 50 {
		if out := c.Call(ctx, loadgen.CallBody(b.ids[i%len(b.ids)]), &buf); out.Kind != loadgen.OK {
			r.problem = "the new key does not work: " + out.Detail
			return r, nil
		}
	}

	// The loop runs until the first refusal (or 30 s), recording when each
	// call was sent; the main goroutine revokes meanwhile.
	var (
		mu                      sync.Mutex
		accepted                []time.Time
		firstRefused, refusedAt time.Time
		refusal                 string
		calls                   int
		busy                    time.Duration
	)
	loopCtx, stop := context.WithTimeout(ctx, 30*time.Second)
	defer stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		var buf bytes.Buffer
		for i := 0; loopCtx.Err() == nil; i++ {
			sent := time.Now()
			out := c.Call(loopCtx, loadgen.CallBody(b.ids[i%len(b.ids)]), &buf)
			mu.Lock()
			calls++
			busy += time.Since(sent)
			if out.Kind == loadgen.OK {
				accepted = append(accepted, sent)
				mu.Unlock()
				continue
			}
			if loopCtx.Err() == nil {
				firstRefused, refusedAt, refusal = sent, time.Now(), out.Kind.String()
				if out.Kind == loadgen.BadStatus {
					refusal = fmt.Sprintf("HTTP %d", out.Status)
				}
			}
			mu.Unlock()
			return
		}
	}()

	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	if err := revoke(ctx, keyID); err != nil {
		stop()
		<-done
		return nil, fmt.Errorf("revoke with %s: %w", method, err)
	}
	r.committed = time.Now()
	r.revokeTook = r.committed.Sub(start)
	if r.revokedAt, err = b.db.revokedAt(ctx, keyID); err != nil {
		stop()
		<-done
		return nil, err
	}
	<-done
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	mu.Lock()
	defer mu.Unlock()
	r.calls = calls
	r.latency = busy / time.Duration(max(calls, 1))
	if refusedAt.IsZero() {
		r.problem = fmt.Sprintf("NOT REFUSED: the key still worked 30 s after it was revoked (%d calls)", calls)
		return r, nil
	}
	r.firstRefused, r.refusedAt, r.refusal = firstRefused, refusedAt, refusal
	for _, t := range accepted {
		if t.After(r.committed) {
			r.acceptedAfterCommit++
		}
	}
	if len(accepted) > 0 {
		r.lastAccepted = accepted[len(accepted)-1]
	}
	return r, nil
}

// revokeWithSQL revokes a key the way a script or a database console
// would, bypassing the server's command: a plain UPDATE as the owner.
func (db *database) revokeWithSQL(ctx context.Context, keyID string) error {
	conn, err := connect(ctx, db.url)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tag, err := conn.Exec(ctx, "UPDATE api_keys SET revoked_at = now() WHERE key_id = $1", keyID)
	if err != nil {
		return err
	}
	if tag.RowsAffected() != 1 {
		return errors.New("no such key")
	}
	return nil
}

// revokedAt reads when the key was revoked, as Postgres recorded it.
func (db *database) revokedAt(ctx context.Context, keyID string) (time.Time, error) {
	conn, err := connect(ctx, db.url)
	if err != nil {
		return time.Time{}, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var t *time.Time
	if err := conn.QueryRow(ctx, "SELECT revoked_at FROM api_keys WHERE key_id = $1", keyID).Scan(&t); err != nil {
		return time.Time{}, fmt.Errorf("read revoked_at: %w", err)
	}
	if t == nil {
		return time.Time{}, errors.New("the key is not revoked")
	}
	return *t, nil
}

// ms formats a duration in milliseconds.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}
