package ecartpay

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"testing"

	"github.com/refundq/refundq/providers"
)

// The two example answers of Ecart Pay's refund page, verbatim
// (shared/provider-docs/ecartpay-refund.txt, "Example Response").
func example(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/example-" + name + ".json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// paidOrder is the example order as it was before its refund: paid, no
// refund_id, updated when created.
func paidOrder(t *testing.T, answer []byte) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(answer, &m); err != nil {
		t.Fatal(err)
	}
	m["status"], m["updated_at"] = "paid", m["created_at"]
	delete(m, "refund_id")
	b, _ := json.Marshal(m)
	return b
}

// paidBefore is the snapshot Prepare takes of paidOrder.
func paidBefore(t *testing.T, answer []byte) snapshot {
	t.Helper()
	s, err := mustOrder(t, paidOrder(t, answer)).snap()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDocumentedExamplesParse(t *testing.T) {
	tests := []struct {
		name, status, refundID, updated string
	}{
		{"refunded", "refunded", "625c9b028541531b52506a87", "2022-04-17T22:56:03.666Z"},
		{"partially-refunded", "partially_refunded", "625c9aa98541531b5250699d", "2022-04-17T22:54:34.329Z"},
	}
	for _, tt := range tests {
		s, err := mustOrder(t, example(t, tt.name)).snap()
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if s.Status != tt.status || s.RefundID != tt.refundID || s.UpdatedAt != tt.updated || s.total() != mxn(40333) || s.Refunds != nil {
			t.Fatalf("%s: snapshot %+v", tt.name, s)
		}
	}
}

func TestDocumentedRefundAnswers(t *testing.T) {
	full, part := example(t, "refunded"), example(t, "partially-refunded")
	tests := []struct {
		name   string
		answer []byte
		amount int64
		want   providers.Kind
	}{
		{"the example's full refund of 403.33", full, 40333, providers.Succeeded},
		{"a partial refund answered refunded", full, 10000, providers.Review},
		{"a partial refund", part, 10000, providers.Succeeded},
		{"a full refund answered partially_refunded", part, 40333, providers.Review},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := paidBefore(t, tt.answer)
			out := judgeRefund(mustOrder(t, tt.answer), &b, providers.Refund{Amount: mxn(tt.amount)})
			if out.Kind != tt.want {
				t.Fatalf("= %v, want %s", out, tt.want)
			}
			// The documented answer has no refunds list: the guess is refuted.
			if len(out.Observed) != 1 || out.Observed[0].Guess != GuessOrderRefunds || out.Observed[0].Holds {
				t.Fatalf("observed %+v", out.Observed)
			}
		})
	}
}

// A lost answer, judged against the documented order: the full refund is
// proven; the partial one cannot be told from another party's.
func TestDocumentedLookups(t *testing.T) {
	full, part := example(t, "refunded"), example(t, "partially-refunded")
	if out := judgeLookup(paidBefore(t, full), mustOrder(t, full), providers.Refund{Amount: mxn(40333)}); out.Kind != providers.Succeeded || out.Reference != "625c9b028541531b52506a87" {
		t.Fatalf("full refund = %v", out)
	}
	if out := judgeLookup(paidBefore(t, part), mustOrder(t, part), providers.Refund{Amount: mxn(10000)}); out.Kind != providers.Unknown {
		t.Fatalf("partial refund = %v, want unknown", out)
	}
	if out := judgeLookup(paidBefore(t, full), mustOrder(t, paidOrder(t, full)), providers.Refund{Amount: mxn(40333)}); out.Kind != providers.NotFound {
		t.Fatalf("unchanged order = %v, want not found", out)
	}
}

// The adapter sends the documented request and reads the documented answer.
func TestDocumentedExchange(t *testing.T) {
	var got map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/authorizations/token":
			w.Write([]byte(`{"token":"eyJhbGciOiJIUzUxMiJ9.e30.sig"}`))
		case "/api/orders/625c9ac88541531b525069e6/refund":
			if r.Header.Get("Authorization") != "eyJhbGciOiJIUzUxMiJ9.e30.sig" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			b, _ := io.ReadAll(r.Body)
			json.Unmarshal(b, &got)
			w.Write(example(t, "refunded"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	c, _ := New(Config{BaseURL: srv.URL, PublicKey: "pub", PrivateKey: "priv"})
	out := c.Refund(context.Background(), providers.Refund{OrderID: "625c9ac88541531b525069e6", Amount: mxn(40333), Reason: "fraudulent"})
	if out.Kind != providers.Succeeded || out.Reference != "625c9b028541531b52506a87" || out.Status != "refunded" {
		t.Fatalf("= %v", out)
	}
	if got["amount"] != 403.33 || got["reason"] != "fraudulent" {
		t.Fatalf("request body %v, want the documented {amount: 403.33, reason: fraudulent}", got)
	}
}

func FuzzRefundError(f *testing.F) {
	f.Add(400, []byte(`{"message":"x"}`), 1)
	f.Add(502, []byte(`<html>`), 2)
	f.Fuzz(func(t *testing.T, status int, body []byte, attempt int) {
		if status < 100 || status > 599 {
			return
		}
		out := refundError(&providers.Response{Status: status, Header: http.Header{}, Body: body}, attempt)
		switch out.Kind {
		case providers.Succeeded, providers.NotFound, providers.Pending:
			t.Fatalf("error answer %d %q = %v", status, body, out)
		case providers.Rejected:
			if !slices.Contains([]int{400, 404, 409, 422}, status) {
				t.Fatalf("HTTP %d read as a refusal: %v", status, out)
			}
		}
	})
}

// FuzzJudge: whatever the order before and the answer after, a success
// names a new refund_id (never another refund of ours), and "not found"
// only comes from an order that did not change.
func FuzzJudge(f *testing.F) {
	f.Add(before(f, paid), refunded.body(), int64(10000), false)
	f.Add(before(f, paidList), refundedL.body(), int64(10000), true)
	f.Add(before(f, partialL), partialL.body(), int64(4000), true)
	f.Fuzz(func(t *testing.T, beforeB, answer []byte, minor int64, holds bool) {
		o, err := parseOrder(answer)
		if err != nil || minor <= 0 {
			return
		}
		r := providers.Refund{Amount: mxn(minor), OtherRefs: []string{"r-other"}}
		if holds {
			r.Known = providers.Knowledge{GuessOrderRefunds: providers.Confirmed}
		}
		var bp *snapshot
		b, berr := readSnapshot(beforeB)
		if berr == nil {
			bp = &b
		}
		if out := judgeRefund(o, bp, r); out.Kind == providers.Succeeded {
			if out.Reference == "" || !refundedStatus(o.Status) || (bp != nil && bp.RefundID == out.Reference) {
				t.Fatalf("refund answer %s = %v", answer, out)
			}
		}
		if berr != nil {
			return
		}
		out := judgeLookup(b, o, r)
		now, nerr := o.snap()
		switch out.Kind {
		case providers.NotFound:
			if nerr != nil || !b.sameAs(now) {
				t.Fatalf("changed order %s read as not found against %+v", answer, b)
			}
		case providers.Succeeded:
			if out.Reference == "" || out.Reference == b.RefundID || out.Reference == "r-other" {
				t.Fatalf("success %v against %+v", out, b)
			}
			if !holds && !(b.Status == "paid" && now.Status == "refunded" && now.total() == r.Amount) {
				t.Fatalf("without the list, success %v from %+v to %+v", out, b, now)
			}
		}
	})
}
