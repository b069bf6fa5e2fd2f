package ecomcharge

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/refundq/refundq/providers"
)

// Lookup asks what became of r. Once an answer of ecomCharge named our
// refund (r.Reference: the uid of a refund it answered pending or
// incomplete, or one a person settled with), it asks for that transaction
// by uid (GET /transactions/{uid}, documented) and nothing else: the answer
// identifies our refund without any guess (see uidOutcome). Only without a
// reference does it list the transactions carrying our tracking id and
// classify our refunds among them (see lookupOutcome), where what "none"
// proves rests on GuessTrackingLookup.
func (c *Client) Lookup(ctx context.Context, r providers.Refund) providers.Outcome {
	if ref := strings.TrimSpace(r.Reference); ref != "" {
		resp, err := c.do(ctx, http.MethodGet, transactionPath+url.PathEscape(ref), nil)
		if err != nil {
			return providers.TransportOutcome(err)
		}
		return c.uidOutcome(resp, r)
	}
	if strings.TrimSpace(r.Key) == "" {
		return providers.Outcome{Kind: providers.Unknown, Reason: "refund has no key (tracking_id) to look it up by"}
	}
	resp, err := c.do(ctx, http.MethodGet, trackingPath+url.PathEscape(r.Key), nil)
	if err != nil {
		return providers.TransportOutcome(err)
	}
	return c.lookupOutcome(resp, r)
}

// lookupOutcome classifies the answer to a look-up by tracking id. Our
// refunds are the listed transactions notOurs does not exclude. One that
// moved or may move money decides (classify). When every one of ours is
// failed, failedOutcome decides. A list without any of ours is NotFound
// only once GuessTrackingLookup is confirmed (r.Known); before that it is
// Unknown.
func (c *Client) lookupOutcome(resp *providers.Response, r providers.Refund) providers.Outcome {
	if o, ok := guardOutcome(resp, "look-up "); ok {
		return o
	}
	out := providers.Outcome{HTTPStatus: resp.Status, RequestID: resp.RequestID()}
	switch {
	case resp.Status == http.StatusNotFound:
		// An unknown tracking_id is a 200 with an empty list: a 404 is the
		// base URL or path.
		msg := providers.Snippet(resp.Body)
		if e, ok := parseError(resp.Body); ok {
			msg = e.text()
		}
		return baseURLOutcome(out, msg)
	case resp.Status != http.StatusOK:
		// 5xx proves nothing: "none" is a 200 with an empty list.
		msg := providers.Snippet(resp.Body)
		if e, ok := parseError(resp.Body); ok {
			msg = e.text()
		}
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("look-up failed (HTTP %d): %s", resp.Status, msg)
		return out
	}
	list, ok := parseList(resp.Body)
	if !ok {
		out.Kind, out.Reason = providers.Unknown, "look-up without a readable transaction list: "+providers.Snippet(resp.Body)
		return out
	}
	for _, t := range list {
		if why := c.otherMode(t.Test); why != "" {
			out.Kind, out.Reason = providers.Blocked, why
			return out
		}
	}
	var ours []transaction
	var others int
	var best *transaction
	for i := range list {
		t := &list[i]
		if notOurs(*t, r) != "" {
			others++
			continue
		}
		ours = append(ours, *t)
		if best == nil || rank(t.Status) > rank(best.Status) {
			best = t
		}
		if c.showsOurs(*t, r) && len(out.Observed) == 0 {
			out.Observe(GuessTrackingLookup, true, "the look-up by tracking_id lists successful refund "+t.UID+" of ours")
		}
	}
	switch {
	case best != nil && best.Status != statusFailed:
		obs := out.Observed
		out = classify(*best, r, out)
		out.Observed = obs
	case best != nil:
		out = failedOutcome(ours, r, out)
	case others > 0:
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("look-up by tracking_id %s lists %d transaction(s) that are not a refund of ours", r.Key, others)
	case !r.Known.Holds(GuessTrackingLookup):
		// Only what the worker has recorded counts as confirmed: a look-up
		// that showed a successful refund of ours.
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("look-up by tracking_id %s lists no refund of ours, but that it lists refunds at all is %s (guess %s): proves nothing",
			r.Key, verdict(r.Known, GuessTrackingLookup), GuessTrackingLookup)
	default:
		out.Kind, out.Reason = providers.NotFound, "no refund with tracking_id "+r.Key
	}
	return out
}

// failedOutcome reads a look-up in which every refund of ours is failed.
// Each attempt of ours makes at most one transaction, so unless the list
// shows a failed one for every attempt sent (r.Attempt), an attempt of ours
// is not shown, and it may still land (its answer lost, ecomCharge still at
// work on it, a look-up that shows refunds only once final): Unknown. With
// every attempt shown failed, a failure that is not duplicate_check's is
// ecomCharge's refusal (Rejected); duplicate_check refusals alone moved
// nothing and refused nothing of the refund itself: NotFound once the
// look-up is known to list our refunds, else Unknown.
func failedOutcome(ours []transaction, r providers.Refund, out providers.Outcome) providers.Outcome {
	attempts := max(r.Attempt, 1)
	uids := map[string]bool{}
	var refusal *transaction
	for i := range ours {
		uids[ours[i].UID] = true
		if refusal == nil && !isDuplicate(ours[i].Message+" "+ours[i].FriendlyMessage, ours[i].Code) {
			refusal = &ours[i]
		}
	}
	switch {
	case len(uids) < attempts:
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("look-up by tracking_id %s shows %d failed refund(s) of ours for %d attempt(s) sent: an attempt it does not show may still be applied",
			r.Key, len(uids), attempts)
	case refusal != nil:
		obs := out.Observed
		out = classify(*refusal, r, out)
		out.Observed = obs
	case !r.Known.Holds(GuessTrackingLookup):
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("look-up by tracking_id %s shows only duplicate_check refusals of ours, but that it lists refunds at all is %s (guess %s): proves nothing",
			r.Key, verdict(r.Known, GuessTrackingLookup), GuessTrackingLookup)
	default:
		out.Kind, out.Reason = providers.NotFound, fmt.Sprintf("no refund with tracking_id %s applied: only %d duplicate_check refusal(s), which moved nothing", r.Key, len(uids))
	}
	return out
}

