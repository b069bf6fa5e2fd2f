package worker

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/refundq/refundq/store"
)

// metrics is what a worker exports to Prometheus. Counters and histograms
// are this process's; the gauges of open refunds are read from Redis at each
// scrape, so every worker reports the same fleet-wide figures.
type metrics struct {
	transitions *prometheus.CounterVec
	calls       *prometheus.HistogramVec
	resends     *prometheus.CounterVec
	snoozes     *prometheus.CounterVec
	// trimmedUndelivered counts, by consumer group, the events the janitor
	// trimmed before the group acknowledged them.
	trimmedUndelivered *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, st *store.Store, rec *recoverer) *metrics {
	m := &metrics{
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refundq_refund_transitions_total",
			Help: "Refund state changes made by this worker, by provider, from and to state.",
		}, []string{"provider", "from", "to"}),
		calls: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "refundq_provider_call_duration_seconds",
			Help:    "Provider operations by provider, operation (prepare, send, lookup) and outcome kind.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20, 30},
		}, []string{"provider", "op", "outcome"}),
		resends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refundq_resends_total",
			Help: "Refunds sent again after a look-up showed the earlier attempt was not applied (or, with an idempotency key, to replay it).",
		}, []string{"provider"}),
		snoozes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refundq_handed_back_total",
			Help: "Runs that handed their refund back to asynq for later without counting a failure, by reason.",
		}, []string{"reason"}),
		trimmedUndelivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refundq_events_trimmed_undelivered_total",
			Help: "Events this worker's janitor trimmed (past REFUNDQ_EVENTS_RETENTION) before a consumer group acknowledged them, by group: notifications that will never be sent.",
		}, []string{"group"}),
	}
	for _, why := range []string{"settle", "blocked", "order_busy", "lease_busy", "circuit_open", "rate_limit", "throttled", "newer_payload"} {
		m.snoozes.WithLabelValues(why) // at 0 from the start, so a rate is defined
	}
	m.trimmedUndelivered.WithLabelValues(webhookGroup) // at 0 from the start, so an alert on it is defined
	reg.MustRegister(m.transitions, m.calls, m.resends, m.snoozes, m.trimmedUndelivered,
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "refundq_recoverer_repairs_total",
			Help: "Tasks this worker's recoverer re-created for open refunds that had none (missing, completed, archived by hand).",
		}, func() float64 { return float64(rec.repairs.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "refundq_recoverer_escalations_total",
			Help: "Open refunds this worker's recoverer moved to needs_review because their task ran out of retries.",
		}, func() float64 { return float64(rec.escalations.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "refundq_recoverer_unreadable_total",
			Help: "Overdue refunds this worker's recoverer skipped because their record cannot be read (each is logged, and looked at again after an hour).",
		}, func() float64 { return float64(rec.unreadable.Load()) }),
		&openRefunds{store: st},
	)
	return m
}

// openRefunds reads, at each scrape, how many refunds are in each open state
// (and blocked), and how long the oldest has been there.
type openRefunds struct{ store *store.Store }

var (
	refundsDesc = prometheus.NewDesc("refundq_refunds", "Refunds in each state (fleet-wide, from Redis).", []string{"state"}, nil)
	oldestDesc  = prometheus.NewDesc("refundq_oldest_refund_age_seconds", "How long the refund longest in each state has been there (fleet-wide).", []string{"state"}, nil)
	blockedDesc = prometheus.NewDesc("refundq_refunds_blocked", "Open refunds blocked by configuration (credentials refused, provider not configured).", nil, nil)
)

func (o *openRefunds) Describe(ch chan<- *prometheus.Desc) {
	ch <- refundsDesc
	ch <- oldestDesc
	ch <- blockedDesc
}

func (o *openRefunds) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, st := range []store.State{store.Queued, store.Processing, store.Pending, store.NeedsReview, store.Succeeded, store.Failed} {
		oldest, n, err := o.store.OldestIn(ctx, st)
		if err != nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(refundsDesc, prometheus.GaugeValue, float64(n), string(st))
		if !st.Final() || st == store.NeedsReview {
			age := 0.0
			if !oldest.IsZero() {
				age = time.Since(oldest).Seconds()
			}
			ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, age, string(st))
		}
	}
	if n, err := o.store.Blocked(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(blockedDesc, prometheus.GaugeValue, float64(n))
	}
}
