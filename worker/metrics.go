package worker

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/refundq/refundq/internal/scrape"
	"github.com/refundq/refundq/internal/store"
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
	webhooks           *prometheus.CounterVec
	webhookTime        prometheus.Histogram
	// rechecks counts look-ups of refunds in needs_review by provider and
	// what they found.
	rechecks *prometheus.CounterVec
	// recheckSkips counts due look-ups in review this worker could not make
	// now, by provider and why.
	recheckSkips *prometheus.CounterVec
	reconciled   *prometheus.CounterVec // see newReconcileMetric
}

// Webhook delivery outcomes, the label of refundq_webhook_deliveries_total.
var webhookOutcomes = []string{"delivered", "failed", "gave_up", "unknown_refund", "malformed"}

func newMetrics(reg prometheus.Registerer, st *store.Store, rec *recoverer, g *guards, providers []string) *metrics {
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
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refundq_webhook_deliveries_total",
			Help: "Webhook delivery tries by this worker, by outcome: delivered; failed (tried again later); gave_up (the last try failed); unknown_refund and malformed (not sent).",
		}, []string{"outcome"}),
		webhookTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "refundq_webhook_delivery_duration_seconds",
			Help:    "How long the merchant's endpoint took to answer a webhook POST (or to fail).",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20},
		}),
		rechecks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refundq_review_lookups_total",
			Help: "Look-ups of refunds in needs_review made by this worker, by provider and what they found: succeeded and failed (settled by the look-up), not_applied (proof for a person, or sent again), contradiction, not_found_once, unknown.",
		}, []string{"provider", "found"}),
		recheckSkips: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refundq_review_lookups_skipped_total",
			Help: "Due look-ups of refunds in needs_review this worker could not make now, by provider and why (not_configured here, circuit_open, rate_limit, error); each is due again later, and logged.",
		}, []string{"provider", "why"}),
	}
	for _, o := range webhookOutcomes {
		m.webhooks.WithLabelValues(o) // at 0 from the start, so a rate is defined
	}
	for _, why := range []string{"settle", "blocked", "order_busy", "lease_busy", "circuit_open", "rate_limit", "throttled", "newer_payload"} {
		m.snoozes.WithLabelValues(why) // at 0 from the start, so a rate is defined
	}
	m.reconciled = newReconcileMetric(reg)
	m.trimmedUndelivered.WithLabelValues(webhookGroup) // at 0 from the start, so an alert on it is defined
	reg.MustRegister(m.rechecks, m.recheckSkips, m.transitions, m.calls, m.resends, m.snoozes, m.trimmedUndelivered, m.webhooks, m.webhookTime,
		&breakers{g: g, providers: providers},
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
		&fleet{store: st},
	)
	return m
}

// fleet reads, at each scrape, how many refunds are in each state (and
// blocked), how long the oldest has been there, and how old the oldest
// undelivered webhook is. When Redis cannot be read they are left out, and
// refundq_redis_up says so (package scrape).
type fleet struct {
	store *store.Store
	scrape.Tracker
}

var (
	refundsDesc = prometheus.NewDesc("refundq_refunds", "Refunds in each state (fleet-wide, from Redis).", []string{"state"}, nil)
	oldestDesc  = prometheus.NewDesc("refundq_oldest_refund_age_seconds", "How long the refund longest in each state has been there (fleet-wide).", []string{"state"}, nil)
	blockedDesc = prometheus.NewDesc("refundq_refunds_blocked", "Open refunds blocked by configuration (credentials refused, provider not configured).", nil, nil)
	outboxDesc  = prometheus.NewDesc("refundq_webhook_undelivered", "Webhook notifications queued and neither delivered nor given up on (fleet-wide).", nil, nil)
	outboxAge   = prometheus.NewDesc("refundq_webhook_oldest_undelivered_age_seconds", "How long ago the event of the oldest undelivered webhook notification happened; 0 when none waits (fleet-wide).", nil, nil)
)

func (f *fleet) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{refundsDesc, oldestDesc, blockedDesc, outboxDesc, outboxAge, reviewDesc, reviewSettledDesc, reviewMedianDesc} {
		ch <- d
	}
	f.Tracker.Describe(ch)
}

// Collect reads everything first and sends only a complete scrape: a
// gauge missing while its neighbours are present would read as a change.
func (f *fleet) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var out []prometheus.Metric
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		out = append(out, prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...))
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		out = append(out, prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...))
	}
	age := func(t time.Time) float64 {
		if t.IsZero() {
			return 0
		}
		return time.Since(t).Seconds()
	}
	err := func() error {
		for _, st := range []store.State{store.Queued, store.Processing, store.Pending, store.NeedsReview, store.Succeeded, store.Failed} {
			oldest, n, err := f.store.OldestIn(ctx, st)
			if err != nil {
				return err
			}
			gauge(refundsDesc, float64(n), string(st))
			if !st.Final() || st == store.NeedsReview {
				gauge(oldestDesc, age(oldest), string(st))
			}
		}
		n, err := f.store.Blocked(ctx)
		if err != nil {
			return err
		}
		gauge(blockedDesc, float64(n))
		oldest, n, err := f.store.OutboxOldest(ctx)
		if err != nil {
			return err
		}
		gauge(outboxDesc, float64(n))
		gauge(outboxAge, age(oldest))
		return f.collectReview(ctx, gauge, counter)
	}()
	if err == nil {
		for _, m := range out {
			ch <- m
		}
	}
	f.Report(ch, err)
}

// breakers reports each provider's circuit breaker in this worker.
type breakers struct {
	g         *guards
	providers []string
}

var breakerDesc = prometheus.NewDesc("refundq_provider_breaker_open",
	"1 while this worker's circuit breaker for the provider is open (calls refused), else 0 (closed, or half-open waiting for a trial call).", []string{"provider"}, nil)

func (b *breakers) Describe(ch chan<- *prometheus.Desc) { ch <- breakerDesc }

func (b *breakers) Collect(ch chan<- prometheus.Metric) {
	open := b.g.openBreakers()
	for _, p := range b.providers {
		v := 0.0
		if open[p] {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(breakerDesc, prometheus.GaugeValue, v, p)
	}
}
