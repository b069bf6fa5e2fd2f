package ecartpaysim_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/refundq/refundq/providers/ecartpay/ecartpaysim"
	"github.com/refundq/refundq/tasks"
)

type client struct {
	t     *testing.T
	url   string
	token string
}

func serve(t *testing.T) (*ecartpaysim.Simulator, *client) {
	s := ecartpaysim.New("pub", "prv")
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	c := &client{t: t, url: srv.URL}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+ecartpaysim.TokenPath, nil)
	req.SetBasicAuth("pub", "prv")
	var tok struct{ Token string }
	if status := c.do(req, &tok); status != 200 || tok.Token == "" {
		t.Fatalf("token: %d %+v", status, tok)
	}
	c.token = tok.Token
	return s, c
}

func (c *client) do(req *http.Request, v any) int {
	c.t.Helper()
	if c.token != "" {
		req.Header.Set("Authorization", c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode
}

func (c *client) refund(order, body string) (int, map[string]any) {
	req, _ := http.NewRequest(http.MethodPost, c.url+ecartpaysim.RefundPath(order), strings.NewReader(body))
	var m map[string]any
	return c.do(req, &m), m
}

func (c *client) order(id string) map[string]any {
	req, _ := http.NewRequest(http.MethodGet, c.url+ecartpaysim.OrderPath(id), nil)
	var m map[string]any
	if status := c.do(req, &m); status != 200 {
		c.t.Fatalf("GET order: %d %v", status, m)
	}
	return m
}

// The default answers have the documented shape: no refunds list, one
// refund_id (the latest), totals in major units, payments in minor units,
// updated_at moving with every refund.
func TestDocumentedShape(t *testing.T) {
	s, c := serve(t)
	s.AddOrder("o1", tasks.Money{Minor: 40333, Currency: "MXN"})
	paid := c.order("o1")
	if paid["status"] != "paid" || paid["refund_id"] != nil || paid["currency"] != "MXN" {
		t.Fatalf("paid order %v", paid)
	}
	if total := paid["totals"].(map[string]any)["total"]; total != 403.33 {
		t.Fatalf("totals.total = %v", total)
	}
	if amount := paid["payments"].(map[string]any)["data"].([]any)[0].(map[string]any)["amount"]; amount != 40333.0 {
		t.Fatalf("payments.data[0].amount = %v, want minor units", amount)
	}
	status, first := c.refund("o1", `{"amount": 100, "reason": "requested"}`)
	if status != 200 || first["status"] != "partially_refunded" || first["refund_id"] == nil || first["updated_at"] == paid["updated_at"] {
		t.Fatalf("first refund: %d %v", status, first)
	}
	if _, ok := first["refunds"]; ok {
		t.Fatal("the documented answer has a refunds list")
	}
	status, second := c.refund("o1", `{"amount": 303.33, "reason": "fraudulent"}`)
	if status != 200 || second["status"] != "refunded" || second["refund_id"] == first["refund_id"] || second["updated_at"] == first["updated_at"] {
		t.Fatalf("second refund: %d %v", status, second)
	}
	if got := s.Refunded("o1"); len(got) != 2 || got[0].Minor != 10000 || got[1].Minor != 30333 {
		t.Fatalf("ledger %v", got)
	}
	if status, m := c.refund("o1", `{"amount": 0.01, "reason": "requested"}`); status != 400 || !strings.Contains(m["message"].(string), "exceeds") {
		t.Fatalf("refund past the total: %d %v", status, m)
	}
}

func TestGuessedShapeAndWrongAmount(t *testing.T) {
	s, c := serve(t)
	s.Guessed(true)
	s.AddOrder("o1", tasks.Money{Minor: 1000, Currency: "MXN"})
	s.WrongAmount("o1")
	_, m := c.refund("o1", `{"amount": 10.00, "reason": "requested"}`)
	list, ok := m["refunds"].([]any)
	if !ok || len(list) != 1 {
		t.Fatalf("refunds = %v", m["refunds"])
	}
	entry := list[0].(map[string]any)
	if entry["id"] != m["refund_id"] || entry["amount"] != 9.99 || m["status"] != "partially_refunded" {
		t.Fatalf("answer %v", m)
	}
	if got := s.Refunded("o1"); len(got) != 1 || got[0].Minor != 999 {
		t.Fatalf("ledger %v", got)
	}
}

func TestHideEvidence(t *testing.T) {
	s, c := serve(t)
	s.Guessed(true)
	s.AddOrder("o1", tasks.Money{Minor: 1000, Currency: "MXN"})
	c.refund("o1", `{"amount": 5, "reason": "requested"}`)
	s.HideEvidence()
	m := c.order("o1")
	for _, k := range []string{"status", "refund_id", "updated_at", "refunds"} {
		if _, ok := m[k]; ok {
			t.Errorf("hidden order shows %s", k)
		}
	}
}

func TestRefusals(t *testing.T) {
	s, c := serve(t)
	s.AddOrder("cash", tasks.Money{Minor: 1000, Currency: "MXN"})
	s.SetMethod("cash", "cash")
	if status, m := c.refund("cash", `{"amount": 10, "reason": "requested"}`); status != 400 || !strings.Contains(m["message"].(string), "does not support refunds") {
		t.Fatalf("cash: %d %v", status, m)
	}
	if status, _ := c.refund("none", `{"amount": 10, "reason": "requested"}`); status != 404 {
		t.Fatalf("unknown order: %d", status)
	}
	s.AddOrder("o1", tasks.Money{Minor: 1000, Currency: "MXN"})
	if status, _ := c.refund("o1", `{"amount": 10, "reason": "bored"}`); status != 400 {
		t.Fatalf("bad reason: %d", status)
	}
	c.token = "Bearer " + c.token
	if status, _ := c.refund("o1", `{"amount": 10, "reason": "requested"}`); status != 401 {
		t.Fatalf("Bearer token: %d", status)
	}
	if len(s.Refunded("o1")) != 0 || len(s.Refunded("cash")) != 0 {
		t.Fatal("a refused refund moved money")
	}
}
