package worker

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	reviewDesc = prometheus.NewDesc("refundq_review_refunds",
		"Refunds in needs_review by provider and reason (fleet-wide): outcome_unknown and pending_too_long are looked up again on a schedule; the others wait for a person.",
		[]string{"provider", "reason"}, nil)
	reviewSettledDesc = prometheus.NewDesc("refundq_review_settled_total",
		"Refunds settled out of needs_review (fleet-wide, since Redis began counting), by who settled them (lookup: a later look-up proved the outcome; person), provider and state.",
		[]string{"by", "provider", "state"}, nil)
	reviewMedianDesc = prometheus.NewDesc("refundq_review_median_time_seconds",
		"Median time the last (up to 1000) refunds settled out of needs_review spent there; 0 before any was settled.", nil, nil)
)

// collectReview reads what the review list holds and what it came to.
func (f *fleet) collectReview(ctx context.Context, gauge, counter func(*prometheus.Desc, float64, ...string)) error {
	counts, err := f.store.ReviewCounts(ctx)
	if err != nil {
		return err
	}
	for _, c := range counts {
		gauge(reviewDesc, float64(c.Count), c.Provider, string(c.Kind))
	}
	stats, err := f.store.ReviewStats(ctx)
	if err != nil {
		return err
	}
	for _, s := range stats.Settled {
		counter(reviewSettledDesc, float64(s.Count), s.By, s.Provider, string(s.State))
	}
	gauge(reviewMedianDesc, stats.MedianTime.Seconds())
	return nil
}
