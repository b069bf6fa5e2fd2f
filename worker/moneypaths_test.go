package worker_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers/sim"
)

// Moyasar PG as its documents allow and our code did not expect: the first
// attempt is applied and its answer lost; the refund shows in the order only
// a little later; the resend with the same key is validated before it is
// replayed, and refused ("exceeds what is left to refund": the first attempt
// took it). The refusal of the resend is believed only once a look-up a
// settle delay after it shows nothing of ours; by then the first attempt
// shows: succeeded, paid once, never "failed".
func TestRefusedResendAfterALostAnswerIsNotFailed(t *testing.T) {
	h := start(t)
	h.sim.Quirks(true)
	h.sim.AddOrder("ord-val", mustMoney(t, "20.00", "SAR"))
	h.sim.Faults().Next(1, http.MethodPost, "/v1/orders/ord-val/refund", sim.AppliedThenReset)
	if _, err := h.enq.Enqueue(context.Background(), req("rf-val", "ord-val", "20.00")); err != nil {
		t.Fatal(err)
	}
	rec := h.await(t, "rf-val")
	if rec.State != store.Succeeded {
		hist, _ := h.store.History(context.Background(), "rf-val")
		t.Fatalf("record = %+v; want succeeded\nhistory: %+v", rec, hist)
	}
	if got := h.sim.Refunded("ord-val"); len(got) != 1 {
		t.Fatalf("ledger = %v; want the one refund", got)
	}
}
