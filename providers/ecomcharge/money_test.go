package ecomcharge_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/providers/ecomcharge"
	"github.com/refundq/refundq/providers/ecomcharge/ecomchargesim"
	"github.com/refundq/refundq/providers/sandbox"
	"github.com/refundq/refundq/providers/sim"
	"github.com/refundq/refundq/tasks"
)

// worker makes the calls refundq's worker makes, by its rules: Prepare
// before each send, learn from every answer (a refutation wins), resend
// only on a look-up's NotFound.
type worker struct {
	c     *ecomcharge.Client
	known providers.Knowledge
}

func (w *worker) learn(out providers.Outcome) providers.Outcome {
	for _, o := range out.Observed {
		switch {
		case !o.Holds:
			w.known[o.Guess] = providers.Refuted
		case w.known[o.Guess] != providers.Refuted:
			w.known[o.Guess] = providers.Confirmed
		}
	}
	return out
}

func (w *worker) sendWith(ctx context.Context, r *providers.Refund) providers.Outcome {
	r.Known = w.known
	if p, ok := any(w.c).(providers.Preparer); ok {
		before, out, ok := p.Prepare(context.Background(), *r)
		if !ok {
			return w.learn(out)
		}
		r.Before = before
	}
	r.Attempt++
	return w.learn(w.c.Refund(ctx, *r))
}

func (w *worker) send(r *providers.Refund) providers.Outcome {
	return w.sendWith(context.Background(), r)
}

func (w *worker) lookup(r providers.Refund) providers.Outcome {
	r.Known = w.known
	return w.learn(w.c.Lookup(context.Background(), r))
}

// Item 1. With the quirks on, ecomCharge echoes our tracking_id in the
// refund answer, but its look-up by tracking_id lists payments only. The
// echo must not make that look-up's empty list read as "not applied": the
// refund whose answer was lost is never resent (paid once), and the guess
// that the look-up lists refunds ends refuted or unconfirmed.
func TestEchoedTrackingIDDoesNotMakeTheLookUpProveAbsence(t *testing.T) {
	s, c, _ := setup(t)
	s.Guessed(true)
	s.Quirks(true)
	// The production ratio: a resend comes a settle delay (35 s) after the
	// send, after duplicate_check's window (30 s); here the window is over
	// at once.
	s.SetDuplicateWindow(time.Nanosecond)
	w := &worker{c: c, known: providers.Knowledge{}}

	warm := newRefund(s, 5000, 5000) // what production learns before anything goes wrong
	if out := w.send(&warm); out.Kind != providers.Succeeded {
		t.Fatalf("warm-up refund = %v", out)
	}
	r := newRefund(s, 10000, 1000) // partial: a second one would be paid
	s.Faults().Next(1, http.MethodPost, "/transactions/refunds", sim.AppliedThenReset)
	out := w.send(&r)
	if out.Kind != providers.Unknown {
		t.Fatalf("refund whose answer was lost = %v, want unknown", out)
	}
	for range 5 {
		if out = w.lookup(r); out.Kind != providers.NotFound {
			break
		}
		out = w.send(&r) // what the worker does once NotFound has held a settle delay
	}
	if got := s.Refunded(r.TransactionID); len(got) != 1 {
		t.Fatalf("ledger %v: paid %d times (last outcome %v)", got, len(got), out)
	}
	if out.Kind != providers.Unknown {
		t.Fatalf("look-up of the lost refund = %v, want unknown (left to a human)", out)
	}
	if v := w.known[ecomcharge.GuessTrackingLookup]; v == providers.Confirmed {
		t.Fatalf("guess %s is confirmed by answers whose look-up never lists a refund", ecomcharge.GuessTrackingLookup)
	}
	if v := w.known[ecomcharge.GuessTrackingEcho]; v != providers.Confirmed {
		t.Fatalf("guess %s is %s, though every refund answer echoed our tracking_id", ecomcharge.GuessTrackingEcho, v)
	}
}

