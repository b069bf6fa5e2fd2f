package tasks

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// Money is an amount in the minor units of an ISO 4217 currency (cents for
// USD, yen for JPY, fils for KWD). It is the only representation of money in
// refundq: decimals exist only at the edges (CSV, CLI, providers that want
// them) and are converted with ParseMoney and Money.Decimal.
type Money struct {
	Minor    int64  // amount in minor units, always > 0 for a valid refund
	Currency string // ISO 4217 alphabetic code, upper case
}

// exponents holds the ISO 4217 minor-unit exponent of the currencies refundq
// accepts. A currency missing here is rejected rather than guessed at: a wrong
// exponent refunds 10× or 100× too much or too little.
var exponents = map[string]int{
	// 0 decimals
	"BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
	"PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
	// 3 decimals
	"BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
	// 4 decimals
	"CLF": 4, "UYW": 4,
	// 2 decimals
	"AED": 2, "ARS": 2, "AUD": 2, "BDT": 2, "BGN": 2, "BRL": 2, "CAD": 2, "CHF": 2,
	"CNY": 2, "COP": 2, "CZK": 2, "DKK": 2, "DZD": 2, "EGP": 2, "EUR": 2, "GBP": 2,
	"GEL": 2, "GHS": 2, "HKD": 2, "HUF": 2, "IDR": 2, "ILS": 2, "INR": 2, "KES": 2,
	"KZT": 2, "LBP": 2, "LKR": 2, "MAD": 2, "MOP": 2, "MXN": 2, "MYR": 2, "NGN": 2,
	"NOK": 2, "NZD": 2, "PEN": 2, "PHP": 2, "PKR": 2, "PLN": 2, "QAR": 2, "RON": 2,
	"RSD": 2, "SAR": 2, "SEK": 2, "SGD": 2, "THB": 2, "TRY": 2, "TWD": 2, "UAH": 2,
	"USD": 2, "UYU": 2, "ZAR": 2,
}

// Exponent returns the number of decimal places of currency's minor unit and
// whether refundq knows the currency.
func Exponent(currency string) (int, bool) {
	e, ok := exponents[currency]
	return e, ok
}

// ErrUnknownCurrency is returned for a currency code refundq has no exponent for.
var ErrUnknownCurrency = errors.New("unknown currency")

// ParseMoney converts a plain decimal string such as "403.33" in currency
// "MXN" into Money{40333, "MXN"}. It accepts digits with at most one '.', and no
// more decimals than the currency has; it rejects signs, exponents, thousands
// separators, NaN, zero and amounts that do not fit in an int64.
func ParseMoney(amount, currency string) (Money, error) {
	cur := strings.ToUpper(strings.TrimSpace(currency))
	exp, ok := exponents[cur]
	if !ok {
		return Money{}, fmt.Errorf("currency %q: %w", currency, ErrUnknownCurrency)
	}
	minor, err := parseMinor(amount, cur, exp)
	if err != nil {
		return Money{}, err
	}
	return Money{Minor: minor, Currency: cur}, nil
}

// CheckAmount checks what ParseMoney checks of an amount that does not
// depend on its currency (digits with at most one '.', above zero, fitting
// an int64 as written), to report a bad amount beside an unknown currency;
// its number of decimals is for ParseMoney to check.
func CheckAmount(amount string) error {
	_, err := parseMinor(amount, "", -1)
	return err
}

// parseMinor reads amount in minor units of currency cur, which has exp
// decimals; exp -1 (currency unknown) reads the digits as written, without
// checking the decimals.
func parseMinor(amount, cur string, exp int) (int64, error) {
	s := strings.TrimSpace(amount)
	if s == "" {
		return 0, errors.New("amount is empty")
	}
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" || (hasDot && frac == "") {
		return 0, fmt.Errorf("amount %q: want digits like 12.50", s)
	}
	for _, part := range []string{whole, frac} {
		for _, c := range part {
			if c < '0' || c > '9' {
				return 0, fmt.Errorf("amount %q: only digits and one '.' are allowed (no sign, exponent or separator)", s)
			}
		}
	}
	if exp < 0 {
		exp = len(frac)
	}
	if len(frac) > exp {
		if exp == 0 {
			return 0, fmt.Errorf("amount %q: %s has no decimals", s, cur)
		}
		return 0, fmt.Errorf("amount %q: %s has %d decimals, got %d", s, cur, exp, len(frac))
	}
	digits := whole + frac + strings.Repeat("0", exp-len(frac))
	var minor int64
	for _, c := range digits {
		d := int64(c - '0')
		if minor > (math.MaxInt64-d)/10 {
			return 0, fmt.Errorf("amount %q: too large", s)
		}
		minor = minor*10 + d
	}
	if minor == 0 {
		return 0, fmt.Errorf("amount %q: must be greater than zero", s)
	}
	return minor, nil
}

// Decimal formats the amount in major units with exactly the currency's
// number of decimals, e.g. "403.33" for 40333 MXN and "1000" for 1000 JPY.
func (m Money) Decimal() string {
	exp := exponents[m.Currency]
	neg := m.Minor < 0
	u := uint64(m.Minor)
	if neg {
		u = uint64(-(m.Minor + 1)) + 1
	}
	s := fmt.Sprintf("%0*d", exp+1, u)
	if exp > 0 {
		s = s[:len(s)-exp] + "." + s[len(s)-exp:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// String formats m as "403.33 MXN".
func (m Money) String() string { return m.Decimal() + " " + m.Currency }

// Validate reports whether m is a positive amount in a known currency.
func (m Money) Validate() error {
	if _, ok := exponents[m.Currency]; !ok {
		return fmt.Errorf("currency %q: %w", m.Currency, ErrUnknownCurrency)
	}
	if m.Minor <= 0 {
		return errors.New("amount must be greater than zero")
	}
	return nil
}

// ParseProviderAmount reads a decimal amount in major units as a provider
// wrote it in an answer: like ParseMoney, but zeros beyond the currency's
// exponent are accepted ("10.000" MXN, "123.100" QAR are 10.00 and 123.10),
// and so is zero (a refunded total before any refund). A non-zero digit beyond
// the exponent is an error: it would not be an amount of that currency.
func ParseProviderAmount(amount, currency string) (Money, error) {
	s := strings.TrimSpace(amount)
	cur := strings.ToUpper(strings.TrimSpace(currency))
	exp, ok := exponents[cur]
	if !ok {
		return Money{}, fmt.Errorf("currency %q: %w", currency, ErrUnknownCurrency)
	}
	if whole, frac, hasDot := strings.Cut(s, "."); hasDot {
		trimmed := frac
		for len(trimmed) > exp && trimmed[len(trimmed)-1] == '0' {
			trimmed = trimmed[:len(trimmed)-1]
		}
		s = whole
		if trimmed != "" {
			s += "." + trimmed
		} else if frac == "" {
			return Money{}, fmt.Errorf("amount %q: want digits like 12.50", amount)
		}
	}
	m, err := ParseMoney(s, cur)
	if whole, frac, _ := strings.Cut(s, "."); err != nil && whole != "" && strings.Trim(whole, "0") == "" && strings.Trim(frac, "0") == "" {
		return Money{Currency: cur}, nil // "0": zero is an amount a provider may show
	}
	return m, err
}
