package moyasarpg

import (
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