// Item 2. The first attempt's answer is lost and ecomCharge applies it a
// little later; a resend meanwhile fails at the acquirer and is listed under
// our tracking_id. A look-up that shows only that failure must not say "our
// refund failed": the first attempt may still land (and here does).
func TestLookUpShowingOnlyTheResendsFailureIsNotRejected(t *testing.T) {
	s, c, _ := setup(t)
	s.Guessed(true)
	w := &worker{c: c, known: providers.Knowledge{}}
	warm := newRefund(s, 5000, 5000)
	if out := w.send(&warm); out.Kind != providers.Succeeded {
		t.Fatalf("warm-up refund = %v", out)
	}
	r := newRefund(s, 1000, 1000)
	s.Faults().LateBy = 2 * time.Second
	s.Faults().Next(1, http.MethodPost, "/transactions/refunds", sim.AppliedLate)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if out := w.sendWith(ctx, &r); out.Kind != providers.Unknown {
		t.Fatalf("refund the provider is still working on = %v, want unknown", out)
	}
	s.Decline(r.TransactionID)
	if out := w.send(&r); out.Kind != providers.Rejected {
		t.Fatalf("declined resend = %v, want rejected (the worker looks up before believing it)", out)
	}
	if out := w.lookup(r); out.Kind == providers.Rejected || out.Kind == providers.NotFound {
		t.Fatalf("look-up listing only the resend's failure = %v; the first attempt may still land", out)
	}
	s.Faults().WaitLate()
	if out := w.lookup(r); out.Kind != providers.Succeeded {
		t.Fatalf("look-up once the first attempt landed = %v, want succeeded", out)
	}
	if got := s.Refunded(r.TransactionID); len(got) != 1 || got[0] != eur(1000) {
		t.Fatalf("ledger %v, want one refund of 1000", got)
	}
}

// Item 3. The refund request carries no currency (ecomCharge refunds in the
// payment's): the payment is read before the send, another currency is
// refused there and nothing is sent; a read that fails sends nothing and is
// tried again.
func TestPaymentCurrencyIsReadBeforeTheSend(t *testing.T) {
	s, c, _ := setup(t)
	p, ok := any(c).(providers.Preparer)
	if !ok {
		t.Fatal("the adapter reads nothing before the send: a refund in another currency than the payment's is paid in the payment's")
	}
	ctx := context.Background()
	uid := s.AddPayment("pay-"+uuid.NewString(), tasks.Money{Minor: 1000, Currency: "USD"})
	r := providers.Refund{TransactionID: uid, OrderID: uid, Amount: eur(1000), Key: uuid.NewString()}
	_, out, ok := p.Prepare(ctx, r)
	if ok || out.Kind != providers.Rejected || !strings.Contains(out.Reason, "USD") || !strings.Contains(out.Reason, "EUR") {
		t.Fatalf("prepare of a EUR refund of a USD payment = %v (ok %v), want rejected naming both", out, ok)
	}
	if got := s.Refunded(uid); len(got) != 0 {
		t.Fatalf("ledger %v: something was sent", got)
	}

	r.Amount.Currency = "USD"
	before, out, ok := p.Prepare(ctx, r)
	if !ok || len(before) == 0 {
		t.Fatalf("prepare of a USD refund of a USD payment = %v (ok %v, before %q)", out, ok, before)
	}
	r.Before, r.Attempt = before, 1
	other := r
	other.Amount.Currency = "EUR" // what Prepare read says USD: refused, nothing sent
	if out := c.Refund(ctx, other); out.Kind != providers.Rejected || !strings.Contains(out.Reason, "USD") {
		t.Fatalf("EUR refund sent with a read showing a USD payment = %v, want rejected", out)
	}
	if got := s.Refunded(uid); len(got) != 0 {
		t.Fatalf("ledger %v: something was sent", got)
	}
	if out := c.Refund(ctx, r); out.Kind != providers.Succeeded {
		t.Fatalf("refund after prepare = %v", out)
	}

	// (A reset is not among them: Go's transport retries a GET whose reused
	// connection was reset.)
	for _, fault := range []sim.Kind{sim.Status5xx, sim.RateLimited, sim.Slow} {
		s.Faults().Next(1, http.MethodGet, "/transactions/"+uid, fault)
		rctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond) // Slow answers after 2 s
		_, out, ok := p.Prepare(rctx, r)
		cancel()
		if ok || out.Kind != providers.Transient {
			t.Errorf("prepare whose read met %s = %v (ok %v), want transient", fault, out, ok)
		}
	}
	if got := s.Refunded(uid); len(got) != 1 {
		t.Fatalf("ledger %v, want the one refund", got)
	}
}

