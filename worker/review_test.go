package worker_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/providers/ecartpay"
	"github.com/refundq/refundq/providers/moyasarpg"
	"github.com/refundq/refundq/tasks"
	"github.com/refundq/refundq/worker"
)

// inReview leaves refund r as automation gives up on it after sending: an
// attempt in flight with no known outcome, moved to needs_review, its first
// look-up due after recheck.
func (h *harness) inReview(t *testing.T, r tasks.Refund, recheck time.Duration) store.Record {
	t.Helper()
	diedAfterSending(t, h.store, r)
	if moved, err := h.store.Escalate(context.Background(), r.RefundID, "", "test: outcome unknown", recheck); err != nil || !moved {
		t.Fatalf("escalate %s: moved %v, %v", r.RefundID, moved, err)
	}
	rec, err := h.store.Get(context.Background(), r.RefundID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.State != store.NeedsReview || rec.Review != store.ReviewUnknown || rec.RecheckAt.IsZero() {
		t.Fatalf("record in review = %+v; want needs_review, outcome_unknown, a look-up due", rec)
	}
	return rec
}

func (h *harness) applyAtProvider(t *testing.T, rec store.Record) {
	t.Helper()
	// The request automation lost track of, which reached the provider.
	client, err := moyasarpg.New(moyasarpg.Config{BaseURL: h.simURL, APIKey: apiKey})
	if err != nil {
		t.Fatal(err)
	}
	out := client.Refund(context.Background(), providers.Refund{OrderID: rec.OrderID, Amount: rec.Amount, Key: rec.Key})
	if out.Kind != providers.Succeeded {
		t.Fatalf("setup refund: %v", out)
	}
}

// A refund in needs_review whose answers could not show the outcome is
// looked up again on the schedule; once the provider shows it applied, it
// is settled succeeded by the look-up, with the evidence and the actor in
// its history, a state-change event (the webhook's source), and the
// metrics — and nothing is sent again.
func TestReviewLookupSettlesWhatTheProviderNowShows(t *testing.T) {
	h := start(t, func(s *setup) { s.reviewRecheck = []time.Duration{50 * time.Millisecond, 100 * time.Millisecond} })
	ctx := context.Background()
	h.sim.AddOrder("ord-rv", mustMoney(t, "42.50", "SAR"))
	r := tasks.Refund{Version: 1, RefundID: "rf-rv", Provider: providers.MoyasarPG, OrderID: "ord-rv", AmountMinor: 4250, Currency: "SAR"}
	diedAfterSending(t, h.store, r)
	rec, _ := h.store.Get(ctx, r.RefundID)
	h.applyAtProvider(t, rec)
	if moved, err := h.store.Escalate(ctx, r.RefundID, "", "test: outcome unknown", 50*time.Millisecond); err != nil || !moved {
		t.Fatalf("escalate: %v %v", moved, err)
	}

	rec = h.awaitState(t, r.RefundID, func(r store.Record) bool { return r.State == store.Succeeded }, "succeeded")
	if rec.SettledBy != store.ByLookup || rec.Attempts != 1 || rec.ProviderRef == "" {
		t.Fatalf("record = %+v; want settled by look-up with the provider's reference, one attempt", rec)
	}
	if got := h.sim.RefundsFor("ord-rv"); len(got) != 1 {
		t.Fatalf("ledger = %+v, want the one refund", got)
	}
	hist, _ := h.store.History(ctx, r.RefundID)
	last := hist[len(hist)-1]
	if last.Event != "settled" || last.Actor != "refundq look-up" || !strings.Contains(last.Detail, "settled by look-up") ||
		last.Outcome != "succeeded" || last.ProviderRef != rec.ProviderRef || last.State != store.Succeeded {
		t.Fatalf("last history entry = %+v; want the settle by look-up with its evidence", last)
	}
	events, err := h.env.Client.XRange(ctx, h.store.EventsKey(), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range events {
		if e.Values["refund_id"] == r.RefundID && e.Values["from"] == "needs_review" && e.Values["to"] == "succeeded" {
			found = true
		}
	}
	if !found {
		t.Errorf("no needs_review → succeeded event in %v", events)
	}
	if n, _ := h.env.Client.ZCard(ctx, h.env.Prefix+"recheck").Result(); n != 0 {
		t.Errorf("%d refunds still wait for a look-up; want none once settled", n)
	}
	srv := httptest.NewServer(h.worker.HTTPHandler())
	defer srv.Close()
	_, body := get(t, srv.URL+"/metrics")
	for sample, want := range map[string]float64{
		`refundq_review_lookups_total{found="succeeded",provider="moyasarpg"}`:             1,
		`refundq_review_settled_total{by="lookup",provider="moyasarpg",state="succeeded"}`: 1,
		`refundq_refunds{state="needs_review"}`:                                            0,
	} {
		if got, ok := metricValue(body, sample); !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", sample, got, ok, want)
		}
	}
}

// A look-up that cannot show the refund changes nothing but the schedule:
// the refund stays in review, its look-ups counted, the next one later.
func TestReviewLookupThatShowsNothingWaitsForTheNext(t *testing.T) {
	h := start(t, func(s *setup) { s.reviewRecheck = []time.Duration{time.Millisecond, time.Hour} })
	ctx := context.Background()
	h.sim.AddOrder("ord-rn", mustMoney(t, "9.00", "SAR"))
	// The provider answers without the evidence a look-up needs.
	h.sim.HideEvidence()
	rec := h.inReview(t, tasks.Refund{Version: 1, RefundID: "rf-rn", Provider: providers.MoyasarPG, OrderID: "ord-rn", AmountMinor: 900, Currency: "SAR"}, time.Millisecond)
	// The worker's own rechecker runs on the same schedule, so the look-up
	// is whichever comes first, this call or its pass (a call finding it
	// not yet due, or taken, does nothing): either way the record must show
	// one look-up that found nothing.
	var after store.Record
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		found, err := h.worker.Handler().Recheck(ctx, rec.RefundID)
		if err != nil || (found != "unknown" && found != "") {
			t.Fatalf("Recheck = %q, %v; want unknown", found, err)
		}
		if after, _ = h.store.Get(ctx, rec.RefundID); after.RecheckN > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no look-up in 10 s: %+v", after)
		}
	}
	if after.State != store.NeedsReview || after.Review != store.ReviewUnknown || after.RecheckN != 1 || after.InFlight != rec.InFlight ||
		!after.RecheckAt.After(time.Now()) {
		t.Fatalf("after an unknown look-up: %+v; want still in review, 1 look-up, attempt in flight, the next one later", after)
	}
	// Not due: a second call does nothing.
	if found, err := h.worker.Handler().Recheck(ctx, rec.RefundID); err != nil || found != "" {
		t.Fatalf("Recheck before it is due = %q, %v; want nothing done", found, err)
	}
	if got := h.sim.RefundsFor("ord-rn"); len(got) != 0 {
		t.Fatalf("ledger = %+v; a look-up in review sent something", got)
	}
}

