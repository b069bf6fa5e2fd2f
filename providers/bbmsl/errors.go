package bbmsl

import (
	"fmt"
	"strings"

	"github.com/refundq/refundq/providers"
)

// refusal classifies a non-"0000" refund answer. No other code is
// documented, so none is read as a refusal: the acquirer may have applied
// the refund and answered with an error ("system error, please query"), as
// BBMSL's own docs allow when they say to query after an error. The worker
// looks the order up before anything is sent again; the look-up decides,
// and a paid refund is never failed on the strength of a code. That holds
// for "already refunded" above all: BBMSL refunds an order once, and the
// order's refund may be this one's, from an attempt whose answer (or whose
// record) was lost. Only a credential refusal (credentialRefusals) is
// proven to have applied nothing: Blocked.
func refusal(a answer, out providers.Outcome) providers.Outcome {
	if credentialRefusal(a.Message) {
		out.Kind, out.Reason = providers.Blocked, authReason(a)
		return out
	}
	msg := strings.TrimSpace(a.Message)
	if msg == "" {
		msg = "no message"
	}
	out.Kind, out.Reason = providers.Unknown, fmt.Sprintf(
		"BBMSL answered code %s (%s), which its documents do not explain: the refund may have been applied; the order is queried before anything is sent again",
		a.ResponseCode, msg)
	return out
}

// credentialRefusals are the only non-"0000" answers read as anything but
// Unknown, matched on the whole message (case, surrounding space and a final
// full stop aside), never on a word in it: a business refusal that mentions
// the merchant ("insufficient unsettled balance in merchant account") or a
// signature is Unknown like any other code. Each entry is proven to mean
// nothing of the request was applied, and points at our configuration
// (Blocked):
//
//   - a signature failure ("invalid signature", "signature verification
//     failed", "signature mismatch", "signature does not match"): BBMSL acts
//     only on a request whose SHA256withRSA signature verifies with the
//     merchant's public key (docs.sit.bbmsl.com/docs/api). A request it could
//     not verify is not the merchant's to it, so nothing of it was applied:
//     BBMSL_PRIVATE_KEY_FILE does not hold the key BBMSL has.
//   - an unknown merchant ("invalid merchant", "invalid merchant id",
//     "merchant not found"): the request names a merchant BBMSL does not
//     have, so it has neither an order of that merchant to refund nor a key
//     to verify the request with: BBMSL_MERCHANT_ID is wrong.
var credentialRefusals = map[string]bool{
	"invalid signature":             true,
	"signature verification failed": true,
	"signature mismatch":            true,
	"signature does not match":      true,
	"invalid merchant":              true,
	"invalid merchant id":           true,
	"merchant not found":            true,
}

// credentialRefusal reports whether msg is one of credentialRefusals.
func credentialRefusal(msg string) bool {
	m := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(msg)), ".")
	return credentialRefusals[strings.TrimSpace(m)]
}

func authReason(a answer) string {
	return fmt.Sprintf("authentication failed (code %s: %s): check BBMSL_MERCHANT_ID and BBMSL_PRIVATE_KEY_FILE, "+
		"and that BBMSL holds the matching public key", a.ResponseCode, a.Message)
}
