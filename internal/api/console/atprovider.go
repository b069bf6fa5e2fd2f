package console

import (
	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers"
)

// None of the providers' documents (shared/PROVIDERS.md and
// shared/provider-docs) describes its merchant dashboard. What they do say is
// which ids the provider's API knows a payment and a refund by, and those are
// what a person searches for in the provider's dashboard or asks its support
// about. atProvider says, per provider, which of a record's fields is which
// of those ids, in the provider's own words; a field that is empty for a
// refund is left out.

// checkField is one id to search for at the provider.
type checkField struct {
	Name  string // the provider's name of the field
	What  string // what it identifies there
	value func(store.Record) string
}

// checkAt is how to check one provider's refund.
type checkAt struct {
	Intro  string
	Fields []checkField
}

func orderID(r store.Record) string       { return r.OrderID }
func transactionID(r store.Record) string { return r.TransactionID }
func key(r store.Record) string           { return r.Key }
func providerRef(r store.Record) string   { return r.ProviderRef }

var atProvider = map[string]checkAt{
	providers.EcartPay: {
		Intro: "Ecart Pay keeps no refund of its own: the order shows its refund_id, status (refunded, partially_refunded) and totals.",
		Fields: []checkField{
			{"order id", "the order refunded (GET /api/orders/{id})", orderID},
			{"refund_id", "the refund the order shows", providerRef},
		},
	},
	providers.EcomCharge: {
		Intro: "ecomCharge keeps the refund as a transaction of type refund, whose parent_uid is the payment.",
		Fields: []checkField{
			{"parent_uid", "the payment refunded", transactionID},
			{"uid", "the refund transaction", providerRef},
			{"tracking_id", "ours, sent with the refund (that ecomCharge keeps it on a refund is a guess: see the provider's health)", key},
		},
	},
	providers.Fatora: {
		Intro: "A Fatora refund is the whole payment; verify shows the payment's status, and no refund field.",
		Fields: []checkField{
			{"order_id", "the order", orderID},
			{"transaction_id", "the payment refunded", transactionID},
			{"refund_transaction_id", "the refund, as the refund answer named it", providerRef},
		},
	},
	providers.BBMSL: {
		Intro: "BBMSL allows one refund per order; the order's status (REFUNDED, …) and its transactions show it.",
		Fields: []checkField{
			{"merchantReference", "the order (refundq sends order_id as merchantReference)", orderID},
			{"orderId", "BBMSL's own number of the order", transactionID},
			{"transaction id", "the refund transaction", providerRef},
		},
	},
	providers.MoyasarPG: {
		Intro: "Moyasar PG lists the refund among the order's transactions, with type refund.",
		Fields: []checkField{
			{"order id", "the order refunded (GET /v1/orders/{id})", orderID},
			{"transaction_id", "ours, sent with the refund: the refund transaction carries it", key},
			{"transaction id", "the refund transaction, as Moyasar PG named it", providerRef},
		},
	},
}

// checkLine is one id to search for, with its value.
type checkLine struct{ Name, What, Value string }

// whereToCheck says how to find rec at its provider.
func whereToCheck(rec store.Record) (intro string, lines []checkLine) {
	c, ok := atProvider[rec.Provider]
	if !ok {
		return "refundq has no notes on this provider's ids; search for the order id.", []checkLine{{"order id", "the order", rec.OrderID}}
	}
	for _, f := range c.Fields {
		if v := f.value(rec); v != "" {
			lines = append(lines, checkLine{f.Name, f.What, v})
		}
	}
	return c.Intro, lines
}