// A look-up proves nothing of the attempt was applied: at Ecart Pay (no key
// of ours) that takes two look-ups a settle delay apart showing the order
// as it was before the send. By default the refund then stays for a
// person, with the proof and no further look-ups; with ResumeAfterReview it
// is sent again, once.
func TestReviewLookupProvingNothingApplied(t *testing.T) {
	for _, resume := range []bool{false, true} {
		name := "stays for a person"
		if resume {
			name = "sent again"
		}
		t.Run(name, func(t *testing.T) {
			h, s := keyless(t, false, func(c *worker.Config) {
				c.ReviewRecheck, c.ResumeAfterReview = []time.Duration{time.Millisecond}, resume
			})
			ctx := context.Background()
			s.AddOrder("ord-na", mxn(t, "70.00"))
			r := tasks.Refund{Version: 1, RefundID: "rf-na", Provider: providers.EcartPay, OrderID: "ord-na", AmountMinor: 700, Currency: "MXN"}
			sentUnapplied(t, h, r)
			recheck := func(want string) store.Record {
				t.Helper()
				// Each look-up must come a settle delay after the last.
				time.Sleep(settleDelay + 10*time.Millisecond)
				found, err := h.worker.Handler().Recheck(ctx, r.RefundID)
				rec, _ := h.store.Get(ctx, r.RefundID)
				if err != nil || found != want {
					hist, _ := h.store.History(ctx, r.RefundID)
					t.Fatalf("Recheck = %q, %v; want %s\nrecord %+v\nhistory %+v", found, err, want, rec, hist)
				}
				return rec
			}
			if rec := recheck("not_found_once"); rec.State != store.NeedsReview || rec.InFlight == 0 || rec.NotFoundAt.IsZero() {
				t.Fatalf("after one look-up showing nothing: %+v; want still in review, in flight, the first not-found kept", rec)
			}
			rec := recheck("not_applied")
			if !resume {
				if rec.State != store.NeedsReview || rec.Review != store.ReviewNotApplied || !rec.RecheckAt.IsZero() || rec.InFlight != 0 {
					t.Fatalf("after the proof: %+v; want needs_review, not_applied, no look-up due, nothing in flight", rec)
				}
				hist, _ := h.store.History(ctx, r.RefundID)
				if d := hist[len(hist)-1].Detail; !strings.Contains(d, "stays for a person") || !strings.Contains(d, "refundctl retry rf-na") {
					t.Errorf("the history's last entry does not show the proof and what to do: %q", d)
				}
				if got := s.Refunded("ord-na"); len(got) != 0 {
					t.Fatalf("ledger = %v, want nothing sent", got)
				}
				return
			}
			if rec.State != store.Queued || rec.InFlight != 0 {
				t.Fatalf("after the proof with resume on: %+v; want queued, nothing in flight", rec)
			}
			h.recoverNow(t, r.RefundID)
			if rec := h.await(t, r.RefundID); rec.State != store.Succeeded || rec.Attempts != 2 {
				t.Fatalf("sent again: %+v; want succeeded on the second attempt", rec)
			}
			if got := s.Refunded("ord-na"); len(got) != 1 {
				t.Fatalf("ledger = %v, want the one refund", got)
			}
		})
	}
}

