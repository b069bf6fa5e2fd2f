// Package scrape reports, at each Prometheus scrape, whether Redis answered
// and when a scrape last read it. Gauges read from Redis are left out of a
// scrape that could not read them (a stale zero would say all is well), so
// without these an alert on them would go quiet exactly when Redis is down;
// with them an alert can tell "zero" from "unknown".
package scrape

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// The two metrics every refundq process with a /metrics reports.
var (
	upDesc = prometheus.NewDesc("refundq_redis_up",
		"1 when this scrape read what it needs from Redis, 0 when Redis did not answer (the gauges read from Redis are then absent).", nil, nil)
	lastDesc = prometheus.NewDesc("refundq_collect_last_success_timestamp_seconds",
		"Unix time of the last scrape that read Redis; absent until one has.", nil, nil)
)

// Tracker remembers when Redis was last read at a scrape.
type Tracker struct{ last atomic.Int64 }

// Describe sends the descriptors Report uses.
func (t *Tracker) Describe(ch chan<- *prometheus.Desc) {
	ch <- upDesc
	ch <- lastDesc
}

// Report sends refundq_redis_up for a scrape whose reads of Redis ended in
// err, and the time of the last that succeeded.
func (t *Tracker) Report(ch chan<- prometheus.Metric, err error) {
	up := 0.0
	if err == nil {
		up = 1
		t.last.Store(time.Now().UnixNano())
	}
	ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, up)
	if last := t.last.Load(); last > 0 {
		ch <- prometheus.MustNewConstMetric(lastDesc, prometheus.GaugeValue, float64(last)/1e9)
	}
}

// Ping is a collector whose scrape reads Redis with one PING: for a process
// that reads no gauges from Redis (the API).
func Ping(rdb redis.UniversalClient) prometheus.Collector { return &ping{rdb: rdb} }

type ping struct {
	rdb redis.UniversalClient
	Tracker
}

func (p *ping) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	p.Report(ch, p.rdb.Ping(ctx).Err())
}
