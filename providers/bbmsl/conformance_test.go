package bbmsl_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/providers/bbmsl"
	"github.com/refundq/refundq/providers/bbmsl/bbmslsim"
	"github.com/refundq/refundq/providers/providertest"
	"github.com/refundq/refundq/tasks"
)

var (
	keysOnce        sync.Once
	merchant, other *rsa.PrivateKey
)

// keys makes two RSA-2048 keys once per test binary: the merchant's and a
// stranger's.
func keys(t testing.TB) (*rsa.PrivateKey, *rsa.PrivateKey) {
	keysOnce.Do(func() {
		var err error
		if merchant, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			t.Fatal(err)
		}
		if other, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			t.Fatal(err)
		}
	})
	return merchant, other
}

func TestConformance(t *testing.T) {
	entry := bbmsl.Entry(func(string) string { return "" })
	providertest.Run(t, func(t *testing.T, shape providertest.Shape) *providertest.Harness {
		key, stranger := keys(t)
		s := bbmslsim.New("3", &key.PublicKey)
		s.Guessed(shape == providertest.Guessed)
		srv := httptest.NewServer(s)
		t.Cleanup(srv.Close)
		good, _ := bbmsl.New(bbmsl.Config{BaseURL: srv.URL, MerchantID: "3", Key: key})
		bad, _ := bbmsl.New(bbmsl.Config{BaseURL: srv.URL, MerchantID: "3", Key: stranger})
		return &providertest.Harness{
			Provider: good, WrongAuth: bad, Faults: s.Faults(), Currency: "HKD",
			Pay: func(t testing.TB, amount tasks.Money) (string, string) {
				ref := "mref-" + uuid.NewString()[:20]
				id := s.AddOrder(ref, amount)
				return ref, strconv.FormatInt(id, 10) // the producer has BBMSL's order id: both are sent
			},
			Applied:      s.Refunded,
			RefundCall:   func(string) (string, string) { return http.MethodPost, bbmslsim.RefundPath },
			HideEvidence: s.HideEvidence,
			WrongAmount:  s.WrongAmount, // the refund answer's transaction carries the amount in both shapes
			Partial:      true, Multiple: false, AmountSet: true,
			Keyless: entry.Keyless,
			// Only the query's netAmount (the guess) shows that a paid order
			// has no refund; the documented shape has no netAmount there.
			ProvesAbsence: shape == providertest.Guessed,
			Guesses:       entry.Guesses,
		}
	})
}

func writeKey(t *testing.T, typ string, der []byte) string {
	p := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestKeyFiles(t *testing.T) {
	key, _ := keys(t)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(key)
	for name, path := range map[string]string{
		"pkcs1": writeKey(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key)),
		"pkcs8": writeKey(t, "PRIVATE KEY", pkcs8),
	} {
		got, err := bbmsl.LoadKey(path)
		if err != nil || !got.Equal(key) {
			t.Errorf("%s: %v", name, err)
		}
	}
	garbled := writeKey(t, "RSA PRIVATE KEY", []byte("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC-secret-material"))
	_, err := bbmsl.LoadKey(garbled)
	if err == nil || !strings.Contains(err.Error(), garbled) || strings.Contains(err.Error(), "secret-material") {
		t.Errorf("garbled key error = %v; want the file named and nothing of its contents", err)
	}
	if _, err := bbmsl.LoadKey(filepath.Join(t.TempDir(), "missing.pem")); err == nil || !strings.Contains(err.Error(), "missing.pem") {
		t.Errorf("missing file error = %v", err)
	}
	e := bbmsl.Entry(func(k string) string {
		return map[string]string{"BBMSL_MERCHANT_ID": "3", "BBMSL_PRIVATE_KEY_FILE": garbled}[k]
	})
	if e.Enabled() || e.Err == nil || !strings.Contains(strings.Join(e.Missing, " "), "BBMSL_PRIVATE_KEY_FILE") {
		t.Errorf("entry with a garbled key = %+v", e)
	}
}

func TestSignatureRoundTrip(t *testing.T) {
	key, stranger := keys(t)
	body, err := bbmsl.Sign(key, map[string]any{"merchantId": 3, "merchantReference": "mref-1", "amount": json.Number("10.50")})
	if err != nil {
		t.Fatal(err)
	}
	text, err := bbmsl.Verify(&key.PublicKey, body)
	if err != nil || !strings.Contains(text, `"amount":10.50`) {
		t.Fatalf("verify = %q, %v", text, err)
	}
	if _, err := bbmsl.Verify(&stranger.PublicKey, body); err == nil {
		t.Fatal("a stranger's key verified the signature")
	}
	tampered := strings.Replace(string(body), `10.50`, `99.50`, 1)
	if _, err := bbmsl.Verify(&key.PublicKey, []byte(tampered)); err == nil {
		t.Fatal("a tampered request verified")
	}
}

