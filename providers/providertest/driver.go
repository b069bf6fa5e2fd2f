package providertest

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/refundq/refundq/providers"
)

// driver makes the calls the worker makes, by the worker's rules: Prepare
// before each send, learn from every answer, trust a look-up's NotFound only
// SettleDelay after the send (and, for a keyless provider, only from two
// look-ups that far apart), and resend only then.
type driver struct {
	t      *testing.T
	h      *Harness
	known  providers.Knowledge
	sentAt time.Time
	// refs holds, per order, the provider's reference of each refund that
	// succeeded (by refund id): for a keyless provider the worker hands
	// the others' to every call about a refund on the order (OtherRefs).
	refs map[string]map[string]string
}

func newDriver(t *testing.T, h *Harness) *driver {
	return &driver{t: t, h: h, known: providers.Knowledge{}, refs: map[string]map[string]string{}}
}

// others sets r.OtherRefs as the worker does: for a keyless provider, the
// references of the other refunds of ours known on the order.
func (d *driver) others(r *providers.Refund) {
	if !d.h.Keyless {
		return
	}
	r.OtherRefs = nil
	for id, ref := range d.refs[r.OrderID] {
		if id != r.RefundID {
			r.OtherRefs = append(r.OtherRefs, ref)
		}
	}
}

// record keeps the reference of a refund that succeeded.
func (d *driver) record(r *providers.Refund, out providers.Outcome) providers.Outcome {
	if out.Kind == providers.Succeeded && out.Reference != "" {
		if d.refs[r.OrderID] == nil {
			d.refs[r.OrderID] = map[string]string{}
		}
		d.refs[r.OrderID][r.RefundID] = out.Reference
	}
	return out
}

func (d *driver) learn(out providers.Outcome) providers.Outcome {
	for _, o := range out.Observed {
		switch {
		case !o.Holds:
			d.known[o.Guess] = providers.Refuted
		case d.known[o.Guess] != providers.Refuted:
			d.known[o.Guess] = providers.Confirmed
		}
	}
	return out
}

// warmUp makes one refund on a payment of its own, so the adapter learns
// what the provider's answers show, as it would in production before any
// refund goes wrong.
func (d *driver) warmUp() {
	r, _ := d.newRefund(5000, 5000)
	d.settle(&r, d.send(&r))
}

func (d *driver) newRefund(paid, refund int64) (providers.Refund, string) {
	order, txn := d.h.Pay(d.t, money(d.h, paid))
	return providers.Refund{
		RefundID: "rf-" + uuid.NewString()[:8], OrderID: order, TransactionID: txn,
		Amount: money(d.h, refund), Reason: "requested", Key: uuid.Must(uuid.NewV7()).String(),
	}, order
}

// send makes one attempt: Prepare (where the adapter has it), then Refund.
func (d *driver) send(r *providers.Refund) providers.Outcome {
	return d.sendWith(ctx(d.t), r)
}

func (d *driver) sendWith(c context.Context, r *providers.Refund) providers.Outcome {
	r.Known = d.known
	d.others(r)
	if p, ok := d.h.Provider.(providers.Preparer); ok {
		before, out, ok := p.Prepare(ctx(d.t), *r)
		if !ok {
			return d.learn(out)
		}
		r.Before = before
	}
	r.Attempt++
	d.sentAt = time.Now()
	return d.record(r, d.learn(d.h.Provider.Refund(c, *r)))
}

// lookup asks what became of r, and returns NotFound only once it is proven
// by the settle rules.
func (d *driver) lookup(r *providers.Refund) providers.Outcome {
	r.Known = d.known
	d.others(r)
	out := d.record(r, d.learn(d.h.Provider.Lookup(ctx(d.t), *r)))
	if out.Kind != providers.NotFound || d.sentAt.IsZero() {
		return out
	}
	if wait := time.Until(d.sentAt.Add(SettleDelay)); wait > 0 {
		time.Sleep(wait)
		return d.lookup(r)
	}
	if d.h.Keyless {
		time.Sleep(SettleDelay)
		r.Known = d.known
		out = d.record(r, d.learn(d.h.Provider.Lookup(ctx(d.t), *r)))
	}
	return out
}

// settle drives a refund to an answer the worker would act on: Succeeded,
// Rejected, Blocked or Review; or Unknown when nothing can prove what
// happened (the worker then hands it to a human).
func (d *driver) settle(r *providers.Refund, out providers.Outcome) providers.Outcome {
	d.t.Helper()
	for range 12 {
		switch out.Kind {
		case providers.Succeeded, providers.Rejected, providers.Blocked, providers.Review:
			return out
		case providers.Transient:
			out = d.send(r)
		case providers.Pending, providers.Unknown:
			if out.Reference != "" {
				// What the worker records and hands back: the provider's id
				// of the refund, for a look-up by id.
				r.Reference = out.Reference
			}
			out = d.lookup(r)
			if out.Kind == providers.NotFound {
				out = d.send(r)
			}
		default:
			d.t.Fatalf("unexpected outcome %v", out)
		}
	}
	if out.Kind == providers.Unknown {
		return out
	}
	d.t.Fatalf("refund not settled after 12 calls: %v", out)
	return out
}

func wantApplied(t *testing.T, h *Harness, order string, want ...int64) {
	t.Helper()
	got := h.Applied(order)
	if len(got) != len(want) {
		t.Fatalf("ledger for %s has %d refunds %v, want %v", order, len(got), got, want)
	}
	for i := range want {
		if got[i] != money(h, want[i]) {
			t.Fatalf("ledger for %s = %v, want %v", order, got, want)
		}
	}
}

func wantKind(t *testing.T, what string, out providers.Outcome, kind providers.Kind) {
	t.Helper()
	if out.Kind != kind {
		t.Fatalf("%s = %v, want %s", what, out, kind)
	}
}

// wantSettledOnce checks the end of a refund that may or may not have been
// applied: paid exactly once and Succeeded; or, where the shape cannot prove
// absence, Unknown and paid at most once — never paid and recorded refused,
// never paid twice.
func wantSettledOnce(t *testing.T, h *Harness, order string, out providers.Outcome, amount int64) {
	t.Helper()
	got := h.Applied(order)
	switch {
	case len(got) > 1:
		t.Fatalf("paid %d times: %v (outcome %v)", len(got), got, out)
	case out.Kind == providers.Succeeded:
		wantApplied(t, h, order, amount)
	case out.Kind == providers.Unknown && !h.ProvesAbsence:
		// Left for a human: acceptable, as long as nothing was paid twice.
	case len(got) == 1:
		t.Fatalf("paid once but the outcome is %v", out)
	default:
		t.Fatalf("outcome %v, ledger %v; want the refund settled", out, got)
	}
}
