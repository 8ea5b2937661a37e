package loadgen

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The answers a server can give, as the real server and the SDK write
// them. Each test case names what the generator must conclude.
const (
	successJSON   = `{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"{\"order_id\":\"ord_7QK2M9XWBR4TZP3H\",\"note\":\"\\\"isError\\\":true\"}"}],"structuredContent":{"order_id":"ord_7QK2M9XWBR4TZP3H"}}}`
	toolErrorJSON = `{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"Order not found."}],"isError":true}}`
	rpcErrorJSON  = `{"jsonrpc":"2.0","id":1,"error":{"code":-32029,"message":"Rate limit exceeded; retry later."}}`
	noResultJSON  = `{"jsonrpc":"2.0","id":1}`
)

// answer is one canned HTTP answer.
type answer struct {
	status      int
	contentType string
	body        string
}

// serve returns a real HTTP server that gives a, and checks that each
// request carries what the real server requires.
func serve(t *testing.T, a answer) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch {
		case r.Method != http.MethodPost,
			r.Header.Get("Authorization") != "Bearer osmcp_test",
			r.Header.Get("Content-Type") != "application/json",
			r.Header.Get("Accept") != "application/json, text/event-stream",
			r.Header.Get("MCP-Protocol-Version") != ProtocolVersion,
			!bytes.Contains(body, []byte(`"method":"tools/call"`)),
			!bytes.Contains(body, []byte(`"name":"get_order_status"`)):
			t.Errorf("request lacks what the server requires: %s %v %s", r.Method, r.Header, body)
		}
		w.Header().Set("Content-Type", a.contentType)
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestClassificationOverHTTP(t *testing.T) {
	tests := []struct {
		name string
		answer
		want Kind
	}{
		{"ToolResultIsSuccess", answer{200, "application/json", successJSON}, OK},
		{"ToolResultInAnEventStreamIsSuccess", answer{200, "text/event-stream", "event: message\ndata: " + successJSON + "\n\n"}, OK},
		{"UnauthorizedIsAFailure", answer{401, "application/json", `{"jsonrpc":"2.0","id":null,"error":{"code":-32030,"message":"Unauthorized."}}`}, BadStatus},
		{"RateLimitedIsAFailure", answer{429, "application/json", rpcErrorJSON}, BadStatus},
		{"ServerErrorIsAFailure", answer{503, "text/plain", "busy"}, BadStatus},
		{"JSONRPCErrorInA200IsAFailure", answer{200, "application/json", rpcErrorJSON}, RPCError},
		{"ToolResultWithIsErrorIsAFailure", answer{200, "application/json", toolErrorJSON}, ToolError},
		{"ToolErrorInAnEventStreamIsAFailure", answer{200, "text/event-stream", "data: " + toolErrorJSON + "\n\n"}, ToolError},
		{"GarbageIsAFailure", answer{200, "application/json", "<html>oops</html>"}, Unparseable},
		{"EmptyBodyIsAFailure", answer{200, "application/json", ""}, Unparseable},
		{"ResponseWithoutResultIsAFailure", answer{200, "application/json", noResultJSON}, Unparseable},
		{"JSONThatIsNotJSONRPCIsAFailure", answer{200, "application/json", `{"result":{}}`}, Unparseable},
		{"EmptyEventStreamIsAFailure", answer{200, "text/event-stream", ": keep-alive\n\n"}, Unparseable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := serve(t, tt.answer)
			c := NewCaller(Target{URL: srv.URL, Key: "osmcp_test"}, 1)
			defer c.Close()
			var buf bytes.Buffer
			out := c.Call(context.Background(), CallBody("ord_7QK2M9XWBR4TZP3H"), &buf)
			if out.Kind != tt.want {
				t.Fatalf("got %v (%s), want %v", out.Kind, out.Detail, tt.want)
			}
			if (out.Kind == OK) != (out.Detail == "") {
				t.Errorf("detail %q for outcome %v", out.Detail, out.Kind)
			}
			if out.Status != tt.status || out.Bytes != len(tt.body) {
				t.Errorf("status %d bytes %d, want %d and %d", out.Status, out.Bytes, tt.status, len(tt.body))
			}
		})
	}
}

func TestClosedServerIsATransportError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	c := NewCaller(Target{URL: srv.URL}, 1)
	var buf bytes.Buffer
	if out := c.Call(context.Background(), CallBody("ord_7QK2M9XWBR4TZP3H"), &buf); out.Kind != TransportError {
		t.Fatalf("got %v, want a transport error", out.Kind)
	}
}

