package moyasarpg

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/refundq/refundq/providers"
)

// candidates are the refund transactions that may be ours when none carries
// our transaction_id.
type candidates struct {
	same, others []transaction // of our amount; of another
	why          string        // why none can be matched by amount at all
}

// match lists the refund transactions that appeared on the order since the
// snapshot (the read before this refund's first send) and that refundq does
// not know as another refund's (r.OtherRefs), split by whether they are of
// our amount. Without a snapshot that listed the order's refunds, any of
// them may be older than our send: none is a candidate (why says so).
func match(txns []transaction, r providers.Refund, snap *snapshot) candidates {
	if snap == nil || !snap.Listed {
		return candidates{why: "without the refunds the order had before our send, no refund can be matched to ours by amount"}
	}
	var c candidates
	for _, t := range txns {
		if t.Type != refundType || slices.Contains(snap.Refunds, t.ID) || slices.Contains(r.OtherRefs, t.ID) {
			continue
		}
		if n, err := minor(t.Amount); err == nil && n == r.Amount.Minor {
			c.same = append(c.same, t)
		} else {
			c.others = append(c.others, t)
		}
	}
	return c
}

// ours returns the refund transaction with our key, nil if none; a
// transaction with our key that is not a refund, or several, are odd
// answers (why).
func ours(txns []transaction, key string) (*transaction, string) {
	var found *transaction
	for i, t := range txns {
		if t.ID != key {
			continue
		}
		if t.Type != refundType || found != nil {
			return nil, fmt.Sprintf("the order lists transaction %s of type %q more than once or not as a refund", key, t.Type)
		}
		found = &txns[i]
	}
	return found, ""
}

func ids(ts []transaction) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = t.ID
	}
	return strings.Join(s, ", ")
}

// byReference finds our refund by MPG's own id of it, r.Reference: the id
// an earlier answer of MPG's gave our refund's transaction (one it had
// initiated, or left in an uncertain status), or the reference a person
// settled the refund with. The transaction with exactly that id is ours
// without any guess, so neither our key nor an amount is matched:
//
//	listed more than once                          Unknown (an odd answer)
//	not listed                                     Unknown (MPG may list a refund late: it proves nothing)
//	not a refund                                   Review (the reference names something else)
//	another amount, or on an order in another      Review (it is not this refund: another refund's,
//	  currency, or an amount that cannot be read     or a wrong reference)
//	the order shows no currency, and Prepare       Unknown (the currency cannot be checked)
//	  read none either
//	another refund transaction carries our key     Review (two transactions claim to be ours)
//	otherwise                                      its status decides, as in classify
func byReference(txns []transaction, o order, r providers.Refund, snap *snapshot, out providers.Outcome) providers.Outcome {
	ref := r.Reference
	var found []transaction
	var keyed string // a refund transaction with our key, other than the reference
	for _, t := range txns {
		if t.ID == ref {
			found = append(found, t)
		} else if t.ID == r.Key && t.Type == refundType {
			keyed = t.ID
		}
	}
	currency := o.Currency
	if currency == "" && snap != nil {
		currency = snap.Currency
	}
	switch {
	case len(found) > 1:
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("order %s lists transaction %s, MPG's id of this refund, more than once", o.ID, ref)
		return out
	case len(found) == 0:
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("order %s does not list transaction %s, MPG's id of this refund (yet): MPG does not promise that a refund shows in the order at once, so this proves nothing",
			o.ID, ref)
		return out
	}
	t := found[0]
	out.Status = t.Status
	n, err := minor(t.Amount)
	switch {
	case t.Type != refundType:
		out.Kind, out.Reason = providers.Review, fmt.Sprintf("transaction %s, recorded as MPG's id of this refund, is a %q transaction of order %s, not a refund: the reference names something else",
			ref, t.Type, o.ID)
	case err != nil:
		out.Kind, out.Reason = providers.Review, fmt.Sprintf("refund transaction %s, recorded as MPG's id of this refund, has %s; the refund is %s", ref, err, r.Amount)
	case n != r.Amount.Minor:
		out.Kind, out.Reason = providers.Review, fmt.Sprintf("refund transaction %s, recorded as MPG's id of this refund, is of %s; the refund is of %s: it is another refund, or the reference is wrong",
			ref, providers.MinorText(n, cmp.Or(currency, r.Amount.Currency)), r.Amount)
	case currency == "":
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("order %s shows no currency, so refund transaction %s cannot be checked against the refund's %s", o.ID, ref, r.Amount.Currency)
	case !strings.EqualFold(currency, r.Amount.Currency):
		out.Kind, out.Reason = providers.Review, fmt.Sprintf("refund transaction %s, recorded as MPG's id of this refund, is on order %s in %s; the refund is in %s",
			ref, o.ID, strings.ToUpper(currency), r.Amount.Currency)
	case keyed != "":
		out.Kind, out.Reason = providers.Review, fmt.Sprintf("order %s lists refund transaction %s, recorded as MPG's id of this refund, and refund transaction %s with our transaction_id: two transactions claim to be ours",
			o.ID, ref, keyed)
	default:
		if t.ID == r.Key {
			out.Observe(GuessRefundID, true, "order "+o.ID+" lists refund transaction "+t.ID+", our transaction_id")
		}
		out = classify(t, o, r, snap, out)
		out.Reason = strings.TrimPrefix(out.Reason+"; found by MPG's id of this refund, "+ref, "; ")
	}
	return out
}
