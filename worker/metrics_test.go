package worker_test

import (
	"io"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/sirupsen/logrus"

	"github.com/refundq/refundq/internal/redisproc"
	"github.com/refundq/refundq/worker"
)

// metricValue reads one sample's value from a /metrics text, or reports
// that it is absent.
func metricValue(body, sample string) (float64, bool) {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(m[1], 64)
	return v, err == nil
}

// With Redis up, a scrape reads the fleet's gauges, says Redis is up and
// when it was read; once Redis stops, the gauges read from it are left out
// (a stale zero would say all is well), refundq_redis_up is 0 and the time
// of the last good scrape stays where it was: an alert can tell "zero"
// from "unknown".
func TestMetricsWhenRedisStops(t *testing.T) {
	srv := ownRedis(t, redisproc.Options{})
	rdb := srv.Client()
	defer rdb.Close()
	h := start(t, func(s *setup) { s.noStart = true })
	log := logrus.New()
	log.SetOutput(io.Discard)
	w, err := worker.New(worker.Config{AcceptRedisLoss: true, Redis: asynq.RedisClientOpt{Addr: srv.Addr}, RDB: rdb,
		Registry: h.registry(t, apiKey), Logger: log, Prefix: "metrics-test:"})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(w.HTTPHandler())
	defer hs.Close()

	code, body := get(t, hs.URL+"/metrics")
	up, _ := metricValue(body, "refundq_redis_up")
	last, ok := metricValue(body, "refundq_collect_last_success_timestamp_seconds")
	if code != 200 || up != 1 || !ok || time.Since(time.Unix(int64(last), 0)) > time.Minute {
		t.Fatalf("Redis up: HTTP %d, redis_up %v, last success %v (%v); want 1 and about now\n%s", code, up, last, ok, body)
	}
	for _, want := range []string{`refundq_refunds{state="needs_review"}`, `refundq_refunds_blocked`, `refundq_webhook_oldest_undelivered_age_seconds`,
		`refundq_webhook_undelivered`, `refundq_provider_breaker_open{provider="moyasarpg"}`} {
		if _, ok := metricValue(body, want); !ok {
			t.Errorf("Redis up: /metrics lacks %s", want)
		}
	}

	srv.Kill()
	code, body = get(t, hs.URL+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics with Redis down = %d; a scrape must still answer", code)
	}
	if up, ok := metricValue(body, "refundq_redis_up"); !ok || up != 0 {
		t.Errorf("Redis down: refundq_redis_up = %v (present %v), want 0", up, ok)
	}
	if after, ok := metricValue(body, "refundq_collect_last_success_timestamp_seconds"); !ok || after != last {
		t.Errorf("Redis down: last success = %v (present %v), want it to stay %v", after, ok, last)
	}
	for _, gone := range []string{`refundq_refunds{`, `refundq_refunds_blocked `, `refundq_webhook_oldest_undelivered_age_seconds `} {
		if strings.Contains(body, gone) {
			t.Errorf("Redis down: /metrics still has %s, read from a Redis that does not answer", gone)
		}
	}
	// The breaker is this process's, not Redis's: still reported.
	if _, ok := metricValue(body, `refundq_provider_breaker_open{provider="moyasarpg"}`); !ok {
		t.Error("Redis down: the breaker gauge went missing")
	}
}
