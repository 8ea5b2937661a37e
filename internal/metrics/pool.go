package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/example/order-mcp/internal/store"
)

// PoolCollector exposes the database pool's statistics, read when
// Prometheus scrapes.
func PoolCollector(stats func() store.PoolStats) prometheus.Collector { return poolCollector{stats} }

type poolCollector struct{ stats func() store.PoolStats }

var (
	poolConns = prometheus.NewDesc("order_mcp_db_pool_connections",
		"Database pool connections by state (acquired, idle, total, max).", []string{"state"}, nil)
	poolAcquires = prometheus.NewDesc("order_mcp_db_pool_acquires_total",
		"Connections taken from the pool, by how: immediately, after waiting, or refused as busy.", []string{"how"}, nil)
	poolWait = prometheus.NewDesc("order_mcp_db_pool_acquire_wait_seconds_total",
		"Time spent waiting for pooled connections.", nil, nil)
)

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- poolConns
	ch <- poolAcquires
	ch <- poolWait
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	for state, v := range map[string]int32{"acquired": s.Acquired, "idle": s.Idle, "total": s.Total, "max": s.Max} {
		ch <- prometheus.MustNewConstMetric(poolConns, prometheus.GaugeValue, float64(v), state)
	}
	ch <- prometheus.MustNewConstMetric(poolAcquires, prometheus.CounterValue, float64(s.Acquires-s.Waited), "immediately")
	ch <- prometheus.MustNewConstMetric(poolAcquires, prometheus.CounterValue, float64(s.Waited), "waited")
	ch <- prometheus.MustNewConstMetric(poolAcquires, prometheus.CounterValue, float64(s.Busy), "busy")
	ch <- prometheus.MustNewConstMetric(poolWait, prometheus.CounterValue, s.AcquireWait.Seconds())
}
