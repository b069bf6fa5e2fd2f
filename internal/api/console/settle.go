package console

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/refundq/refundq/internal/store"
)

// maxForm is the most a settle form's body may be: a note is at most 1000
// characters.
const maxForm = 64 << 10

// Settle takes the settle form: the outcome, the provider's reference
// (required when succeeded) and a note (required). A form from elsewhere (no
// or a wrong anti-CSRF token, another origin) is refused with 403 and
// changes nothing. A refund a worker holds, or that left needs_review
// meanwhile, is refused with 409 and the page says why; a settled refund's
// page is shown again (303), so a reload posts nothing twice.
func (c *Console) Settle(w http.ResponseWriter, r *http.Request) {
	v := c.viewer(r)
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		c.message(w, r, http.StatusBadRequest, "The form could not be read", "Go back to the refund's page and settle it again.")
		return
	}
	if why := foreign(r, v); why != "" {
		c.log.WithFields(map[string]any{"path": r.URL.Path, "why": why}).Warn("console: settle form refused as cross-site")
		c.message(w, r, http.StatusForbidden, "Not settled: the form is not this console's",
			why+" Nothing was changed. Open the refund's page again and settle it from there.")
		return
	}
	id := r.PathValue("id")
	form := settleForm{State: r.PostForm.Get("state"), ProviderRef: strings.TrimSpace(r.PostForm.Get("provider_ref")),
		Note: r.PostForm.Get("note")}
	if form.State == string(store.Succeeded) && form.ProviderRef == "" {
		// Only the console asks for it: the JSON API takes a succeeded
		// settle without one, for a provider that names none.
		form.Errors = map[string]string{"provider_ref": "is required when the refund succeeded: the provider's id of it, as its dashboard shows it"}
		c.refundPage(w, r, http.StatusUnprocessableEntity, form)
		return
	}
	fields, err := c.settle(r, id, store.State(form.State), form.ProviderRef, form.Note)
	if len(fields) > 0 {
		form.Errors = fields
		c.refundPage(w, r, http.StatusUnprocessableEntity, form)
		return
	}
	var busy *store.BusyError
	switch {
	case errors.Is(err, store.ErrNotFound):
		c.message(w, r, http.StatusNotFound, "No such refund", "refundq has no refund with id "+id+".")
		return
	case errors.As(err, &busy):
		form.Refusal = fmt.Sprintf("Not settled: a worker is looking this refund up right now; try again in %d s.",
			int(busy.Remaining.Seconds())+1)
		c.refundPage(w, r, http.StatusConflict, form)
		return
	case errors.Is(err, store.ErrNotReview), errors.Is(err, store.ErrClosed):
		state := "somewhere else"
		if rec, gerr := c.store.Get(r.Context(), id); gerr == nil {
			state = string(rec.State)
		}
		form.Refusal = "Not settled: it is no longer in needs_review: it is " + state + ". Its history below says what happened."
		c.refundPage(w, r, http.StatusConflict, form)
		return
	case err != nil:
		c.log.WithError(err).WithField("refund_id", id).Warn("console: settle failed")
		form.Refusal = "Not settled: refundq could not reach Redis. Nothing was changed; try again in a moment."
		c.refundPage(w, r, http.StatusServiceUnavailable, form)
		return
	}
	http.Redirect(w, r, refundPath(id)+"?settled=1", http.StatusSeeOther)
}

// foreign says why a form post did not come from a page of this console,
// or "" when it did: its anti-CSRF token must be the viewer's, and a
// browser that says where the post comes from must say it is this server.
func foreign(r *http.Request, v Viewer) string {
	tok := r.PostForm.Get("csrf")
	if tok == "" || v.FormToken == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(v.FormToken)) != 1 {
		return "The form's anti-forgery token is missing or is not your session's (it may be older than your sign-in)."
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return "Your browser says the form was posted from another site (" + site + ")."
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return "Your browser says the form was posted from " + o + ", not from this server."
		}
	}
	return ""
}
