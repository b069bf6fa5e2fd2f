package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/refundq/refundq/internal/store"
)

// listed reports whether a work list page links refund id.
func listed(html, id string) bool { return strings.Contains(html, `href="/console/refunds/`+id+`"`) }

// The work list holds needs_review and blocked refunds, oldest first, with
// counts per reason, and filters by provider, reason and age.
func TestConsoleWorkList(t *testing.T) {
	h := newHarness(t, withScopedTokens)
	h.inReview(t, "rf_wl_1", "moyasarpg", "ord_wl_1", store.ReviewUnknown)
	h.inReview(t, "rf_wl_2", "ecartpay", "ord_wl_2", store.ReviewContradiction)
	h.inReview(t, "rf_wl_3", "moyasarpg", "ord_wl_3", store.ReviewContradiction)
	h.inReview(t, "rf_wl_4", "bbmsl", "ord_wl_4", store.ReviewNotSent)
	// Blocked: open, waiting for the configuration to be fixed.
	h.inReview(t, "rf_wl_5", "fatora", "ord_wl_5", "")
	h.apply(t, "rf_wl_5", store.Change{State: store.Processing, Blocked: "fatora refused our api_key (HTTP 401)", Settled: true})
	// Not waiting for anyone: neither listed nor counted.
	h.inReview(t, "rf_wl_6", "moyasarpg", "ord_wl_6", store.ReviewUnknown)
	h.apply(t, "rf_wl_6", store.Change{State: store.Succeeded, Settled: true, SettledBy: store.ByLookup,
		Entry: store.Entry{Event: "settled", Detail: "settled by look-up: approved"}})

	cookie := h.consoleSession(t, readTok)
	html := h.page(t, cookie, "/console/", http.StatusOK)
	for _, id := range []string{"rf_wl_1", "rf_wl_2", "rf_wl_3", "rf_wl_4", "rf_wl_5"} {
		if !listed(html, id) {
			t.Errorf("work list lacks %s", id)
		}
	}
	if listed(html, "rf_wl_6") {
		t.Error("work list shows a settled refund")
	}
	if i1, i4 := strings.Index(html, "rf_wl_1"), strings.Index(html, "rf_wl_4"); i1 > i4 {
		t.Error("work list is not oldest first")
	}
	for _, card := range []string{"<b>1</b>outcome_unknown", "<b>2</b>contradiction", "<b>1</b>not_sent", "<b>1</b>blocked",
		"automatically, by a later look-up"} {
		if !strings.Contains(html, card) {
			t.Errorf("front page lacks %q", card)
		}
	}
	if !strings.Contains(html, "<b>1</b>automatically") {
		t.Error("front page does not count the refund a look-up settled")
	}
	if !strings.Contains(html, "fatora refused our api_key") {
		t.Error("a blocked refund's row does not say why")
	}

	for _, c := range []struct {
		query string
		want  []string
	}{
		{"?provider=moyasarpg", []string{"rf_wl_1", "rf_wl_3"}},
		{"?kind=contradiction", []string{"rf_wl_2", "rf_wl_3"}},
		{"?kind=contradiction&provider=ecartpay", []string{"rf_wl_2"}},
		{"?kind=blocked", []string{"rf_wl_5"}},
		{"?age=1h", nil},
	} {
		html := h.page(t, cookie, "/console/"+c.query, http.StatusOK)
		for _, id := range []string{"rf_wl_1", "rf_wl_2", "rf_wl_3", "rf_wl_4", "rf_wl_5"} {
			want := strings.Contains(strings.Join(c.want, " "), id)
			if listed(html, id) != want {
				t.Errorf("%s: %s listed=%v, want %v", c.query, id, !want, want)
			}
		}
		if c.want == nil && !strings.Contains(html, "Nothing waits that matches these filters") {
			t.Errorf("%s: an empty list does not say so", c.query)
		}
	}
	h.page(t, cookie, "/console/nowhere", http.StatusNotFound)
}

// Search finds a refund by its id, its order id or the provider's
// reference, at any provider.
func TestConsoleSearch(t *testing.T) {
	h := newHarness(t, withScopedTokens)
	h.inReview(t, "rf_s_1", "ecomcharge", "ord_s_1", store.ReviewUnknown)
	h.apply(t, "rf_s_1", store.Change{State: store.NeedsReview, ProviderRef: "uid-s-1", Review: store.ReviewUnknown})
	h.inReview(t, "rf_s_2", "moyasarpg", "ord_shared", store.ReviewUnknown)
	h.inReview(t, "rf_s_3", "bbmsl", "ord_shared", store.ReviewUnknown)
	cookie := h.consoleSession(t, readTok)
	for q, want := range map[string]string{"rf_s_1": "/console/refunds/rf_s_1", "ord_s_1": "/console/refunds/rf_s_1", "uid-s-1": "/console/refunds/rf_s_1"} {
		resp, body := h.call(t, http.MethodGet, "/console/search?q="+q, "", nil, "Cookie", cookie)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
			t.Errorf("search %s: %d to %q, want 303 to %s: %s", q, resp.StatusCode, resp.Header.Get("Location"), want, body)
		}
	}
	html := h.page(t, cookie, "/console/search?q=ord_shared", http.StatusOK)
	if !listed(html, "rf_s_2") || !listed(html, "rf_s_3") || !strings.Contains(html, "bbmsl order id") {
		t.Errorf("search by an order two providers share:\n%s", html)
	}
	if html := h.page(t, cookie, "/console/search?q=nothing_like_it", http.StatusOK); !strings.Contains(html, "No refund has") {
		t.Errorf("search that finds nothing does not say so:\n%s", html)
	}
}

// The health page shows each provider's breaker per worker, last answer,
// blocked refunds, and its guesses with their evidence.
func TestConsoleHealth(t *testing.T) {
	h := newHarness(t, withScopedTokens)
	ctx := context.Background()
	last := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	if err := h.store.PublishHealth(ctx, "w1", []store.ProviderHealth{{Provider: "ecomcharge", BreakerOpen: true, LastSuccess: last}}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := h.store.Observe(ctx, "ecomcharge", "ecomcharge.tracking_id", true, "refund uid-9 listed under tracking_id k-9"); err != nil {
		t.Fatal(err)
	}
	h.inReview(t, "rf_h_1", "ecomcharge", "ord_h_1", "")
	h.apply(t, "rf_h_1", store.Change{State: store.Processing, Blocked: "ecomcharge refused our credentials", Settled: true})
	html := h.page(t, h.consoleSession(t, readTok), "/console/health", http.StatusOK)
	sec := html[strings.Index(html, `id="provider-ecomcharge"`):]
	sec = sec[:strings.Index(sec, "</section>")]
	for _, want := range []string{"<b>open</b> on w1", "2026-03-04 05:06:07 UTC", "ecomcharge.tracking_id", "confirmed",
		"refund uid-9 listed under tracking_id k-9", `kind=blocked&amp;provider=ecomcharge">1</a>`} {
		if !strings.Contains(sec, want) {
			t.Errorf("ecomcharge's health lacks %q:\n%s", want, sec)
		}
	}
}
