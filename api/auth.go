package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
)

// Tokens are the bearer tokens the API accepts. Only their SHA-256 hashes
// are kept; a presented token is hashed and compared with every one of them
// in constant time, so neither its length nor how much of it matched shows
// in the time an answer takes.
type Tokens struct {
	hashes [][sha256.Size]byte
}

// MinTokenLen is the shortest token accepted: 32 characters, such as
// `openssl rand -hex 16` prints; `openssl rand -hex 32` is better.
const MinTokenLen = 32

// ParseTokens reads tokens one per line (commas also separate them, for an
// environment variable); blank lines and lines starting with # are skipped.
// Each must be at least MinTokenLen characters of RFC 6750's token alphabet
// (letters, digits, - . _ ~ + / and trailing =). The error names a token by
// its position, never by its text.
func ParseTokens(text string) (*Tokens, error) {
	t := &Tokens{}
	n := 0
	for _, line := range strings.FieldsFunc(text, func(r rune) bool { return r == '\n' || r == ',' }) {
		tok := strings.TrimSpace(line)
		if tok == "" || strings.HasPrefix(tok, "#") {
			continue
		}
		n++
		if len(tok) < MinTokenLen {
			return nil, fmt.Errorf("token %d is %d characters; at least %d are required (e.g. `openssl rand -hex 32`)", n, len(tok), MinTokenLen)
		}
		if !isB64Token(tok) {
			return nil, fmt.Errorf("token %d has characters a bearer token cannot carry (allowed: letters, digits, - . _ ~ + / and trailing =)", n)
		}
		t.hashes = append(t.hashes, sha256.Sum256([]byte(tok)))
	}
	if n == 0 {
		return nil, errors.New("no API token configured: the API never runs without authentication")
	}
	return t, nil
}

func isB64Token(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for _, c := range body {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-._~+/", c)) {
			return false
		}
	}
	return true
}

// match reports which token tok is (its id: the first 4 bytes of its hash in
// hex, safe for logs), comparing with every token whatever matched first.
func (t *Tokens) match(tok string) (id string, ok bool) {
	h := sha256.Sum256([]byte(tok))
	found := -1
	for i := range t.hashes {
		if subtle.ConstantTimeCompare(h[:], t.hashes[i][:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return "", false
	}
	return hex.EncodeToString(t.hashes[found][:4]), true
}

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

// requireBearer lets a request through only with a valid bearer token. The
// API itself never reads the monitoring cookie, so a page elsewhere cannot
// make a browser call the API on an operator's behalf.
func (s *Server) requireBearer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, present := bearer(r)
		id, ok := s.tokens.match(tok)
		if !present || !ok {
			challenge(w, r, present)
			return
		}
		info(r).tokenID = id
		next.ServeHTTP(w, r)
	})
}

// The monitoring pages take the token from a cookie too: a browser cannot
// send a bearer header when it follows a link. GET /monitoring/login?token=…
// (or the form there) sets it. The cookie holds no token: it is an expiry
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
func (t *Tokens) session(v string, now time.Time) (id string, ok bool) {
	exp, mac64, found := strings.Cut(v, ".")
	if !found {
		return "", false
	}
	sec, err := strconv.ParseInt(exp, 10, 64)
	mac, err2 := base64.RawURLEncoding.DecodeString(mac64)
	if err != nil || err2 != nil || now.Unix() >= sec {
		return "", false
	}
	found = false
	for i := range t.hashes {
		if hmac.Equal(mac, sessionMAC(t.hashes[i], exp)) {
			id, found = hex.EncodeToString(t.hashes[i][:4]), true
		}
	}
	return id, found
}

// requireMonitoring lets a request to the monitoring pages through with a
// valid bearer token or session cookie. A browser without either is sent to
// the login form; anything else gets a 401 problem.
func (s *Server) requireMonitoring(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok, present := bearer(r); present {
			if id, ok := s.tokens.match(tok); ok {
				info(r).tokenID = id
				next.ServeHTTP(w, r)
				return
			}
			challenge(w, r, true)
			return
		}
		if c, err := r.Cookie(monitoringCookie); err == nil {
			if id, ok := s.tokens.session(c.Value, time.Now()); ok {
				info(r).tokenID = id
				next.ServeHTTP(w, r)
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

// login sets the monitoring session cookie for a valid token, given as
// ?token= or as the form field token, and sends the browser on to next (a
// monitoring page). Without a token it shows a small form that posts it, which
// keeps the token out of the address bar and the browser's history.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxJSON)
	if err := r.ParseForm(); err != nil {
		writeProblem(w, r, Problem{Status: http.StatusBadRequest, Type: typeInvalidBody, Detail: "the login form could not be read"})
		return
	}
	next := safeNext(r.Form.Get("next"))
	tok := r.Form.Get("token")
	w.Header().Set("Cache-Control", "no-store")
	if tok == "" && r.Method == http.MethodGet {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; form-action 'self'; style-src 'unsafe-inline'")
		fmt.Fprintf(w, loginPage, url.QueryEscape(next))
		return
	}
	id, ok := s.tokens.match(tok)
	if !ok {
		challenge(w, r, true)
		return
	}
	info(r).tokenID = id
	http.SetCookie(w, &http.Cookie{
		Name: monitoringCookie, Value: newSession(sha256.Sum256([]byte(tok)), time.Now()),
		Path: monitoringRoot, MaxAge: int(monitoringSession.Seconds()), HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https",
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
<p>The token is one of the API's bearer tokens. The session lasts 12 hours.</p>
</body></html>
`
