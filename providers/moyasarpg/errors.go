package moyasarpg

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/refundq/refundq/providers"
)

type apiError struct {
	Message string              `json:"message"`
	Errors  map[string][]string `json:"errors"`
}

func authReason(status int) string {
	return fmt.Sprintf("authentication failed (HTTP %d): check %s and %s", status, EnvAPIKey, EnvBaseURL)
}

func parseError(body []byte) (apiError, bool) {
	var e apiError
	if json.Unmarshal(body, &e) != nil || e.Message == "" {
		return apiError{}, false
	}
	return e, true
}

// errText is MPG's message with the field errors, or the body's start.
func errText(e apiError, parsed bool, body []byte) string {
	if !parsed {
		return providers.Snippet(body)
	}
	return e.Message + fieldErrors(e.Errors)
}

// amountReading is refundq's reading, in major units, of MPG's errors
// about the amount field: MPG counts in minor units ("must be less than or
// equal to 12000" on a 120.00 SAR order), and its words are quoted as they
// are, so the reading goes beside them. "" when they hold no number.
func amountReading(e apiError, currency string) string {
	if s := providers.MinorReading(currency, e.Errors["amount"]...); s != "" {
		return "; MPG counts in minor units: " + s
	}
	return ""
}

func fieldErrors(m map[string][]string) string {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+": "+strings.Join(m[k], ", "))
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
