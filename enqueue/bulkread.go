package enqueue

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/refundq/refundq/internal/jsonstrict"
)

// Reading a bulk file (CSV or JSON Lines) into rows; bulk.go enqueues them.

// Format is a bulk file's format.
type Format int

// Bulk file formats.
const (
	CSV   Format = iota // header refund_id,provider,order_id,transaction_id,amount,currency,reason
	JSONL               // one JSON object per line with the same keys
)

// FormatFor picks the format from the file name (.csv, .jsonl, .ndjson),
// else from the first non-blank byte of the content ('{' is JSON Lines).
func FormatFor(name string, head []byte) Format {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".csv":
		return CSV
	case ".jsonl", ".ndjson":
		return JSONL
	}
	if t := bytes.TrimLeft(head, " \t\r\n\ufeff"); len(t) > 0 && t[0] == '{' {
		return JSONL
	}
	return CSV
}

// Row is one refund read from a bulk file. Line is the physical 1-based line
// it started on; Err is set when the row could not be read as a request.
type Row struct {
	Line    int
	Request Request
	Err     error
}

// csvColumns are the CSV header's columns; required ones must be present.
var csvColumns = map[string]bool{
	"refund_id": true, "provider": true, "order_id": true, "transaction_id": false,
	"amount": true, "currency": true, "reason": false,
}

// ReadBulk reads every row of a bulk file. A malformed row becomes a Row
// with Err, so the rest of the file still goes through; only an unusable
// file (bad CSV header, read failure) is an error.
func ReadBulk(r io.Reader, format Format) ([]Row, error) {
	if format == JSONL {
		return readJSONL(r)
	}
	return readCSV(r)
}

func readCSV(r io.Reader) ([]Row, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1 // checked per row, so one short row is reported, not fatal
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err != nil {
		if err == io.EOF {
			return nil, fmt.Errorf("bulk: the file is empty; a CSV file starts with the header %s", columnList())
		}
		return nil, fmt.Errorf("bulk: read CSV header: %w", err)
	}
	cols := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if _, ok := csvColumns[h]; !ok {
			return nil, fmt.Errorf("bulk: line 1: unknown column %s (want %s)", quoteInput(h), columnList())
		}
		if _, dup := cols[h]; dup {
			return nil, fmt.Errorf("bulk: line 1: column %s twice", quoteInput(h))
		}
		cols[h] = i
	}
	for c, required := range csvColumns {
		if _, ok := cols[c]; required && !ok {
			return nil, fmt.Errorf("bulk: line 1: missing column %q (want %s)", c, columnList())
		}
	}
	var rows []Row
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				rows = append(rows, Row{Line: pe.StartLine, Err: fmt.Errorf("malformed CSV: %v", pe.Err)})
				continue
			}
			return rows, fmt.Errorf("bulk: read: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if len(rec) != len(header) {
			row := Row{Line: line, Err: fmt.Errorf("%d fields, header has %d", len(rec), len(header))}
			if i := cols["refund_id"]; i < len(rec) {
				row.Request.RefundID = strings.TrimSpace(rec[i]) // to name the row in the report
			}
			rows = append(rows, row)
			continue
		}
		get := func(c string) string {
			if i, ok := cols[c]; ok {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		rows = append(rows, Row{Line: line, Request: Request{
			RefundID: get("refund_id"), Provider: get("provider"), OrderID: get("order_id"),
			TransactionID: get("transaction_id"), Amount: get("amount"), Currency: get("currency"), Reason: get("reason"),
		}})
	}
}

func columnList() string {
	return "refund_id,provider,order_id,transaction_id,amount,currency,reason"
}

// MaxLine is the longest line a bulk file may have: 16 MiB. A longer JSON
// Lines row is reported as a bad row, and the rest of the file still goes
// through; a longer CSV record is read whole (CSV has no line limit).
const MaxLine = 16 << 20

// jsonFields are the keys a JSON Lines object may have.
var jsonFields = map[string]bool{
	"refund_id": true, "provider": true, "order_id": true, "transaction_id": true,
	"amount": true, "currency": true, "reason": true, "metadata": true,
}

func readJSONL(r io.Reader) ([]Row, error) {
	br := bufio.NewReaderSize(r, 64*1024)
	var rows []Row
	for n := 1; ; n++ {
		line, tooLong, err := readLine(br, MaxLine)
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			return rows, fmt.Errorf("bulk: read line %d: %w", n, err)
		}
		switch b := bytes.TrimSpace(line); {
		case tooLong:
			rows = append(rows, Row{Line: n, Err: fmt.Errorf("line longer than %d MiB, the limit of a bulk line", MaxLine>>20)})
		case len(b) > 0:
			req, rerr := parseJSONLine(b)
			rows = append(rows, Row{Line: n, Request: req, Err: rerr})
		}
	}
}

