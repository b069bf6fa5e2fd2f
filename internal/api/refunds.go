package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/refundq/refundq/enqueue"
	"github.com/refundq/refundq/internal/jsonstrict"
	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/tasks"
)

// refundBody is POST /v1/refunds: a bulk row's fields. The amount is kept
// raw, to refuse a JSON number instead of reading it as a float.
type refundBody struct {
	RefundID      string            `json:"refund_id"`
	Provider      string            `json:"provider"`
	OrderID       string            `json:"order_id"`
	TransactionID string            `json:"transaction_id"`
	Amount        json.RawMessage   `json:"amount"`
	Currency      string            `json:"currency"`
	Reason        string            `json:"reason"`
	Metadata      map[string]string `json:"metadata"`
}

// createRefund enqueues one refund. The refund id is the idempotency key:
// 201 for a new refund, 200 with the refund as it stands now for the same
// refund again, 409 naming the fields that differ for the id reused.
func (s *Server) createRefund(w http.ResponseWriter, r *http.Request) {
	var body refundBody
	if !readJSON(w, r, &body) {
		return
	}
	req := enqueue.Request{
		RefundID: body.RefundID, Provider: body.Provider, OrderID: body.OrderID, TransactionID: body.TransactionID,
		Currency: body.Currency, Reason: body.Reason, Metadata: body.Metadata,
	}
	var amountErr *FieldError
	switch raw := bytes.TrimSpace(body.Amount); {
	case len(raw) == 0 || string(raw) == "null":
	case raw[0] == '"':
		if err := json.Unmarshal(raw, &req.Amount); err != nil {
			amountErr = &FieldError{Field: "amount", Pointer: "/amount", Message: "is not a valid JSON string"}
		}
	default:
		amountErr = &FieldError{Field: "amount", Pointer: "/amount", Message: `must be a decimal string such as "12.50", not a JSON number`}
	}
	if amountErr == nil && req.Amount == "" {
		amountErr = &FieldError{Field: "amount", Pointer: "/amount", Message: "is required"}
	}
	// Every field problem at once, an unknown provider's too.
	t, err := s.enq.Validate(req)
	var errs []FieldError
	if amountErr != nil {
		errs = append(errs, *amountErr)
	}
	var verr tasks.ValidationError
	if errors.As(err, &verr) {
		for _, fe := range fieldErrors(verr) {
			if amountErr == nil || fe.Field != "amount" { // the body's amount was refused already
				errs = append(errs, fe)
			}
		}
	}
	if len(errs) > 0 {
		validationProblem(w, r, errs)
		return
	}
	if err != nil {
		s.enqueueProblem(w, r, t, enqueue.Result{}, err)
		return
	}
	res, err := s.enq.EnqueueRefund(r.Context(), t)
	if err != nil {
		s.enqueueProblem(w, r, t, res, err)
		return
	}
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
	}
	w.Header().Set("Location", "/v1/refunds/"+res.Record.RefundID)
	writeJSON(w, status, refundOf(res.Record))
}

// enqueueProblem answers an error of enqueue.Client for refund t.
func (s *Server) enqueueProblem(w http.ResponseWriter, r *http.Request, t tasks.Refund, res enqueue.Result, err error) {
	var verr tasks.ValidationError
	var taken *store.OrderTakenError
	var check *providers.CheckError
	switch {
	case errors.As(err, &verr):
		validationProblem(w, r, fieldErrors(verr))
	case errors.Is(err, store.ErrConflict):
		writeProblem(w, r, Problem{Status: http.StatusConflict, Type: typeConflict,
			Title:  "Refund id already used for a different refund",
			Detail: fmt.Sprintf("refund %s exists with other values; a refund id is the idempotency key of one refund", t.RefundID),
			Errors: differences(res.Record.Refund(), t)})
	case errors.As(err, &taken):
		writeProblem(w, r, Problem{Status: http.StatusConflict, Type: typeOrderTaken,
			Title: "The order already has a refund", Detail: taken.Error(),
			Errors: []FieldError{field("order_id", fmt.Sprintf("already refunded by %s (%s)", taken.Owner, taken.State))}})
	case errors.Is(err, providers.ErrUnknownProvider), errors.Is(err, providers.ErrDisabled):
		validationProblem(w, r, []FieldError{field("provider", err.Error())})
	case errors.As(err, &check):
		writeProblem(w, r, Problem{Status: http.StatusBadRequest, Type: typeProviderRules,
			Title: "The provider can never accept this refund", Detail: check.Error()})
	default:
		s.unavailable(w, r, err, "the refund could not be recorded or enqueued; sending the same request again is safe")
	}
}

