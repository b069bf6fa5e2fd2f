package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Scope is what a token may do. A token file line names its scopes; a line
// that names none gets all of them, as every token had before scopes.
type Scope string

// The scopes, from least to most consequential.
const (
	// ScopeRead reads refunds, their histories and lists, /metrics and the
	// monitoring pages: for dashboards and support.
	ScopeRead Scope = "read"
	// ScopeWrite enqueues refunds (one or a bulk file), and acts on tasks in
	// a writable asynqmon: for the merchant's back end.
	ScopeWrite Scope = "write"
	// ScopeSettle closes a needs_review refund by hand: for the few people
	// who ask the provider what happened.
	ScopeSettle Scope = "settle"
)

var allScopes = []Scope{ScopeRead, ScopeWrite, ScopeSettle}

// Tokens are the bearer tokens the API accepts. Only their SHA-256 hashes
// are kept; a presented token is hashed and compared with every one of them
// in constant time, so neither its length nor how much of it matched shows
// in the time an answer takes.
type Tokens struct {
	list []token
}

// token is one configured token: its hash, the id logs show (the first 4
// bytes of the hash in hex), the name audit records show, and its scopes.
type token struct {
	hash   [sha256.Size]byte
	id     string
	name   string
	scopes []Scope
}

// Identity is who made a request: the token it carried, by id and name,
// never by its text.
type Identity struct {
	TokenID string
	Name    string
	Scopes  []Scope
}

// Actor is how a settle by this identity is recorded in a refund's history.
func (i Identity) Actor() string {
	if i.Name == i.TokenID {
		return "api token " + i.TokenID
	}
	return fmt.Sprintf("api token %s (%s)", i.Name, i.TokenID)
}

// Can reports whether the identity has scope s.
func (i Identity) Can(s Scope) bool { return slices.Contains(i.Scopes, s) }

// MinTokenLen is the shortest token accepted: 32 characters, such as
// `openssl rand -hex 16` prints; `openssl rand -hex 32` is better.
const MinTokenLen = 32

var tokenName = regexp.MustCompile(`^[A-Za-z0-9._@-]{1,64}$`)

// ParseTokens reads tokens one per line (commas also separate them, for an
// environment variable); blank lines and lines starting with # are skipped.
// A line is the token, then optionally, separated by spaces, name=NAME (who
// holds it, for the audit record; default its id) and the scopes it has
// (read, write, settle; default all three):
//
//	3f0c…9a1e name=grafana read
//	77d2…04bc name=support read settle
//	c1a9…e5f0 name=shop-backend read write
//
// Each token must be at least MinTokenLen characters of RFC 6750's token
// alphabet (letters, digits, - . _ ~ + / and trailing =). The error names a
// token by its position, never by its text.
func ParseTokens(text string) (*Tokens, error) {
	t := &Tokens{}
	n := 0
	names := map[string]int{}
	seen := map[[sha256.Size]byte]int{}
	for _, line := range strings.FieldsFunc(text, func(r rune) bool { return r == '\n' || r == ',' }) {
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		n++
		tok := fields[0]
		if len(tok) < MinTokenLen {
			return nil, fmt.Errorf("token %d is %d characters; at least %d are required (e.g. `openssl rand -hex 32`)", n, len(tok), MinTokenLen)
		}
		if !isB64Token(tok) {
			return nil, fmt.Errorf("token %d has characters a bearer token cannot carry (allowed: letters, digits, - . _ ~ + / and trailing =)", n)
		}
		h := sha256.Sum256([]byte(tok))
		if prev, dup := seen[h]; dup {
			return nil, fmt.Errorf("tokens %d and %d are the same token: give it one line, with every scope it needs", prev, n)
		}
		seen[h] = n
		tk := token{hash: h, id: hex.EncodeToString(h[:4])}
		for _, f := range fields[1:] {
			if name, ok := strings.CutPrefix(f, "name="); ok {
				if !tokenName.MatchString(name) {
					return nil, fmt.Errorf("token %d: name=%q: want 1 to 64 letters, digits or . _ @ -", n, name)
				}
				tk.name = name
				continue
			}
			s := Scope(strings.ToLower(f))
			if !slices.Contains(allScopes, s) {
				return nil, fmt.Errorf("token %d: %q is neither name=NAME nor a scope (read, write, settle)", n, f)
			}
			if !slices.Contains(tk.scopes, s) {
				tk.scopes = append(tk.scopes, s)
			}
		}
		if len(tk.scopes) == 0 {
			tk.scopes = allScopes
		}
		if tk.name == "" {
			tk.name = tk.id
		}
		if prev, dup := names[tk.name]; dup {
			return nil, fmt.Errorf("tokens %d and %d are both named %q: the audit record could not tell them apart", prev, n, tk.name)
		}
		names[tk.name] = n
		t.list = append(t.list, tk)
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

// Describe lists the tokens by id, name and scopes, for the log line at
// start: an operator sees what is configured without any token's text.
func (t *Tokens) Describe() []string {
	var out []string
	for _, tk := range t.list {
		s := make([]string, len(tk.scopes))
		for i, sc := range tk.scopes {
			s[i] = string(sc)
		}
		out = append(out, fmt.Sprintf("%s name=%s %s", tk.id, tk.name, strings.Join(s, ",")))
	}
	return out
}

// match reports which token tok is, comparing with every token whatever
// matched first.
func (t *Tokens) match(tok string) (Identity, bool) {
	i := t.index(tok)
	if i < 0 {
		return Identity{}, false
	}
	return t.list[i].identity(), true
}

// index returns the position of token tok in the list, or -1.
func (t *Tokens) index(tok string) int {
	h := sha256.Sum256([]byte(tok))
	found := -1
	for i := range t.list {
		if subtle.ConstantTimeCompare(h[:], t.list[i].hash[:]) == 1 {
			found = i
		}
	}
	return found
}

func (tk token) identity() Identity {
	return Identity{TokenID: tk.id, Name: tk.name, Scopes: tk.scopes}
}
