package bbmsl

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/refundq/refundq/tasks"
)

// answer is BBMSL's reply to a refund or a query: the refund answer has
// order and transaction (documented); the query's order is the guess
// GuessQueryOrder. Absent numbers are nil.
type answer struct {
	ResponseCode string       `json:"responseCode"`
	Message      string       `json:"message"`
	Order        *order       `json:"order"`
	Transaction  *transaction `json:"transaction"`
}

type order struct {
	ID                json.RawMessage `json:"id"`
	MerchantReference string          `json:"merchantReference"`
	Currency          string          `json:"currency"`
	Amount            *json.Number    `json:"amount"`
	NetAmount         *json.Number    `json:"netAmount"`
	Status            string          `json:"status"`
}

type transaction struct {
	ID       json.RawMessage `json:"id"`
	Type     string          `json:"type"`
	Amount   *json.Number    `json:"amount"`
	Currency string          `json:"currency"`
	Status   string          `json:"status"`
}

// refunded is what the order shows refunded, amount − netAmount, in the
// order's currency; an error when the order does not carry those fields.
func (o *order) refunded() (refunded, amount, net tasks.Money, err error) {
	switch {
	case o.Amount == nil || o.NetAmount == nil:
		return refunded, amount, net, errors.New("the order has no amount and netAmount")
	case o.Currency == "":
		return refunded, amount, net, errors.New("the order has no currency")
	}
	if amount, err = tasks.ParseProviderAmount(o.Amount.String(), o.Currency); err != nil {
		return refunded, amount, net, fmt.Errorf("order amount: %w", err)
	}
	if net, err = tasks.ParseProviderAmount(o.NetAmount.String(), o.Currency); err != nil {
		return refunded, amount, net, fmt.Errorf("order netAmount: %w", err)
	}
	if net.Minor > amount.Minor {
		return refunded, amount, net, fmt.Errorf("order netAmount %s is more than its amount %s", net, amount)
	}
	return tasks.Money{Minor: amount.Minor - net.Minor, Currency: amount.Currency}, amount, net, nil
}

// money is the transaction's amount in its currency (the order's, or the
// request's, when the answer names none: the parameter table lists no
// transaction.currency, the example has one).
func (t *transaction) money(o *order, fallback string) (tasks.Money, error) {
	cur := t.Currency
	if cur == "" && o != nil {
		cur = o.Currency
	}
	if cur == "" {
		cur = fallback
	}
	if t.Amount == nil {
		return tasks.Money{}, errors.New("the transaction has no amount")
	}
	m, err := tasks.ParseProviderAmount(t.Amount.String(), cur)
	if err != nil {
		return tasks.Money{}, fmt.Errorf("transaction amount: %w", err)
	}
	return m, nil
}
