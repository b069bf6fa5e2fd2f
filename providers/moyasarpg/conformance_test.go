package moyasarpg_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/uuid"

	"github.com/refundq/refundq/providers/moyasarpg"
	"github.com/refundq/refundq/providers/providertest"
	"github.com/refundq/refundq/tasks"
)

const key = "sk_test_conformance_SECRET"

func TestConformance(t *testing.T) {
	providertest.Run(t, func(t *testing.T) *providertest.Harness {
		s := moyasarpg.NewSimulator(key)
		srv := httptest.NewServer(s)
		t.Cleanup(srv.Close)
		good, err := moyasarpg.New(moyasarpg.Config{BaseURL: srv.URL, APIKey: key})
		if err != nil {
			t.Fatal(err)
		}
		bad, _ := moyasarpg.New(moyasarpg.Config{BaseURL: srv.URL, APIKey: "sk_test_wrong"})
		return &providertest.Harness{
			Provider: good, WrongAuth: bad, Faults: s.Faults(), Currency: "SAR",
			Pay: func(t testing.TB, amount tasks.Money) (string, string) {
				id := "ord-" + uuid.NewString()
				s.AddOrder(id, amount)
				return id, ""
			},
			Applied:     s.Refunded,
			RefundCall:  func(order string) (string, string) { return http.MethodPost, "/v1/orders/" + order + "/refund" },
			MakePending: s.SetProcessing,
			Partial:     true, Multiple: true, AmountSet: true,
		}
	})
}