// unavailable answers 503 for a failure of Redis (or of the request's
// context); the error itself, which may name hosts, stays in the log.
func (s *Server) unavailable(w http.ResponseWriter, r *http.Request, err error, detail string) {
	s.log.WithFields(logrus.Fields{"request_id": w.Header().Get(requestIDHeader), "path": r.URL.Path}).WithError(err).Error("request failed")
	w.Header().Set("Retry-After", "1")
	writeProblem(w, r, Problem{Status: http.StatusServiceUnavailable, Type: typeUnavailable, Detail: detail})
}

func validationProblem(w http.ResponseWriter, r *http.Request, errs []FieldError) {
	// In the body's order, whatever order the checks ran in.
	slices.SortStableFunc(errs, func(a, b FieldError) int { return fieldRank(a.Field) - fieldRank(b.Field) })
	writeProblem(w, r, Problem{Status: http.StatusBadRequest, Type: typeValidation,
		Title: "The request has invalid fields", Detail: fmt.Sprintf("%d field(s) invalid; see errors", len(errs)), Errors: errs})
}

var fieldOrder = []string{"refund_id", "provider", "order_id", "transaction_id", "amount", "currency", "reason", "metadata"}

func fieldRank(name string) int {
	name, _, _ = strings.Cut(name, ".")
	if i := slices.Index(fieldOrder, name); i >= 0 {
		return i
	}
	return len(fieldOrder)
}

// differences names each identifying field in which want differs from the
// refund recorded under the same id (have).
func differences(have, want tasks.Refund) []FieldError {
	var out []FieldError
	cmp := func(name, a, b string) {
		if a != b {
			out = append(out, field(name, fmt.Sprintf("is %q for this refund id, not %q", a, b)))
		}
	}
	cmp("provider", have.Provider, want.Provider)
	cmp("order_id", have.OrderID, want.OrderID)
	cmp("transaction_id", have.TransactionID, want.TransactionID)
	if have.AmountMinor != want.AmountMinor || have.Currency != want.Currency {
		cmp("amount", have.Money().Decimal(), want.Money().Decimal())
	}
	cmp("currency", have.Currency, want.Currency)
	return out
}

// getRefund answers a refund with its history.
func (s *Server) getRefund(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !validRefundID(id) {
		notFound(w, r, id)
		return
	}
	rec, hist, err := s.enq.Status(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		notFound(w, r, id)
		return
	case err != nil:
		s.unavailable(w, r, err, "the refund could not be read; try again")
		return
	}
	out := refundOf(rec)
	out.History = hist
	if out.History == nil {
		out.History = []store.Entry{}
	}
	writeJSON(w, http.StatusOK, out)
}

func notFound(w http.ResponseWriter, r *http.Request, id string) {
	writeProblem(w, r, Problem{Status: http.StatusNotFound, Detail: fmt.Sprintf("no refund %q", id)})
}

// validRefundID: an id no refund can have is not looked up at all.
func validRefundID(id string) bool {
	err := tasks.Refund{Version: tasks.PayloadVersion, RefundID: id}.Validate()
	var verr tasks.ValidationError
	if errors.As(err, &verr) {
		for _, f := range verr {
			if f.Field == "refund_id" {
				return false
			}
		}
	}
	return true
}

