package moyasarpg_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/providers/moyasarpg/moyasarpgsim"
)

// The worker hands Lookup the provider's id of a refund (r.Reference) once
// one of MPG's answers named it. These tests play the worker's part: the
// Reference of an answer is kept and handed back to every later look-up.

// strangerRefund makes a refund on the order that refundq does not know
// (one made in MPG's dashboard, say): no transaction_id, applied at once.
func (m *mpg) strangerRefund(order string, amount int64) {
	m.t.Helper()
	if c := do(m.t, m.url, "Bearer "+key, http.MethodPost, "/v1/orders/"+order+"/refund", fmt.Sprintf(`{"amount": %d}`, amount)); c.status != http.StatusOK {
		m.t.Fatalf("stranger's refund = %d %s", c.status, c.body)
	}
}

// transactionOf returns the id of the order's first transaction of type typ.
func (m *mpg) transactionOf(order, typ string) string {
	m.t.Helper()
	c := do(m.t, m.url, "Bearer "+key, http.MethodGet, "/v1/orders/"+order, "")
	var o struct {
		Transactions []struct{ ID, Type string }
	}
	if err := json.Unmarshal(c.body, &o); err != nil {
		m.t.Fatalf("order %s: %v (%s)", order, err, c.body)
	}
	for _, t := range o.Transactions {
		if t.Type == typ {
			return t.ID
		}
	}
	m.t.Fatalf("order %s has no %s transaction: %s", order, typ, c.body)
	return ""
}

// A refund MPG answered "initiated" (Pending) or in an uncertain status
// names its transaction; the worker keeps that id. A refund of the same
// amount then appears on the order that refundq does not know, so matching
// by amount can no longer tell which is ours (the code as found answered
// Unknown to every later look-up in the documented shape). By its id the
// look-ups find ours: pending until MPG approves it, then Succeeded, paid
// once and never sent again; an uncertain one stays Uncertain. With quirks
// on, look-ups inside the lag do not show it: Unknown, never NotFound.
func TestReferenceFindsOurRefundByID(t *testing.T) {
	shapes(t, func(t *testing.T, guessed bool) {
		for _, tc := range []struct {
			name   string
			quirks bool
			status string // "" initiated then approved; else SetUncertain's
		}{{"initiated", false, ""}, {"initiated quirks", true, ""}, {"timeout", false, "timeout"}, {"system_error quirks", true, "system_error"}} {
			t.Run(tc.name, func(t *testing.T) {
				m := newMPG(t, guessed, tc.quirks)
				m.warmUp()
				order := "ord-" + uuid.NewString()
				m.s.AddOrder(order, sar(10000))
				want := providers.Succeeded
				if tc.status == "" {
					m.s.SetProcessing(order, 2)
				} else {
					m.s.SetUncertain(order, tc.status)
					want = providers.Uncertain
				}
				r := m.refund(order, 3000)
				first := m.send(&r)
				switch {
				case tc.status == "" && (first.Kind != providers.Pending || first.Status != "initiated"):
					t.Fatalf("refund = %v, want pending (initiated)", first)
				case tc.status != "" && first.Kind != providers.Uncertain:
					t.Fatalf("refund = %v, want uncertain", first)
				case first.Reference == "":
					t.Fatalf("refund = %v names no transaction", first)
				}
				r.Reference = first.Reference // what the worker records
				posts := m.count(http.MethodPost)
				m.strangerRefund(order, 3000)

				var out providers.Outcome
				for i := 0; i < 2+moyasarpgsim.QuirkLag && out.Kind != want; i++ {
					out = m.lookup(&r)
					switch out.Kind {
					case providers.Unknown:
						if !tc.quirks {
							t.Fatalf("look-up %d = %v: our refund is on the order under its id %s", i+1, out, r.Reference)
						}
					case providers.Pending:
						if tc.status != "" {
							t.Fatalf("look-up %d = %v, want uncertain", i+1, out)
						}
					case want:
					default:
						t.Fatalf("look-up %d = %v; want %s (pending or, inside the quirks' lag, unknown, before)", i+1, out, want)
					}
					if out.Kind != providers.Unknown && out.Reference != r.Reference {
						t.Fatalf("look-up %d = %v names %q, not our refund %s", i+1, out, out.Reference, r.Reference)
					}
				}
				if out.Kind != want {
					t.Fatalf("last look-up = %v, want %s", out, want)
				}
				if n := m.count(http.MethodPost) - posts; n != 1 { // the stranger's
					t.Fatalf("%d refund requests after ours, want only the stranger's", n)
				}
				var ours []int64
				for _, e := range m.s.RefundsFor(order) {
					if e.Key == r.Key {
						ours = append(ours, e.Amount.Minor)
						if e.Ref != r.Reference {
							t.Fatalf("ledger %+v: our refund is not %s", e, r.Reference)
						}
					}
				}
				if paid := fmt.Sprint(ours); (want == providers.Succeeded) != (paid == "[3000]") || (want == providers.Uncertain && paid != "[]") {
					t.Fatalf("ours in the ledger: %s (all %+v)", paid, m.s.RefundsFor(order))
				}
			})
		}
	})
}

// A reference that names another refund's transaction (another amount), or
// a transaction that is not a refund, is Review: the answer contradicts the
// refund, and no match by key or amount overrides it. A reference the order
// does not list proves nothing: Unknown, never NotFound, and never our
// refund found some other way (the code as found matched by key or amount
// and answered Succeeded to all three).
func TestReferenceNamingAnotherTransaction(t *testing.T) {
	shapes(t, func(t *testing.T, guessed bool) {
		m := newMPG(t, guessed, false)
		m.warmUp()
		order := "ord-" + uuid.NewString()
		m.s.AddOrder(order, sar(10000))
		other := m.refund(order, 2000)
		if out := m.send(&other); out.Kind != providers.Succeeded {
			t.Fatalf("the other refund = %v", out)
		}
		r := m.refund(order, 3000)
		done := m.send(&r)
		if done.Kind != providers.Succeeded {
			t.Fatalf("our refund = %v", done)
		}
		wantLedger(t, m.s, order, 2000, 3000)
		for _, tc := range []struct {
			name, ref string
			want      providers.Kind
			contain   string
		}{
			{"another refund of another amount", m.s.RefundsFor(order)[0].Ref, providers.Review, "is of 20.00 SAR"},
			{"the capture", m.transactionOf(order, "capture"), providers.Review, "capture"},
			{"a transaction the order does not list", "0191f5a8-ffff-7000-8000-00000000dead", providers.Unknown, ""},
		} {
			r.Reference = tc.ref
			out := m.lookup(&r)
			if out.Kind != tc.want || !strings.Contains(out.Reason, tc.contain) || !strings.Contains(out.Reason, tc.ref) {
				t.Errorf("%s: look-up = %v, want %s naming %s and %q", tc.name, out, tc.want, tc.ref, tc.contain)
			}
		}
		r.Reference = done.Reference
		if out := m.lookup(&r); out.Kind != providers.Succeeded || out.Reference != done.Reference {
			t.Fatalf("look-up by our own reference = %v", out)
		}
		wantLedger(t, m.s, order, 2000, 3000)
	})
}
