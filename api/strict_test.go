package api_test

import (
	"net/http"
	"reflect"
	"testing"

	"github.com/refundq/refundq/api"
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
	// Nothing was written, under either id.
	for _, id := range []string{"rf_dup_a", "rf_dup_b", "rf_dup_c", "rf_dup_d", "rf_dup_e"} {
		resp, b := h.call(t, http.MethodGet, "/v1/refunds/"+id, token, nil)
		problem(t, resp, b, http.StatusNotFound)
	}
	// The same body with each key once is a refund.
	resp, b := h.postJSON(t, "/v1/refunds", `{"refund_id":"rf_dup_b",`+rest+`,"metadata":{"order_ref":"2","shop":"s"}}`)
	if got := decode[api.Refund](t, resp, b, http.StatusCreated); got.RefundID != "rf_dup_b" || got.Metadata["order_ref"] != "2" {
		t.Fatalf("refund = %+v", got)
	}
}
