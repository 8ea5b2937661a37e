package metrics

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the server's Prometheus metrics. Every label value comes
// from a closed set (method names the server knows, tool names from the
// tool list, refusal names from the catalogue, fixed results): no id, key,
// address or personal data is ever a label, and the number of series
// stays bounded whatever clients send.
//
// Names follow the OpenTelemetry semantic conventions for MCP where they
// exist: the histogram mcp.server.operation.duration is exposed as
// mcp_server_operation_duration_seconds, with mcp_method_name,
// gen_ai_tool_name and error_type.
type Metrics struct {
	reg        *prometheus.Registry
	operations *prometheus.HistogramVec
	refusals   *prometheus.CounterVec
	audit      *prometheus.CounterVec
	auditQueue prometheus.Gauge
	auditWait  prometheus.Histogram
	canaries   prometheus.Counter

	tools map[string]bool
}

// New returns the metrics for a server whose tools are named tools.
func New(tools []string) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), tools: map[string]bool{}}
	for _, t := range tools {
		m.tools[t] = true
	}
	m.operations = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "mcp_server_operation_duration_seconds",
		Help:    "Duration of MCP requests the server handled (OpenTelemetry: mcp.server.operation.duration).",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"mcp_method_name", "gen_ai_tool_name", "error_type"})
	m.refusals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "order_mcp_refusals_total",
		Help: "Requests refused before the MCP layer, by reason (authentication, scope, rate limit, lockout, Origin/Host, malformed...).",
	}, []string{"reason"})
	m.audit = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "order_mcp_audit_records_total",
		Help: "Audit records by what became of them: committed, spilled to local disk, replayed from it, or lost.",
	}, []string{"result"})
	m.auditQueue = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "order_mcp_audit_queue_depth",
		Help: "Audit records waiting for the next group commit.",
	})
	m.auditWait = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "order_mcp_audit_commit_duration_seconds",
		Help:    "Time to commit one batch of audit records.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
	})
	m.canaries = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "order_mcp_canary_hits_total",
		Help: "Tool calls that reached a canary record: no legitimate flow touches one.",
	})
	m.reg.MustRegister(m.operations, m.refusals, m.audit, m.auditQueue, m.auditWait, m.canaries,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, r := range []string{"committed", "spilled", "replayed", "lost"} {
		m.audit.WithLabelValues(r) // present at 0 from the start
	}
	return m
}

// Register adds collectors of other components (the database pool).
func (m *Metrics) Register(c prometheus.Collector) { m.reg.MustRegister(c) }

// Method keeps a method name a label may carry: the methods the server
// serves, or "other".
func Method(m string) string {
	switch {
	case m == "initialize", m == "ping", m == "tools/list", m == "tools/call", m == "server/discover":
		return m
	case strings.HasPrefix(m, "notifications/"):
		return "notifications"
	}
	return "other"
}

// Operation records one MCP request: its method, the tool (for
// tools/call), how long it took and what error it ended with ("" for
// none; a catalogue name otherwise).
func (m *Metrics) Operation(method, tool, errorType string, took time.Duration) {
	if method != "tools/call" {
		tool = ""
	} else if !m.tools[tool] {
		tool = "unknown"
	}
	m.operations.WithLabelValues(Method(method), tool, errorType).Observe(took.Seconds())
}

// Refusal counts a request refused before the MCP layer. reason is one of
// the server's own fixed names.
func (m *Metrics) Refusal(reason string) { m.refusals.WithLabelValues(reason).Inc() }

// CanaryHit counts a tool call that reached a canary record.
func (m *Metrics) CanaryHit() { m.canaries.Inc() }

// Audit returns the audit writer's observer.
func (m *Metrics) Audit() AuditObserver { return AuditObserver{m} }

// AuditObserver implements audit.Observer.
type AuditObserver struct{ m *Metrics }

func (o AuditObserver) Committed(n int, took time.Duration) {
	o.m.audit.WithLabelValues("committed").Add(float64(n))
	o.m.auditWait.Observe(took.Seconds())
}
func (o AuditObserver) Spilled(n int)  { o.m.audit.WithLabelValues("spilled").Add(float64(n)) }
func (o AuditObserver) Lost(n int)     { o.m.audit.WithLabelValues("lost").Add(float64(n)) }
func (o AuditObserver) Replayed(n int) { o.m.audit.WithLabelValues("replayed").Add(float64(n)) }
func (o AuditObserver) Queue(n int)    { o.m.auditQueue.Set(float64(n)) }

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Serve serves /metrics, and nothing else, on addr (MCP_METRICS_ADDR), a
// listener of its own: metrics are never on the MCP port, where every
// caller of the MCP endpoint could read them. It returns once listening;
// the server stops when ctx ends.
func (m *Metrics) Serve(ctx context.Context, addr string, logger *slog.Logger) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics listener stopped", slog.String("error", err.Error()))
		}
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	return ln.Addr(), nil
}

// CountEvictions exports evicted, the live rate-limit counters the
// in-memory stores evicted to stay within their cap (internal/limits,
// MemoryStore): zero in normal operation; rising, it means a flood of
// distinct callers or addresses large enough to reset someone's window.
func (m *Metrics) CountEvictions(evicted func() uint64) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "order_mcp_rate_limit_evictions_total",
		Help: "Live in-memory rate-limit counters evicted to stay within their cap (a flood of distinct callers or addresses).",
	}, func() float64 { return float64(evicted()) }))
}
