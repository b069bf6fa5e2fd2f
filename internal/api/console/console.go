// Package console is refund-api's review console at /console/: server-rendered
// pages for the people who settle what automation could not. The work list
// (needs_review and blocked refunds, oldest first), a refund's page with its
// whole history and what to look for at the provider, the settle form,
// search, and each provider's health.
//
// It knows nothing of tokens: package api admits each request (read scope
// for pages, settle scope for the settle form), says who it is through
// Config.Viewer, and settles through Config.Settle, the JSON API's own path.
package console

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/refundq/refundq/internal/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Root is where the console is mounted; every link it draws starts with it.
const Root = "/console"

// Viewer is who is looking, as package api admitted them.
type Viewer struct {
	Actor     string // how a settle by them is recorded (api.Identity.Actor)
	CanSettle bool   // their token has the settle scope
	FormToken string // the anti-CSRF token their forms carry
}

// SettleFunc settles refund id as the request's viewer. fields names the
// form fields at fault (nothing was settled); err wraps store.ErrNotFound,
// store.ErrNotReview, store.ErrClosed or a *store.BusyError when the store
// refused.
type SettleFunc func(r *http.Request, id string, st store.State, providerRef, note string) (fields map[string]string, err error)

// Config configures a Console.
type Config struct {
	Store  *store.Store                 // required
	Viewer func(r *http.Request) Viewer // required
	Settle SettleFunc                   // required
	Logger *logrus.Logger               // default logrus.StandardLogger()
	Now    func() time.Time             // default time.Now
}

// Console serves the console's pages; package api routes to its handlers.
type Console struct {
	store  *store.Store
	viewer func(*http.Request) Viewer
	settle SettleFunc
	log    *logrus.Logger
	now    func() time.Time
	pages  map[string]*template.Template
	static http.Handler
}

// New parses the templates and returns the console.
func New(cfg Config) (*Console, error) {
	if cfg.Store == nil || cfg.Viewer == nil || cfg.Settle == nil {
		return nil, fmt.Errorf("console: Store, Viewer and Settle are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = logrus.StandardLogger()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Console{store: cfg.Store, viewer: cfg.Viewer, settle: cfg.Settle, log: cfg.Logger, now: cfg.Now,
		pages: map[string]*template.Template{}}
	funcs := template.FuncMap{
		"when":   when,
		"ago":    func(t time.Time) string { return ago(c.now(), t) },
		"dur":    duration,
		"ms":     durationMS,
		"refund": refundPath,
		"kind":   func(k store.ReviewKind) string { return k.Describe() },
	}
	for _, name := range []string{"front", "refund", "search", "health", "message"} {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/parts.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", name, err)
		}
		c.pages[name] = t
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	c.static = http.StripPrefix(Root+"/static/", http.FileServerFS(sub))
	return c, nil
}

// Static serves the stylesheet and the little script, which every page
// links: no page loads anything from elsewhere.
func (c *Console) Static(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "max-age=300")
	c.static.ServeHTTP(w, r)
}

// base is what every page shows around its content.
type base struct {
	Title  string
	Viewer Viewer
	Query  string // what the search box shows
}

// csp lets a page load only the console's own stylesheet and script, and
// post forms only to this server.
const csp = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; form-action 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'"

// render writes page name with data; a template that fails leaves nothing
// half-written.
func (c *Console) render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := c.pages[name].ExecuteTemplate(&buf, "layout", data); err != nil {
		c.log.WithError(err).WithField("page", name).Error("console: page could not be rendered")
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", csp)
	h.Set("Cache-Control", "no-store")
	// Not the API's no-referrer: under it a browser posts a form with
	// "Origin: null", and the settle form's origin could not be checked.
	// Every link of the console is to this server.
	h.Set("Referrer-Policy", "same-origin")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// messagePage is a page that only says something (a refusal, a failure).
type messagePage struct {
	base
	Heading, Text string
	Back          string // a link back, "" for the front page
}

func (c *Console) message(w http.ResponseWriter, r *http.Request, status int, heading, text string) {
	c.render(w, status, "message", messagePage{base: base{Title: heading, Viewer: c.viewer(r)}, Heading: heading, Text: text})
}

// unavailable answers 503 when Redis fails a read.
func (c *Console) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	c.log.WithError(err).WithField("path", r.URL.Path).Warn("console: Redis read failed")
	c.message(w, r, http.StatusServiceUnavailable, "Not available right now",
		"refundq could not read its records from Redis. Reload the page in a moment.")
}

func refundPath(id string) string { return Root + "/refunds/" + url.PathEscape(id) }

func when(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	d := now.Sub(t)
	if d < 0 {
		return "in " + duration(-d)
	}
	return duration(d) + " ago"
}

// duration says d to a person, to its two largest units.
func duration(d time.Duration) string {
	switch {
	case d < time.Second:
		return "under a second"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm %ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd %dh", int(d.Hours())/24, int(d.Hours())%24)
}

// providerNames lists the providers the console knows (every one the
// dashboard table names), sorted.
func providerNames() []string {
	out := make([]string, 0, len(atProvider))
	for p := range atProvider {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// reqCtx bounds the reads of one page.
func reqCtx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 10*time.Second)
}

// queryWith returns the query q with key set to v ("" removes it).
func queryWith(q url.Values, key, v string) string {
	c := url.Values{}
	for k, vs := range q {
		c[k] = append([]string(nil), vs...)
	}
	if v == "" {
		c.Del(key)
	} else {
		c.Set(key, v)
	}
	if s := c.Encode(); s != "" {
		return "?" + s
	}
	return ""
}

// oneLine trims s for a table cell.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