// Listing: limits, and the states a refund can be in.
const (
	defaultLimit = 50
	maxLimit     = 500
)

var states = []store.State{store.Queued, store.Processing, store.Pending, store.Succeeded, store.Failed, store.NeedsReview}

// RefundList is one page of GET /v1/refunds.
type RefundList struct {
	Data []Refund `json:"data"`
	// Total is how many refunds are in the state now.
	Total int `json:"total"`
	// NextCursor fetches the next page; absent on the last one.
	NextCursor string `json:"next_cursor,omitempty"`
}

// listRefunds answers the refunds in one state, oldest in it first, a page
// at a time. The cursor is opaque to clients; it holds the state and an
// offset into the state's index, so a refund that leaves the state between
// two pages shifts the rest by one (one may be skipped, none repeated twice
// in a row): a list to work through, not a ledger.
func (s *Server) listRefunds(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var errs []FieldError
	st := store.State(q.Get("state"))
	known := false
	for _, k := range states {
		known = known || k == st
	}
	if !known {
		names := make([]string, len(states))
		for i, k := range states {
			names[i] = string(k)
		}
		msg := "is required"
		if st != "" {
			msg = fmt.Sprintf("unknown state %q", st)
		}
		errs = append(errs, FieldError{Field: "state", Message: msg + "; one of " + strings.Join(names, ", ")})
	}
	limit := defaultLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			errs = append(errs, FieldError{Field: "limit", Message: fmt.Sprintf("must be a whole number from 1 to %d", maxLimit)})
		}
		limit = n
	}
	offset := 0
	if c := q.Get("cursor"); c != "" {
		cst, n, ok := parseCursor(c)
		switch {
		case !ok:
			errs = append(errs, FieldError{Field: "cursor", Message: "is not a cursor this API gave out"})
		case known && cst != st:
			errs = append(errs, FieldError{Field: "cursor", Message: fmt.Sprintf("belongs to a listing of state %q", cst)})
		}
		offset = n
	}
	if len(errs) > 0 {
		writeProblem(w, r, Problem{Status: http.StatusBadRequest, Type: typeValidation,
			Title: "The request has invalid parameters", Detail: fmt.Sprintf("%d parameter(s) invalid; see errors", len(errs)), Errors: errs})
		return
	}
	recs, total, err := s.store.ListState(r.Context(), st, offset, limit)
	if err != nil {
		s.unavailable(w, r, err, "the refunds could not be listed; try again")
		return
	}
	out := RefundList{Data: make([]Refund, 0, len(recs)), Total: total}
	for _, rec := range recs {
		out.Data = append(out.Data, refundOf(rec))
	}
	if offset+limit < total {
		out.NextCursor = makeCursor(st, offset+limit)
	}
	writeJSON(w, http.StatusOK, out)
}

func makeCursor(st store.State, offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("v1|" + string(st) + "|" + strconv.Itoa(offset)))
}

func parseCursor(c string) (store.State, int, bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return "", 0, false
	}
	parts := strings.Split(string(b), "|")
	if len(parts) != 3 || parts[0] != "v1" {
		return "", 0, false
	}
	n, err := strconv.Atoi(parts[2])
	if err != nil || n < 0 {
		return "", 0, false
	}
	return store.State(parts[1]), n, true
}

