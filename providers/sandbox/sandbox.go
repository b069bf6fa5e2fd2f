// Package sandbox assembles every provider simulator into one set: the
// sandbox command, the demo and the chaos harness serve them, pay orders on
// them, read their ledgers and point workers at them through the same
// environment variables a real deployment uses.
package sandbox

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
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

// Sim is one provider's simulator with what callers need to drive it. Every
// use of a simulator goes through these fields, so a simulator can move to
// another package by changing its constructor here alone.
type Sim struct {
	Name     string // provider name, as in payloads
	Title    string // the provider's name for people
	Currency string // currency its sandbox payments are in
	Handler  http.Handler
	Faults   *sim.Faults
	// Target returns the id a refund request names: the order (ecomCharge:
	// the payment's transaction uid), or ok false when r is no refund
	// request. The sandbox's rules (pending-, lost-, review-) key on it.
	Target func(r *http.Request, body []byte) (id string, ok bool)
	// NeedsTransaction: a refund must carry the payment's transaction id.
	NeedsTransaction bool
	// WrongAmount makes the next refund on the order move one minor unit
	// less than asked, so the answer contradicts the refund; nil when the
	// sandbox has no such rule for the provider.
	WrongAmount func(orderID string)
	// Refuses lists, for people, the provider's own reasons to refuse a
	// refund beyond "more than is left to refund".
	Refuses []string
	// OtherCurrency says what becomes of a refund asked in another currency
	// than the payment's.
	OtherCurrency string
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
	// Quirks switches on (true) every behaviour the provider's documents
	// allow and refundq's adapter does not count on (an undocumented code
	// after applying, a field echoed but not searchable, a refund visible
	// only once completed, a resend validated before it is replayed). Off
	// (the default) the simulator answers as the adapter expects. nil when
	// the simulator has none.
	Quirks func(on bool)
	// Idempotent: a resend with the same key is answered from the first
	// request (Moyasar PG), so a lost answer is reconciled in either shape.
	Idempotent bool
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
		Name: providers.MoyasarPG, Title: "Moyasar PG", Currency: "SAR", Handler: s, Faults: s.Faults(),
		Target: pathTarget("/v1/orders/", "/refund"),
		OtherCurrency: "MPG's refund call carries no currency: refundq's adapter reads the order before the send " +
			"and refuses a refund in another currency than the order's (failed, nothing sent)",
		Env: func(base string) []string {
			return []string{"MOYASAR_PG_BASE_URL=" + base, "MOYASAR_PG_API_KEY=" + key}
		},
		Pay:         func(order string, amount tasks.Money) string { s.AddOrder(order, amount); return "" },
		Applied:     s.Refunded,
		MakePending: s.SetProcessing,
		AutoCreate:  s.AutoCreate,
		Guessed:     s.Guessed, Quirks: s.Quirks, Idempotent: true,
		Partial: true, Multiple: true,
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
		Name: providers.Fatora, Title: "Fatora", Currency: "QAR", Handler: s, Faults: s.Faults(),
		Target: bodyTarget(func(b []byte) string {
			var in struct {
				OrderID string `json:"order_id"`
			}
			json.Unmarshal(b, &in)
			return in.OrderID
		}),
		NeedsTransaction: true,
		Refuses: []string{"anything but the whole payment (Fatora has no partial refunds): refused at enqueue where " +
			"FATORA_API_KEY is set, else by the worker before sending", "a second refund of the payment"},
		OtherCurrency: "refused like a partial refund: the payment's amount and currency are compared before sending",
		// The sandbox's key is a test key: the simulator answers mode
		// "test", and the worker is told to expect it.
		Env: func(base string) []string {
			return []string{"FATORA_BASE_URL=" + base, "FATORA_API_KEY=" + key, "FATORA_MODE=test"}
		},
		Pay:         s.AddPayment,
		Applied:     s.Refunded,
		MakePending: s.MakePending,
		AutoCreate:  s.AutoCreate,
		Guessed:     s.Guessed,
		Quirks:      s.Quirks,
	}
}

