package api

import (
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/refundq/refundq/enqueue"
	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers/catalog"
)

type openAPIDoc struct {
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas map[string]struct {
			Properties map[string]struct {
				Enum []string `json:"enum"`
			} `json:"properties"`
			Enum []string `json:"enum"`
		} `json:"schemas"`
	} `json:"components"`
}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// TestOpenAPIMatchesTheRoutes holds the document to the mux both ways: each
// registered pattern is documented, and each documented operation reaches
// the pattern it documents in the server's own mux (not a 404 or a 405).
func TestOpenAPIMatchesTheRoutes(t *testing.T) {
	s := routesOnly(t)
	var doc openAPIDoc
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{} // "GET /v1/refunds/{id}"
	for path, item := range doc.Paths {
		for m := range item {
			if slices.Contains(httpMethods, m) {
				documented[strings.ToUpper(m)+" "+path] = true
			}
		}
	}

	registered := map[string]bool{}
	for _, rt := range s.routes {
		registered[rt.pattern] = true
		method, path, ok := strings.Cut(rt.pattern, " ")
		if !ok { // a subtree for every method (asynqmon): documented with at least GET
			method, path = "GET", rt.pattern
		}
		if !documented[method+" "+path] {
			t.Errorf("route %q is not in openapi.json", rt.pattern)
		}
	}
	for op := range documented {
		method, path, _ := strings.Cut(op, " ")
		url := strings.NewReplacer("{id}", "rf_1").Replace(path)
		_, pattern := s.mux.Handler(httptest.NewRequest(method, url, nil))
		switch {
		case pattern == "":
			t.Errorf("openapi.json documents %s, which no route takes", op)
		case pattern != op && !(pattern == path && registered[path]):
			t.Errorf("openapi.json documents %s, but the mux routes it to %q", op, pattern)
		}
	}
	if len(registered) < 8 || len(documented) < len(registered) {
		t.Fatalf("%d routes, %d documented operations: the check saw too little", len(registered), len(documented))
	}
}

// The document's enums are the code's.
func TestOpenAPIEnumsMatchTheCode(t *testing.T) {
	var doc openAPIDoc
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	providers := doc.Components.Schemas["RefundRequest"].Properties["provider"].Enum
	sort.Strings(providers)
	want := catalog.Rules().Names()
	sort.Strings(want)
	if !slices.Equal(providers, want) {
		t.Errorf("provider enum = %v, want %v", providers, want)
	}
	var st []string
	for _, s := range states {
		st = append(st, string(s))
	}
	if got := doc.Components.Schemas["State"].Enum; !slices.Equal(got, st) {
		t.Errorf("State enum = %v, want %v", got, st)
	}
}

