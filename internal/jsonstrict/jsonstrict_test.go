package jsonstrict

import (
	"slices"
	"strings"
	"testing"
)

func TestDuplicates(t *testing.T) {
	for _, tc := range []struct {
		doc      string
		names    []string // Name of each, in order
		pointers []string
	}{
		{`{"refund_id":"a","provider":"p"}`, nil, nil},
		{`{"refund_id":"a","refund_id":"b"}`, []string{"refund_id"}, []string{"/refund_id"}},
		{`{"metadata":{"order_ref":"1","shop":"s","order_ref":"2"}}`, []string{"metadata.order_ref"}, []string{"/metadata/order_ref"}},
		// Three times is one duplicate; case matters, as in a map's keys.
		{`{"a":1,"a":2,"a":3,"A":4}`, []string{"a"}, []string{"/a"}},
		// The same key in two objects is no duplicate.
		{`{"a":{"k":1},"b":{"k":1},"c":[{"k":1},{"k":2}]}`, nil, nil},
		// In arrays, at any depth, after values of every kind.
		{`[1,"s",null,true,{"x":[],"y":{},"x":0},[{"z":1,"z":2}]]`, []string{"4.x", "5.0.z"}, []string{"/4/x", "/5/0/z"}},
		{`{"a":{"b":{"c":{"d":1,"d":2}}},"e":1,"e":2}`, []string{"a.b.c.d", "e"}, []string{"/a/b/c/d", "/e"}},
		// Keys as RFC 6901 spells them in a pointer.
		{`{"metadata":{"a/b~c":"1","a/b~c":"2"}}`, []string{"metadata.a/b~c"}, []string{"/metadata/a~1b~0c"}},
		{`{"":1,"":2}`, []string{""}, []string{"/"}},
		// Keys as encoding/json reads them.
		{`{"refund_id":"a","refund_\u0069d":"b"}`, []string{"refund_id"}, []string{"/refund_id"}},
		{"{\"k\xff\":1,\"k\xfe\":2}", []string{"k\ufffd"}, []string{"/k\ufffd"}},
		{`{"\"":1,"\"":2,"x\\":[1,2]}`, []string{`"`}, []string{`/"`}},
		// Not JSON: nothing, whatever came before the error.
		{`{"a":1,"a":2,`, nil, nil},
		{`{"a":1 "a":2}`, nil, nil},
		{``, nil, nil},
		{`"just a string"`, nil, nil},
	} {
		var names, pointers []string
		for _, d := range Duplicates([]byte(tc.doc)) {
			names, pointers = append(names, d.Name()), append(pointers, d.Pointer())
		}
		if !slices.Equal(names, tc.names) || !slices.Equal(pointers, tc.pointers) {
			t.Errorf("%s: %q %q; want %q %q", tc.doc, names, pointers, tc.names, tc.pointers)
		}
	}
}

// As deep as encoding/json reads (10000 levels), and no deeper.
func TestDeepDocument(t *testing.T) {
	for depth, want := range map[int]int{9999: 1, 10000: 0} {
		doc := strings.Repeat(`[`, depth) + `{"k":1,"k":2}` + strings.Repeat(`]`, depth)
		d := Duplicates([]byte(doc))
		if len(d) != want || want == 1 && (len(d[0].Path) != depth+1 || d[0].Path[depth] != "k") {
			t.Errorf("depth %d: %d duplicates, want %d", depth, len(d), want)
		}
	}
}
