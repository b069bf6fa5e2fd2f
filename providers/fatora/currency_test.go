package fatora_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/providers/fatora/fatorasim"
	"github.com/refundq/refundq/providers/sim"
	"github.com/refundq/refundq/tasks"
)

// Fatora's refund request carries no amount and no currency: it refunds
// the whole payment in the payment's currency. verify shows both, so a
// refund asked in another currency (or for another amount) is refused
// before anything is sent: by Precheck at enqueue, by Prepare before each
// send (the worker's step that sends nothing), and by Refund itself.
func TestOtherCurrencyIsRefusedBeforeAnySend(t *testing.T) {
	for _, guessed := range []bool{false, true} {
		name := map[bool]string{false: "documented", true: "guessed"}[guessed]
		t.Run(name, func(t *testing.T) {
			s, c, _ := setup(t)
			s.Guessed(guessed)
			ctx := context.Background()
			paid := tasks.Money{Minor: 10000, Currency: "QAR"}
			for _, asked := range []tasks.Money{{Minor: 10000, Currency: "SAR"}, {Minor: 10000, Currency: "USD"}, {Minor: 1000000, Currency: "JPY"}} {
				order := "ord-" + asked.Currency
				r := providers.Refund{OrderID: order, TransactionID: s.AddPayment(order, paid), Amount: asked}
				if err := c.Precheck(ctx, r); err == nil || !strings.Contains(err.Error(), "100.00 QAR") {
					t.Errorf("precheck of %s against a payment of %s = %v; want refused", asked, paid, err)
				}
				p, ok := any(c).(providers.Preparer)
				if !ok {
					t.Fatal("the adapter reads the payment before each send: it must be a providers.Preparer")
				}
				_, out, ok := p.Prepare(ctx, r)
				if ok || out.Kind != providers.Rejected || !strings.Contains(out.Reason, "100.00 QAR") || !strings.Contains(out.Reason, asked.String()) {
					t.Errorf("prepare of %s against a payment of %s = %v (ok %v); want rejected naming both", asked, paid, out, ok)
				}
				r.Attempt = 1
				if out := c.Refund(ctx, r); out.Kind != providers.Rejected {
					t.Errorf("refund of %s against a payment of %s = %v; want rejected", asked, paid, out)
				}
				if got := s.Refunded(order); len(got) != 0 {
					t.Errorf("ledger %v", got)
				}
			}
			if n := s.RefundRequests(); n != 0 {
				t.Fatalf("%d refund requests reached Fatora, want none", n)
			}
		})
	}
}

// Prepare only reads: a failed read is Transient (nothing was sent), a
// refused key Blocked, and a matching payment lets the send go on.
func TestPrepareReadsThePayment(t *testing.T) {
	s, c, _ := setup(t)
	p, ok := any(c).(providers.Preparer)
	if !ok {
		t.Fatal("not a providers.Preparer")
	}
	ctx := context.Background()
	qar := tasks.Money{Minor: 2500, Currency: "QAR"}
	r := providers.Refund{OrderID: "ord-p", TransactionID: s.AddPayment("ord-p", qar), Amount: qar}
	before, out, ok := p.Prepare(ctx, r)
	if !ok || !strings.Contains(string(before), `"QAR"`) {
		t.Fatalf("prepare of the whole payment = %v (ok %v), before %s", out, ok, before)
	}
	s.Faults().Next(1, http.MethodPost, fatorasim.VerifyPath, sim.Status5xx)
	if _, out, ok := p.Prepare(ctx, r); ok || out.Kind != providers.Transient {
		t.Fatalf("prepare met by a 5xx = %v (ok %v); want transient", out, ok)
	}
	s.Faults().Next(1, http.MethodPost, fatorasim.VerifyPath, sim.Unauthorized)
	if _, out, ok := p.Prepare(ctx, r); ok || out.Kind != providers.Blocked {
		t.Fatalf("prepare met by a 401 = %v (ok %v); want blocked", out, ok)
	}
	r.TransactionID = "txn-other"
	if _, out, ok := p.Prepare(ctx, r); ok || out.Kind != providers.Rejected || !strings.Contains(out.Reason, "not found") {
		t.Fatalf("prepare of a payment Fatora does not know = %v (ok %v); want rejected", out, ok)
	}
	if n := s.RefundRequests(); n != 0 {
		t.Fatalf("%d refund requests from Prepare", n)
	}
}