// Item 5. A wrong base URL (or path) answers 404 with a JSON body: that is
// our configuration, not a refusal of the refund. Nothing may fail for it.
func TestWrongBaseURLBlocks(t *testing.T) {
	s, _, base := setup(t)
	c := newClient(t, base+"/api")
	ctx := context.Background()
	r := newRefund(s, 1000, 1000)
	r.Attempt = 1
	for _, op := range []string{"refund", "lookup", "prepare"} {
		var out providers.Outcome
		switch op {
		case "refund":
			out = c.Refund(ctx, r)
		case "lookup":
			out = c.Lookup(ctx, r)
		case "prepare":
			p, ok := any(c).(providers.Preparer)
			if !ok {
				t.Fatal("no Prepare")
			}
			_, out, _ = p.Prepare(ctx, r)
		}
		if out.Kind != providers.Blocked || !strings.Contains(out.Reason, ecomcharge.EnvBaseURL) {
			t.Errorf("%s at a wrong base URL = %v, want blocked naming %s", op, out, ecomcharge.EnvBaseURL)
		}
	}
	if got := s.Refunded(r.TransactionID); len(got) != 0 {
		t.Fatalf("ledger %v", got)
	}
}

// Item 5, the other side: at the right base URL, a payment ecomCharge does
// not know is refused before the send, on a first attempt; on a resend it
// is a contradiction for a human.
func TestUnknownPaymentIsRejectedBeforeTheFirstSend(t *testing.T) {
	s, c, _ := setup(t)
	p, ok := any(c).(providers.Preparer)
	if !ok {
		t.Fatal("no Prepare")
	}
	ctx := context.Background()
	r := providers.Refund{TransactionID: "pay-ghost", OrderID: "pay-ghost", Amount: eur(100), Key: uuid.NewString()}
	if _, out, ok := p.Prepare(ctx, r); ok || out.Kind != providers.Rejected || !strings.Contains(out.Reason, "pay-ghost") {
		t.Fatalf("prepare of a refund of an unknown payment = %v (ok %v), want rejected naming it", out, ok)
	}
	r.Attempt = 1 // one attempt was sent already
	if _, out, ok := p.Prepare(ctx, r); ok || out.Kind == providers.Rejected {
		t.Fatalf("prepare of a resend of an unknown payment = %v (ok %v): an earlier attempt was sent", out, ok)
	}
	if len(s.Entries()) != 0 {
		t.Fatalf("ledger %v", s.Entries())
	}
}

// Item 4. The shop's mode shows in every answer ("test"). A test shop's
// answers in a live configuration (the default) record refunds that pay
// nothing: blocked, with a reason naming ECOMCHARGE_MODE.
func TestTestShopInALiveConfigurationBlocks(t *testing.T) {
	s := ecomchargesim.New(shop, secret) // a test shop, as the document's example
	s.Guessed(true)
	srv := httptestServer(t, s)
	c := newClient(t, srv) // live: the default
	ctx := context.Background()
	r := newRefund(s, 1000, 1000)
	p, ok := any(c).(providers.Preparer)
	if !ok {
		t.Fatal("no Prepare")
	}
	if _, out, ok := p.Prepare(ctx, r); ok || out.Kind != providers.Blocked || !strings.Contains(out.Reason, "ECOMCHARGE_MODE") {
		t.Fatalf("prepare against a test shop, configured live = %v (ok %v), want blocked naming ECOMCHARGE_MODE", out, ok)
	}
	r.Attempt = 1
	if out := c.Refund(ctx, r); out.Kind != providers.Blocked || !strings.Contains(out.Reason, "ECOMCHARGE_MODE") {
		t.Fatalf("refund answered by a test shop, configured live = %v, want blocked naming ECOMCHARGE_MODE", out)
	}
	if out := c.Lookup(ctx, r); out.Kind != providers.Blocked {
		t.Fatalf("look-up answered by a test shop, configured live = %v, want blocked", out)
	}
}

func httptestServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// newClient is an adapter at base, configured live (the default).
func newClient(t *testing.T, base string) *ecomcharge.Client {
	t.Helper()
	c, err := ecomcharge.New(ecomcharge.Config{BaseURL: base, ShopID: shop, SecretKey: secret})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Item 4, the other way: a live shop's answers to an adapter configured for
// a test shop. Nothing is sent past Prepare; a refund answered live anyway
// may have moved money, so it is not settled (Unknown) and its look-up is
// blocked until the configuration is fixed, then finds it.
func TestLiveShopInATestConfigurationBlocks(t *testing.T) {
	s := ecomchargesim.New(shop, secret)
	s.SetTestMode(false)
	s.Guessed(true)
	base := httptestServer(t, s)
	c, err := ecomcharge.New(ecomcharge.Config{BaseURL: base, ShopID: shop, SecretKey: secret, Mode: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r := newRefund(s, 1000, 1000)
	if _, out, ok := c.Prepare(ctx, r); ok || out.Kind != providers.Blocked || !strings.Contains(out.Reason, "ECOMCHARGE_MODE") {
		t.Fatalf("prepare against a live shop, configured test = %v (ok %v), want blocked naming ECOMCHARGE_MODE", out, ok)
	}
	r.Attempt = 1
	if out := c.Refund(ctx, r); out.Kind != providers.Unknown || !strings.Contains(out.Reason, "ECOMCHARGE_MODE") {
		t.Fatalf("refund answered by a live shop, configured test = %v, want unknown naming ECOMCHARGE_MODE", out)
	}
	if out := c.Lookup(ctx, r); out.Kind != providers.Blocked {
		t.Fatalf("look-up answered by a live shop, configured test = %v, want blocked", out)
	}
	fixed := newClient(t, base) // live
	if out := fixed.Lookup(ctx, r); out.Kind != providers.Succeeded {
		t.Fatalf("look-up once configured live = %v, want succeeded", out)
	}
	if got := s.Refunded(r.TransactionID); len(got) != 1 {
		t.Fatalf("ledger %v, want one refund", got)
	}
}

// The sandbox tells a worker the mode its ecomCharge shop answers in, so a
// worker configured from its Env sends; and it wires the quirks.
func TestSandboxEnvMatchesTheShopsMode(t *testing.T) {
	sims, err := sandbox.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var sb *sandbox.Sim
	for i := range sims {
		if sims[i].Name == providers.EcomCharge {
			sb = &sims[i]
		}
	}
	if sb == nil || sb.Quirks == nil {
		t.Fatalf("sandbox ecomCharge = %+v, want one with Quirks", sb)
	}
	base := httptestServer(t, sb.Handler)
	env := map[string]string{}
	for _, line := range sb.Env(base) {
		k, v, _ := strings.Cut(line, "=")
		env[k] = v
	}
	e := ecomcharge.Entry(func(k string) string { return env[k] })
	if !e.Enabled() {
		t.Fatalf("entry from the sandbox's env %v = %+v", env, e)
	}
	uid := sb.Pay("pay-"+uuid.NewString(), eur(1000))
	if uid == "" {
		t.Fatal("no payment uid")
	}
	r := providers.Refund{TransactionID: uid, OrderID: uid, Amount: eur(1000), Key: uuid.NewString()}
	if _, out, ok := e.Provider.(providers.Preparer).Prepare(context.Background(), r); !ok {
		t.Fatalf("prepare with the sandbox's env (%s=%s) = %v", ecomcharge.EnvMode, env[ecomcharge.EnvMode], out)
	}
}

// With the quirks on the simulator answers as the status query page allows:
// the refund echoes our tracking_id (guessed shape), the look-up by
// tracking_id lists the payment made with one and never the refund.
func TestSimulatorQuirksListPaymentsOnly(t *testing.T) {
	s, c, base := setup(t)
	s.Guessed(true)
	s.Quirks(true)
	uid := s.AddPayment("pay-"+uuid.NewString(), eur(1000))
	s.TrackPayment(uid, "order-7")
	r := providers.Refund{TransactionID: uid, OrderID: uid, Amount: eur(400), Key: "our-key", Attempt: 1}
	if out := c.Refund(context.Background(), r); out.Kind != providers.Succeeded {
		t.Fatalf("refund = %v", out)
	}
	list := func(tid string) []map[string]any {
		req, _ := http.NewRequest(http.MethodGet, base+"/v2/transactions/tracking_id/"+tid, nil)
		req.SetBasicAuth(shop, secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v struct {
			Transactions []map[string]any `json:"transactions"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || v.Transactions == nil {
			t.Fatalf("look-up by %s: %v %+v", tid, err, v)
		}
		return v.Transactions
	}
	if got := list("our-key"); len(got) != 0 {
		t.Fatalf("look-up by the refund's tracking_id = %v, want no refund", got)
	}
	if got := list("order-7"); len(got) != 1 || got[0]["type"] != "payment" || got[0]["uid"] != uid || got[0]["test"] != true {
		t.Fatalf("look-up by the payment's tracking_id = %v, want the payment", got)
	}
}