// readLine returns the next line without its newline, or io.EOF when there
// is none. A line longer than limit is read to its end and reported as
// tooLong, without being kept in memory.
func readLine(br *bufio.Reader, limit int) (line []byte, tooLong bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(chunk) > limit+1 { // +1: the newline
				tooLong, line = true, nil
			} else {
				line = append(line, chunk...)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if n := len(line); n > 0 && line[n-1] == '\n' {
			line = line[:n-1]
		}
		if err == io.EOF && (len(chunk) > 0 || tooLong) {
			err = nil // a last line without a newline; the next call says EOF
		}
		return line, tooLong, err
	}
}

// parseJSONLine reads one JSON Lines row: exactly one object, with only the
// known keys, each of the right type. Errors name the field; they quote what
// the line holds at most quoteMax characters long.
func parseJSONLine(b []byte) (Request, error) {
	var req Request
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return req, jsonErr(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return req, fmt.Errorf("want one JSON object per line, got %s", kindOfToken(tok))
	}
	var problems []string
	// At any depth, metadata too: the single-refund API refuses the same.
	for _, d := range jsonstrict.Duplicates(b) {
		problems = append(problems, fmt.Sprintf("field %s appears twice", clip(d.Name())))
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return req, jsonErr(err)
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return req, jsonErr(err)
		}
		if !jsonFields[key] {
			problems = append(problems, fmt.Sprintf("unknown field %s (want %s, metadata)", quoteInput(key), columnList()))
			continue
		}
		if err := setField(&req, key, raw); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return req, jsonErr(err)
	}
	end := dec.InputOffset()
	if _, err := dec.Token(); err != io.EOF {
		return req, fmt.Errorf("more after the JSON object that ends at byte %d: one object per line", end)
	}
	if len(problems) > 0 {
		return req, errors.New(strings.Join(problems, "; "))
	}
	return req, nil
}

// setField sets one known field of req from its JSON value.
func setField(req *Request, key string, raw json.RawMessage) error {
	str := func(dst *string) error {
		if string(raw) == "null" {
			return nil
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return fmt.Errorf("field %s: want a string, got %s", key, kindOf(raw))
		}
		return nil
	}
	switch key {
	case "refund_id":
		return str(&req.RefundID)
	case "provider":
		return str(&req.Provider)
	case "order_id":
		return str(&req.OrderID)
	case "transaction_id":
		return str(&req.TransactionID)
	case "currency":
		return str(&req.Currency)
	case "reason":
		return str(&req.Reason)
	case "amount":
		// A string ("403.33") or a bare JSON number (403.33); either way
		// its digits are kept as written, never parsed into a float.
		switch k := kindOf(raw); k {
		case "a number":
			req.Amount = string(raw)
			return nil
		case "a string":
			return str(&req.Amount)
		default:
			return fmt.Errorf("field amount: want a string like \"403.33\" or a number, got %s", k)
		}
	case "metadata":
		if string(raw) == "null" {
			return nil
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return fmt.Errorf("field metadata: want an object of strings, got %s", kindOf(raw))
		}
		req.Metadata = make(map[string]string, len(m))
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			var v string
			if err := json.Unmarshal(m[k], &v); err != nil {
				return fmt.Errorf("field metadata.%s: want a string, got %s", clip(k), kindOf(m[k]))
			}
			req.Metadata[k] = v
		}
	}
	return nil
}

// kindOf names the JSON type of a valid JSON value, for messages.
func kindOf(raw json.RawMessage) string {
	b := bytes.TrimSpace(raw)
	if len(b) == 0 {
		return "nothing"
	}
	switch b[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

func kindOfToken(tok json.Token) string {
	switch t := tok.(type) {
	case json.Delim:
		if t == '[' {
			return "an array"
		}
		return fmt.Sprintf("%q", string(t))
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return "something else"
}

// jsonErr words a syntax error of a JSON Lines row.
func jsonErr(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("invalid JSON at byte %d: %v", se.Offset, se)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return errors.New("invalid JSON: the object is not closed on this line (one object per line)")
	}
	return fmt.Errorf("invalid JSON: %v", err)
}

// quoteMax is how much of a user's input a message quotes.
const quoteMax = 64

// clip shortens s to quoteMax characters, marking the cut with "…".
func clip(s string) string {
	if utf8.RuneCountInString(s) <= quoteMax {
		return s
	}
	r := []rune(s)
	return string(r[:quoteMax]) + "…"
}

// quoteInput quotes user input for a message, at most quoteMax characters
// of it.
func quoteInput(s string) string {
	if c := clip(s); c != s {
		return strconv.Quote(strings.TrimSuffix(c, "…")) + "…"
	}
	return strconv.Quote(s)
}
