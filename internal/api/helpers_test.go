package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"

	"github.com/refundq/refundq/enqueue"
	"github.com/refundq/refundq/internal/api"
	"github.com/refundq/refundq/internal/logs/logstest"
	"github.com/refundq/refundq/internal/redistest"
	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/providers/catalog"
	"github.com/refundq/refundq/providers/sandbox"
	"github.com/refundq/refundq/tasks"
	"github.com/refundq/refundq/worker"
)

// token is the test server's bearer token with every scope.
const token = "tok_test_0123456789abcdef0123456789abcdef"

// tokenID is token's id in logs and audit records: the first 4 bytes of
// its SHA-256 in hex.
var tokenID = func() string { h := sha256.Sum256([]byte(token)); return hex.EncodeToString(h[:4]) }()

// harness is the API served over real HTTP on a real Redis.
type harness struct {
	env   *redistest.Env
	url   string
	store *store.Store
	logs  *logstest.Buffer
	http  *http.Client
}

type options struct {
	monitoring bool // mount asynqmon
	writable   bool
	registry   *providers.Registry
	tokens     string // the token file's text; default token alone
	tls        bool   // serve over TLS (httptest's certificate)
}

func newHarness(t *testing.T, opts ...func(*options)) *harness {
	t.Helper()
	o := options{}
	for _, f := range opts {
		f(&o)
	}
	env := redistest.New(t)
	if o.tokens == "" {
		o.tokens = token
	}
	toks, err := api.ParseTokens(o.tokens)
	if err != nil {
		t.Fatal(err)
	}
	eopts := []enqueue.Option{enqueue.WithQueue(env.Queue), enqueue.WithPrefix(env.Prefix), enqueue.AcceptRedisLoss()}
	if o.registry != nil {
		eopts = append(eopts, enqueue.WithRegistry(o.registry))
	}
	enq := enqueue.New(env.Asynq, env.Client, eopts...)
	t.Cleanup(func() { enq.Close() })
	logs := &logstest.Buffer{}
	log := logrus.New()
	log.SetOutput(logs)
	log.SetFormatter(&logrus.JSONFormatter{})
	log.SetLevel(logrus.DebugLevel)
	cfg := api.Config{Enqueue: enq, Store: store.New(env.Client, env.Prefix), Tokens: toks, Redis: env.Client, Logger: log}
	if o.monitoring {
		mon := api.NewMonitoring(env.Asynq, o.writable)
		t.Cleanup(func() { mon.Close() })
		cfg.Monitoring = mon
	}
	srv, err := api.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(srv)
	if o.tls {
		hs.StartTLS()
	} else {
		hs.Start()
	}
	t.Cleanup(hs.Close)
	client := hs.Client()
	client.Timeout = 30 * time.Second
	// The tests look at redirects themselves.
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &harness{env: env, url: hs.URL, store: cfg.Store, logs: logs, http: client}
}

// call sends a request with the bearer token (tok "" for none) and returns
// the response with its body read.
func (h *harness) call(t *testing.T, method, path, tok string, body io.Reader, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, h.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := h.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp, b
}

// postJSON sends v (a string is sent as it is) as a JSON body with the token.
func (h *harness) postJSON(t *testing.T, path string, v any) (*http.Response, []byte) {
	t.Helper()
	var body []byte
	switch v := v.(type) {
	case string:
		body = []byte(v)
	default:
		var err error
		if body, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	return h.call(t, http.MethodPost, path, token, bytes.NewReader(body), "Content-Type", "application/json")
}

// problem reads a problem document, checking its media type and status.
func problem(t *testing.T, resp *http.Response, body []byte, status int) api.Problem {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status = %d, want %d; body: %s", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json; body: %s", ct, body)
	}
	var p api.Problem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("problem: %v: %s", err, body)
	}
	if p.Status != status || p.Type == "" || p.Title == "" {
		t.Fatalf("problem = %+v, want status %d with a type and a title", p, status)
	}
	return p
}

// fields returns the field names of a problem's errors.
func fields(p api.Problem) []string {
	var out []string
	for _, e := range p.Errors {
		out = append(out, e.Field)
	}
	return out
}

