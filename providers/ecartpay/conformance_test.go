package ecartpay_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/uuid"

	"github.com/refundq/refundq/providers/ecartpay"
	"github.com/refundq/refundq/providers/ecartpay/ecartpaysim"
	"github.com/refundq/refundq/providers/providertest"
	"github.com/refundq/refundq/tasks"
)

const pub, priv = "pub_sandbox_1", "prv_sandbox_SECRET"

// setup serves a fresh simulator (wrapped, if wrap is set) and returns an
// adapter pointed at it.
func setup(t *testing.T, wrap func(http.Handler) http.Handler) (*ecartpaysim.Simulator, *ecartpay.Client, string) {
	s := ecartpaysim.New(pub, priv)
	var h http.Handler = s
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := ecartpay.New(ecartpay.Config{BaseURL: srv.URL, PublicKey: pub, PrivateKey: priv})
	if err != nil {
		t.Fatal(err)
	}
	return s, c, srv.URL
}

func TestConformance(t *testing.T) {
	entry := ecartpay.Entry(func(string) string { return "x" })
	providertest.Run(t, func(t *testing.T, shape providertest.Shape) *providertest.Harness {
		s, good, url := setup(t, nil)
		s.Guessed(shape == providertest.Guessed)
		bad, _ := ecartpay.New(ecartpay.Config{BaseURL: url, PublicKey: pub, PrivateKey: "wrong"})
		h := &providertest.Harness{
			Provider: good, WrongAuth: bad, Faults: s.Faults(), Currency: "MXN",
			Pay: func(t testing.TB, amount tasks.Money) (string, string) {
				order := "ord-" + uuid.NewString()
				s.AddOrder(order, amount)
				return order, ""
			},
			Applied:      s.Refunded,
			RefundCall:   func(order string) (string, string) { return http.MethodPost, ecartpaysim.RefundPath(order) },
			HideEvidence: s.HideEvidence,
			Partial:      true, Multiple: true, AmountSet: true,
			Keyless: entry.Keyless,
			// Both shapes: an order unchanged since the snapshot taken
			// before the send proves the refund was not applied.
			ProvesAbsence: true,
			Guesses:       entry.Guesses,
		}
		if shape == providertest.Guessed {
			// Only the guessed refunds list shows a refund's own amount.
			h.WrongAmount = s.WrongAmount
		}
		return h
	})
}