func ecomChargeSim() Sim {
	const shop, secret = "361", "ecomcharge_test_sandbox"
	s := ecomchargesim.New(shop, secret)
	return Sim{
		Name: providers.EcomCharge, Title: "ecomCharge", Currency: "EUR", Handler: s, Faults: s.Faults(),
		Target: bodyTarget(func(b []byte) string {
			var in struct {
				Request struct {
					ParentUID string `json:"parent_uid"`
				} `json:"request"`
			}
			json.Unmarshal(b, &in)
			return in.Request.ParentUID
		}),
		NeedsTransaction: true,
		Refuses:          []string{"the same amount on the same payment again within 30 s (duplicate_check)"},
		OtherCurrency: "refused by the worker before sending: ecomCharge's refund call carries no currency, so " +
			"the worker reads the payment's currency (EUR) first",
		Env: func(base string) []string {
			// The simulated shop answers in the mode it is in ("test": true
			// unless made live), and the worker is told the same mode.
			mode := "live"
			if s.TestMode() {
				mode = "test"
			}
			return []string{"ECOMCHARGE_BASE_URL=" + base, "ECOMCHARGE_SHOP_ID=" + shop, "ECOMCHARGE_SECRET_KEY=" + secret,
				"ECOMCHARGE_MODE=" + mode}
		},
		Pay:         s.AddPayment,
		Applied:     s.Refunded,
		MakePending: s.MakePending,
		AutoCreate:  s.AutoCreate,
		Guessed:     s.Guessed,
		Quirks:      s.Quirks,
		Partial:     true, Multiple: true,
	}
}

func ecartPaySim() Sim {
	const pub, priv = "pub_sandbox", "prv_sandbox"
	s := ecartpaysim.New(pub, priv)
	return Sim{
		Name: providers.EcartPay, Title: "Ecart Pay", Currency: "MXN", Handler: s, Faults: s.Faults(),
		Target:        pathTarget("/api/orders/", "/refund"),
		Refuses:       []string{"a reason other than requested, duplicate or fraudulent (refused at enqueue)"},
		OtherCurrency: "refused by the worker before sending: it reads the order's currency first",
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
		Name: providers.BBMSL, Title: "BBMSL", Currency: "HKD", Handler: s, Faults: s.Faults(),
		Target: bodyTarget(func(b []byte) string {
			var env struct {
				Request string `json:"request"`
			}
			var in struct {
				MerchantReference string `json:"merchantReference"`
			}
			if json.Unmarshal(b, &env) == nil {
				json.Unmarshal([]byte(env.Request), &in)
			}
			return in.MerchantReference
		}),
		WrongAmount: s.WrongAmount,
		Refuses:     []string{"a second refund on the order (refused at enqueue)"},
		OtherCurrency: "refused by the worker before sending: BBMSL's refund call carries no currency, so it reads " +
			"the order's first (the signed query)",
		Env: func(base string) []string {
			return []string{"BBMSL_BASE_URL=" + base, "BBMSL_MERCHANT_ID=" + merchant, "BBMSL_PRIVATE_KEY_FILE=" + path}
		},
		Pay:        func(order string, amount tasks.Money) string { s.AddOrder(order, amount); return "" },
		Applied:    s.Refunded,
		AutoCreate: s.AutoCreate,
		Partial:    true,
		Guessed:    s.Guessed,
		Quirks:     s.Quirks,
	}, nil
}

// pathTarget finds the order in a refund path prefix + id + suffix.
func pathTarget(prefix, suffix string) func(*http.Request, []byte) (string, bool) {
	return func(r *http.Request, _ []byte) (string, bool) {
		p := r.URL.Path
		if r.Method != http.MethodPost || !strings.HasPrefix(p, prefix) || !strings.HasSuffix(p, suffix) {
			return "", false
		}
		return strings.TrimSuffix(strings.TrimPrefix(p, prefix), suffix), true
	}
}

// bodyTarget finds the order in the JSON body of a POST to a path ending in
// "/refund" or "/refunds".
func bodyTarget(id func([]byte) string) func(*http.Request, []byte) (string, bool) {
	return func(r *http.Request, body []byte) (string, bool) {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/refund") && !strings.HasSuffix(r.URL.Path, "/refunds") {
			return "", false
		}
		v := id(body)
		return v, v != ""
	}
}
