package api

import (
	"time"

	"github.com/refundq/refundq/internal/store"
)

// Refund is a refund as the API shows it. Amount is a decimal string in the
// currency's major units with exactly its number of decimals ("2623.46" SAR,
// "1000" JPY, "1.250" KWD).
type Refund struct {
	RefundID       string            `json:"refund_id"`
	Provider       string            `json:"provider"`
	OrderID        string            `json:"order_id"`
	TransactionID  string            `json:"transaction_id,omitempty"`
	Amount         string            `json:"amount"`
	Currency       string            `json:"currency"`
	Reason         string            `json:"reason,omitempty"`
	Metadata       map[string]string `json:"metadata,omitempty"`
	State          store.State       `json:"state"`
	ProviderRef    string            `json:"provider_ref,omitempty"`
	ProviderStatus string            `json:"provider_status,omitempty"`
	Attempts       int               `json:"attempts"`
	LastError      string            `json:"last_error,omitempty"`
	Blocked        string            `json:"blocked,omitempty"`
	BlockedSince   *time.Time        `json:"blocked_since,omitempty"`
	PendingSince   *time.Time        `json:"pending_since,omitempty"`
	// ReviewReason says why a refund is (or was) in needs_review;
	// NextLookupAt when a worker looks it up again, if it will; SettledBy
	// who settled it out of review.
	ReviewReason string        `json:"review_reason,omitempty"`
	NextLookupAt *time.Time    `json:"next_lookup_at,omitempty"`
	SettledBy    string        `json:"settled_by,omitempty"`
	CreatedAt    time.Time     `json:"created_at"`
	UpdatedAt    time.Time     `json:"updated_at"`
	History      []store.Entry `json:"history,omitempty"` // GET /v1/refunds/{id} only
}

func refundOf(rec store.Record) Refund {
	out := Refund{
		RefundID: rec.RefundID, Provider: rec.Provider, OrderID: rec.OrderID, TransactionID: rec.TransactionID,
		Amount: rec.Amount.Decimal(), Currency: rec.Amount.Currency, Reason: rec.Reason, Metadata: rec.Metadata,
		State: rec.State, ProviderRef: rec.ProviderRef, ProviderStatus: rec.ProviderStatus, Attempts: rec.Attempts,
		LastError: rec.LastError, Blocked: rec.Blocked, CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt,
	}
	if !rec.PendingSince.IsZero() {
		t := rec.PendingSince
		out.PendingSince = &t
	}
	if !rec.BlockedAt.IsZero() {
		t := rec.BlockedAt
		out.BlockedSince = &t
	}
	out.ReviewReason, out.NextLookupAt, out.SettledBy = rec.ReviewReason(), rec.NextLookup(), rec.SettledBy
	return out
}
