package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/refundq/refundq/internal/api"
	"github.com/refundq/refundq/internal/store"
)

func TestEveryRouteButHealthAndDocNeedsAToken(t *testing.T) {
	h := newHarness(t)
	for _, rt := range []struct{ method, path string }{
		{"POST", "/v1/refunds"}, {"GET", "/v1/refunds?state=queued"}, {"GET", "/v1/refunds/rf_1"},
		{"POST", "/v1/refunds/rf_1/settle"}, {"POST", "/v1/refunds/bulk"},
	} {
		for _, tc := range []struct {
			name, tok, challenge string
		}{
			{"no token", "", `Bearer realm="refundq"`},
			{"wrong token", "tok_wrong_0123456789abcdef0123456789abcdef", `Bearer realm="refundq", error="invalid_token"`},
			{"token prefix", token[:len(token)-1], `Bearer realm="refundq", error="invalid_token"`},
		} {
			resp, body := h.call(t, rt.method, rt.path, tc.tok, strings.NewReader("{}"), "Content-Type", "application/json")
			problem(t, resp, body, http.StatusUnauthorized)
			if got := resp.Header.Get("WWW-Authenticate"); got != tc.challenge {
				t.Errorf("%s %s, %s: WWW-Authenticate = %q, want %q", rt.method, rt.path, tc.name, got, tc.challenge)
			}
		}
	}
	// Basic credentials are not a bearer token.
	resp, body := h.call(t, "GET", "/v1/refunds/rf_1", "", nil, "Authorization", "Basic dTpw")
	problem(t, resp, body, http.StatusUnauthorized)
	for _, path := range []string{"/healthz", "/readyz", "/openapi.json"} {
		if resp, body := h.call(t, "GET", path, "", nil); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s without a token: %d %s, want 200", path, resp.StatusCode, body)
		}
	}
	if strings.Contains(h.logs.String(), token) || strings.Contains(h.logs.String(), "tok_wrong") {
		t.Fatal("a token reached the log")
	}
}

func TestCreateReplayAndConflict(t *testing.T) {
	h := newHarness(t)
	body := refund("rf_1", "ord_1", "2623.46")
	body["metadata"] = map[string]string{"order_ref": "A-17"}
	resp, b := h.postJSON(t, "/v1/refunds", body)
	created := decode[api.Refund](t, resp, b, http.StatusCreated)
	if loc := resp.Header.Get("Location"); loc != "/v1/refunds/rf_1" {
		t.Errorf("Location = %q", loc)
	}
	if created.Amount != "2623.46" || created.Currency != "SAR" || created.State != store.Queued || created.Metadata["order_ref"] != "A-17" {
		t.Fatalf("created = %+v", created)
	}
	// The amount goes out as a JSON string, never a number.
	if !strings.Contains(string(b), `"amount":"2623.46"`) {
		t.Fatalf("amount is not a decimal string in %s", b)
	}

	// The same refund again (a retry, a double click): 200, the same refund.
	resp, b = h.postJSON(t, "/v1/refunds", body)
	replay := decode[api.Refund](t, resp, b, http.StatusOK)
	if replay.RefundID != "rf_1" || replay.CreatedAt != created.CreatedAt {
		t.Fatalf("replay = %+v, want the refund created first", replay)
	}
	n, err := h.env.Client.LLen(context.Background(), "asynq:{"+h.env.Queue+"}:pending").Result()
	if err != nil || n != 1 {
		t.Fatalf("pending tasks = %d (%v), want exactly 1 after a replay", n, err)
	}

	// The same id for another refund: 409 naming each differing field.
	other := refund("rf_1", "ord_2", "2623.47")
	resp, b = h.postJSON(t, "/v1/refunds", other)
	p := problem(t, resp, b, http.StatusConflict)
	if got := fields(p); !slices.Equal(got, []string{"order_id", "amount"}) {
		t.Fatalf("conflict fields = %v, want [order_id amount]: %s", got, b)
	}
	if !strings.Contains(p.Errors[1].Message, `"2623.46"`) || !strings.HasSuffix(p.Type, "refund-id-conflict") {
		t.Fatalf("conflict problem = %+v", p)
	}

	// GET shows the record and its history.
	resp, b = h.call(t, "GET", "/v1/refunds/rf_1", token, nil)
	got := decode[api.Refund](t, resp, b, http.StatusOK)
	if got.Amount != "2623.46" || len(got.History) == 0 || got.History[0].Event != "created" {
		t.Fatalf("GET = %+v", got)
	}
	resp, b = h.call(t, "GET", "/v1/refunds/rf_none", token, nil)
	problem(t, resp, b, http.StatusNotFound)
	resp, b = h.call(t, "GET", "/v1/refunds/"+strings.Repeat("x", 65), token, nil)
	problem(t, resp, b, http.StatusNotFound)
}