// Routing is by explicit field: order_id is always merchantReference, and
// BBMSL's order id travels in transaction_id and goes out as orderId; an
// all-digit order_id is still a merchant reference.
func TestOrderIsNamedByExplicitFields(t *testing.T) {
	key, _ := keys(t)
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var env struct{ Request string }
		json.NewDecoder(r.Body).Decode(&env)
		seen = append(seen, r.URL.Path+" "+env.Request)
		w.Write([]byte(`{"responseCode":"2004","message":"Order not found"}`))
	}))
	defer srv.Close()
	c, _ := bbmsl.New(bbmsl.Config{BaseURL: srv.URL, MerchantID: "3", Key: key})
	hkd := tasks.Money{Minor: 1000, Currency: "HKD"}
	tests := []struct {
		order, txn string
		want       string // the inner request, as sent
	}{
		{"123456", "", `{"amount":10.00,"merchantId":3,"merchantReference":"123456"}`},
		{"mref-1", "4922", `{"amount":10.00,"merchantId":3,"merchantReference":"mref-1","orderId":4922}`},
	}
	for _, tt := range tests {
		seen = nil
		r := providers.Refund{OrderID: tt.order, TransactionID: tt.txn, Amount: hkd, Attempt: 1}
		c.Refund(context.Background(), r)
		c.Lookup(context.Background(), r)
		query := strings.Replace(tt.want, `"amount":10.00,`, "", 1)
		if len(seen) != 2 || seen[0] != "/hosted-checkout/refund "+tt.want || seen[1] != "/hosted-checkout/query "+query {
			t.Errorf("order %q, transaction %q: sent %q; want %s then %s", tt.order, tt.txn, seen, tt.want, query)
		}
	}
	seen = nil
	out := c.Refund(context.Background(), providers.Refund{OrderID: "o", TransactionID: "BB-12", Amount: hkd, Attempt: 1})
	if out.Kind != providers.Rejected || len(seen) != 0 {
		t.Fatalf("refund with a transaction_id that is no BBMSL order id = %v, sent %q", out, seen)
	}
}

func TestEnqueueTimeCheck(t *testing.T) {
	ok := tasks.Refund{OrderID: strings.Repeat("r", 64), TransactionID: "4922", AmountMinor: 1, Currency: "HKD"}
	if err := bbmsl.Check(ok); err != nil {
		t.Fatalf("Check(%+v) = %v", ok, err)
	}
	if err := bbmsl.Check(tasks.Refund{OrderID: "mref-1"}); err != nil {
		t.Fatalf("Check without transaction id = %v", err)
	}
	for _, bad := range []tasks.Refund{
		{OrderID: strings.Repeat("r", 65)},
		{OrderID: "o", TransactionID: "0"},
		{OrderID: "o", TransactionID: "-4"},
		{OrderID: "o", TransactionID: "04922"},
		{OrderID: "o", TransactionID: "49.22"},
		{OrderID: "o", TransactionID: "txn-4922"},
		{OrderID: "o", TransactionID: "99999999999999999999"},
	} {
		if err := bbmsl.Check(bad); err == nil {
			t.Errorf("Check(order %q, transaction %q) accepted", bad.OrderID, bad.TransactionID)
		}
	}
}

func TestEntry(t *testing.T) {
	e := bbmsl.Entry(func(string) string { return "" })
	if e.Enabled() || !e.Keyless || !e.OncePerOrder || e.Check == nil || len(e.Guesses) != 1 || e.Guesses[0].Guess != bbmsl.GuessQueryOrder {
		t.Fatalf("entry = %+v", e)
	}
}

// Against the documented shape the first successful refund refutes the
// guess (the query's order has no netAmount), and a paid order proves
// nothing; against the guessed shape it is confirmed and a paid order is
// NotFound.
func TestQueryOrderIsLearned(t *testing.T) {
	key, _ := keys(t)
	for _, guessed := range []bool{false, true} {
		s := bbmslsim.New("3", &key.PublicKey)
		s.Guessed(guessed)
		srv := httptest.NewServer(s)
		c, _ := bbmsl.New(bbmsl.Config{BaseURL: srv.URL, MerchantID: "3", Key: key})
		hkd := tasks.Money{Minor: 1500, Currency: "HKD"}
		s.AddOrder("mref-a", hkd)
		out := c.Refund(context.Background(), providers.Refund{OrderID: "mref-a", Amount: tasks.Money{Minor: 1000, Currency: "HKD"}, Attempt: 1})
		if out.Kind != providers.Succeeded || out.Reference == "" || len(out.Observed) != 1 || out.Observed[0].Holds != guessed {
			t.Fatalf("guessed=%v: refund = %v ref %q, observed %+v", guessed, out, out.Reference, out.Observed)
		}
		known := providers.Knowledge{bbmsl.GuessQueryOrder: providers.Refuted}
		if guessed {
			known[bbmsl.GuessQueryOrder] = providers.Confirmed
		}
		s.AddOrder("mref-b", hkd)
		want := providers.Unknown
		if guessed {
			want = providers.NotFound
		}
		if out := c.Lookup(context.Background(), providers.Refund{OrderID: "mref-b", Amount: hkd, Known: known}); out.Kind != want {
			t.Fatalf("guessed=%v: look-up of a paid order = %v, want %s", guessed, out, want)
		}
		srv.Close()
	}
}
