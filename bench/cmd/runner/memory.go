package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/example/order-mcp/bench/loadgen"
	"github.com/example/order-mcp/bench/procstat"
)

// memoryBudget is the target: per-caller state (limiter counters, lockout
// buckets, credential caches) must not let a crowd of distinct callers grow
// the server by more than this.
const memoryBudget = 64 << 20

// validEvery makes every tenth caller of the memory section present the
// valid key, from its own address, so that state kept for authenticated
// callers per address is exercised as well as that for failures.
const validEvery = 10

// memoryResult is the memory section's outcome.
type memoryResult struct {
	callers          int
	sent             int
	took             time.Duration
	idle, after      procstat.Memory
	settled          procstat.Memory
	madeUp, valid    map[string]int // outcomes by description ("HTTP 401", "ok"...)
	serverCPU, pgCPU time.Duration  // used while the requests were sent
	lockoutRows      int64
	lockoutRowsKnown bool
	warm             *measurement
}

// perRequest is d per request sent, in milliseconds.
func (m *memoryResult) perRequest(d time.Duration) string {
	return fmt.Sprintf("%.3f ms", msf(d)/float64(max(m.sent, 1)))
}

// growth is the RSS added by the crowd of callers.
func (m *memoryResult) growth() int64 { return m.after.RSS - m.idle.RSS }

// memorySection starts a fresh real server, warms it with ordinary calls
// (so its normal working set is in the baseline), reads its idle RSS, then
// sends one request from each of many distinct loopback addresses, most
// with a made-up credential and every tenth with the valid key, and reads
// the RSS again. Linux routes all of 127.0.0.0/8 to the loopback
// interface, so a client may bind any 127.x.y.z as its source address.
// Refusals (401, 429) are the expected answers to made-up credentials here;
// only the warm-up with the valid key must be all successes.
func (b *bench) memorySection(ctx context.Context) (*memoryResult, error) {
	b.printf("\n## Memory: RSS of a fresh server before and after %d distinct callers and addresses\n\n", b.opts.memoryCallers)
	s, err := b.startReal(ctx, "server (memory)")
	if err != nil {
		return nil, err
	}
	defer s.proc.stop()
	r := &memoryResult{callers: b.opts.memoryCallers, madeUp: map[string]int{}, valid: map[string]int{}}
	b.printRunHeader()
	if r.warm, err = b.measure(ctx, s, "memory warm-up", 16, time.Second, 3*time.Second); err != nil {
		return nil, err
	}
	b.printRun(r.warm)
	time.Sleep(2 * time.Second)
	if r.idle, err = procstat.ReadMemory(s.proc.pid()); err != nil {
		return nil, err
	}
	_ = procstat.ResetPeak(s.proc.pid()) // so that the peak is the crowd's (if allowed)

	u, err := url.Parse(s.target.URL)
	if err != nil {
		return nil, err
	}
	cpu0, _ := procstat.CPU(s.proc.pid())
	pg0, _ := procstat.Postgres(b.db.name)
	start := time.Now()
	r.sent = b.crowd(ctx, u.Host, r)
	r.took = time.Since(start)
	cpu1, _ := procstat.CPU(s.proc.pid())
	pg1, _ := procstat.Postgres(b.db.name)
	r.serverCPU, r.pgCPU = cpu1-cpu0, pg1.All-pg0.All
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if r.after, err = procstat.ReadMemory(s.proc.pid()); err != nil {
		return nil, s.proc.failure("memory unreadable after the crowd")
	}
	time.Sleep(3 * time.Second)
	r.settled, _ = procstat.ReadMemory(s.proc.pid())
	if conn, err := connect(ctx, b.db.url); err == nil {
		r.lockoutRowsKnown = conn.QueryRow(ctx, "SELECT count(*) FROM auth_lockouts").Scan(&r.lockoutRows) == nil
		conn.Close(ctx)
	}
	b.printf("idle RSS %s; after %d callers in %.1f s (%.0f requests/s): RSS %s (+%s), peak %s; 3 s later %s\n",
		mib(r.idle.RSS), r.sent, r.took.Seconds(), float64(r.sent)/r.took.Seconds(),
		mib(r.after.RSS), mib(r.growth()), mib(r.after.Peak), mib(r.settled.RSS))
	b.printf("answers to made-up credentials: %s; to the valid key: %s\n", counts(r.madeUp), counts(r.valid))
	b.printf("CPU per request: server %s, Postgres %s\n", r.perRequest(r.serverCPU), r.perRequest(r.pgCPU))
	if r.lockoutRowsKnown {
		b.printf("lockout buckets in Postgres afterwards: %d\n", r.lockoutRows)
	}
	return r, nil
}

