package fatora_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/providers/fatora"
	"github.com/refundq/refundq/providers/providertest"
	"github.com/refundq/refundq/tasks"
)

const key = "fatora_test_SECRET_key"

func setup(t *testing.T) (*fatora.Simulator, *fatora.Client, string) {
	s := fatora.NewSimulator(key)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	c, err := fatora.New(fatora.Config{BaseURL: srv.URL, APIKey: "  " + key + " "}) // trimmed, as documented
	if err != nil {
		t.Fatal(err)
	}
	return s, c, srv.URL
}

func TestConformance(t *testing.T) {
	providertest.Run(t, func(t *testing.T) *providertest.Harness {
		s, good, url := setup(t)
		bad, _ := fatora.New(fatora.Config{BaseURL: url, APIKey: "wrong"})
		return &providertest.Harness{
			Provider: good, WrongAuth: bad, Faults: s.Faults(), Currency: "QAR",
			Pay: func(t testing.TB, amount tasks.Money) (string, string) {
				order := "ord-" + uuid.NewString()
				return order, s.AddPayment(order, amount)
			},
			Applied:     s.Refunded,
			RefundCall:  func(string) (string, string) { return http.MethodPost, "/v1/payments/refund" },
			MakePending: s.MakePending,
			Partial:     false, Multiple: false,
			AmountSet: true, // checked against the payment before sending
		}
	})
}

func TestPartialAmountIsRejectedBeforeAnythingIsSent(t *testing.T) {
	s, c, _ := setup(t)
	txn := s.AddPayment("ord-p", tasks.Money{Minor: 10000, Currency: "QAR"})
	out := c.Refund(context.Background(), providers.Refund{OrderID: "ord-p", TransactionID: txn, Amount: tasks.Money{Minor: 4000, Currency: "QAR"}})
	if out.Kind != providers.Rejected || !strings.Contains(out.Reason, "whole payments only") {
		t.Fatalf("partial refund = %v", out)
	}
	if n := s.RefundRequests(); n != 0 {
		t.Fatalf("%d refund requests reached Fatora, want 0", n)
	}
}

func TestEnqueueTimeCheckNeedsTheTransaction(t *testing.T) {
	err := fatora.Check(tasks.Refund{OrderID: "o", AmountMinor: 1, Currency: "QAR"})
	if err == nil || !strings.Contains(err.Error(), "transaction_id") {
		t.Fatalf("Check without transaction id = %v", err)
	}
}

func TestEntryNamesTheMissingVariable(t *testing.T) {
	e := fatora.Entry(func(string) string { return "" })
	if e.Enabled() || len(e.Missing) != 1 || e.Missing[0] != "FATORA_API_KEY" {
		t.Fatalf("entry = %+v", e)
	}
}
