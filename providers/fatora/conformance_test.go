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
	"github.com/refundq/refundq/providers/fatora/fatorasim"
	"github.com/refundq/refundq/providers/providertest"
	"github.com/refundq/refundq/tasks"
)

const key = "fatora_test_SECRET_key"

func setup(t *testing.T) (*fatorasim.Simulator, *fatora.Client, string) {
	s := fatorasim.New(key)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	// The simulator answers as a test key does.
	c, err := fatora.New(fatora.Config{BaseURL: srv.URL, APIKey: "  " + key + " ", Mode: "test"}) // trimmed, as documented
	if err != nil {
		t.Fatal(err)
	}
	return s, c, srv.URL
}

func TestConformance(t *testing.T) {
	entry := fatora.Entry(func(string) string { return "" })
	providertest.Run(t, func(t *testing.T, shape providertest.Shape) *providertest.Harness {
		s, good, url := setup(t)
		s.Guessed(shape == providertest.Guessed)
		bad, _ := fatora.New(fatora.Config{BaseURL: url, APIKey: "wrong", Mode: "test"})
		paid := 0
		return &providertest.Harness{
			Provider: good, WrongAuth: bad, Faults: s.Faults(), Currency: "QAR",
			// The first payment of each case is one the bank takes its
			// time over (its refund stays under_proccession for two
			// verify calls, as a settled payment's does): the driver's
			// warm-up refunds it, so the adapter learns what verify shows
			// of a refund still processing as well as of a completed one,
			// as it does in production from whichever refunds come first.
			Pay: func(t testing.TB, amount tasks.Money) (string, string) {
				order := "ord-" + uuid.NewString()
				txn := s.AddPayment(order, amount)
				if paid++; paid == 1 {
					s.MakePending(order, 2)
				}
				return order, txn
			},
			Applied:      s.Refunded,
			RefundCall:   func(string) (string, string) { return http.MethodPost, fatorasim.RefundPath },
			MakePending:  s.MakePending,
			HideEvidence: s.HideEvidence,
			WrongAmount:  nil, // Fatora's refund answers carry no amount
			Partial:      false, Multiple: false,
			AmountSet: true, // checked against the payment before sending
			Keyless:   entry.Keyless,
			// Only verify's refund_status (the guess) can show a paid
			// payment has no refund.
			ProvesAbsence: shape == providertest.Guessed,
			Guesses:       entry.Guesses,
		}
	})
}

func TestPartialAmountIsRejectedBeforeAnythingIsSent(t *testing.T) {
	s, c, _ := setup(t)
	txn := s.AddPayment("ord-p", tasks.Money{Minor: 10000, Currency: "QAR"})
	out := c.Refund(context.Background(), providers.Refund{OrderID: "ord-p", TransactionID: txn, Amount: tasks.Money{Minor: 4000, Currency: "QAR"}, Attempt: 1})
	if out.Kind != providers.Rejected || !strings.Contains(out.Reason, "whole payments only") || !strings.Contains(out.Reason, "100.00 QAR") {
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

func TestEntry(t *testing.T) {
	e := fatora.Entry(func(string) string { return "" })
	if e.Enabled() || len(e.Missing) != 1 || e.Missing[0] != "FATORA_API_KEY" {
		t.Fatalf("entry = %+v", e)
	}
	if !e.Keyless || !e.OncePerOrder || len(e.Guesses) != 2 || e.Guesses[0].Guess != fatora.GuessVerifyShowsCompleted ||
		e.Guesses[1].Guess != fatora.GuessVerifyShowsProcessing {
		t.Fatalf("entry = %+v; want keyless, once per order, one guess per refund status", e)
	}
}

// In the documented shape the adapter learns, from its first completed
// refund, that verify does not show refunds, and from then on a verify of a
// paid payment proves nothing.
func TestDocumentedVerifyRefutesTheGuess(t *testing.T) {
	s, c, _ := setup(t)
	ctx := context.Background()
	qar := tasks.Money{Minor: 1000, Currency: "QAR"}
	r := providers.Refund{OrderID: "ord-1", TransactionID: s.AddPayment("ord-1", qar), Amount: qar, Attempt: 1}
	out := c.Refund(ctx, r)
	if out.Kind != providers.Succeeded || len(out.Observed) != 1 || out.Observed[0].Holds ||
		out.Observed[0].Guess != fatora.GuessVerifyShowsCompleted {
		t.Fatalf("refund = %v, observed %+v; want succeeded and the guess refuted", out, out.Observed)
	}
	known := providers.Knowledge{fatora.GuessVerifyShowsCompleted: providers.Refuted}
	r2 := providers.Refund{OrderID: "ord-2", TransactionID: s.AddPayment("ord-2", qar), Amount: qar, Known: known}
	if out := c.Lookup(ctx, r2); out.Kind != providers.Unknown {
		t.Fatalf("look-up of a paid payment with the guess refuted = %v, want unknown", out)
	}
	// Once known, a refund observes nothing more (no extra verify).
	r2.Attempt = 1
	if out := c.Refund(ctx, r2); out.Kind != providers.Succeeded || len(out.Observed) != 0 {
		t.Fatalf("refund with the guess known = %v, observed %+v", out, out.Observed)
	}
}

// The seed's code samples use /api/v1/...; the simulator serves both.
func TestSimulatorServesBothPathPrefixes(t *testing.T) {
	s, _, url := setup(t)
	qar := tasks.Money{Minor: 1000, Currency: "QAR"}
	txn := s.AddPayment("ord-api", qar)
	c, _ := fatora.New(fatora.Config{BaseURL: url + "/api", APIKey: key, Mode: "test"})
	out := c.Refund(context.Background(), providers.Refund{OrderID: "ord-api", TransactionID: txn, Amount: qar, Attempt: 1})
	if out.Kind != providers.Succeeded || len(s.Refunded("ord-api")) != 1 {
		t.Fatalf("refund through /api/v1 = %v", out)
	}
}