func TestBadBodiesAre400WithFieldErrors(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		name   string
		body   string
		fields []string // the problem's errors, in order
		kind   string   // suffix of the problem type
	}{
		{"amount as a JSON number", `{"refund_id":"rf_n","provider":"moyasarpg","order_id":"o","amount":12.5,"currency":"SAR"}`, []string{"amount"}, "validation-failed"},
		{"every missing field at once", `{}`, []string{"refund_id", "provider", "order_id", "amount", "currency"}, "validation-failed"},
		{"too many decimals", `{"refund_id":"rf_d","provider":"moyasarpg","order_id":"o","amount":"1.234","currency":"SAR"}`, []string{"amount"}, "validation-failed"},
		{"decimal comma", `{"refund_id":"rf_c","provider":"moyasarpg","order_id":"o","amount":"12,50","currency":"SAR"}`, []string{"amount"}, "validation-failed"},
		{"unknown currency", `{"refund_id":"rf_u","provider":"moyasarpg","order_id":"o","amount":"1.00","currency":"XXX"}`, []string{"currency"}, "validation-failed"},
		{"unknown provider", `{"refund_id":"rf_p","provider":"paypal","order_id":"o","amount":"1.00","currency":"SAR"}`, []string{"provider"}, "validation-failed"},
		{"bad id and a card number in the reason", `{"refund_id":"rf 1","provider":"moyasarpg","order_id":"o","amount":"1.00","currency":"SAR","reason":"card 4111 1111 1111 1111"}`, []string{"refund_id", "reason"}, "validation-failed"},
		{"metadata value not a string", `{"refund_id":"rf_m","provider":"moyasarpg","order_id":"o","amount":"1.00","currency":"SAR","metadata":{"k":1}}`, []string{"metadata"}, "invalid-body"},
		{"unknown field", `{"refund_id":"rf_f","amount_minor":100}`, []string{"amount_minor"}, "invalid-body"},
		{"not JSON", `{"refund_id":`, nil, "invalid-body"},
		{"an array", `[]`, nil, "invalid-body"},
		{"two objects", `{} {}`, nil, "invalid-body"},
		{"empty", ``, nil, "invalid-body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := h.postJSON(t, "/v1/refunds", tc.body)
			p := problem(t, resp, b, http.StatusBadRequest)
			if got := fields(p); !slices.Equal(got, tc.fields) {
				t.Fatalf("fields = %v, want %v: %s", got, tc.fields, b)
			}
			if !strings.HasSuffix(p.Type, tc.kind) {
				t.Fatalf("type = %q, want …%s", p.Type, tc.kind)
			}
			for _, e := range p.Errors {
				if e.Message == "" || !strings.HasPrefix(e.Pointer, "/") {
					t.Fatalf("field error %+v lacks a message or a pointer", e)
				}
			}
		})
	}
	resp, b := h.call(t, "POST", "/v1/refunds", token, strings.NewReader(`{}`), "Content-Type", "text/plain")
	problem(t, resp, b, http.StatusUnsupportedMediaType)
	// Nothing was written by any of them.
	if n, _ := h.env.Client.Exists(context.Background(), h.env.Prefix+"refunds").Result(); n != 0 {
		t.Fatal("a bad body wrote a refund")
	}
}

// endless yields n bytes of a JSON string's inside, without holding them.
type endless struct{ n int }

func (e *endless) Read(p []byte) (int, error) {
	if e.n <= 0 {
		return 0, io.EOF
	}
	k := min(len(p), e.n)
	for i := range p[:k] {
		p[i] = 'a'
	}
	e.n -= k
	return k, nil
}