// readJSON decodes a request's JSON object into dst, strictly: the
// Content-Type must be JSON, the body at most maxJSON bytes, one object with
// no unknown fields and no key twice in one object. It answers the problem
// and returns false when it cannot.
func readJSON(w http.ResponseWriter, r *http.Request, dst any) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		writeProblem(w, r, Problem{Status: http.StatusUnsupportedMediaType, Detail: "send the body as Content-Type: application/json"})
		return false
	}
	if r.ContentLength > maxJSON {
		tooLarge(w, r, maxJSON)
		return false
	}
	// Read whole (at most 1 MiB), to look for keys twice after decoding.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxJSON))
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		err = dec.Decode(dst)
		if err == nil && dec.Decode(new(json.RawMessage)) != io.EOF {
			invalidBody(w, r, "the body must be one JSON object, with nothing after it", nil)
			return false
		}
	}
	if err == nil {
		// encoding/json keeps a key's last value, other readers of the same
		// body (a proxy, an audit log) its first: refused, as the bulk JSON
		// Lines reader refuses it.
		dups := jsonstrict.Duplicates(body)
		if len(dups) > 0 {
			errs := make([]FieldError, len(dups))
			for i, d := range dups {
				errs[i] = FieldError{Field: d.Name(), Pointer: d.Pointer(), Message: "appears twice; send each key once"}
			}
			invalidBody(w, r, "the body has a key twice in one object", errs)
			return false
		}
		if errs := caseOnly(body, dst); len(errs) > 0 {
			invalidBody(w, r, "the body has a field this API does not know", errs)
			return false
		}
		return true
	}
	var tooBig *http.MaxBytesError
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooBig):
		tooLarge(w, r, maxJSON)
	case errors.Is(err, io.EOF):
		invalidBody(w, r, "the body is empty; send a JSON object", nil)
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		invalidBody(w, r, "the body is not valid JSON: "+err.Error(), nil)
	case errors.As(err, &typ) && typ.Field == "":
		invalidBody(w, r, "the body must be a JSON object", nil)
	case errors.As(err, &typ):
		invalidBody(w, r, "a field has the wrong type", []FieldError{field(typ.Field, "must be a JSON "+jsonKind(typ.Type.Kind().String())+", not "+typ.Value)})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		invalidBody(w, r, "the body has a field this API does not know", []FieldError{field(name, "unknown field")})
	default:
		invalidBody(w, r, "the body could not be read: "+err.Error(), nil)
	}
	return false
}

// caseOnly names each top-level key of body that encoding/json would match,
// by ignoring case, to a field another key of body also names
// ({"refund_id":"a","REFUND_ID":"b"} would be refund b: the last one wins).
// A lone key in another case ("Refund_Id") is still taken, as it always
// was: refusing it now would turn a client's retry of a refund it created
// before into a 400. Bodies are flat (metadata is a map, whose keys are
// matched exactly), so the top level is all there is to check.
func caseOnly(body []byte, dst any) []FieldError {
	var keys map[string]json.RawMessage
	if json.Unmarshal(body, &keys) != nil {
		return nil
	}
	t := reflect.TypeOf(dst).Elem()
	var errs []FieldError
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		var same []string
		for key := range keys {
			if strings.EqualFold(key, name) {
				same = append(same, key)
			}
		}
		if len(same) < 2 {
			continue
		}
		for _, key := range same {
			if key != name {
				errs = append(errs, field(key, fmt.Sprintf("names %s again in another case; send each field once, as %s", name, name)))
			}
		}
	}
	slices.SortFunc(errs, func(a, b FieldError) int { return strings.Compare(a.Field, b.Field) })
	return errs
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "map", "struct":
		return "object"
	case "slice", "array":
		return "array"
	case "bool":
		return "boolean"
	}
	return goKind
}

func invalidBody(w http.ResponseWriter, r *http.Request, detail string, errs []FieldError) {
	writeProblem(w, r, Problem{Status: http.StatusBadRequest, Type: typeInvalidBody, Title: "The request body is not valid", Detail: detail, Errors: errs})
}

func tooLarge(w http.ResponseWriter, r *http.Request, limit int64) {
	writeProblem(w, r, Problem{Status: http.StatusRequestEntityTooLarge,
		Detail: fmt.Sprintf("the body is larger than %d bytes", limit)})
}
