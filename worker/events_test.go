package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/webhook"
	"github.com/refundq/refundq/worker"
)

// A dispatcher that took final events and died before queueing their
// deliveries or acknowledging them loses nothing: another dispatcher takes
// them over within seconds and the receiver gets each one, once; a janitor
// pass meanwhile (default events retention) trims none of them.
func TestKilledDispatchersWebhooksAllDelivered(t *testing.T) {
	ctx := context.Background()
	// The first worker sends no webhooks: its refunds' events wait in the stream.
	h := start(t)
	h.sim.AddOrder("ord-kd", mustMoney(t, "90.00", "SAR"))
	ids := []string{"rf-kd-1", "rf-kd-2", "rf-kd-3"}
	for _, id := range ids {
		if _, err := h.enq.Enqueue(ctx, req(id, "ord-kd", "10.00")); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range ids {
		if rec := h.await(t, id); rec.State != store.Succeeded {
			t.Fatalf("%s = %s, want succeeded", id, rec.State)
		}
	}
	// A dispatcher (same group, a consumer of its own) takes every event
	// and disappears.
	taken, err := h.store.ReadEvents(ctx, "webhooks", "dead-dispatcher", 1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	finals := map[string]string{} // refund id → event id
	for _, ev := range taken {
		if ev.To.Final() {
			finals[ev.RefundID] = ev.ID
		}
	}
	if len(finals) != len(ids) {
		t.Fatalf("the dead dispatcher took final events of %v; want all of %v", finals, ids)
	}

	secret := []byte("whsec_test_SECRET")
	var mu sync.Mutex
	got := map[string][]webhook.Event{}
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := webhook.Verify(r.Header.Get(webhook.Header), body, [][]byte{secret}, webhook.DefaultTolerance, time.Now()); err != nil {
			t.Errorf("delivery fails verification: %v", err)
		}
		var ev webhook.Event
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Errorf("delivery body: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		got[ev.Refund.RefundID] = append(got[ev.Refund.RefundID], ev)
	}))
	defer recv.Close()
	// Only the second worker serves the queue from now on: the first has no
	// webhook handler, and a delivery task it took would wait for a retry.
	h.worker.Shutdown()
	w2 := h.newWorker(t, func(s *setup) { s.webhook = worker.WebhookConfig{URL: recv.URL, Secrets: [][]byte{secret}} })

	before, err := h.env.Client.XLen(ctx, h.store.EventsKey()).Result()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w2.Sweep(ctx); err != nil {
		t.Fatalf("janitor pass: %v", err)
	}
	if after, _ := h.env.Client.XLen(ctx, h.store.EventsKey()).Result(); after != before {
		t.Fatalf("a janitor pass trimmed the stream from %d to %d events", before, after)
	}

	// The take-over waits for the events to be idle 10 s; allow the rest.
	deadline := time.Now().Add(40 * time.Second)
	for {
		mu.Lock()
		done := len(got) == len(ids)
		mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("delivered after 40 s: %+v\nlogs:\n%s", got, h.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	for _, id := range ids {
		evs := got[id]
		if len(evs) != 1 || evs[0].ID != finals[id] || evs[0].Type != "refund.succeeded" {
			t.Errorf("%s: deliveries %+v; want one refund.succeeded with event id %s", id, evs, finals[id])
		}
	}
	mu.Unlock()

	srv := httptest.NewServer(w2.HTTPHandler())
	defer srv.Close()
	if _, body := get(t, srv.URL+"/metrics"); !strings.Contains(body, `refundq_events_trimmed_undelivered_total{group="webhooks"} 0`) {
		t.Errorf("/metrics lacks refundq_events_trimmed_undelivered_total{group=\"webhooks\"} 0")
	}
}

// A janitor pass trims the events past their retention; those a consumer
// group never took are logged (20 one by one, then the group's total) and
// counted by group. A recent event is kept.
func TestJanitorLogsAndCountsEventsTrimmedUndelivered(t *testing.T) {
	ctx := context.Background()
	// Not started: its janitor's pass at start would race this test's pass.
	h := start(t, func(s *setup) { s.eventsRetention = time.Minute; s.noStart = true })
	key := h.store.EventsKey()
	old := time.Now().Add(-time.Hour).UnixMilli()
	add := func(id, refund string) {
		t.Helper()
		if err := h.env.Client.XAdd(ctx, &redis.XAddArgs{Stream: key, ID: id,
			Values: []any{"refund_id", refund, "to", "succeeded"}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 25 {
		add(fmt.Sprintf("%d-%d", old, i), fmt.Sprintf("rf-old-%d", i))
	}
	add("*", "rf-new")
	if err := h.env.Client.XGroupCreate(ctx, key, "orders", "0").Err(); err != nil {
		t.Fatal(err)
	}

	if _, err := h.worker.Sweep(ctx); err != nil {
		t.Fatalf("janitor pass: %v", err)
	}
	left, err := h.env.Client.XRange(ctx, key, "-", "+").Result()
	if err != nil || len(left) != 1 || left[0].Values["refund_id"] != "rf-new" {
		t.Fatalf("left in the stream: %+v, %v; want rf-new's event only", left, err)
	}
	one, total := 0, 0.0
	for _, line := range strings.Split(strings.TrimSpace(h.logs.String()), "\n") {
		var l map[string]any
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		switch l["msg"] {
		case "janitor: event trimmed before its group acknowledged it":
			if l["group"] != "orders" || l["refund_id"] != fmt.Sprintf("rf-old-%d", one) {
				t.Errorf("logged %v; want orders' rf-old-%d", l, one)
			}
			one++
		case "janitor: events trimmed before their group acknowledged them":
			if l["group"] != "orders" {
				t.Errorf("logged %v; want orders' total", l)
			}
			total, _ = l["lost"].(float64)
		}
	}
	if one != 20 || total != 25 {
		t.Errorf("logged %d events one by one and a total of %v; want 20 and 25", one, total)
	}
	srv := httptest.NewServer(h.worker.HTTPHandler())
	defer srv.Close()
	if _, body := get(t, srv.URL+"/metrics"); !strings.Contains(body, `refundq_events_trimmed_undelivered_total{group="orders"} 25`) {
		t.Errorf("/metrics lacks refundq_events_trimmed_undelivered_total{group=\"orders\"} 25")
	}
}
