package ecartpay

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/tasks"
)

// GuessOrderRefunds: the order carries a `refunds` list of {id, amount}, one
// entry per refund. Ecart Pay's document shows no such list (one refund_id).
const GuessOrderRefunds providers.Guess = "ecartpay.order_refunds"

// Guesses are the undocumented facts the adapter relies on.
var Guesses = []providers.GuessInfo{{
	Guess: GuessOrderRefunds,
	Means: "Ecart Pay's order carries a `refunds` list of {id, amount}, one entry per refund (the document shows " +
		"only the latest refund_id). A refund answer that lists its new refund_id with our amount confirms it; a " +
		"refund answer without a `refunds` key refutes it. While it is not confirmed, a lost answer is judged " +
		"only from status, refund_id, updated_at and totals against the order read before the send: a full " +
		"refund of a paid order can be proven, a partial one stays unknown for a human.",
}}

// Order statuses Ecart Pay documents, in the order an order moves through
// them.
var statusRank = map[string]int{"created": 0, "paid": 1, "partially_refunded": 2, "refunded": 3}

// refundedStatus reports whether an order in status s has had a refund.
func refundedStatus(s string) bool { return s == "refunded" || s == "partially_refunded" }

// order is the part of Ecart Pay's order the adapter reads. Top-level
// amounts are decimals in major units (JSON numbers, or strings of them);
// nested payment amounts are minor units and are not read. Refunds is the
// guess: nil when the answer has no `refunds` key.
type order struct {
	ID        string  `json:"id"`
	Status    string  `json:"status"`
	Currency  string  `json:"currency"`
	RefundID  *string `json:"refund_id"`
	UpdatedAt string  `json:"updated_at"`
	Totals    *struct {
		Total json.Number `json:"total"`
	} `json:"totals"`
	Refunds *[]struct {
		ID     string      `json:"id"`
		Amount json.Number `json:"amount"`
	} `json:"refunds"`
}

// parseOrder reads an order answer; an answer without an id is not one.
func parseOrder(body []byte) (order, error) {
	var o order
	if err := json.Unmarshal(body, &o); err != nil {
		return o, fmt.Errorf("unreadable order: %s", providers.Snippet(body))
	}
	if o.ID == "" {
		return o, fmt.Errorf("answer is not an order (no id): %s", providers.Snippet(body))
	}
	return o, nil
}

// snapshot is what the adapter keeps of an order to tell later whether it
// changed: the fields a refund moves. It is what Prepare returns and what
// Lookup gets back in Refund.Before. Amounts stay as the provider wrote them.
type snapshot struct {
	Status    string        `json:"status"`
	RefundID  string        `json:"refund_id"`
	Total     string        `json:"total"`
	UpdatedAt string        `json:"updated_at"`
	Currency  string        `json:"currency"`
	Refunds   *[]snapRefund `json:"refunds,omitempty"` // only when the order had the list
}

type snapRefund struct {
	ID     string `json:"id"`
	Amount string `json:"amount"`
}

// snap takes the snapshot of o, or says what of the evidence is missing or
// unreadable: a documented status, updated_at, a currency, a readable
// totals.total, a refund_id once refunded, and a readable list where there
// is one.
func (o order) snap() (snapshot, error) {
	s := snapshot{Status: o.Status, UpdatedAt: o.UpdatedAt, Currency: o.Currency}
	if o.RefundID != nil {
		s.RefundID = *o.RefundID
	}
	if o.Totals != nil {
		s.Total = o.Totals.Total.String()
	}
	var missing []string
	if _, ok := statusRank[s.Status]; !ok {
		missing = append(missing, fmt.Sprintf("status %q", s.Status))
	}
	if s.UpdatedAt == "" {
		missing = append(missing, "updated_at")
	}
	if s.Currency == "" {
		missing = append(missing, "currency")
	}
	if refundedStatus(s.Status) && s.RefundID == "" {
		missing = append(missing, "refund_id")
	}
	if _, err := tasks.ParseProviderAmount(s.Total, s.Currency); err != nil && s.Currency != "" {
		missing = append(missing, fmt.Sprintf("totals.total %q", s.Total))
	}
	if o.Refunds != nil {
		list := make([]snapRefund, 0, len(*o.Refunds))
		for _, f := range *o.Refunds {
			if _, err := tasks.ParseProviderAmount(f.Amount.String(), s.Currency); f.ID == "" || (err != nil && s.Currency != "") {
				missing = append(missing, fmt.Sprintf("refunds entry {%q, %q}", f.ID, f.Amount))
				continue
			}
			list = append(list, snapRefund{ID: f.ID, Amount: f.Amount.String()})
		}
		s.Refunds = &list
	}
	if len(missing) > 0 {
		return s, errors.New("the order does not show " + strings.Join(missing, ", "))
	}
	return s, nil
}