func TestBodiesOverTheLimitAre413(t *testing.T) {
	h := newHarness(t)
	// Streamed (no Content-Length): cut off at 1 MiB while decoding.
	big := io.MultiReader(strings.NewReader(`{"refund_id":"rf_big","reason":"`), &endless{n: 1 << 20}, strings.NewReader(`"}`))
	resp, b := h.call(t, "POST", "/v1/refunds", token, io.NopCloser(big), "Content-Type", "application/json")
	problem(t, resp, b, http.StatusRequestEntityTooLarge)
	// Declared too large: refused before reading.
	for _, tc := range []struct {
		path, ct string
		n        int64
	}{
		{"/v1/refunds", "application/json", 1<<20 + 1},
		{"/v1/refunds/bulk", "text/csv", 64<<20 + 1},
	} {
		req, err := http.NewRequest("POST", h.url+tc.path, &endless{n: int(tc.n)})
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = tc.n
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", tc.ct)
		resp, err := h.http.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		problem(t, resp, b, http.StatusRequestEntityTooLarge)
	}
	// Just under the JSON limit is read (and judged on its fields).
	under := `{"refund_id":"rf_ok","provider":"moyasarpg","order_id":"o","amount":"1.00","currency":"SAR","reason":"` + strings.Repeat("a", 1<<20-200) + `"}`
	resp, b = h.postJSON(t, "/v1/refunds", under)
	if p := problem(t, resp, b, http.StatusBadRequest); !slices.Equal(fields(p), []string{"reason"}) {
		t.Fatalf("fields = %v, want [reason] (too long)", fields(p))
	}
}

