package providers

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/refundq/refundq/tasks"
)

// MinorText shows n minor units of currency as a person reads amounts
// everywhere else in refundq, in major units with the currency
// ("120.00 SAR" for 12000 SAR): providers that count in minor units (MPG,
// ecomCharge) answer with integers, and a review reason or an error that
// repeats them bare reads as 100 times the money. A currency refundq has no
// exponent for keeps the integer, said to be minor units, rather than a
// guessed decimal point.
func MinorText(n int64, currency string) string {
	cur := strings.ToUpper(strings.TrimSpace(currency))
	if _, ok := tasks.Exponent(cur); !ok {
		return fmt.Sprintf("%d minor units of %s", n, cur)
	}
	return tasks.Money{Minor: n, Currency: cur}.String()
}

// MinorReading is refundq's reading, in major units, of a provider's own
// message about an amount in minor units (MPG's "The value must be less
// than or equal to 12000."): "12000 is 120.00 SAR" for each whole number in
// msgs, or "" when there is none. The provider's words are quoted as they
// are; the reading goes next to them, so a person sees both what the
// provider said and how much money that is. Only a word that is a whole
// number by itself counts (sentence punctuation around it aside): "12,000",
// "-500", "2024-05-01" or "F.0108" are not one amount in minor units, and
// a wrong reading next to the provider's words would mislead the person
// settling the refund more than none.
func MinorReading(currency string, msgs ...string) string {
	var parts []string
	seen := map[int64]bool{}
	for _, msg := range msgs {
		for _, w := range strings.Fields(msg) {
			w = strings.TrimLeft(strings.TrimRight(w, ".,;:!?)]\"'"), "([\"'")
			if w == "" || strings.TrimLeft(w, "0123456789") != "" {
				continue
			}
			n, err := strconv.ParseInt(w, 10, 64)
			if err != nil || seen[n] {
				continue
			}
			seen[n] = true
			parts = append(parts, fmt.Sprintf("%d is %s", n, MinorText(n, currency)))
		}
	}
	return strings.Join(parts, ", ")
}