// crowd sends r.callers requests, each on a new connection from its own
// source address, with a bounded number in flight, and returns how many
// were sent. It stops at -memory-timeout, so that a slow machine cannot
// stretch the benchmark; the report then says how many were sent.
func (b *bench) crowd(ctx context.Context, host string, r *memoryResult) int {
	workers := b.opts.memoryWorkers
	ctx, cancel := context.WithTimeout(ctx, b.opts.memoryTimeout)
	defer cancel()
	validBody := loadgen.CallBody(b.ids[0])
	var next atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
			br := bufio.NewReaderSize(nil, 16<<10)
			var req, body bytes.Buffer
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= r.callers {
					return
				}
				valid := i%validEvery == validEvery-1
				cred := b.key
				if !valid {
					cred = madeUpKey(rng)
				}
				out := oneRequest(ctx, host, sourceAddr(i), cred, validBody, br, &req, &body)
				mu.Lock()
				if valid {
					r.valid[out]++
				} else {
					r.madeUp[out]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return min(int(next.Load()), r.callers)
}

// sourceAddr is caller i's own loopback address: 127.16.0.1, 127.16.0.2,
// ... skipping .0 and .255 in the last byte (room for 3.3 million callers).
func sourceAddr(i int) net.IP {
	const perB = 254
	return net.IPv4(127, byte(16+i/(perB*256)), byte(i/perB%256), byte(1+i%perB))
}

// madeUpKey is a credential in the shape of an API key (osmcp_, a 12
// character key id and a 52 character secret, both base32 lower case) that
// names no key, so that each one is a distinct entry for a limiter,
// lockout or credential cache.
func madeUpKey(rng *rand.Rand) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	var b [6 + 12 + 1 + 52]byte
	copy(b[:], "osmcp_")
	for i := 6; i < len(b); i++ {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
	b[18] = '_'
	return string(b[:])
}

// oneRequest sends one tool call from src on a connection of its own and
// describes the answer: "ok" for a successful tool call, "HTTP 401" and
// the like otherwise. The connection is closed with a reset (SO_LINGER 0),
// so that a hundred thousand of them do not leave as many sockets in
// TIME_WAIT.
func oneRequest(ctx context.Context, host string, src net.IP, cred string, callBody []byte, br *bufio.Reader, req, body *bytes.Buffer) string {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return "connect error (" + cause(err) + ")"
	}
	defer func() {
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		conn.Close()
	}()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	req.Reset()
	fmt.Fprintf(req, "POST /mcp HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n"+
		"Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
		host, cred, loadgen.ProtocolVersion, len(callBody))
	req.Write(callBody)
	if _, err := conn.Write(req.Bytes()); err != nil {
		return "write error (" + cause(err) + ")"
	}
	br.Reset(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return "read error (" + cause(err) + ")"
	}
	body.Reset()
	_, err = body.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil {
		return "read error (" + cause(err) + ")"
	}
	out := loadgen.Classify(resp.StatusCode, resp.Header.Get("Content-Type"), body.Bytes())
	if out.Kind == loadgen.OK {
		return "ok"
	}
	if out.Kind == loadgen.BadStatus {
		return fmt.Sprintf("HTTP %d", resp.StatusCode)
	}
	return out.Kind.String()
}

// cause is the last part of a network error's message ("connection
// refused", "i/o timeout"), without the addresses, so that errors can be
// counted by kind.
func cause(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return msg
}

// counts formats outcome counts, most frequent first.
func counts(m map[string]int) string {
	type kv struct {
		k string
		v int
	}
	var all []kv
	for k, v := range m {
		all = append(all, kv{k, v})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].v > all[j].v || (all[i].v == all[j].v && all[i].k < all[j].k) })
	var parts []string
	for _, e := range all {
		parts = append(parts, fmt.Sprintf("%s x%d", e.k, e.v))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// mib formats bytes in MiB.
func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
