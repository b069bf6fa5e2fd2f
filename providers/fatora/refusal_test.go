package fatora_test

import (
	"net/http"
	"testing"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/providers/fatora/fatorasim"
	"github.com/refundq/refundq/providers/sim"
)

// Issue: "already under process" (or any refusal saying the payment has a
// refund) after an earlier attempt of ours is evidence that a refund
// exists, probably ours: Fatora refunds a payment once and refundq allows
// one refund of its own per order. It must send the worker to look up or to
// poll, never to fail.
func TestAlreadyUnderProcessAfterAnAttemptIsNeverARefusal(t *testing.T) {
	for _, guessed := range []bool{false, true} {
		name := map[bool]string{false: "documented", true: "guessed"}[guessed]
		t.Run(name, func(t *testing.T) {
			s, c, _ := setup(t)
			s.Guessed(guessed)
			s.Quirks(true)
			w := newWorker(t, s, c)
			r := w.refund("ord-twice")
			s.MakePending("ord-twice", 1000)
			s.Faults().Next(1, http.MethodPost, fatorasim.RefundPath, sim.AppliedThenReset)
			if out := w.send(&r); out.Kind != providers.Unknown {
				t.Fatalf("refund whose answer was lost = %v", out)
			}
			// A resend made without proof (the mistake this guards
			// against, or a proof that was wrong).
			out := w.send(&r)
			if out.Kind != providers.Pending && out.Kind != providers.Unknown {
				t.Fatalf("resend answered \"already under process\" = %v, want pending or unknown", out)
			}
			out = w.settle(&r, out, 10)
			if w.failed != "" {
				t.Fatalf("failed: %s", w.failed)
			}
			if n := s.RefundRequests(); n != 2 {
				t.Fatalf("%d refund requests, want the lost one and the one resend", n)
			}
			if got := s.Refunded("ord-twice"); len(got) != 1 {
				t.Fatalf("ledger = %v, want paid once", got)
			}
		})
	}
}