// sentUnapplied leaves an Ecart Pay refund as a worker does that read the
// order, marked the attempt sent, and died before the request left; then
// automation gave up on it (needs_review, outcome unknown, a look-up due).
func sentUnapplied(t *testing.T, h *harness, r tasks.Refund) {
	t.Helper()
	ctx := context.Background()
	client, err := ecartpay.New(ecartpay.Config{BaseURL: h.simURL, PublicKey: "pub", PrivateKey: "prv"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.store.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	lease, _, err := h.store.Acquire(ctx, r.RefundID, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	before, out, ok := client.Prepare(ctx, providers.Refund{RefundID: r.RefundID, OrderID: r.OrderID, Amount: r.Money()})
	if !ok {
		t.Fatalf("prepare: %v", out)
	}
	if _, err := lease.MarkSent(ctx, store.Send{Sent: "test", Before: string(before), OnePerOrder: true}); err != nil {
		t.Fatal(err)
	}
	if err := lease.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if moved, err := h.store.Escalate(ctx, r.RefundID, "", "test: outcome unknown", time.Millisecond); err != nil || !moved {
		t.Fatalf("escalate: %v %v", moved, err)
	}
}

// Evidence that contradicts the request is a person's to weigh: such a
// refund, and one never sent, get no look-up.
func TestOnlyAnUnshownOutcomeIsLookedUpAgain(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	r := tasks.Refund{Version: 1, RefundID: "rf-ns", Provider: providers.MoyasarPG, OrderID: "ord-ns", AmountMinor: 100, Currency: "SAR"}
	if _, _, err := h.store.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	if moved, err := h.store.Escalate(ctx, r.RefundID, "", "test: never sent", time.Millisecond); err != nil || !moved {
		t.Fatalf("escalate: %v %v", moved, err)
	}
	rec, _ := h.store.Get(ctx, r.RefundID)
	if rec.Review != store.ReviewNotSent || !rec.RecheckAt.IsZero() {
		t.Fatalf("a refund never sent in review: %+v; want not_sent with no look-up", rec)
	}
	if found, err := h.worker.Handler().Recheck(ctx, r.RefundID); found != "" || err != nil {
		t.Fatalf("Recheck of a refund never sent = %q, %v; want nothing done", found, err)
	}

	// A contradiction, even with a look-up due (written so by hand here), is
	// not looked up: the index forgets it.
	c := tasks.Refund{Version: 1, RefundID: "rf-cx", Provider: providers.MoyasarPG, OrderID: "ord-cx", AmountMinor: 100, Currency: "SAR"}
	diedAfterSending(t, h.store, c)
	l, _, err := h.store.Acquire(ctx, c.RefundID, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Finish(ctx, store.Change{State: store.NeedsReview, Review: store.ReviewContradiction, RecheckAt: time.Now(),
		Entry: store.Entry{Event: "lookup", Outcome: "review", Detail: "another amount"}}); err != nil {
		t.Fatal(err)
	}
	if n, _ := h.env.Client.ZCard(ctx, h.env.Prefix+"recheck").Result(); n != 1 {
		t.Fatalf("recheck index holds %d refunds; want the one written with a look-up due", n)
	}
	time.Sleep(5 * time.Millisecond)
	if found, err := h.worker.Handler().Recheck(ctx, c.RefundID); found != "" || err != nil {
		t.Fatalf("Recheck of a contradiction = %q, %v; want nothing done", found, err)
	}
	if n, _ := h.env.Client.ZCard(ctx, h.env.Prefix+"recheck").Result(); n != 0 {
		t.Errorf("recheck index still holds %d refunds after a contradiction was found not to be looked up", n)
	}
}