func TestRunIsInvalidIfAnyCallFails(t *testing.T) {
	tests := []struct {
		name      string
		failEvery int64 // 0: never
		wantValid bool
	}{
		{"AllCallsSucceed", 0, true},
		{"OneRefusalInHundredsMakesTheRunInvalid", 500, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "application/json")
				if k := n.Add(1); tt.failEvery > 0 && k%tt.failEvery == 0 {
					w.WriteHeader(http.StatusTooManyRequests)
					io.WriteString(w, rpcErrorJSON)
					return
				}
				io.WriteString(w, successJSON)
			}))
			defer srv.Close()
			var marks []bool
			res, err := Run(context.Background(), Config{
				Target:   Target{URL: srv.URL},
				OrderIDs: []string{"ord_7QK2M9XWBR4TZP3H", "ord_0000000000000000"},
				Clients:  4,
				Warmup:   100 * time.Millisecond,
				Duration: 300 * time.Millisecond,
				Mark:     func(start bool) { marks = append(marks, start) },
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Valid() != tt.wantValid {
				t.Fatalf("valid = %v, want %v (%d calls, failures: %s; first: %s)",
					res.Valid(), tt.wantValid, res.Calls, res.FailureSummary(), res.FirstFailure)
			}
			if !tt.wantValid && (res.Failures[BadStatus] == 0 || !strings.HasPrefix(res.FirstFailure, "HTTP 429")) {
				t.Errorf("failures not reported: %v %q", res.Failures, res.FirstFailure)
			}
			if res.Calls == 0 || res.Latency.Count() != uint64(res.Calls) || res.Bytes != res.Calls*int64(len(successJSON)) {
				t.Errorf("calls %d, latencies %d, bytes %d", res.Calls, res.Latency.Count(), res.Bytes)
			}
			if len(marks) != 2 || !marks[0] || marks[1] {
				t.Errorf("Mark called with %v, want [true false]", marks)
			}
			// The window excludes the warm-up: every counted call ended
			// inside it.
			if res.Window < 300*time.Millisecond || res.Window > 400*time.Millisecond {
				t.Errorf("window %v", res.Window)
			}
		})
	}
}

// TestClientsAreSpreadRoundRobinOverTargets runs 4 clients against two
// servers: two clients call each, on kept-alive connections, and both
// servers' calls count.
func TestClientsAreSpreadRoundRobinOverTargets(t *testing.T) {
	var calls [2]atomic.Int64
	var conns [2]atomic.Int64
	var urls []Target
	for i := range 2 {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			calls[i].Add(1)
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, successJSON)
		}))
		srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns[i].Add(1)
			}
		}
		srv.Start()
		t.Cleanup(srv.Close)
		urls = append(urls, Target{URL: srv.URL})
	}
	res, err := Run(context.Background(), Config{
		Target:   Target{URL: "http://127.0.0.1:1/unused"}, // Targets replaces it
		Targets:  urls,
		OrderIDs: []string{"ord_7QK2M9XWBR4TZP3H"},
		Clients:  4,
		Duration: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Valid() {
		t.Fatalf("invalid run: %s; first: %s", res.FailureSummary(), res.FirstFailure)
	}
	total := calls[0].Load() + calls[1].Load()
	for i := range 2 {
		// Two clients each, closed loops against identical servers: about
		// half the calls each.
		if n := calls[i].Load(); n < total/4 {
			t.Errorf("server %d got %d of %d calls", i, n, total)
		}
		// On kept-alive connections: about one per client (the
		// transport may dial a spare), never one per call.
		if n := conns[i].Load(); n < 2 || n > 4 {
			t.Errorf("server %d: %d connections for %d calls, want about 2 (one per client)", i, n, calls[i].Load())
		}
	}
}

func TestHistogramQuantilesAreWithinOnePercent(t *testing.T) {
	h, other := NewHistogram(), NewHistogram()
	var all []time.Duration
	for i := range 100_000 {
		d := time.Duration(rand.ExpFloat64() * float64(2*time.Millisecond))
		all = append(all, d)
		if i%2 == 0 {
			h.Record(d)
		} else {
			other.Record(d)
		}
	}
	h.Merge(other)
	slices.Sort(all)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := all[int(q*float64(len(all)))-1]
		got := h.Quantile(q)
		if diff := float64(got-want) / float64(want); diff > 0.01 || diff < -0.01 {
			t.Errorf("q%.3f = %v, exact %v", q, got, want)
		}
	}
	if h.Count() != uint64(len(all)) || h.Max() != all[len(all)-1] {
		t.Errorf("count %d max %v", h.Count(), h.Max())
	}
	for _, v := range []uint64{0, 1, 127, 128, 255, 256, 1 << 20, 1<<20 + 12345, 1<<62 + 1} {
		low, width := bounds(bucket(v))
		if v < low || v >= low+width {
			t.Errorf("%d is not in its bucket [%d, %d)", v, low, low+width)
		}
	}
}

// BenchmarkClassify is the generator's cost per answer that it has to
// decode, on an answer the size of a real get_order_status result.
func BenchmarkClassify(b *testing.B) {
	body := []byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"` +
		strings.Repeat(`{\"k\":\"vvvvvvvvvv\"},`, 60) + `"}],"structuredContent":{` +
		strings.Repeat(`"kkkkkkkk":"vvvvvvvvvvvvvvvvv",`, 40) + `"x":1}}}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if Classify(200, "application/json", body).Kind != OK {
			b.Fatal("not ok")
		}
	}
}
