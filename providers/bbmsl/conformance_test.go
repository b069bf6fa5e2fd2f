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
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/providers/bbmsl"
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
	providertest.Run(t, func(t *testing.T) *providertest.Harness {
		key, stranger := keys(t)
		s := bbmsl.NewSimulator("3", &key.PublicKey)
		srv := httptest.NewServer(s)
		t.Cleanup(srv.Close)
		good, _ := bbmsl.New(bbmsl.Config{BaseURL: srv.URL, MerchantID: "3", Key: key})
		bad, _ := bbmsl.New(bbmsl.Config{BaseURL: srv.URL, MerchantID: "3", Key: stranger})
		return &providertest.Harness{
			Provider: good, WrongAuth: bad, Faults: s.Faults(), Currency: "HKD",
			Pay: func(t testing.TB, amount tasks.Money) (string, string) {
				ref := "mref-" + uuid.NewString()[:20]
				s.AddOrder(ref, amount)
				return ref, ""
			},
			Applied:    s.Refunded,
			RefundCall: func(string) (string, string) { return http.MethodPost, "/hosted-checkout/refund" },
			Partial:    true, Multiple: false, AmountSet: true,
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

func TestNumericOrderIDIsSentAsOrderID(t *testing.T) {
	key, _ := keys(t)
	var seen string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var env struct{ Request string }
		json.NewDecoder(r.Body).Decode(&env)
		seen = env.Request
		w.Write([]byte(`{"responseCode":"0000","message":"Success"}`))
	}))
	defer srv.Close()
	c, _ := bbmsl.New(bbmsl.Config{BaseURL: srv.URL, MerchantID: "3", Key: key})
	out := c.Refund(context.Background(), providers.Refund{OrderID: "123456", Amount: tasks.Money{Minor: 1000, Currency: "HKD"}})
	if out.Kind != providers.Succeeded || !strings.Contains(seen, `"orderId":123456`) || !strings.Contains(seen, `"merchantId":3`) || !strings.Contains(seen, `"amount":10.00`) {
		t.Fatalf("outcome %v, request %s", out, seen)
	}
}
