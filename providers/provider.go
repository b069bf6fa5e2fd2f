// Package providers defines what the worker needs from a payment provider —
// send a refund, look up what became of one — and the few outcome kinds every
// adapter reduces the provider's answers to. Each provider lives in its own
// subpackage with the same shape: a constructor from config, the adapter, a
// simulator of its documented API, and the conformance suite wired in one test.
package providers

import (
	"context"
	"fmt"
	"time"

	"github.com/refundq/refundq/tasks"
)

// Provider names, as they appear in task payloads, bulk files and records.
const (
	EcartPay   = "ecartpay"
	EcomCharge = "ecomcharge"
	Fatora     = "fatora"
	BBMSL      = "bbmsl"
	MoyasarPG  = "moyasarpg"
)

// Refund is one refund as an adapter sees it.
type Refund struct {
	RefundID      string      // the merchant's refund id
	OrderID       string      // the merchant's or provider's order id
	TransactionID string      // the provider's payment transaction (or order) id, where it needs one
	Amount        tasks.Money // what to refund
	Reason        string
	// Key is refundq's own id for this refund at the provider (Moyasar PG's
	// transaction_id, ecomCharge's tracking_id, …). It is chosen once when the
	// refund is created and sent unchanged on every attempt, so a resend is
	// recognised and a lost response can be found again.
	Key string
	// Reference is the provider's id of this refund, once one of its
	// answers named it (a refund it has pending, or one settled by a
	// person): a look-up that can ask for it by id proves what became of it
	// without any guess.
	Reference string
	// OtherRefs are the provider's references of the other refunds refundq
	// knows on this order. An adapter that matches a lost answer by amount
	// (no key) must not take one of them for this refund.
	OtherRefs []string
	// Attempt is the number of the attempt being sent (1 for the first) or,
	// for Lookup, the attempt being reconciled. An adapter reads a refusal
	// that could be the echo of an earlier attempt (ecomCharge's
	// duplicate_check) differently on a resend.
	Attempt int
	// Before is what Prepare returned just before the attempt being looked up
	// was sent (nil when the adapter has no Prepare, or none was taken).
	Before []byte
	// Known is what refundq has learned at run time about the provider's
	// undocumented behaviour (see Guess).
	Known Knowledge
}

// Provider is a payment provider's refund API. Every call returns an Outcome;
// a failure the adapter cannot classify must come back as Unknown, never as
// Succeeded, Rejected or NotFound.
type Provider interface {
	// Refund asks the provider to refund r.
	Refund(ctx context.Context, r Refund) Outcome
	// Lookup asks the provider what became of r without changing anything.
	//
	// The one rule every adapter holds: Lookup answers NotFound only on
	// positive proof. The part of the provider's answer that would show our
	// refund must be present, parsed, and show none; and where that part
	// rests on a guess about an undocumented field, the guess must be
	// confirmed (r.Known). A missing field, an unparseable amount, an
	// unexpected status, an odd body, an auth failure, a 5xx or a 404 of the
	// look-up itself: all Unknown. NotFound is what makes a resend safe; a
	// wrong NotFound pays a customer twice.
	//
	// Rejected means the provider shows the refund failed or cannot exist
	// (e.g. no such order); Review means the answer contradicts what we
	// asked (another amount or currency) and a human must decide.
	Lookup(ctx context.Context, r Refund) Outcome
}

// Preparer is a Provider that must read the provider's state just before each
// send, because a lost answer can only be judged by comparing the state after
// it with the state before (Ecart Pay: no refund key, one refund_id on the
// order). The worker stores what Prepare returns with the attempt, before the
// request leaves, and hands it back in Refund.Before to Lookup.
type Preparer interface {
	// Prepare reads without changing anything. ok false comes with an outcome
	// saying why nothing can be sent now (Transient, Blocked, Rejected).
	Prepare(ctx context.Context, r Refund) (before []byte, out Outcome, ok bool)
}

// Verifier is a Provider that can check a final refund by the provider's own
// reference of it (r.Reference), for a reconciliation. Lookup answers the
// worker's question, "was this lost send applied?", and a keyless adapter
// answers it by comparing the order with r.Before; once a refund is final
// with a reference, the reconciliation's question is another one: "does
// the provider still show that refund, as recorded?". Only a
// reconciliation calls Verify; no send is ever decided on its answer.
type Verifier interface {
	// Verify reads without changing anything, under Lookup's rules:
	// Succeeded only where the answer shows the refund r.Reference names
	// applied for r.Amount; NotFound only on positive proof; Review where
	// the answer contradicts the refund; anything it cannot show, Unknown.
	Verify(ctx context.Context, r Refund) Outcome
}

