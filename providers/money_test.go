package providers

import "testing"

// Amounts a provider gives in minor units are shown to people in major
// units with the currency, and a provider's message keeps its words with
// refundq's reading beside it.
func TestMinorAmountsReadInMajorUnits(t *testing.T) {
	for _, c := range []struct {
		n        int64
		currency string
		want     string
	}{
		{12000, "SAR", "120.00 SAR"},
		{1000, "eur", "10.00 EUR"},
		{1, "KWD", "0.001 KWD"},
		{500, "JPY", "500 JPY"},
		{1000, "XYZ", "1000 minor units of XYZ"},
	} {
		if got := MinorText(c.n, c.currency); got != c.want {
			t.Errorf("MinorText(%d, %q) = %q, want %q", c.n, c.currency, got, c.want)
		}
	}
	for _, c := range []struct {
		currency string
		msgs     []string
		want     string
	}{
		{"SAR", []string{"The value must be less than or equal to 12000."}, "12000 is 120.00 SAR"},
		{"EUR", []string{"is more than the 1000 left to refund", "must be at least 1"}, "1000 is 10.00 EUR, 1 is 0.01 EUR"},
		{"SAR", []string{"at most 12000", "12000 left"}, "12000 is 120.00 SAR"},
		{"SAR", []string{"Amount exceeds the refundable amount"}, ""},
		{"SAR", []string{"a decimal 10.50 is not minor units"}, ""},
		{"SAR", []string{"(amount: at most 12000)."}, "12000 is 120.00 SAR"},
		// Not one amount in minor units: no reading rather than a wrong one.
		{"SAR", []string{"at most 12,000"}, ""},
		{"SAR", []string{"balance -500"}, ""},
		{"KWD", []string{"since 2024-05-01"}, ""},
		{"EUR", []string{"code F.0108"}, ""},
	} {
		if got := MinorReading(c.currency, c.msgs...); got != c.want {
			t.Errorf("MinorReading(%q, %q) = %q, want %q", c.currency, c.msgs, got, c.want)
		}
	}
}
