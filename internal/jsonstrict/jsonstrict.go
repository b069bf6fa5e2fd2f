// Package jsonstrict finds what encoding/json lets through without a word:
// a key that appears twice in one object. encoding/json keeps the last
// value, other parsers the first, so {"refund_id":"a","refund_id":"b"} is a
// different refund to a proxy that logged it than to us. The API's JSON
// bodies and the bulk JSON Lines reader both refuse such a document.
package jsonstrict

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Duplicate is a key that appears more than once in one object.
type Duplicate struct {
	// Path leads from the top of the document to the key: the keys of the
	// objects and the indexes ("0", "1", …) of the arrays it is in, then
	// the key itself.
	Path []string
}

// Name is the path joined with ".": "metadata.order_ref".
func (d Duplicate) Name() string { return strings.Join(d.Path, ".") }

// Pointer is the RFC 6901 JSON pointer to the key: "/metadata/order_ref".
func (d Duplicate) Pointer() string {
	esc := strings.NewReplacer("~", "~0", "/", "~1")
	var b strings.Builder
	for _, p := range d.Path {
		b.WriteString("/" + esc.Replace(p))
	}
	return b.String()
}

// Duplicates returns every key that appears more than once in one object of
// the JSON document b, at any depth, each once, in the order met. Keys are
// compared as encoding/json reads them ("\u0061" is "a"). For a b that is
// not valid JSON it returns nil: the caller's own decoding says what is
// wrong, in its own words.
func Duplicates(b []byte) []Duplicate {
	if !json.Valid(b) {
		return nil
	}
	// One pass over the bytes with a stack of the open objects and arrays,
	// without encoding/json's allocations per token (a bulk file may have
	// a million rows): json.Valid has checked everything but the shape,
	// and the depth (at most 10000, as encoding/json reads).
	type open struct {
		object bool
		key    bool           // an object's next string is a key
		seen   map[string]int // an object's keys so far
		n      int            // an array's elements so far
	}
	var (
		stack []*open
		path  []string // to the value being read: one element per open container it is in
		out   []Duplicate
	)
	top := func() *open {
		if len(stack) == 0 {
			return nil
		}
		return stack[len(stack)-1]
	}
	// begins and ends bracket each value: its place in an array is its
	// index; after it, an object expects a key again.
	begins := func() {
		if t := top(); t != nil && !t.object {
			path = append(path, strconv.Itoa(t.n))
			t.n++
		}
	}
	ends := func() {
		if t := top(); t != nil {
			path = path[:len(path)-1]
			t.key = t.object
		}
	}
	for i := 0; i < len(b); i++ {
		switch c := b[i]; c {
		case ' ', '\t', '\n', '\r', ',', ':':
		case '{', '[':
			begins()
			stack = append(stack, &open{object: c == '{', key: c == '{'})
		case '}', ']':
			stack = stack[:len(stack)-1]
			ends()
		case '"':
			j := i + 1
			for ; b[j] != '"'; j++ {
				if b[j] == '\\' {
					j++
				}
			}
			raw := b[i : j+1]
			i = j
			if t := top(); t != nil && t.key {
				key := keyOf(raw)
				if t.seen == nil {
					t.seen = map[string]int{}
				}
				if t.seen[key]++; t.seen[key] == 2 {
					out = append(out, Duplicate{Path: append(append([]string(nil), path...), key)})
				}
				path = append(path, key)
				t.key = false
				continue
			}
			begins()
			ends()
		default: // a number, true, false or null
			for i+1 < len(b) && !strings.ContainsRune(" \t\n\r,]}", rune(b[i+1])) {
				i++
			}
			begins()
			ends()
		}
	}
	return out
}

// keyOf is a key as encoding/json reads it: escapes resolved, and invalid
// UTF-8 replaced.
func keyOf(raw []byte) string {
	if bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
		return string(raw[1 : len(raw)-1])
	}
	var key string
	json.Unmarshal(raw, &key) // valid: json.Valid read it
	return key
}
