package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// exposition is a Prometheus text exposition in the shapes client_golang
// writes: comments, labels (with a brace inside a quoted value),
// exponents and timestamps.
const exposition = `# HELP go_memstats_mallocs_total Total number of heap objects allocated.
# TYPE go_memstats_mallocs_total counter
go_memstats_mallocs_total 1.234567e+06
orders_audit_fallback_records_total{reason="db down"} 3
orders_audit_fallback_records_total{reason="weird}label"} 2 1700000000000
orders_audit_fallback_records_created 1.7e+09
orders_audit_spill_bytes 0
http_requests_total{code="200"} 10
`

func TestMetricsAreReadAsTheServerExposesThem(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, exposition)
	}))
	defer srv.Close()
	m, err := scrapeMetrics(context.Background(), metricsClient(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if got := uint64(m["go_memstats_mallocs_total"]); got != 1234567 {
		t.Errorf("mallocs %d, want 1234567", got)
	}
	f := auditFallbackMetrics(m)
	if len(f) != 2 || f["orders_audit_fallback_records_total"] != 5 || f["orders_audit_spill_bytes"] != 0 {
		t.Errorf("audit fallback metrics %v", f)
	}
}

func TestMissingMetricsAreAnError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	if _, err := scrapeMetrics(context.Background(), metricsClient(), srv.URL); err == nil {
		t.Fatal("a 404 was read as metrics")
	}
}
