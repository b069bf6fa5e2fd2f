package tasks

import (
	"fmt"
	"strings"
	"testing"
)

func TestParseMoney(t *testing.T) {
	tests := []struct {
		amount, currency string
		want             int64
		wantErr          string // substring; "" means success
	}{
		{"403.33", "MXN", 40333, ""},
		{"403.3", "MXN", 40330, ""},
		{"403", "mxn", 40300, ""},
		{"1000", "JPY", 1000, ""},
		{"1.234", "KWD", 1234, ""},
		{"0.001", "BHD", 1, ""},
		{"2623.46", "SAR", 262346, ""},
		{" 15.00 ", "HKD", 1500, ""},
		{"10.005", "USD", 0, "USD has 2 decimals, got 3"},
		{"1.5", "JPY", 0, "JPY has no decimals"},
		{"-1", "USD", 0, "only digits"},
		{"+1", "USD", 0, "only digits"},
		{"0", "USD", 0, "greater than zero"},
		{"0.00", "USD", 0, "greater than zero"},
		{"1e3", "USD", 0, "only digits"},
		{"NaN", "USD", 0, "only digits"},
		{"Inf", "USD", 0, "only digits"},
		{"12,50", "EUR", 0, "only digits"},
		{"1,000.00", "USD", 0, "only digits"},
		{"1.2.3", "USD", 0, "only digits"},
		{".5", "USD", 0, "want digits"},
		{"5.", "USD", 0, "want digits"},
		{"", "USD", 0, "empty"},
		{"92233720368547758.07", "USD", 9223372036854775807, ""},
		{"92233720368547758.08", "USD", 0, "too large"},
		{"99999999999999999999999999", "JPY", 0, "too large"},
		{"10", "XXX", 0, "unknown currency"},
		{"10", "", 0, "unknown currency"},
	}
	for _, tt := range tests {
		t.Run(tt.amount+" "+tt.currency, func(t *testing.T) {
			got, err := ParseMoney(tt.amount, tt.currency)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseMoney(%q, %q) = %v, %v; want error containing %q", tt.amount, tt.currency, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got.Minor != tt.want {
				t.Fatalf("ParseMoney(%q, %q) = %v, %v; want %d", tt.amount, tt.currency, got, err, tt.want)
			}
		})
	}
}

// Without a currency, the amount's form is still checked; its decimals are
// not.
func TestCheckAmount(t *testing.T) {
	for amount, want := range map[string]string{
		"10": "", "1.2345": "", " 0.001 ": "",
		"12,50":                      `amount "12,50": only digits and one '.' are allowed (no sign, exponent or separator)`,
		"-1":                         `amount "-1": only digits and one '.' are allowed (no sign, exponent or separator)`,
		".5":                         `amount ".5": want digits like 12.50`,
		"0.00":                       `amount "0.00": must be greater than zero`,
		"":                           "amount is empty",
		"99999999999999999999999999": `amount "99999999999999999999999999": too large`,
	} {
		err := CheckAmount(amount)
		if got := fmt.Sprint(err); want == "" && err != nil || want != "" && got != want {
			t.Errorf("CheckAmount(%q) = %v, want %q", amount, err, want)
		}
	}
}

func TestMoneyDecimalRoundTrips(t *testing.T) {
	for _, m := range []Money{{40333, "MXN"}, {1000, "JPY"}, {1234, "KWD"}, {5, "USD"}, {1, "BHD"}} {
		back, err := ParseMoney(m.Decimal(), m.Currency)
		if err != nil || back != m {
			t.Errorf("%v -> %q -> %v, %v", m, m.Decimal(), back, err)
		}
	}
	if got := (Money{5, "USD"}).String(); got != "0.05 USD" {
		t.Errorf("String() = %q", got)
	}
}

func FuzzParseMoney(f *testing.F) {
	for _, s := range []string{"403.33", "1e3", "-1", "0.001", "99999999999999999999"} {
		f.Add(s, "USD")
	}
	f.Fuzz(func(t *testing.T, amount, currency string) {
		m, err := ParseMoney(amount, currency)
		if err != nil {
			return
		}
		if m.Minor <= 0 {
			t.Fatalf("ParseMoney(%q) accepted non-positive %d", amount, m.Minor)
		}
		back, err := ParseMoney(m.Decimal(), m.Currency)
		if err != nil || back != m {
			t.Fatalf("round trip %q -> %v -> %q -> %v, %v", amount, m, m.Decimal(), back, err)
		}
	})
}

func TestParseProviderAmount(t *testing.T) {
	cases := []struct {
		in, cur string
		want    int64
		bad     bool
	}{
		{"10.000", "MXN", 1000, false},
		{"123.100", "QAR", 12310, false},
		{"403.33", "MXN", 40333, false},
		{"160", "MXN", 16000, false},
		{"15.00", "USD", 1500, false},
		{"10", "USD", 1000, false},
		{"0", "USD", 0, false},
		{"0.00", "USD", 0, false},
		{"1000.0", "JPY", 1000, false},
		{"1.2345", "KWD", 0, true}, // a digit beyond fils
		{"10.001", "MXN", 0, true},
		{"-1", "USD", 0, true},
		{"1e3", "USD", 0, true},
		{"", "USD", 0, true},
		{".", "USD", 0, true},
		{"1.", "USD", 0, true},
		{"abc", "USD", 0, true},
		{"10.00", "XXX", 0, true},
	}
	for _, c := range cases {
		m, err := ParseProviderAmount(c.in, c.cur)
		if c.bad {
			if err == nil {
				t.Errorf("ParseProviderAmount(%q, %s) = %v, want an error", c.in, c.cur, m)
			}
			continue
		}
		if err != nil || m.Minor != c.want || m.Currency != c.cur {
			t.Errorf("ParseProviderAmount(%q, %s) = %v, %v; want %d", c.in, c.cur, m, err, c.want)
		}
	}
}