// stranger is a refund on the order that refundq cannot explain (see
// strangers); amount is nil when the order does not show it.
type stranger struct {
	id     string
	amount *tasks.Money
}

// strangers lists the refunds the order shows that are neither another
// refund of ours (r.OtherRefs) nor already on the order before an earlier
// attempt of this refund (r.Before). With the refunds list confirmed each
// comes with its amount; otherwise the order shows only its latest
// refund_id, of unknown amount, and only that one can be checked.
func strangers(s snapshot, r providers.Refund) []stranger {
	known := map[string]bool{}
	for _, id := range r.OtherRefs {
		known[id] = true
	}
	if b, err := readSnapshot(r.Before); err == nil {
		if b.RefundID != "" {
			known[b.RefundID] = true
		}
		if b.Refunds != nil {
			for _, f := range *b.Refunds {
				known[f.ID] = true
			}
		}
	}
	var out []stranger
	listed := false
	if r.Known.Holds(GuessOrderRefunds) && s.Refunds != nil {
		for _, f := range *s.Refunds {
			listed = listed || f.ID == s.RefundID
			if !known[f.ID] {
				m, _ := tasks.ParseProviderAmount(f.Amount, s.Currency) // snap checked it parses
				out = append(out, stranger{id: f.ID, amount: &m})
			}
		}
	}
	if s.RefundID != "" && !listed && !known[s.RefundID] {
		out = append(out, stranger{id: s.RefundID})
	}
	return out
}

// mayBeOurs keeps the strangers that may be an attempt of a refund of
// amount: those of that amount, and those whose amount is not shown.
func mayBeOurs(found []stranger, amount tasks.Money) []stranger {
	var out []stranger
	for _, f := range found {
		if f.amount == nil || *f.amount == amount {
			out = append(out, f)
		}
	}
	return out
}

func describe(found []stranger) string {
	parts := make([]string, len(found))
	for i, f := range found {
		parts[i] = "refund " + f.id + " (amount not shown)"
		if f.amount != nil {
			parts[i] = fmt.Sprintf("refund %s of %s", f.id, *f.amount)
		}
	}
	return strings.Join(parts, ", ")
}

// readSnapshot reads what Prepare stored; an absent or unreadable one is an
// error (nothing can be compared with it).
func readSnapshot(b []byte) (snapshot, error) {
	if len(b) == 0 {
		return snapshot{}, errors.New("no state of the order was read before the send")
	}
	var s snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return s, errors.New("the order's state before the send is unreadable")
	}
	if _, ok := statusRank[s.Status]; !ok || s.UpdatedAt == "" || s.Currency == "" {
		return s, errors.New("the order's state before the send is incomplete")
	}
	if _, err := tasks.ParseProviderAmount(s.Total, s.Currency); err != nil {
		return s, errors.New("the order's total before the send is unreadable")
	}
	if s.Refunds != nil {
		for _, f := range *s.Refunds {
			if _, err := tasks.ParseProviderAmount(f.Amount, s.Currency); f.ID == "" || err != nil {
				return s, errors.New("the order's refunds list before the send is unreadable")
			}
		}
	}
	return s, nil
}

// total is the order's total; snap and readSnapshot have checked it parses.
func (s snapshot) total() tasks.Money {
	m, _ := tasks.ParseProviderAmount(s.Total, s.Currency)
	return m
}

func (s snapshot) String() string {
	id := s.RefundID
	if id == "" {
		id = "-"
	}
	out := fmt.Sprintf("{%s refund_id=%s total=%s %s updated=%s", s.Status, id, s.Total, s.Currency, s.UpdatedAt)
	if s.Refunds != nil {
		out += fmt.Sprintf(" refunds=%d", len(*s.Refunds))
	}
	return out + "}"
}

