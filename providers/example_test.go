package providers_test

import (
	"fmt"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/providers/catalog"
	"github.com/refundq/refundq/tasks"
)

// A producer checks a refund against its provider's own rules before
// enqueueing it, without any credentials: catalog.Rules() knows every
// provider's rules, not whether a worker has it configured.
func ExampleRegistry_Check() {
	reg := catalog.Rules()
	refund := tasks.Refund{RefundID: "rf_1", Provider: providers.EcartPay, OrderID: "ord_1",
		AmountMinor: 4000, Currency: "MXN", Reason: "changed my mind"}
	fmt.Println(reg.Check(refund))

	refund.Reason = "requested"
	fmt.Println(reg.Check(refund))

	refund.Provider = "paypal"
	fmt.Println(reg.Check(refund))
	// Output:
	// ecartpay: reason "changed my mind": Ecart Pay accepts only requested, duplicate, fraudulent
	// <nil>
	// unknown provider "paypal" (known: bbmsl, ecartpay, ecomcharge, fatora, moyasarpg)
}

// Each provider's entry lists the undocumented facts its adapter relies on
// (guesses), which refundq confirms or refutes from the provider's own
// answers at run time; `refundctl guesses` shows what was learned.
func ExampleEntry_guesses() {
	reg := catalog.Rules()
	for _, name := range reg.Names() {
		e, _ := reg.Get(name) // not configured here: the entry is there all the same
		for _, g := range e.Guesses {
			fmt.Println(name, g.Guess)
		}
	}
	// Output:
	// bbmsl bbmsl.query_order
	// ecartpay ecartpay.order_refunds
	// ecomcharge ecomcharge.tracking_id
	// ecomcharge ecomcharge.tracking_lookup
	// fatora fatora.verify_refund_status
	// fatora fatora.verify_refund_status.under_proccession
	// moyasarpg moyasarpg.refund_id
}
