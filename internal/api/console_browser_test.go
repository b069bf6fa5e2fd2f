package api_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/refundq/refundq/internal/api"
	"github.com/refundq/refundq/internal/store"
)

// TestConsoleInBrowser walks the review console in a real headless
// Chromium as a person would: sign in, open the work list, open a refund
// in needs_review, settle it with a note, and see it leave the list. It
// saves screenshots of the work list, the refund's page, its filled settle
// form, the page after the settle, and the refund's page on a phone's screen to $ARTIFACTS (default
// ./artifacts). Like TestMonitoringInBrowser it runs only with
// REFUNDQ_BROWSER_TEST=1 (`make browser-test`).
func TestConsoleInBrowser(t *testing.T) {
	needBrowser(t)
	h := newHarness(t, withScopedTokens)
	resp, b := h.postJSON(t, "/v1/refunds", refund("rf_console_1", "ord_console_1", "2623.46"))
	decode[api.Refund](t, resp, b, http.StatusCreated)
	h.lostToReview(t, "rf_console_1")

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	br := startChromium(t, ctx)
	link := `document.querySelector('#worklist a[href="/console/refunds/rf_console_1"]')`

	// Unsigned, the console sends the browser to its sign-in form.
	br.navigate(t, h.url+"/console/")
	br.waitFor(t, `document.querySelector('input[name=token]') !== null`, "the sign-in form")
	br.eval(t, fmt.Sprintf(`document.querySelector('input[name=token]').value = %q; document.querySelector('form').submit(); true`, settleTok))
	br.waitFor(t, link+` !== null`, "the work list with the refund in needs_review")
	br.screenshot(t, "console-worklist.png")

	br.eval(t, link+`.click(); true`)
	br.waitFor(t, `document.querySelector('form.settle') !== null && document.body.innerText.includes("2623.46 SAR")`,
		"the refund's page with its settle form and the decimal amount")
	br.screenshot(t, "console-refund.png")

	br.eval(t, `(() => {
		const f = document.querySelector('form.settle');
		f.querySelector('input[value=succeeded]').click();
		f.querySelector('input[name=provider_ref]').value = 'rfd_browser_1';
		f.querySelector('textarea[name=note]').value = 'MPG dashboard: order ord_console_1 shows refund rfd_browser_1, approved';
		f.scrollIntoView();
		return true;
	})()`)
	br.screenshot(t, "console-settle-form.png")
	br.eval(t, `document.querySelector('form.settle button[type=submit]').click(); true`)
	br.waitFor(t, `document.querySelector('#settled') !== null && document.querySelector('#state').innerText === 'succeeded'`,
		"the refund's page saying it was settled")
	br.screenshot(t, "console-settled.png")
	rec, err := h.store.Get(context.Background(), "rf_console_1")
	if err != nil || rec.State != store.Succeeded || rec.ProviderRef != "rfd_browser_1" {
		t.Fatalf("after the settle: %+v %v", rec, err)
	}
	hist, _ := h.store.History(context.Background(), "rf_console_1")
	if last := hist[len(hist)-1]; last.Actor != aliceActor {
		t.Errorf("settled by %q, want %q", last.Actor, aliceActor)
	}

	br.navigate(t, h.url+"/console/")
	br.waitFor(t, `document.querySelector('#reasons') !== null && `+link+` === null`, "the work list without the settled refund")

	// The same refund's page on a phone's screen.
	br.call(t, "Emulation.setDeviceMetricsOverride", map[string]any{"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": true})
	br.navigate(t, h.url+"/console/refunds/rf_console_1")
	br.waitFor(t, `document.querySelector('#timeline') !== null && document.documentElement.scrollWidth <= 390`,
		"the refund's page fitting a phone's width")
	br.screenshot(t, "console-refund-phone.png")
}
