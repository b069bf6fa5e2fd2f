package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/refundq/refundq/internal/scrape"
)

// apiMetrics is what the API exports at GET /metrics (read scope): requests
// by route and status class with their durations (rate, errors, duration),
// and whether Redis answers. The route is the mux pattern, never the path:
// no refund id becomes a label.
type apiMetrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// unmatchedRoute labels requests no route takes (404s, 405s).
const unmatchedRoute = "unmatched"

func newAPIMetrics(reg *prometheus.Registry, rdb redis.UniversalClient, routes []route) *apiMetrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	m := &apiMetrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refundq_http_requests_total",
			Help: "API requests answered, by route (the mux pattern) and status class (2xx, 3xx, 4xx, 5xx).",
		}, []string{"route", "status_class"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "refundq_http_request_duration_seconds",
			Help:    "How long the API took to answer, by route (a bulk file's includes its upload).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"route"}),
	}
	// Every route's series exist from the start at 0, so a ratio of
	// errors to requests is defined before the first error.
	for _, rt := range append(routes, route{pattern: unmatchedRoute}) {
		for _, c := range []string{"2xx", "4xx", "5xx"} {
			m.requests.WithLabelValues(rt.pattern, c)
		}
	}
	reg.MustRegister(m.requests, m.duration)
	if rdb != nil {
		reg.MustRegister(scrape.Ping(rdb))
	}
	return m
}

func (m *apiMetrics) observe(pattern string, status int, d time.Duration) {
	if pattern == "" {
		pattern = unmatchedRoute
	}
	m.requests.WithLabelValues(pattern, strconv.Itoa(status/100)+"xx").Inc()
	m.duration.WithLabelValues(pattern).Observe(d.Seconds())
}

func (m *apiMetrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