func decode[T any](t *testing.T, resp *http.Response, body []byte, status int) T {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status = %d, want %d; body: %s", resp.StatusCode, status, body)
	}
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decode %T: %v: %s", v, err, body)
	}
	return v
}

// refund is a valid POST /v1/refunds body for moyasarpg.
func refund(id, order, amount string) map[string]any {
	return map[string]any{"refund_id": id, "provider": "moyasarpg", "order_id": order, "amount": amount, "currency": "SAR", "reason": "requested"}
}

// withWorker starts a real worker on the harness's Redis, paying refunds
// through the Moyasar PG simulator over real HTTP, and returns the
// simulator. The API's enqueue client keeps its default rules-only registry.
func withWorker(t *testing.T, h *harness) sandbox.Sim {
	t.Helper()
	sims, err := sandbox.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var sim sandbox.Sim
	for _, s := range sims {
		if s.Name == providers.MoyasarPG {
			sim = s
		}
	}
	simSrv := httptest.NewServer(sim.Handler)
	t.Cleanup(simSrv.Close)
	env := map[string]string{}
	for _, kv := range sim.Env(simSrv.URL) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	log := logrus.New()
	log.SetOutput(h.logs)
	log.SetFormatter(&logrus.JSONFormatter{})
	w, err := worker.New(worker.Config{AcceptRedisLoss: true,
		Redis: h.env.Asynq, RDB: h.env.Client, Registry: catalog.FromEnv(func(k string) string { return env[k] }),
		Prefix: h.env.Prefix, Queue: h.env.Queue, Logger: log, RecoverEvery: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	return sim
}

// awaitFinal polls GET /v1/refunds/{id} until the refund is final.
func (h *harness) awaitFinal(t *testing.T, id string) api.Refund {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, body := h.call(t, http.MethodGet, "/v1/refunds/"+id, token, nil)
		if resp.StatusCode == http.StatusOK {
			r := decode[api.Refund](t, resp, body, http.StatusOK)
			if r.State.Final() {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("refund %s not final after 30s: %d %s\nlogs:\n%s", id, resp.StatusCode, body, h.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func money(t *testing.T, amount, currency string) tasks.Money {
	t.Helper()
	m, err := tasks.ParseMoney(amount, currency)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// toReview moves an open refund to needs_review, as a worker does when it
// cannot tell what happened.
func (h *harness) toReview(t *testing.T, id string) {
	t.Helper()
	moved, err := h.store.Escalate(context.Background(), id, "", "test: outcome unknown", 0)
	if err != nil || !moved {
		t.Fatalf("escalate %s: moved=%v err=%v", id, moved, err)
	}
}

// lostToReview leaves refund id as automation does when an attempt's answer
// is lost and its look-ups cannot show it: sent, in needs_review as
// outcome_unknown, its next look-up due in ten minutes.
func (h *harness) lostToReview(t *testing.T, id string) {
	t.Helper()
	ctx := context.Background()
	lease, _, err := h.store.Acquire(ctx, id, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lease.MarkSent(ctx, store.Send{Sent: "refund (test)"}); err != nil {
		t.Fatal(err)
	}
	if err := lease.Release(ctx); err != nil {
		t.Fatal(err)
	}
	reason := "the provider's answers cannot show whether the refund was applied: the order lists no refund transaction with our key (yet)"
	if moved, err := h.store.Escalate(ctx, id, "", reason, 10*time.Minute); err != nil || !moved {
		t.Fatalf("escalate %s: moved=%v err=%v", id, moved, err)
	}
}

// deadRedisServer is the API on a Redis that is gone: a port nothing
// listens on.
func deadRedisServer(t *testing.T) *api.Server {
	t.Helper()
	env := redistest.New(t)
	toks, _ := api.ParseTokens(token)
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	t.Cleanup(func() { dead.Close() })
	enq := enqueue.New(env.Asynq, env.Client, enqueue.AcceptRedisLoss())
	t.Cleanup(func() { enq.Close() })
	srv, err := api.New(api.Config{Enqueue: enq, Store: store.New(dead, "x:"), Tokens: toks, Redis: dead, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	return srv
}