// uidOutcome classifies the answer to the look-up of our refund by its uid
// (r.Reference). The transaction answered must be the one asked for; in the
// other mode than configured it blocks. One that contradicts the refund
// (contradiction) is for a human (Review); one that does not show what
// identifies it as ours (unidentified) proves nothing (Unknown). Identified,
// its status decides: successful is Succeeded, incomplete and pending are
// Pending, failed is Rejected by the rules of failedOutcome (only for the
// refund's only attempt, and never a duplicate_check refusal, which a
// look-up by uid cannot place), anything else Unknown. No answer here is
// NotFound: a 404 for a uid ecomCharge itself gave is Unknown.
func (c *Client) uidOutcome(resp *providers.Response, r providers.Refund) providers.Outcome {
	ref := strings.TrimSpace(r.Reference)
	out := providers.Outcome{HTTPStatus: resp.Status, RequestID: resp.RequestID()}
	msg := providers.Snippet(resp.Body)
	if e, ok := parseError(resp.Body); ok {
		msg = e.text()
	}
	if o, ok := guardOutcome(resp, "look-up "); ok {
		return o
	}
	switch {
	case resp.Status == http.StatusNotFound:
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("ecomCharge answered HTTP 404 (%s) for refund %s, a uid its own answer gave: proves nothing of what became of it", msg, ref)
		return out
	case resp.Status != http.StatusOK:
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("look-up of refund %s failed (HTTP %d): %s", ref, resp.Status, msg)
		return out
	}
	t, ok := parseTransaction(resp.Body)
	switch {
	case !ok:
		out.Kind, out.Reason = providers.Unknown, "look-up of refund "+ref+" without a readable transaction: "+providers.Snippet(resp.Body)
		return out
	case t.UID != ref:
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("look-up of refund %s answered transaction %s", ref, t.UID)
		return out
	}
	out.Reference, out.Status = t.UID, t.Status
	if why := c.otherMode(t.Test); why != "" {
		out.Kind, out.Reason = providers.Blocked, why
		return out
	}
	if slices.Contains(r.OtherRefs, t.UID) {
		out.Kind, out.Reason = providers.Review, fmt.Sprintf("refund %s is this refund's reference and another refund's of ours on the order", ref)
		return out
	}
	if why := contradiction(t, r); why != "" {
		out.Kind, out.Reason = providers.Review, fmt.Sprintf("refund %s, ecomCharge's reference of this refund, contradicts it: %s", ref, why)
		return out
	}
	if why := unidentified(t); why != "" {
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("transaction %s does not show its %s: it cannot be told to be this refund", ref, why)
		return out
	}
	switch {
	case t.Status == statusFailed && isDuplicate(t.Message+" "+t.FriendlyMessage, t.Code):
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("refund %s is a duplicate_check refusal (%s): it moved nothing, but which attempt of ours it answers a look-up by uid cannot show",
			ref, firstOf(t.Message, t.FriendlyMessage, t.Code))
	case t.Status == statusFailed && max(r.Attempt, 1) > 1:
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("refund %s failed at ecomCharge (%s), but %d attempts of this refund were sent: another may still be applied",
			ref, firstOf(t.Message, t.FriendlyMessage, t.Code, "no message"), r.Attempt)
	default:
		out = classify(t, r, out)
	}
	return out
}

// contradiction says how a transaction named as our refund contradicts it
// ("" if nothing shown does): not a refund, a refund of another payment,
// with another tracking_id, currency or amount (integer minor units), in
// whatever status. A field the answer does not show contradicts nothing
// (see unidentified).
func contradiction(t transaction, r providers.Refund) string {
	switch {
	case t.Type != "" && t.Type != refundType:
		return fmt.Sprintf("it is a transaction of type %q, not a refund", t.Type)
	case t.ParentUID != "" && t.ParentUID != r.TransactionID:
		return fmt.Sprintf("it refunds payment %s, this refund is of payment %s", t.ParentUID, r.TransactionID)
	case t.TrackingID != "" && r.Key != "" && t.TrackingID != r.Key:
		return fmt.Sprintf("it carries tracking_id %q, not this refund's", t.TrackingID)
	case t.Currency != "" && !strings.EqualFold(t.Currency, r.Amount.Currency):
		return fmt.Sprintf("it is in %s, this refund in %s", t.Currency, r.Amount.Currency)
	case t.Amount == nil:
		return ""
	}
	got, err := t.Amount.Int64()
	switch {
	case err != nil:
		return fmt.Sprintf("its amount %q is not an integer in minor units; %s was asked", t.Amount.String(), r.Amount)
	case got != r.Amount.Minor:
		return fmt.Sprintf("it is for %s while %s was asked", providers.MinorText(got, r.Amount.Currency), r.Amount)
	}
	return ""
}

// unidentified names what identifies a transaction as our refund and the
// answer does not show: its type, parent payment, amount, currency.
func unidentified(t transaction) string {
	var missing []string
	if t.Type == "" {
		missing = append(missing, "type")
	}
	if t.ParentUID == "" {
		missing = append(missing, "parent_uid")
	}
	if t.Amount == nil {
		missing = append(missing, "amount")
	}
	if strings.TrimSpace(t.Currency) == "" {
		missing = append(missing, "currency")
	}
	return strings.Join(missing, ", ")
}
