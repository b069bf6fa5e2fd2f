package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
)

// bearer returns the token of an "Authorization: Bearer …" header.
func bearer(r *http.Request) (tok string, present bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", h != ""
	}
	return strings.TrimSpace(tok), true
}

// challenge answers 401 with the RFC 6750 challenge.
func challenge(w http.ResponseWriter, r *http.Request, present bool) {
	if present {
		w.Header().Set("WWW-Authenticate", `Bearer realm="refundq", error="invalid_token"`)
		writeProblem(w, r, Problem{Status: http.StatusUnauthorized, Detail: "the bearer token is not valid"})
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="refundq"`)
	writeProblem(w, r, Problem{Status: http.StatusUnauthorized, Detail: "this endpoint needs an Authorization: Bearer <token> header"})
}

// requireBearer lets a request through only with a valid bearer token that
// has scope. The API itself never reads the monitoring cookie, so a page
// elsewhere cannot make a browser call the API on an operator's behalf.
func (s *Server) requireBearer(scope Scope, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, present := bearer(r)
		who, ok := s.tokens.match(tok)
		if !present || !ok {
			challenge(w, r, present)
			return
		}
		if admit(w, r, who, scope) {
			next.ServeHTTP(w, r)
		}
	})
}

// admit records who made the request and lets it through if they have
// scope; otherwise it answers 403 saying which scope is missing.
func admit(w http.ResponseWriter, r *http.Request, who Identity, scope Scope) bool {
	info(r).who = who
	if who.Can(scope) {
		return true
	}
	writeProblem(w, r, Problem{Status: http.StatusForbidden, Type: typeScope, Title: "The token lacks a scope this needs",
		Detail: fmt.Sprintf("this needs a token with the %q scope; token %s has %s", scope, who.Name, scopeList(who.Scopes))})
	return false
}

func scopeList(s []Scope) string {
	out := make([]string, len(s))
	for i, sc := range s {
		out[i] = string(sc)
	}
	return strings.Join(out, ", ")
}

// The monitoring pages and the console take the token from a cookie too: a
// browser cannot send a bearer header when it follows a link. The form at
// <root>/login posts the token and sets it; a token is never taken from the
// address (proxy logs and browser histories keep addresses). The cookie
// holds no token: it is an expiry and an HMAC of it keyed by the token's
// hash, so it opens its own area's pages only (each area signs with a label
// of its own, and the cookie's Path is the area), for sessionLength, and
// stops working when the token is removed from the configuration.
const (
	monitoringRoot = "/monitoring"
	consoleRoot    = "/console"
	sessionLength  = 12 * time.Hour
)

// area is a part of the server a browser signs in to.
type area struct {
	root   string // its pages are under root + "/"
	cookie string
	label  string // what its session MACs sign besides the expiry
	title  string // the sign-in page's heading
}

var (
	monitoringArea = area{root: monitoringRoot, cookie: "refundq_monitoring", label: "refundq monitoring session", title: "refundq monitoring"}
	consoleArea    = area{root: consoleRoot, cookie: "refundq_console", label: "refundq console session", title: "refundq review console"}
)

func sessionMAC(label string, key [sha256.Size]byte, exp string) []byte {
	m := hmac.New(sha256.New, key[:])
	m.Write([]byte(label + "|" + exp))
	return m.Sum(nil)
}

// newSession returns a cookie value for the token with hash key.
func newSession(label string, key [sha256.Size]byte, now time.Time) string {
	exp := strconv.FormatInt(now.Add(sessionLength).Unix(), 10)
	return exp + "." + base64.RawURLEncoding.EncodeToString(sessionMAC(label, key, exp))
}

// session reports which token a cookie value was made for, if it is still
// valid.
func (t *Tokens) session(label, v string, now time.Time) (who Identity, ok bool) {
	i := t.sessionToken(label, v, now)
	if i < 0 {
		return Identity{}, false
	}
	return t.list[i].identity(), true
}

// sessionToken returns the index of the token a cookie value was made for,
// or -1.
func (t *Tokens) sessionToken(label, v string, now time.Time) int {
	exp, mac64, found := strings.Cut(v, ".")
	if !found {
		return -1
	}
	sec, err := strconv.ParseInt(exp, 10, 64)
	mac, err2 := base64.RawURLEncoding.DecodeString(mac64)
	if err != nil || err2 != nil || now.Unix() >= sec {
		return -1
	}
	found, at := false, -1
	for i := range t.list {
		if hmac.Equal(mac, sessionMAC(label, t.list[i].hash, exp)) && !found {
			found, at = true, i
		}
	}
	return at
}

// formToken is the anti-CSRF token of the forms a session (the cookie
// value; "" for a bearer token) is shown: an HMAC keyed by its token's
// hash, so every replica of the API computes the same one and a page
// elsewhere, which can neither read the cookie nor knows the hash, cannot.
func formToken(key [sha256.Size]byte, session string) string {
	m := hmac.New(sha256.New, key[:])
	m.Write([]byte("refundq console form|" + session))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// requireSession lets a request to an area's pages through with a valid
// bearer token or the area's session cookie, if it has the scope scopeOf
// says. A browser without either is sent to the sign-in form; anything else
// gets a 401 problem.
func (s *Server) requireSession(a area, scopeOf func(*http.Request) Scope, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scope := scopeOf(r)
		if tok, present := bearer(r); present {
			i := s.tokens.index(tok)
			if i < 0 {
				challenge(w, r, true)
				return
			}
			info(r).form = formToken(s.tokens.list[i].hash, "")
			if admit(w, r, s.tokens.list[i].identity(), scope) {
				next.ServeHTTP(w, r)
			}
			return
		}
		if c, err := r.Cookie(a.cookie); err == nil {
			if i := s.tokens.sessionToken(a.label, c.Value, time.Now()); i >= 0 {
				info(r).form = formToken(s.tokens.list[i].hash, c.Value)
				if admit(w, r, s.tokens.list[i].identity(), scope) {
					next.ServeHTTP(w, r)
				}
				return
			}
		}
		if r.Method == http.MethodGet && strings.Contains(r.Header.Get("Accept"), "text/html") &&
			!strings.HasPrefix(r.URL.Path, a.root+"/api/") {
			http.Redirect(w, r, a.root+"/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		challenge(w, r, false)
	})
}

// monitoringScope: reading asynqmon needs the read scope, and anything else
// (a writable asynqmon's buttons) the write scope.
func monitoringScope(r *http.Request) Scope {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return ScopeWrite
	}
	return ScopeRead
}

// login returns the sign-in handler of an area: it sets the area's session
// cookie for a valid token with the read scope, posted as the form field
// token, and sends the browser on to next (a page of the area). GET shows
// the form. A token in the address is refused and not looked at: it would
// already be in proxy logs and the browser's history, and a link carrying
// one would sign in whoever follows it.
func (s *Server) login(a area) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if r.URL.Query().Has("token") {
			writeProblem(w, r, Problem{Status: http.StatusBadRequest, Type: typeInvalidBody,
				Detail: "a token is never taken from the address; post it with the sign-in form (and consider that token exposed: replace it)"})
			return
		}
		next := safeNext(a.root, r.URL.Query().Get("next"))
		if r.Method == http.MethodGet {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Content-Security-Policy", "default-src 'none'; form-action 'self'; style-src 'unsafe-inline'")
			fmt.Fprintf(w, loginPage, html.EscapeString(a.title), html.EscapeString(a.title), a.root, url.QueryEscape(next))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxJSON)
		if err := r.ParseForm(); err != nil {
			writeProblem(w, r, Problem{Status: http.StatusBadRequest, Type: typeInvalidBody, Detail: "the login form could not be read"})
			return
		}
		tok := r.PostForm.Get("token")
		who, ok := s.tokens.match(tok)
		if !ok {
			challenge(w, r, tok != "")
			return
		}
		if !admit(w, r, who, ScopeRead) {
			return
		}
		http.SetCookie(w, &http.Cookie{
			Name: a.cookie, Value: newSession(a.label, sha256.Sum256([]byte(tok)), time.Now()),
			Path: a.root, MaxAge: int(sessionLength.Seconds()), HttpOnly: true,
			// Secure always: browsers keep a Secure cookie on http://localhost
			// and 127.0.0.1 too, and behind a TLS proxy on the same host every
			// connection arrives on loopback, so nothing about the connection
			// (nor a client-sent X-Forwarded-Proto) can say it is safe to drop.
			SameSite: http.SameSiteStrictMode, Secure: true,
		})
		http.Redirect(w, r, next, http.StatusSeeOther)
	}
}

// safeNext keeps a redirect after login on the pages under root of this
// server: anything else (another host, a scheme, "//evil") is replaced.
func safeNext(root, next string) string {
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || strings.HasPrefix(next, "//") ||
		strings.Contains(next, `\`) || !(u.Path == root || strings.HasPrefix(path.Clean(u.Path), root+"/")) {
		return root + "/"
	}
	return next
}

const loginPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>%s: sign in</title></head>
<body style="font-family:sans-serif;max-width:28em;margin:4em auto;padding:0 1em">
<h1>%s</h1>
<form method="post" action="%s/login?next=%s">
<label>API token <input type="password" name="token" autocomplete="current-password" required style="width:100%%"></label>
<p><button type="submit">Sign in</button></p>
</form>
<p>The token is one of the API's bearer tokens with the read scope. The session lasts 12 hours.</p>
</body></html>
`