func TestListPagesThroughAState(t *testing.T) {
	h := newHarness(t)
	var ids []string
	for i := range 7 {
		id := fmt.Sprintf("rf_list_%d", i)
		ids = append(ids, id)
		resp, b := h.postJSON(t, "/v1/refunds", refund(id, "ord_"+id, "10.00"))
		decode[api.Refund](t, resp, b, http.StatusCreated)
		time.Sleep(2 * time.Millisecond) // distinct entry times order the index
	}
	h.toReview(t, "rf_list_3")
	var got []string
	cursor := ""
	pages := 0
	for {
		path := "/v1/refunds?state=queued&limit=3"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		resp, b := h.call(t, "GET", path, token, nil)
		page := decode[api.RefundList](t, resp, b, http.StatusOK)
		pages++
		if page.Total != 6 {
			t.Fatalf("total = %d, want 6", page.Total)
		}
		for _, r := range page.Data {
			if r.State != store.Queued || r.Amount != "10.00" {
				t.Fatalf("listed %+v", r)
			}
			got = append(got, r.RefundID)
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
		if pages > 5 {
			t.Fatal("paging does not end")
		}
	}
	want := slices.Delete(slices.Clone(ids), 3, 4)
	if !slices.Equal(got, want) || pages != 2 {
		t.Fatalf("paged %v in %d pages, want %v in 2", got, pages, want)
	}
	resp, b := h.call(t, "GET", "/v1/refunds?state=needs_review", token, nil)
	if l := decode[api.RefundList](t, resp, b, http.StatusOK); len(l.Data) != 1 || l.Data[0].RefundID != "rf_list_3" || l.NextCursor != "" {
		t.Fatalf("needs_review = %+v", l)
	}

	firstCursor := func() string {
		resp, b := h.call(t, "GET", "/v1/refunds?state=queued&limit=1", token, nil)
		return decode[api.RefundList](t, resp, b, http.StatusOK).NextCursor
	}()
	for _, tc := range []struct{ query, field string }{
		{"", "state"},
		{"?state=refunded", "state"},
		{"?state=queued&limit=0", "limit"},
		{"?state=queued&limit=501", "limit"},
		{"?state=queued&limit=x", "limit"},
		{"?state=queued&cursor=bm90IGEgY3Vyc29y", "cursor"},
		{"?state=failed&cursor=" + firstCursor, "cursor"},
	} {
		resp, b := h.call(t, "GET", "/v1/refunds"+tc.query, token, nil)
		if p := problem(t, resp, b, http.StatusBadRequest); !slices.Equal(fields(p), []string{tc.field}) {
			t.Errorf("%q: fields = %v, want [%s]", tc.query, fields(p), tc.field)
		}
	}
}

func TestSettleOnlyFromNeedsReview(t *testing.T) {
	h := newHarness(t)
	for _, id := range []string{"rf_s1", "rf_s2", "rf_s3"} {
		resp, b := h.postJSON(t, "/v1/refunds", refund(id, "ord_"+id, "5.00"))
		decode[api.Refund](t, resp, b, http.StatusCreated)
	}
	settle := map[string]string{"state": "succeeded", "provider_ref": "rfd_77", "note": "Moyasar dashboard shows rfd_77 refunded"}

	// Queued: not for a human to settle.
	resp, b := h.postJSON(t, "/v1/refunds/rf_s1/settle", settle)
	if p := problem(t, resp, b, http.StatusConflict); !strings.HasSuffix(p.Type, "not-in-review") {
		t.Fatalf("type = %q", p.Type)
	}
	resp, b = h.postJSON(t, "/v1/refunds/rf_nope/settle", settle)
	problem(t, resp, b, http.StatusNotFound)

	h.toReview(t, "rf_s1")
	resp, b = h.postJSON(t, "/v1/refunds/rf_s1/settle", map[string]string{"state": "pending", "note": " "})
	if p := problem(t, resp, b, http.StatusBadRequest); !slices.Equal(fields(p), []string{"state", "note"}) {
		t.Fatalf("fields = %v, want [state note]", fields(p))
	}
	resp, b = h.postJSON(t, "/v1/refunds/rf_s1/settle", settle)
	got := decode[api.Refund](t, resp, b, http.StatusOK)
	if got.State != store.Succeeded || got.ProviderRef != "rfd_77" {
		t.Fatalf("settled = %+v", got)
	}
	resp, b = h.call(t, "GET", "/v1/refunds/rf_s1", token, nil)
	full := decode[api.Refund](t, resp, b, http.StatusOK)
	last := full.History[len(full.History)-1]
	if last.Event != "settled" || last.Detail != settle["note"] || last.ProviderRef != "rfd_77" || last.Actor != "api token "+tokenID {
		t.Fatalf("last history entry = %+v, want the settlement with its note, reference and actor %q", last, "api token "+tokenID)
	}
	// Final is final.
	resp, b = h.postJSON(t, "/v1/refunds/rf_s1/settle", map[string]string{"state": "failed", "note": "changed my mind"})
	problem(t, resp, b, http.StatusConflict)

	// Never while a worker holds the refund.
	h.toReview(t, "rf_s2")
	lease, _, err := h.store.Acquire(context.Background(), "rf_s2", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	resp, b = h.postJSON(t, "/v1/refunds/rf_s2/settle", settle)
	if p := problem(t, resp, b, http.StatusConflict); !strings.HasSuffix(p.Type, "refund-busy") || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("busy: %+v, Retry-After %q", p, resp.Header.Get("Retry-After"))
	}
	lease.Release(context.Background())
	resp, b = h.postJSON(t, "/v1/refunds/rf_s2/settle", map[string]string{"state": "failed", "note": "provider shows no refund"})
	if got := decode[api.Refund](t, resp, b, http.StatusOK); got.State != store.Failed {
		t.Fatalf("settled = %+v", got)
	}
	if !strings.Contains(h.logs.String(), `"msg":"refund settled by hand"`) {
		t.Fatal("no log line for a refund settled by hand")
	}
}

func TestBulkReportsEveryRowWithItsLine(t *testing.T) {
	h := newHarness(t)
	csv := "refund_id,provider,order_id,transaction_id,amount,currency,reason\n" +
		"rf_b1,moyasarpg,ord_b1,,403.33,SAR,requested\n" +
		"rf_b2,moyasarpg,ord_b2,,12,50,SAR,requested\n" + // a decimal comma: one field too many
		"rf_b3,moyasarpg,ord_b3,,1.234,SAR,requested\n" +
		"rf_b4,moyasarpg,ord_b4,,7.00,SAR,requested\n"
	post := func(body, ct, query string) api.BulkReport {
		resp, b := h.call(t, "POST", "/v1/refunds/bulk"+query, token, strings.NewReader(body), "Content-Type", ct)
		return decode[api.BulkReport](t, resp, b, http.StatusOK)
	}
	type row struct {
		line   int
		id     string
		status string
	}
	rows := func(r api.BulkReport) []row {
		var out []row
		for _, x := range r.Rows {
			out = append(out, row{x.Line, x.RefundID, x.Status})
		}
		return out
	}

	dry := post(csv, "text/csv", "?dry_run=true")
	if want := []row{{2, "rf_b1", "valid"}, {3, "rf_b2", "invalid"}, {4, "rf_b3", "invalid"}, {5, "rf_b4", "valid"}}; !slices.Equal(rows(dry), want) || !dry.DryRun {
		t.Fatalf("dry run rows = %v, want %v", rows(dry), want)
	}
	if resp, b := h.call(t, "GET", "/v1/refunds/rf_b1", token, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("a dry run wrote rf_b1: %s", b)
	}

	first := post(csv, "text/csv; charset=utf-8", "")
	if want := []row{{2, "rf_b1", "created"}, {3, "rf_b2", "invalid"}, {4, "rf_b3", "invalid"}, {5, "rf_b4", "created"}}; !slices.Equal(rows(first), want) {
		t.Fatalf("rows = %v, want %v", rows(first), want)
	}
	if first.Total != 4 || first.Created != 2 || first.Invalid != 2 || first.Existing != 0 || first.Failed != 0 {
		t.Fatalf("counts = %+v", first)
	}
	if e := first.Rows[2].Errors; len(e) != 1 || e[0].Field != "amount" || !strings.Contains(e[0].Message, "decimals") {
		t.Fatalf("line 4 errors = %+v, want one about the amount's decimals", e)
	}
	if !strings.Contains(first.Rows[1].Detail, "fields") {
		t.Fatalf("line 3 detail = %q, want the field count", first.Rows[1].Detail)
	}
	// Sending the same file again is safe.
	again := post(csv, "text/csv", "")
	if again.Existing != 2 || again.Created != 0 || again.Invalid != 2 {
		t.Fatalf("second run counts = %+v, want 2 existing", again)
	}

	jsonl := `{"refund_id":"rf_j1","provider":"moyasarpg","order_id":"ord_j1","amount":"1.50","currency":"SAR","metadata":{"k":"v"}}` + "\n" +
		`{"refund_id":"rf_j2", oops` + "\n\n" +
		`{"refund_id":"rf_b1","provider":"moyasarpg","order_id":"ord_other","amount":"403.33","currency":"SAR"}` + "\n"
	rep := post(jsonl, "application/x-ndjson", "")
	if want := []row{{1, "rf_j1", "created"}, {2, "rf_j2", "invalid"}, {4, "rf_b1", "invalid"}}; !slices.Equal(rows(rep), want) {
		t.Fatalf("JSONL rows = %v, want %v", rows(rep), want)
	}
	if !strings.Contains(rep.Rows[2].Detail, "order_id") {
		t.Fatalf("a reused refund id should name the differing field: %q", rep.Rows[2].Detail)
	}

	resp, b := h.call(t, "POST", "/v1/refunds/bulk", token, strings.NewReader(csv), "Content-Type", "application/json")
	problem(t, resp, b, http.StatusUnsupportedMediaType)
	resp, b = h.call(t, "POST", "/v1/refunds/bulk", token, strings.NewReader("id,amount\n1,2\n"), "Content-Type", "text/csv")
	if p := problem(t, resp, b, http.StatusBadRequest); !strings.Contains(p.Detail, "column") {
		t.Fatalf("bad header: %+v", p)
	}
}

func TestUnknownRoutesAndMethodsAreProblems(t *testing.T) {
	h := newHarness(t)
	resp, b := h.call(t, "GET", "/v2/refunds", token, nil)
	problem(t, resp, b, http.StatusNotFound)
	resp, b = h.call(t, "DELETE", "/v1/refunds/rf_1", token, nil)
	problem(t, resp, b, http.StatusMethodNotAllowed)
	if allow := resp.Header.Get("Allow"); !strings.Contains(allow, "GET") {
		t.Fatalf("Allow = %q", allow)
	}
	// Without asynqmon mounted, /monitoring is just another unknown route.
	resp, b = h.call(t, "GET", "/monitoring/", token, nil)
	problem(t, resp, b, http.StatusNotFound)
	if id := resp.Header.Get("X-Request-Id"); id == "" {
		t.Fatal("no X-Request-Id")
	}
}

func TestReadyzFollowsRedis(t *testing.T) {
	h := newHarness(t)
	resp, b := h.call(t, "GET", "/readyz", "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("readyz = %d %s", resp.StatusCode, b)
	}
	srv := deadRedisServer(t)
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("readyz with Redis down = %d %s", rec.Code, rec.Body.String())
	}
}

// The OpenAPI document is valid JSON of version 3.1 whose every $ref
// resolves (the route check is in routes_test.go).
func TestOpenAPIDocumentIsWellFormed(t *testing.T) {
	h := newHarness(t)
	resp, b := h.call(t, "GET", "/openapi.json", "", nil)
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil || resp.StatusCode != 200 || doc["openapi"] != "3.1.0" {
		t.Fatalf("openapi.json: %d %v openapi=%v", resp.StatusCode, err, doc["openapi"])
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				node := any(doc)
				for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
					m, _ := node.(map[string]any)
					node = m[part]
				}
				if node == nil {
					t.Errorf("$ref %s does not resolve", ref)
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
}

func quiet() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}
