package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
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

// The monitoring pages take the token from a cookie too: a browser cannot
// send a bearer header when it follows a link. The form at
// /monitoring/login posts the token and sets it; a token is never taken
// from the address (proxy logs and browser histories keep addresses). The cookie holds no token: it is an expiry
// and an HMAC of it keyed by the token's hash, so it opens the monitoring
// pages only, for monitoringSession, and stops working when the token is
// removed from the configuration.
const (
	monitoringCookie  = "refundq_monitoring"
	monitoringSession = 12 * time.Hour
	monitoringRoot    = "/monitoring"
)

func sessionMAC(key [sha256.Size]byte, exp string) []byte {
	m := hmac.New(sha256.New, key[:])
	m.Write([]byte("refundq monitoring session|" + exp))
	return m.Sum(nil)
}

// newSession returns a cookie value for the token with hash key.
func newSession(key [sha256.Size]byte, now time.Time) string {
	exp := strconv.FormatInt(now.Add(monitoringSession).Unix(), 10)
	return exp + "." + base64.RawURLEncoding.EncodeToString(sessionMAC(key, exp))
}

// session reports which token a cookie value was made for, if it is still
// valid.
func (t *Tokens) session(v string, now time.Time) (who Identity, ok bool) {
	exp, mac64, found := strings.Cut(v, ".")
	if !found {
		return Identity{}, false
	}
	sec, err := strconv.ParseInt(exp, 10, 64)
	mac, err2 := base64.RawURLEncoding.DecodeString(mac64)
	if err != nil || err2 != nil || now.Unix() >= sec {
		return Identity{}, false
	}
	found = false
	for i := range t.list {
		if hmac.Equal(mac, sessionMAC(t.list[i].hash, exp)) {
			who, found = t.list[i].identity(), true
		}
	}
	return who, found
}

// requireMonitoring lets a request to the monitoring pages through with a
// valid bearer token or session cookie: reading needs the read scope, and
// anything else (a writable asynqmon's buttons) the write scope. A browser
// without either is sent to the login form; anything else gets a 401
// problem.
func (s *Server) requireMonitoring(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scope := ScopeRead
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			scope = ScopeWrite
		}
		if tok, present := bearer(r); present {
			if who, ok := s.tokens.match(tok); ok {
				if admit(w, r, who, scope) {
					next.ServeHTTP(w, r)
				}
				return
			}
			challenge(w, r, true)
			return
		}
		if c, err := r.Cookie(monitoringCookie); err == nil {
			if who, ok := s.tokens.session(c.Value, time.Now()); ok {
				if admit(w, r, who, scope) {
					next.ServeHTTP(w, r)
				}
				return
			}
		}
		if r.Method == http.MethodGet && strings.Contains(r.Header.Get("Accept"), "text/html") &&
			!strings.HasPrefix(r.URL.Path, monitoringRoot+"/api/") {
			http.Redirect(w, r, monitoringRoot+"/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		challenge(w, r, false)
	})
}

// login sets the monitoring session cookie for a valid token with the read
// scope, posted as the form field token, and sends the browser on to next (a
// monitoring page). GET shows the form. A token in the address is refused
// and not looked at: it would already be in proxy logs and the browser's
// history, and a link carrying one would sign in whoever follows it.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.URL.Query().Has("token") {
		writeProblem(w, r, Problem{Status: http.StatusBadRequest, Type: typeInvalidBody,
			Detail: "a token is never taken from the address; post it with the sign-in form (and consider that token exposed: replace it)"})
		return
	}
	next := safeNext(r.URL.Query().Get("next"))
	if r.Method == http.MethodGet {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; form-action 'self'; style-src 'unsafe-inline'")
		fmt.Fprintf(w, loginPage, url.QueryEscape(next))
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
		Name: monitoringCookie, Value: newSession(sha256.Sum256([]byte(tok)), time.Now()),
		Path: monitoringRoot, MaxAge: int(monitoringSession.Seconds()), HttpOnly: true,
		// Secure always: browsers keep a Secure cookie on http://localhost
		// and 127.0.0.1 too, and behind a TLS proxy on the same host every
		// connection arrives on loopback, so nothing about the connection
		// (nor a client-sent X-Forwarded-Proto) can say it is safe to drop.
		SameSite: http.SameSiteStrictMode, Secure: true,
	})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// safeNext keeps a redirect after login on the monitoring pages of this
// server: anything else (another host, a scheme, "//evil") is replaced.
func safeNext(next string) string {
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || strings.HasPrefix(next, "//") ||
		strings.Contains(next, `\`) || !(u.Path == monitoringRoot || strings.HasPrefix(path.Clean(u.Path), monitoringRoot+"/")) {
		return monitoringRoot + "/"
	}
	return next
}

const loginPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>refundq monitoring: sign in</title></head>
<body style="font-family:sans-serif;max-width:28em;margin:4em auto">
<h1>refundq monitoring</h1>
<form method="post" action="/monitoring/login?next=%s">
<label>API token <input type="password" name="token" autocomplete="current-password" required style="width:100%%"></label>
<p><button type="submit">Sign in</button></p>
</form>
<p>The token is one of the API's bearer tokens with the read scope. The session lasts 12 hours.</p>
</body></html>
`
