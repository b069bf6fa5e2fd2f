package ecomchargesim

import (
	"fmt"
	"net/http"
	"time"
)

// view is the refund as the document's example shows it; code and
// friendly_message only with X-API-Version 3; tracking_id only in the
// guessed shape. s.mu held.
func (s *Simulator) view(t *refundTxn, r *http.Request) map[string]any {
	var paid any
	if t.paid != nil {
		paid = t.paid.Format(time.RFC3339Nano)
	}
	v := map[string]any{
		"uid": t.uid, "id": t.uid, "status": t.status, "amount": t.amount.Minor, "currency": t.amount.Currency,
		"reason": t.reason, "type": "refund", "message": t.message, "test": s.test,
		"created_at": t.created.Format(time.RFC3339Nano), "updated_at": t.updated.Format(time.RFC3339Nano),
		"paid_at": paid, "closed_at": nil, "settled_at": nil, "manually_corrected_at": nil,
		"parent_uid": t.parent, "receipt_url": "https://gateway.ecomcharge.com/customer/transactions/" + t.uid + "?language=en",
		"status_code": nil, "mute_notifications": nil,
		"smart_routing_verification": map[string]any{"status": statusSuccessful},
		"refund": map[string]any{"message": refundMessage(t.status), "ref_id": refID(t.uid), "rrn": nil, "auth_code": nil,
			"bank_code": "05", "gateway_id": gatewayID, "status": t.status},
	}
	if r.Header.Get(apiVersionHeader) == apiVersion {
		v["code"], v["friendly_message"] = t.code, friendly(t.status)
	}
	if s.guessed && t.tracking != "" {
		v["tracking_id"] = t.tracking
	}
	return v
}

func refundMessage(status string) string {
	switch status {
	case statusSuccessful:
		return "Refund was approved"
	case statusFailed:
		return "Refund was declined"
	}
	return "Refund is being processed"
}

func friendly(status string) string {
	switch status {
	case statusSuccessful:
		return "The operation is successful."
	case statusFailed:
		return "Do not honor. Failed to complete the transaction."
	}
	return "The operation is being processed."
}

// refID is an acquirer reference, seven digits as in the example.
func refID(uid string) string {
	var n uint32
	for _, c := range uid {
		n = n*31 + uint32(c)
	}
	return fmt.Sprintf("%07d", n%10000000)
}

// paymentView is the payment as the status query page's example shows it
// (the fields a refund reads); s.mu held.
func (s *Simulator) paymentView(p *payment, r *http.Request) map[string]any {
	v := map[string]any{
		"uid": p.uid, "id": p.uid, "status": statusSuccessful, "amount": p.amount.Minor, "currency": p.amount.Currency,
		"type": "payment", "message": "Successfully processed", "test": s.test, "created_at": p.created.Format(time.RFC3339Nano),
	}
	if p.tracking != "" {
		v["tracking_id"] = p.tracking
	}
	if r.Header.Get(apiVersionHeader) == apiVersion {
		v["code"], v["friendly_message"] = "S.0000", "The operation is successful."
	}
	return v
}