func TestSessionCookie(t *testing.T) {
	tokA, tokB := strings.Repeat("a", 32), strings.Repeat("b", 32)
	both, _ := ParseTokens(tokA + "\n" + tokB)
	onlyB, _ := ParseTokens(tokB)
	now := time.Unix(1_800_000_000, 0)
	v := newSession(monitoringArea.label, sha256.Sum256([]byte(tokA)), now)
	if strings.Contains(v, tokA) {
		t.Fatal("the cookie holds the token")
	}
	idA, _ := both.match(tokA)
	if who, ok := both.session(monitoringArea.label, v, now.Add(time.Hour)); !ok || who.TokenID != idA.TokenID {
		t.Fatalf("fresh session: ok=%v id=%q, want token A's id %q", ok, who.TokenID, idA.TokenID)
	}
	exp, mac, _ := strings.Cut(v, ".")
	for name, c := range map[string]struct {
		v   string
		at  time.Time
		set *Tokens
	}{
		"expired":          {v, now.Add(sessionLength), both},
		"token removed":    {v, now, onlyB},
		"expiry extended":  {"9" + exp + "." + mac, now, both},
		"mac altered":      {exp + "." + strings.ToUpper(mac), now, both},
		"no mac":           {exp, now, both},
		"the token itself": {tokA, now, both},
	} {
		if _, ok := c.set.session(monitoringArea.label, c.v, c.at); ok {
			t.Errorf("%s: session accepted", name)
		}
	}
	if _, ok := both.session(consoleArea.label, v, now); ok {
		t.Error("a monitoring session opens the console")
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"":                                "/monitoring/",
		"/monitoring/queues/default":      "/monitoring/queues/default",
		"/monitoring":                     "/monitoring",
		"https://evil.example/monitoring": "/monitoring/",
		"//evil.example/monitoring/":      "/monitoring/",
		`/\evil.example`:                  "/monitoring/",
		"/v1/refunds":                     "/monitoring/",
		"/monitoring/../v1/refunds":       "/monitoring/",
		"/monitoringx":                    "/monitoring/",
	} {
		if got := safeNext(monitoringRoot, in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"/console/refunds/rf_1": "/console/refunds/rf_1",
		"/monitoring/":          "/console/",
		"/console/../v1":        "/console/",
	} {
		if got := safeNext(consoleRoot, in); got != want {
			t.Errorf("safeNext(console, %q) = %q, want %q", in, got, want)
		}
	}
}

// Each operation's x-required-scope is the scope its route enforces, and a
// route anyone may call documents none.
func TestOpenAPIScopesMatchTheRoutes(t *testing.T) {
	s := routesOnly(t)
	var doc struct {
		Paths map[string]map[string]struct {
			Scope string `json:"x-required-scope"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, rt := range s.routes {
		method, path, ok := strings.Cut(rt.pattern, " ")
		if !ok {
			method, path = "GET", rt.pattern
		}
		op, found := doc.Paths[path][strings.ToLower(method)]
		if !found {
			continue // TestOpenAPIMatchesTheRoutes reports it
		}
		want := string(rt.scope)
		if rt.access == public {
			want = ""
		}
		if op.Scope != want {
			t.Errorf("%s: x-required-scope %q, the route enforces %q", rt.pattern, op.Scope, want)
		}
		checked++
	}
	if checked < 10 {
		t.Fatalf("checked %d routes: too few", checked)
	}
}

// The HistoryEntry schema lists exactly the fields a history entry has.
func TestOpenAPIHistoryEntryMatchesTheStore(t *testing.T) {
	var doc openAPIDoc
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	var documented []string
	for k := range doc.Components.Schemas["HistoryEntry"].Properties {
		documented = append(documented, k)
	}
	var fields []string
	et := reflect.TypeFor[store.Entry]()
	for i := range et.NumField() {
		name, _, _ := strings.Cut(et.Field(i).Tag.Get("json"), ",")
		fields = append(fields, name)
	}
	slices.Sort(documented)
	slices.Sort(fields)
	if !slices.Equal(documented, fields) {
		t.Fatalf("HistoryEntry properties %v; store.Entry has %v", documented, fields)
	}
}

// The Refund schema lists exactly the fields a refund has, and its review
// reasons are the store's.
func TestOpenAPIRefundMatchesTheAPI(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]struct {
					Enum []string `json:"enum"`
				} `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	props := doc.Components.Schemas["Refund"].Properties
	var documented, fields []string
	for k := range props {
		documented = append(documented, k)
	}
	rt := reflect.TypeFor[Refund]()
	for i := range rt.NumField() {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		if name != "history" { // RefundWithHistory adds it
			fields = append(fields, name)
		}
	}
	slices.Sort(documented)
	slices.Sort(fields)
	if !slices.Equal(documented, fields) {
		t.Fatalf("Refund properties %v; api.Refund has %v", documented, fields)
	}
	var kinds []string
	for _, k := range store.ReviewKinds {
		kinds = append(kinds, string(k))
	}
	if got := props["review_reason"].Enum; !slices.Equal(got, kinds) {
		t.Errorf("review_reason enum %v; the store's kinds are %v", got, kinds)
	}
	if got := props["settled_by"].Enum; !slices.Equal(got, []string{store.ByLookup, store.ByPerson}) {
		t.Errorf("settled_by enum %v", got)
	}
}

// routesOnly is a server whose routes are only matched, never served, so no
// Redis is needed.
func routesOnly(t *testing.T) *Server {
	t.Helper()
	toks, err := ParseTokens(strings.Repeat("t", 32))
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	enq := enqueue.New(asynq.RedisClientOpt{Addr: "127.0.0.1:1"}, rdb, enqueue.AcceptRedisLoss())
	t.Cleanup(func() { enq.Close() })
	s, err := New(Config{Enqueue: enq, Store: store.New(rdb, "x:"), Tokens: toks, Monitoring: http.NotFoundHandler()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}
