package ecomcharge

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/refundq/refundq/providers"
)

// Lookup lists the transactions carrying our tracking id and classifies our
// refunds among them (see lookupOutcome).
func (c *Client) Lookup(ctx context.Context, r providers.Refund) providers.Outcome {
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
	out := providers.Outcome{HTTPStatus: resp.Status, RequestID: resp.RequestID()}
	switch {
	case resp.Status == http.StatusTooManyRequests:
		out.Kind, out.RetryAfter, out.Reason = providers.Transient, providers.RetryAfter(resp.Header), "look-up rate limited by ecomCharge"
		return out
	case resp.Status == http.StatusUnauthorized || resp.Status == http.StatusForbidden:
		o := authOutcome(resp.Status)
		o.RequestID = out.RequestID
		return o
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
