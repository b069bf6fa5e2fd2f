package api

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/refundq/refundq/tasks"
)

// Problem is an RFC 9457 problem document: every error the API answers is
// one, as application/problem+json.
type Problem struct {
	// Type names the kind of problem; a client branches on it, never on
	// Title or Detail. "about:blank" when the status says it all.
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Instance is the request's path.
	Instance string `json:"instance,omitempty"`
	// RequestID is the X-Request-Id of the request, for the logs.
	RequestID string `json:"request_id,omitempty"`
	// Errors lists every problem with a field of the request at once.
	Errors []FieldError `json:"errors,omitempty"`
}

// FieldError is one problem with one field of a request body.
type FieldError struct {
	Field   string `json:"field"`             // as named in the request: "amount", "metadata.order_ref"
	Pointer string `json:"pointer,omitempty"` // RFC 6901 JSON pointer to it: "/amount", "/metadata/order_ref"
	Message string `json:"message"`
}

// Problem types. Each is a row of docs/API.md ("Problem types"). The URI is
// the type, and clients compare it, so it keeps the address it was first
// published with (the README, which holds an anchor for each beside its link
// to API.md) when the table moves.
const (
	problemBase       = "https://github.com/refundq/refundq/blob/main/README.md#problem-"
	typeValidation    = problemBase + "validation-failed"
	typeInvalidBody   = problemBase + "invalid-body"
	typeConflict      = problemBase + "refund-id-conflict"
	typeOrderTaken    = problemBase + "order-taken"
	typeNotReview     = problemBase + "not-in-review"
	typeBusy          = problemBase + "refund-busy"
	typeScope         = problemBase + "scope-missing"
	typeUnavailable   = problemBase + "unavailable"
	typeProviderRules = problemBase + "provider-rules"
	typeBlank         = "about:blank"
)

// fieldErrors turns a tasks.ValidationError into field errors with JSON
// pointers ("metadata.k" → "/metadata/k").
func fieldErrors(v tasks.ValidationError) []FieldError {
	out := make([]FieldError, 0, len(v))
	for _, f := range v {
		out = append(out, field(f.Field, f.Message))
	}
	return out
}

func field(name, msg string) FieldError {
	fe := FieldError{Field: name, Message: msg}
	if name != "" {
		// RFC 6901: "~" is "~0", "/" is "~1"; the first "." parts the
		// metadata key from "metadata".
		parts := strings.SplitN(name, ".", 2)
		for i, p := range parts {
			parts[i] = strings.NewReplacer("~", "~0", "/", "~1").Replace(p)
		}
		fe.Pointer = "/" + strings.Join(parts, "/")
	}
	return fe
}

// writeProblem answers p. Its Status is the HTTP status.
func writeProblem(w http.ResponseWriter, r *http.Request, p Problem) {
	if p.Type == "" {
		p.Type = typeBlank
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	if r != nil {
		p.Instance = r.URL.Path
		p.RequestID = w.Header().Get(requestIDHeader)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// writeJSON answers v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