// listed returns the list entries as id → amount in minor units.
func (s snapshot) listed() map[string]int64 {
	out := map[string]int64{}
	for _, f := range *s.Refunds {
		m, _ := tasks.ParseProviderAmount(f.Amount, s.Currency)
		out[f.ID] = m.Minor
	}
	return out
}

// sameAs reports whether nothing a refund moves differs between s and t.
func (s snapshot) sameAs(t snapshot) bool {
	if s.Status != t.Status || s.RefundID != t.RefundID || s.UpdatedAt != t.UpdatedAt ||
		s.Currency != t.Currency || s.total() != t.total() {
		return false
	}
	if (s.Refunds == nil) != (t.Refunds == nil) {
		return false
	}
	if s.Refunds == nil {
		return true
	}
	a, b := s.listed(), t.listed()
	if len(a) != len(b) || len(a) != len(*s.Refunds) || len(b) != len(*t.Refunds) {
		return false
	}
	for id, m := range a {
		if n, ok := b[id]; !ok || n != m {
			return false
		}
	}
	return true
}

// contradiction says why the order's status after a refund of amount
// cannot be the result of that refund, or "" when it can: a full refund
// leaves an order refunded; a partial one of a paid order leaves it
// partially refunded.
func contradiction(amount, total tasks.Money, beforeStatus, status string) string {
	switch {
	case amount.Minor > total.Minor:
		return fmt.Sprintf("a refund of %s cannot apply to an order whose total is %s", amount, total)
	case amount == total && status == "partially_refunded":
		return fmt.Sprintf("a refund of the whole %s left the order partially_refunded", total)
	case amount.Minor < total.Minor && status == "refunded" && beforeStatus == "paid":
		return fmt.Sprintf("a partial refund of %s left a paid order of %s refunded", amount, total)
	}
	return ""
}

// judgeRefund classifies a 200/201 refund answer (the order after the
// refund), given the snapshot from before the send when there is one. It
// reports what the answer shows about the refunds-list guess.
func judgeRefund(o order, before *snapshot, r providers.Refund) providers.Outcome {
	out := providers.Outcome{Status: o.Status}
	// What the answer shows of the guess, whatever else it shows.
	entry, listed := "", false
	if id := deref(o.RefundID); refundedStatus(o.Status) && id != "" {
		switch {
		case o.Refunds == nil:
			out.Observe(GuessOrderRefunds, false, "a refund answer has no refunds list")
		default:
			for _, f := range *o.Refunds {
				if f.ID == id {
					entry, listed = f.Amount.String(), true
				}
			}
			if !listed {
				out.Observe(GuessOrderRefunds, false, "a refund answer's refunds list lacks its refund_id")
			}
		}
	}
	if !refundedStatus(o.Status) {
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("order status %q after a refund", o.Status)
		return out
	}
	id := deref(o.RefundID)
	if id == "" {
		out.Kind, out.Reason = providers.Unknown, "the refund answer has no refund_id"
		return out
	}
	out.Reference = id
	if before != nil && before.RefundID == id {
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("the refund answer shows refund_id %s, the order's before the send: it shows no new refund", id)
		return out
	}
	if o.Currency != "" && o.Currency != r.Amount.Currency {
		out.Kind, out.Reason = providers.Review, fmt.Sprintf("refund of %s answered by an order in %s", r.Amount, o.Currency)
		return out
	}
	if listed {
		m, err := tasks.ParseProviderAmount(entry, r.Amount.Currency)
		switch {
		case err != nil:
			out.Observe(GuessOrderRefunds, false, fmt.Sprintf("a refunds entry's amount %q is unreadable", entry))
		case m != r.Amount:
			out.Kind, out.Reason = providers.Review, fmt.Sprintf("asked to refund %s, the order lists refund %s of %s", r.Amount, id, m)
			return out
		default:
			out.Observe(GuessOrderRefunds, true, "a refund answer lists its refund_id with the amount asked")
		}
	}
	var total string
	if o.Totals != nil {
		total = o.Totals.Total.String()
	}
	t, err := tasks.ParseProviderAmount(total, r.Amount.Currency)
	if err != nil {
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("refund answer's totals.total %q is unreadable; the amount cannot be checked", total)
		return out
	}
	beforeStatus := ""
	if before != nil {
		beforeStatus = before.Status
	}
	if why := contradiction(r.Amount, t, beforeStatus, o.Status); why != "" {
		out.Kind, out.Reason = providers.Review, why
		return out
	}
	out.Kind = providers.Succeeded
	return out
}

