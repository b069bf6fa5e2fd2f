package api_test

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/refundq/refundq/internal/api"
)

// A key twice in one object of a POST /v1/refunds body, at any depth, is
// refused naming each such key: encoding/json would keep the last value,
// and another reader of the same body the first.
func TestDuplicateKeysAreRefused(t *testing.T) {
	h := newHarness(t)
	rest := `"provider":"moyasarpg","order_id":"ord_dup","amount":"1.00","currency":"SAR"`
	twice := func(name, pointer string) api.FieldError {
		return api.FieldError{Field: name, Pointer: pointer, Message: "appears twice; send each key once"}
	}
	for _, tc := range []struct {
		name string
		body string
		want []api.FieldError
	}{
		{"refund_id twice", `{"refund_id":"rf_dup_a","refund_id":"rf_dup_b",` + rest + `}`,
			[]api.FieldError{twice("refund_id", "/refund_id")}},
		{"a metadata key twice", `{"refund_id":"rf_dup_c",` + rest + `,"metadata":{"order_ref":"1","shop":"s","order_ref":"2"}}`,
			[]api.FieldError{twice("metadata.order_ref", "/metadata/order_ref")}},
		// Every one at once; a key is the key encoding/json reads
		// ("refund_\u0069d" is refund_id).
		{"both, one escaped", `{"refund_id":"rf_dup_d","refund_\u0069d":"rf_dup_e",` + rest + `,"metadata":{"a/b":"1","a/b":"2"}}`,
			[]api.FieldError{twice("refund_id", "/refund_id"), twice("metadata.a/b", "/metadata/a~1b")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := h.postJSON(t, "/v1/refunds", tc.body)
			p := problem(t, resp, b, http.StatusBadRequest)
			want := api.Problem{
				Type:  "https://github.com/refundq/refundq/blob/main/README.md#problem-invalid-body",
				Title: "The request body is not valid", Status: http.StatusBadRequest,
				Detail: "the body has a key twice in one object", Instance: "/v1/refunds", RequestID: p.RequestID,
				Errors: tc.want,
			}
			if !reflect.DeepEqual(p, want) {
				t.Fatalf("problem = %+v\nwant      %+v", p, want)
			}
		})
	}
	// encoding/json matches a field's name ignoring case, so "REFUND_ID"
	// beside "refund_id" would be refund_id again, and win.
	for body, key := range map[string]string{
		`{"refund_id":"rf_dup_f","REFUND_ID":"rf_dup_g",` + rest + `}`: "REFUND_ID",
		`{"Refund_Id":"rf_dup_h","refund_id":"rf_dup_i",` + rest + `}`: "Refund_Id",
	} {
		resp, b := h.postJSON(t, "/v1/refunds", body)
		p := problem(t, resp, b, http.StatusBadRequest)
		want := []api.FieldError{{Field: key, Pointer: "/" + key, Message: "names refund_id again in another case; send each field once, as refund_id"}}
		if !strings.HasSuffix(p.Type, "#problem-invalid-body") || !reflect.DeepEqual(p.Errors, want) {
			t.Errorf("%s: problem %s %+v\nwant errors %+v", body, p.Type, p.Errors, want)
		}
	}
	// Nothing was written, under any of the ids.
	for _, id := range []string{"rf_dup_a", "rf_dup_b", "rf_dup_c", "rf_dup_d", "rf_dup_e", "rf_dup_f", "rf_dup_g", "rf_dup_h", "rf_dup_i"} {
		resp, b := h.call(t, http.MethodGet, "/v1/refunds/"+id, token, nil)
		problem(t, resp, b, http.StatusNotFound)
	}
	// A lone key in another case is taken, as it was before: a client's
	// retry must not turn into a 400.
	resp, b := h.postJSON(t, "/v1/refunds", `{"Refund_Id":"rf_dup_j",`+rest+`}`)
	if got := decode[api.Refund](t, resp, b, http.StatusCreated); got.RefundID != "rf_dup_j" {
		t.Fatalf("lone other-case key: refund = %+v", got)
	}
	// The same body with each key once is a refund.
	resp, b = h.postJSON(t, "/v1/refunds", `{"refund_id":"rf_dup_b",`+rest+`,"metadata":{"order_ref":"2","shop":"s"}}`)
	if got := decode[api.Refund](t, resp, b, http.StatusCreated); got.RefundID != "rf_dup_b" || got.Metadata["order_ref"] != "2" {
		t.Fatalf("refund = %+v", got)
	}
}

// Every bad field of a body is in one validation problem: a bad amount
// hides neither an unknown provider nor a bad currency, and a bad currency
// does not hide a bad amount.
func TestEveryBadFieldAtOnce(t *testing.T) {
	h := newHarness(t)
	unknown := api.FieldError{Field: "provider", Pointer: "/provider",
		Message: `unknown provider "paypal" (known: bbmsl, ecartpay, ecomcharge, fatora, moyasarpg)`}
	xxx := api.FieldError{Field: "currency", Pointer: "/currency", Message: `currency "XXX": unknown currency`}
	for _, tc := range []struct {
		name   string
		amount string // as written in the body
		cur    string
		want   []api.FieldError
	}{
		{"a decimal comma", `"12,50"`, "XXX", []api.FieldError{unknown,
			{Field: "amount", Pointer: "/amount", Message: `amount "12,50": only digits and one '.' are allowed (no sign, exponent or separator)`}, xxx}},
		{"a JSON number", `12.5`, "XXX", []api.FieldError{unknown,
			{Field: "amount", Pointer: "/amount", Message: `must be a decimal string such as "12.50", not a JSON number`}, xxx}},
		{"no amount", `""`, "XXX", []api.FieldError{unknown, {Field: "amount", Pointer: "/amount", Message: "is required"}, xxx}},
		{"three decimals in SAR", `"1.234"`, "SAR", []api.FieldError{unknown,
			{Field: "amount", Pointer: "/amount", Message: `amount "1.234": SAR has 2 decimals, got 3`}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"refund_id":"rf_all","provider":"paypal","order_id":"o","amount":` + tc.amount + `,"currency":"` + tc.cur + `"}`
			resp, b := h.postJSON(t, "/v1/refunds", body)
			p := problem(t, resp, b, http.StatusBadRequest)
			if !strings.HasSuffix(p.Type, "#problem-validation-failed") || !reflect.DeepEqual(p.Errors, tc.want) {
				t.Fatalf("problem %s %+v\nwant errors %+v", p.Type, p.Errors, tc.want)
			}
		})
	}
}