// Prechecker is a Provider that can tell, before a refund is accepted for
// enqueueing, that the provider will never take it (Fatora looks the payment
// up to refuse a partial amount). Precheck reads and never changes anything;
// it returns nil when it cannot tell (provider unreachable, auth failure), and
// the adapter checks the same again before sending.
type Prechecker interface {
	Precheck(ctx context.Context, r Refund) error
}

// Kind is what the worker should do with an outcome. The zero value is
// Unknown, so an outcome nobody filled in is reconciled, not trusted.
type Kind int

const (
	// Unknown: the call may or may not have been applied (timeout after the
	// request was sent, connection reset, 5xx, unparseable answer), or a
	// look-up could not prove anything. Reconcile with Lookup before
	// anything is sent again.
	Unknown Kind = iota
	// Succeeded: the refund is applied, for the amount (and currency, where
	// the answer has one) we asked; Reference names it at the provider.
	Succeeded
	// Pending: the provider has the refund but has not finished it; ask again
	// after RetryAfter (or the provider's poll schedule).
	Pending
	// Rejected: the provider refused the refund itself, for good; Reason says
	// why in words a human can act on. Nothing was applied by this request.
	Rejected
	// Transient: nothing was applied and trying again later may work (429,
	// connection refused, 503 before processing). RetryAfter is the
	// provider's hint, if any.
	Transient
	// NotFound (Lookup only): the provider positively has no such refund (see
	// Provider.Lookup for what counts as proof).
	NotFound
	// Blocked: our side is misconfigured (credentials refused, 401/403, a
	// key the provider does not accept). Nothing was applied; the refund
	// keeps its state and is tried again on a long schedule, so fixing the
	// configuration resumes it. Never a reason to fail a refund.
	Blocked
	// Review: the provider's answer contradicts the request (a success for
	// another amount or currency, a change the evidence cannot attribute).
	// Automation stops; a human decides.
	Review
	// Uncertain: the provider shows our refund, in a state its own documents
	// call "outcome uncertain" (Moyasar PG's timeout and system_error). It
	// is neither applied nor refused, and a resend is no answer to it (an
	// idempotent provider replays the same uncertainty): look again later,
	// then a human decides. Never a reason to send again.
	Uncertain
)

func (k Kind) String() string {
	switch k {
	case Unknown:
		return "unknown"
	case Succeeded:
		return "succeeded"
	case Pending:
		return "pending"
	case Rejected:
		return "rejected"
	case Transient:
		return "transient"
	case NotFound:
		return "not_found"
	case Blocked:
		return "blocked"
	case Review:
		return "review"
	case Uncertain:
		return "uncertain"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Outcome is the classified result of one call to a provider.
type Outcome struct {
	Kind       Kind
	Reference  string        // provider's id of the refund, when known
	Status     string        // provider's own status word, verbatim, for the record
	Reason     string        // human-readable detail; never contains a secret
	RetryAfter time.Duration // provider's hint for Pending and Transient, 0 if none
	HTTPStatus int           // 0 when no HTTP response was read
	RequestID  string        // the provider's id of the request (a response header), if any
	// Observed is what this answer showed about the adapter's guesses.
	Observed []Observation
}

func (o Outcome) String() string {
	s := o.Kind.String()
	if o.HTTPStatus != 0 {
		s += fmt.Sprintf(" (HTTP %d)", o.HTTPStatus)
	}
	if o.Status != "" {
		s += " status=" + o.Status
	}
	if o.Reason != "" {
		s += ": " + o.Reason
	}
	return s
}

// Observe adds what an answer showed about a guess.
func (o *Outcome) Observe(g Guess, holds bool, detail string) {
	o.Observed = append(o.Observed, Observation{Guess: g, Holds: holds, Detail: detail})
}

// Schedule says how often to poll a provider about a pending refund and for
// how long before a human has to look at it.
type Schedule struct {
	First   time.Duration // delay before the first poll
	Max     time.Duration // the delay grows ×2 per poll up to this
	Horizon time.Duration // total time after which the refund goes to needs_review
}

// Delay returns the wait before poll number step (0-based), clamped to the
// schedule, preferring the provider's hint when it gave one.
func (s Schedule) Delay(step int, hint time.Duration) time.Duration {
	if hint > 0 {
		return min(max(hint, time.Second), s.Max)
	}
	d := s.First
	for i := 0; i < step && d < s.Max; i++ {
		d *= 2
	}
	return min(d, s.Max)
}
