package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/refundq/refundq/tasks"
)

// ErrMayBeAtProvider: the refund cannot be sent again by hand, because
// something of it may be at the provider; a human asks the provider, then
// settles it.
var ErrMayBeAtProvider = errors.New("refund may be at the provider")

// ErrNoNote: a change by hand needs a note saying why.
var ErrNoNote = errors.New("a note is required")

// NotResendableError says why a needs_review refund cannot be reopened.
type NotResendableError struct {
	ID  string
	Why string
}

func (e *NotResendableError) Error() string {
	return fmt.Sprintf("refund %s is not sent again: %s; ask the provider what became of it, then close it with `refundctl settle`",
		e.ID, e.Why)
}

// Is makes a *NotResendableError match ErrMayBeAtProvider.
func (e *NotResendableError) Is(target error) bool { return target == ErrMayBeAtProvider }

// Reopen moves a needs_review refund back to queued, for a new task to
// send it again, when nothing of it can be at the provider (see
// atProvider); otherwise it returns a *NotResendableError (errors.Is
// ErrMayBeAtProvider) saying why. A refund in any other state is refused
// with ErrNotReview, and a held one with ErrBusy, as Settle does. note says
// why, for the history, and actor who reopens it; both are required
// (ErrNoNote, ErrNoActor). The
// refund becomes due for the recoverer after the queued grace, so a task
// that is never enqueued is re-created then.
func (s *Store) Reopen(ctx context.Context, id, note, actor string) error {
	if strings.TrimSpace(note) == "" {
		return fmt.Errorf("reopen refund %s: %w: say why it is sent again, for its history", id, ErrNoNote)
	}
	if strings.TrimSpace(actor) == "" {
		return fmt.Errorf("reopen refund %s: %w", id, ErrNoActor)
	}
	l, rec, err := s.takeReview(ctx, id)
	if err != nil {
		return err
	}
	defer l.Release(ctx)
	hist, err := s.History(ctx, id)
	if err != nil {
		return err
	}
	if why := atProvider(rec, hist); why != "" {
		return &NotResendableError{ID: id, Why: why}
	}
	// Settled only restates in_flight 0 (a refund never sent has no such
	// field): the refund's order slot is then freed, as after any settled
	// attempt.
	// Its task goes to the queue of this Store (WithQueue), where the
	// caller enqueues it: the recoverer looks for it there.
	// A person sent it on again: the recoverer's count of spent tasks
	// starts over.
	return l.Apply(ctx, Change{State: Queued, Settled: true, Task: tasks.RefundTaskID(id), Queue: s.queue,
		Due: l.Now().Add(s.grace()), ClearResumes: true, Entry: Entry{Event: "reopened", Detail: note, Actor: actor}})
}

// atProvider says what shows that something of the refund may be at the
// provider, or "" when nothing does. A needs_review record no longer says
// whether it was pending (pending_since is cleared when it leaves pending),
// so what is kept is read instead: the attempt in flight, the provider's
// reference (kept once set), the poll step (set only while pending, never
// reset), and any answer in the history where the provider showed the refund
// (succeeded, pending, uncertain) or one contradicting it (review: that
// answer settles the attempt in flight, though the provider may have
// applied something). The outcome words are providers.Kind's String, which
// the store does not import; its test checks they agree.
func atProvider(rec Record, hist []Entry) string {
	if rec.InFlight != 0 {
		return fmt.Sprintf("attempt %d was sent and what became of it is unknown", rec.InFlight)
	}
	return ShownAtProvider(rec, hist)
}

// ShownAtProvider says what shows that the provider has known the refund —
// a reference, polls, an answer that showed or contradicted it — or "" when
// nothing does. Where it says something, no "not found" is proof that
// nothing of the refund was applied.
func ShownAtProvider(rec Record, hist []Entry) string {
	switch {
	case rec.ProviderRef != "":
		return fmt.Sprintf("the provider knows it as %s (status %q)", rec.ProviderRef, rec.ProviderStatus)
	case rec.PollStep > 0:
		return fmt.Sprintf("the provider reported it in progress (%d polls, last status %q)", rec.PollStep, rec.ProviderStatus)
	}
	for i := len(hist) - 1; i >= 0; i-- {
		switch e := hist[i]; e.Outcome {
		case "succeeded", "pending", "uncertain", "review":
			return fmt.Sprintf("the provider answered %s to a %s of attempt %d at %s (%s)", e.Outcome, e.Event, e.Attempt,
				e.At.UTC().Format(time.RFC3339), e.Detail)
		}
	}
	return ""
}
