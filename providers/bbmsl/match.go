package bbmsl

import (
	"fmt"
	"slices"
	"strings"

	"github.com/refundq/refundq/providers"
)

// heldByOther reports whether the order's one refund may be another refund
// of ours (r.OtherRefs): yes when the answer names the refund transaction
// and it is one of them, or names none and other refunds of ours exist.
func heldByOther(a answer, r providers.Refund) (bool, string) {
	if len(r.OtherRefs) == 0 {
		return false, ""
	}
	if t := a.Transaction; t != nil && t.Type == txnRefund && idText(t.ID) != "" {
		if id := idText(t.ID); slices.Contains(r.OtherRefs, id) {
			return true, fmt.Sprintf("its refund %s is another refund of ours", id)
		}
		return false, ""
	}
	return true, fmt.Sprintf("BBMSL refunds an order once, and another refund of ours (%s) is recorded on it", strings.Join(r.OtherRefs, ", "))
}
