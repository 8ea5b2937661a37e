package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// metricsClient reads the servers' counters. Its timeout is short: a
// reading is taken while the clients run, and a server too busy to answer
// its metrics in two seconds gives "n/a", not a stalled benchmark.
func metricsClient() *http.Client { return &http.Client{Timeout: 2 * time.Second} }

// scrapeMetrics reads a Prometheus text exposition and returns each
// metric's value summed over its label sets, and each labelled series
// under "name{labels}" as well. Only what the runner needs is parsed:
// "name{labels} value [timestamp]" lines; comments are skipped.
func scrapeMetrics(ctx context.Context, client *http.Client, url string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: HTTP %d", url, resp.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 16<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest := line, ""
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		series := ""
		if strings.HasPrefix(rest, "{") {
			j := strings.LastIndexByte(rest, '}')
			if j < 0 {
				continue
			}
			series, rest = name+rest[:j+1], rest[j+1:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil || math.IsNaN(v) {
			continue
		}
		out[name] += v
		if series != "" {
			out[series] = v
		}
	}
	return out, sc.Err()
}

// bareAllocs reads the bare server's /debug/allocs.
func bareAllocs(ctx context.Context, client *http.Client, url string) (uint64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var v struct {
		MallocsTotal *uint64 `json:"mallocs_total"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || v.MallocsTotal == nil {
		return 0, fmt.Errorf("%s: no mallocs_total", url)
	}
	return *v.MallocsTotal, nil
}

// auditFallbackMetrics picks the metrics that count audit records taking a
// fallback path: named like *audit*fallback* or *audit*spill*, or the
// "spilled" and "lost" results of an audit counter by result
// (order_mcp_audit_records_total{result="spilled"}).
func auditFallbackMetrics(m map[string]float64) map[string]float64 {
	fallback := func(s string) bool {
		return strings.Contains(s, "fallback") || strings.Contains(s, "spill") || strings.Contains(s, `"lost"`)
	}
	out := map[string]float64{}
	for key, v := range m {
		k := strings.ToLower(key)
		name, labels, labelled := strings.Cut(k, "{")
		if !strings.Contains(name, "audit") || strings.HasSuffix(name, "_created") {
			continue
		}
		switch {
		case !labelled && fallback(name): // the series summed
			out[key] = v
		case labelled && !fallback(name) && fallback(labels): // one result of a counter by result
			out[key] = v
		}
	}
	return out
}