// judgeLookup compares the order now with the snapshot from before the send
// being looked up. Unchanged is NotFound (the worker's settle rules decide
// when to believe it); a change only our refund explains is Succeeded; a
// change that contradicts our refund is Review; anything else is Unknown,
// with both states in the reason for a human.
func judgeLookup(before snapshot, o order, r providers.Refund) providers.Outcome {
	out := providers.Outcome{Status: o.Status}
	now, err := o.snap()
	if err != nil {
		out.Kind, out.Reason = providers.Unknown, err.Error()
		return out
	}
	if before.sameAs(now) {
		out.Kind, out.Reason = providers.NotFound, "the order is unchanged since before the send: "+now.String()
		return out
	}
	states := "before " + before.String() + ", now " + now.String()
	unknown := func(why string) providers.Outcome {
		out.Kind, out.Reason = providers.Unknown, why+"; "+states
		return out
	}
	review := func(why string) providers.Outcome {
		out.Kind, out.Reason = providers.Review, why+"; "+states
		return out
	}
	switch {
	case statusRank[now.Status] < statusRank[before.Status]:
		return unknown("the order's status went back")
	case !refundedStatus(now.Status):
		return unknown("the order changed without a refund")
	case now.RefundID == before.RefundID:
		return unknown("the order changed but shows no new refund_id")
	case slices.Contains(r.OtherRefs, now.RefundID):
		return unknown(fmt.Sprintf("the order's new refund_id %s is another refund of ours", now.RefundID))
	case now.Currency != before.Currency || now.total() != before.total():
		return unknown("the order's currency or total changed")
	case now.Currency != r.Amount.Currency:
		return unknown(fmt.Sprintf("the order is in %s, the refund in %s", now.Currency, r.Amount.Currency))
	}
	total := now.total()
	if r.Known.Holds(GuessOrderRefunds) && before.Refunds != nil && now.Refunds != nil {
		old, cur := before.listed(), now.listed()
		for id, m := range old {
			if n, ok := cur[id]; !ok || n != m {
				return unknown(fmt.Sprintf("refund %s changed or left the order's list", id))
			}
		}
		var added []string
		for id := range cur {
			if _, ok := old[id]; !ok {
				added = append(added, id)
			}
		}
		if len(added) != 1 {
			return unknown(fmt.Sprintf("%d new refunds on the order", len(added)))
		}
		id, amount := added[0], tasks.Money{Minor: cur[added[0]], Currency: now.Currency}
		switch {
		case slices.Contains(r.OtherRefs, id):
			return unknown(fmt.Sprintf("the new refund %s is another refund of ours", id))
		case id != now.RefundID:
			return unknown(fmt.Sprintf("the new refund %s is not the order's refund_id", id))
		case amount != r.Amount:
			return review(fmt.Sprintf("the one new refund %s is of %s, ours is of %s", id, amount, r.Amount))
		}
		if why := contradiction(r.Amount, total, before.Status, now.Status); why != "" {
			return review(why)
		}
		out.Kind, out.Reference, out.Reason = providers.Succeeded, id, "the one new refund on the order is of our amount"
		return out
	}
	// Without the list: only a paid order refunded in full by a refund of
	// its whole total is ours beyond doubt.
	if before.Status == "paid" {
		if why := contradiction(r.Amount, total, before.Status, now.Status); why != "" {
			return review(why)
		}
		if r.Amount == total && now.Status == "refunded" {
			out.Kind, out.Reference = providers.Succeeded, now.RefundID
			out.Reason = fmt.Sprintf("the paid order was refunded in full (%s), which is our refund's amount", total)
			return out
		}
	}
	return unknown("the order changed in a way the evidence cannot attribute to our refund of " + r.Amount.String())
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
