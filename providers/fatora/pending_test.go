package fatora_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/providers/fatora"
	"github.com/refundq/refundq/providers/fatora/fatorasim"
	"github.com/refundq/refundq/providers/sim"
	"github.com/refundq/refundq/tasks"
)

// worker makes the calls refundq's worker makes, by its rules
// (worker/decide.go), as far as these tests need: learn from every answer;
// after Unknown or Pending look the refund up; for a keyless provider, send
// again only after two look-ups both show nothing; after a refusal of a
// resend, look up, and fail only if that look-up shows nothing of ours.
type worker struct {
	t       *testing.T
	s       *fatorasim.Simulator
	c       *fatora.Client
	known   providers.Knowledge
	resends int
	failed  string // the reason the refund was failed, "" while it is not
}

func newWorker(t *testing.T, s *fatorasim.Simulator, c *fatora.Client) *worker {
	return &worker{t: t, s: s, c: c, known: providers.Knowledge{}}
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

func (w *worker) refund(order string) providers.Refund {
	qar := tasks.Money{Minor: 2500, Currency: "QAR"}
	return providers.Refund{RefundID: "rf-" + order, OrderID: order, TransactionID: w.s.AddPayment(order, qar), Amount: qar}
}

// send makes one attempt, Prepare first where the adapter has one.
func (w *worker) send(r *providers.Refund) providers.Outcome {
	ctx := context.Background()
	r.Known = w.known
	if p, ok := any(w.c).(providers.Preparer); ok {
		before, out, ok := p.Prepare(ctx, *r)
		if !ok {
			return w.learn(out)
		}
		r.Before = before
	}
	r.Attempt++
	if r.Attempt > 1 {
		w.resends++
	}
	return w.learn(w.c.Refund(ctx, *r))
}

func (w *worker) lookup(r *providers.Refund) providers.Outcome {
	r.Known = w.known
	return w.learn(w.c.Lookup(context.Background(), *r))
}

// settle drives r from out for at most steps calls and returns the last
// answer; a refund the worker would fail ends it, with w.failed set.
func (w *worker) settle(r *providers.Refund, out providers.Outcome, steps int) providers.Outcome {
	for range steps {
		switch out.Kind {
		case providers.Succeeded, providers.Review, providers.Blocked:
			return out
		case providers.Rejected:
			if r.Attempt <= 1 {
				w.failed = out.Reason
				return out
			}
			// A refusal of a resend: believed once a look-up shows nothing.
			refused := out.Reason
			if out = w.lookup(r); out.Kind == providers.NotFound {
				w.failed = refused + "; a look-up shows nothing of ours applied"
				return out
			}
		case providers.NotFound:
			// Keyless: believed from a second look-up that agrees.
			if out = w.lookup(r); out.Kind == providers.NotFound {
				out = w.send(r)
			}
		default: // Unknown, Pending, Uncertain, Transient
			out = w.lookup(r)
		}
	}
	return out
}

// Issue: a guess learned from completed refunds was applied to refunds
// still under_proccession. Where verify shows a refund only once it is
// completed (the quirk), a refund whose answer was lost while the bank
// works on it looked absent, was sent again, refused "already under
// process", and failed; the bank paid weeks later. It must stay
// unknown or pending until it completes, never be sent again, never fail.
func TestLostAnswerOfARefundUnderProccessionIsNeverResentNorFailed(t *testing.T) {
	for _, guessed := range []bool{false, true} {
		name := map[bool]string{false: "documented", true: "guessed"}[guessed]
		t.Run(name, func(t *testing.T) {
			s, c, _ := setup(t)
			s.Guessed(guessed)
			s.Quirks(true)
			w := newWorker(t, s, c)

			// What the adapter learns in production before anything goes
			// wrong: a refund completed at once, another the bank took
			// its time over.
			done := w.refund("ord-done")
			if out := w.settle(&done, w.send(&done), 4); out.Kind != providers.Succeeded {
				t.Fatalf("warm-up refund = %v", out)
			}
			slow := w.refund("ord-slow")
			s.MakePending("ord-slow", 3)
			if out := w.settle(&slow, w.send(&slow), 8); out.Kind == providers.Rejected || w.failed != "" {
				t.Fatalf("warm-up pending refund = %v (failed: %q)", out, w.failed)
			}

			// The refund of the issue: under_proccession for the next 8
			// verify calls, its answer lost.
			r := w.refund("ord-lost")
			s.MakePending("ord-lost", 8)
			s.Faults().Next(1, http.MethodPost, fatorasim.RefundPath, sim.AppliedThenReset)
			out := w.send(&r)
			if out.Kind != providers.Unknown {
				t.Fatalf("refund whose answer was lost = %v, want unknown", out)
			}
			for i := 0; i < 7; i++ {
				out = w.lookup(&r)
				if out.Kind != providers.Unknown && out.Kind != providers.Pending {
					t.Fatalf("look-up %d while the bank processes the refund = %v, want unknown or pending", i+1, out)
				}
			}
			out = w.settle(&r, out, 12)
			if w.resends != 0 || w.failed != "" {
				t.Fatalf("resent %d times, failed %q (last answer %v): the refund is under_proccession at Fatora",
					w.resends, w.failed, out)
			}
			if got := s.Refunded("ord-lost"); len(got) != 1 {
				t.Fatalf("ledger = %v, want paid once", got)
			}
			// Once completed, verify shows it where it shows refunds at all.
			want := providers.Unknown
			if guessed {
				want = providers.Succeeded
			}
			if out.Kind != want {
				t.Fatalf("after the refund completed: %v, want %s", out, want)
			}
		})
	}
}
