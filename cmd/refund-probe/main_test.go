package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestProbe(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(status) }))
	defer srv.Close()
	if err := probe(srv.URL, false, time.Second); err != nil {
		t.Errorf("200: %v", err)
	}
	status = http.StatusServiceUnavailable
	if err := probe(srv.URL, false, time.Second); err == nil {
		t.Error("503 counted as healthy")
	}
	if err := probe(srv.URL, true, time.Second); err != nil {
		t.Errorf("503 with -any-status: %v", err)
	}
	srv.Close()
	if err := probe(srv.URL, true, time.Second); err == nil {
		t.Error("a closed server counted as healthy")
	}
}
