// Package sandbox assembles every provider simulator into one set: the
// sandbox command, the demo and the chaos harness serve them, pay orders on
// them, read their ledgers and point workers at them through the same
// environment variables a real deployment uses.
package sandbox

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/providers/bbmsl/bbmslsim"
	"github.com/refundq/refundq/providers/ecartpay/ecartpaysim"
	"github.com/refundq/refundq/providers/ecomcharge/ecomchargesim"
	"github.com/refundq/refundq/providers/fatora/fatorasim"
	"github.com/refundq/refundq/providers/moyasarpg/moyasarpgsim"
	"github.com/refundq/refundq/providers/sim"
	"github.com/refundq/refundq/tasks"
)

// Sim is one provider's simulator with what callers need to drive it.
type Sim struct {
	Name     string // provider name, as in payloads
	Currency string // currency its sandbox payments are in
	Handler  http.Handler
	Faults   *sim.Faults
	// Env returns the environment lines that point a worker at the
	// simulator served at baseURL, credentials included (test values).
	Env func(baseURL string) []string
	// Pay makes a paid payment and returns the ids its refund carries.
	Pay func(orderID string, amount tasks.Money) (transactionID string)
	// Applied lists the refunds that moved money on the order.
	Applied func(orderID string) []tasks.Money
	// MakePending keeps the next refund on the order non-terminal for n
	// answers; nil when the provider has no such state.
	MakePending func(orderID string, n int)
	// AutoCreate makes every unknown order a paid one of amount.
	AutoCreate func(amount tasks.Money)
	// Partial and Multiple say whether partial refunds, and several refunds
	// per payment, exist.
	Partial, Multiple bool
	// Guessed switches the fields refundq only guesses at on (true) or off
	// (false: the answers have exactly the documented shape, the default).
	Guessed func(on bool)
}

// New returns a fresh simulator of every provider. BBMSL's merchant key is
// generated and written to dir (as bbmsl-merchant.pem), since workers read
// it from the file BBMSL_PRIVATE_KEY_FILE names.
func New(dir string) ([]Sim, error) {
	b, err := bbmslSim(dir)
	if err != nil {
		return nil, err
	}
	return []Sim{b, ecartPaySim(), ecomChargeSim(), fatoraSim(), moyasar()}, nil
}

func moyasar() Sim {
	const key = "sk_test_sandbox"
	s := moyasarpgsim.New(key)
	return Sim{
		Name: providers.MoyasarPG, Currency: "SAR", Handler: s, Faults: s.Faults(),
		Env: func(base string) []string {
			return []string{"MOYASAR_PG_BASE_URL=" + base, "MOYASAR_PG_API_KEY=" + key}
		},
		Pay:         func(order string, amount tasks.Money) string { s.AddOrder(order, amount); return "" },
		Applied:     s.Refunded,
		MakePending: s.SetProcessing,
		AutoCreate:  s.AutoCreate,
		Guessed:     s.Guessed,
		Partial:     true, Multiple: true,
	}
}

// Serve serves h on a free loopback port and returns its base URL.
func Serve(h http.Handler) (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}

func fatoraSim() Sim {
	const key = "fatora_test_sandbox"
	s := fatorasim.New(key)
	return Sim{
		Name: providers.Fatora, Currency: "QAR", Handler: s, Faults: s.Faults(),
		Env: func(base string) []string {
			return []string{"FATORA_BASE_URL=" + base, "FATORA_API_KEY=" + key}
		},
		Pay:         s.AddPayment,
		Applied:     s.Refunded,
		MakePending: s.MakePending,
		AutoCreate:  s.AutoCreate,
		Guessed:     s.Guessed,
	}
}

func ecomChargeSim() Sim {
	const shop, secret = "361", "ecomcharge_test_sandbox"
	s := ecomchargesim.New(shop, secret)
	return Sim{
		Name: providers.EcomCharge, Currency: "EUR", Handler: s, Faults: s.Faults(),
		Env: func(base string) []string {
			return []string{"ECOMCHARGE_BASE_URL=" + base, "ECOMCHARGE_SHOP_ID=" + shop, "ECOMCHARGE_SECRET_KEY=" + secret}
		},
		Pay:         s.AddPayment,
		Applied:     s.Refunded,
		MakePending: s.MakePending,
		AutoCreate:  s.AutoCreate,
		Guessed:     s.Guessed,
		Partial:     true, Multiple: true,
	}
}

func ecartPaySim() Sim {
	const pub, priv = "pub_sandbox", "prv_sandbox"
	s := ecartpaysim.New(pub, priv)
	return Sim{
		Name: providers.EcartPay, Currency: "MXN", Handler: s, Faults: s.Faults(),
		Env: func(base string) []string {
			return []string{"ECARTPAY_BASE_URL=" + base, "ECARTPAY_PUBLIC_KEY=" + pub, "ECARTPAY_PRIVATE_KEY=" + priv}
		},
		Pay:        func(order string, amount tasks.Money) string { s.AddOrder(order, amount); return "" },
		Applied:    s.Refunded,
		AutoCreate: s.AutoCreate,
		Partial:    true, Multiple: true,
		Guessed: s.Guessed,
	}
}

func bbmslSim(dir string) (Sim, error) {
	const merchant = "3"
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return Sim{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return Sim{}, err
	}
	path := filepath.Join(dir, "bbmsl-merchant.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return Sim{}, fmt.Errorf("sandbox: write BBMSL key: %w", err)
	}
	s := bbmslsim.New(merchant, &key.PublicKey)
	return Sim{
		Name: providers.BBMSL, Currency: "HKD", Handler: s, Faults: s.Faults(),
		Env: func(base string) []string {
			return []string{"BBMSL_BASE_URL=" + base, "BBMSL_MERCHANT_ID=" + merchant, "BBMSL_PRIVATE_KEY_FILE=" + path}
		},
		Pay:        func(order string, amount tasks.Money) string { s.AddOrder(order, amount); return "" },
		Applied:    s.Refunded,
		AutoCreate: s.AutoCreate,
		Partial:    true,
		Guessed:    s.Guessed,
	}, nil
}
