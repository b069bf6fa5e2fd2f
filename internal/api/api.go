// Package api is refundq's HTTP API: enqueue a refund (one or a bulk file),
// read it with its history, list refunds by state, settle one a human has
// checked with the provider, asynqmon mounted at /monitoring, and the review
// console (package console) at /console. Every route but /healthz, /readyz,
// /openapi.json and the sign-in forms needs a bearer token (the /monitoring
// and /console pages take their own session cookie too); every API error is
// an RFC 9457 problem document; amounts are decimal strings, never JSON
// numbers.
//
// It calls the producers' library (package enqueue) for everything that
// writes, so a refund enqueued over HTTP follows the same rules as one
// enqueued from Go: the refund id is the idempotency key.
package api

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"runtime/debug"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"

	"github.com/refundq/refundq/enqueue"
	"github.com/refundq/refundq/internal/store"
)

// Request size limits: a JSON body, and a bulk file. A larger body is
// answered 413 without being read to its end.
const (
	maxJSON = 1 << 20  // 1 MiB
	maxBulk = 64 << 20 // 64 MiB
)

// Config configures a Server.
type Config struct {
	Enqueue *enqueue.Client // required: every write goes through it
	Store   *store.Store    // required: records, histories and state lists are read from it
	Tokens  *Tokens         // required (ParseTokens)
	// Redis is pinged by /readyz; nil makes /readyz answer like /healthz.
	Redis redis.UniversalClient
	// Monitoring, when set, is served at /monitoring/ behind the same
	// tokens (NewMonitoring builds asynqmon so).
	Monitoring http.Handler
	// BulkUploads is how many bulk files are enqueued at once; more wait
	// for none and get 429. Default 2: each holds its rows in memory.
	BulkUploads int
	Logger      *logrus.Logger // default logrus.StandardLogger()
	// Metrics is where GET /metrics reads from and the API's own metrics
	// go; default a registry of its own with the Go and process collectors.
	Metrics *prometheus.Registry
}

// Server is the API's http.Handler.
type Server struct {
	enq     *enqueue.Client
	store   *store.Store
	tokens  *Tokens
	rdb     redis.UniversalClient
	log     *logrus.Logger
	mux     *http.ServeMux
	routes  []route
	bulk    chan struct{} // one slot per bulk upload in progress
	metrics *apiMetrics
}

// access is who may call a route.
type access int

const (
	public       access = iota // no token: health and the API's description
	bearerOnly                 // the API: Authorization: Bearer only
	monitoring                 // asynqmon: bearer or its session cookie
	consolePages               // the review console: bearer or its session cookie
)

// route is one ServeMux pattern. The mux is built from routes alone, so the
// OpenAPI test can hold the document to them.
type route struct {
	pattern string
	access  access
	scope   Scope // what a bearerOnly route's token must have
	handler http.Handler
}

// New returns the API server.
func New(cfg Config) (*Server, error) {
	if cfg.Enqueue == nil || cfg.Store == nil || cfg.Tokens == nil {
		return nil, fmt.Errorf("api: Enqueue, Store and Tokens are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = logrus.StandardLogger()
	}
	if cfg.BulkUploads <= 0 {
		cfg.BulkUploads = 2
	}
	s := &Server{
		enq: cfg.Enqueue, store: cfg.Store, tokens: cfg.Tokens, rdb: cfg.Redis, log: cfg.Logger,
		mux: http.NewServeMux(), bulk: make(chan struct{}, cfg.BulkUploads),
	}
	s.routes = []route{
		{"POST /v1/refunds", bearerOnly, ScopeWrite, http.HandlerFunc(s.createRefund)},
		{"GET /v1/refunds", bearerOnly, ScopeRead, http.HandlerFunc(s.listRefunds)},
		{"GET /v1/refunds/{id}", bearerOnly, ScopeRead, http.HandlerFunc(s.getRefund)},
		{"POST /v1/refunds/{id}/settle", bearerOnly, ScopeSettle, http.HandlerFunc(s.settleRefund)},
		{"POST /v1/refunds/bulk", bearerOnly, ScopeWrite, http.HandlerFunc(s.bulkRefunds)},
		{"POST /v1/reconciliations", bearerOnly, ScopeWrite, http.HandlerFunc(s.startReconciliation)},
		{"GET /v1/reconciliations/{id}", bearerOnly, ScopeRead, http.HandlerFunc(s.getReconciliation)},
		{"GET /openapi.json", public, "", http.HandlerFunc(serveOpenAPI)},
		{"GET /healthz", public, "", http.HandlerFunc(healthz)},
		{"GET /readyz", public, "", http.HandlerFunc(s.readyz)},
		{"GET /metrics", bearerOnly, ScopeRead, nil}, // set below: it reports the routes
	}
	if cfg.Monitoring != nil {
		s.routes = append(s.routes,
			route{"GET " + monitoringRoot + "/login", public, "", s.login(monitoringArea)},
			route{"POST " + monitoringRoot + "/login", public, "", s.login(monitoringArea)},
			route{monitoringRoot + "/", monitoring, ScopeRead, cfg.Monitoring},
		)
	}
	cons, err := s.consoleRoutes(cfg.Store)
	if err != nil {
		return nil, err
	}
	s.routes = append(s.routes, cons...)
	s.metrics = newAPIMetrics(cfg.Metrics, cfg.Redis, s.routes)
	for i, rt := range s.routes {
		if rt.pattern == "GET /metrics" {
			s.routes[i].handler = s.metrics.handler()
			rt = s.routes[i]
		}
		// Traced inside the token check: a caller without a valid token
		// chooses no trace id and no sampling decision of ours.
		h := traced(rt.pattern, rt.handler)
		switch rt.access {
		case bearerOnly:
			h = s.requireBearer(rt.scope, h)
		case monitoring:
			h = s.requireSession(monitoringArea, monitoringScope, h)
		case consolePages:
			h = s.requireSession(consoleArea, func(*http.Request) Scope { return rt.scope }, h)
		}
		s.mux.Handle(rt.pattern, h)
	}
	return s, nil
}

const requestIDHeader = "X-Request-Id"

// A request id given by the client is kept when it looks like one.
var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

// reqInfo is what the outer handler learns about a request while inner ones
// run, for its log line.
type reqInfo struct {
	who  Identity
	form string // the anti-CSRF token of the console's forms (formToken)
}

type infoKey struct{}

func info(r *http.Request) *reqInfo {
	if i, ok := r.Context().Value(infoKey{}).(*reqInfo); ok {
		return i
	}
	return &reqInfo{}
}

// ServeHTTP gives each request an id, safe headers and one log line, turns
// a panic into a 500 problem, and answers unknown routes and methods with
// problems too.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := r.Header.Get(requestIDHeader)
	if !requestIDPattern.MatchString(id) {
		id = uuid.NewString()
	}
	h := w.Header()
	h.Set(requestIDHeader, id)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	ri := &reqInfo{}
	r = r.WithContext(context.WithValue(r.Context(), infoKey{}, ri))
	sw := &statusWriter{ResponseWriter: w}
	_, pattern := s.mux.Handler(r)
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.WithFields(logrus.Fields{"request_id": id, "panic": fmt.Sprint(p), "stack": string(debug.Stack())}).Error("handler panicked")
			if sw.status == 0 {
				writeProblem(sw, r, Problem{Status: http.StatusInternalServerError})
			}
		}
		d := time.Since(start)
		s.metrics.observe(pattern, sw.code(), d)
		s.logRequest(r, sw, pattern, ri, d)
	}()
	if pattern == "" {
		s.unrouted(sw, r)
		return
	}
	s.mux.ServeHTTP(sw, r)
}

// unrouted answers what the mux itself would (404, 405 with Allow, or its
// redirect of /monitoring to /monitoring/), with a problem for the errors.
func (s *Server) unrouted(w http.ResponseWriter, r *http.Request) {
	cw := &captureWriter{header: http.Header{}}
	s.mux.ServeHTTP(cw, r)
	if cw.status < 400 {
		for k, v := range cw.header {
			w.Header()[k] = v
		}
		w.WriteHeader(cw.status)
		return
	}
	if allow := cw.header.Get("Allow"); allow != "" {
		w.Header().Set("Allow", allow)
	}
	detail := "no such route; see /openapi.json"
	if cw.status == http.StatusMethodNotAllowed {
		detail = "this route does not take " + r.Method + "; allowed: " + cw.header.Get("Allow")
	}
	writeProblem(w, r, Problem{Status: cw.status, Detail: detail})
}

func (s *Server) logRequest(r *http.Request, sw *statusWriter, pattern string, ri *reqInfo, d time.Duration) {
	f := logrus.Fields{
		"method": r.Method, "route": pattern, "path": r.URL.Path, "status": sw.code(), "bytes": sw.n,
		"duration_ms": d.Milliseconds(), "request_id": sw.Header().Get(requestIDHeader),
	}
	if ri.who.TokenID != "" {
		f["token_id"], f["token_name"] = ri.who.TokenID, ri.who.Name
	}
	e := s.log.WithFields(f)
	switch {
	case sw.code() >= 500:
		e.Error("request")
	case (pattern == monitoringRoot+"/" || pattern == "GET /metrics") && sw.code() < 400:
		e.Debug("request") // the asynqmon page polls its API every few seconds
	default:
		e.Info("request")
	}
}

// statusWriter remembers the status and size of an answer.
type statusWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}

func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// Unwrap lets http.ResponseController reach the connection (asynqmon's
// handlers flush).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// captureWriter keeps what the mux answers for a request no route takes.
type captureWriter struct {
	header http.Header
	status int
}

func (c *captureWriter) Header() http.Header { return c.header }
func (c *captureWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return len(b), nil
}
func (c *captureWriter) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
}

// healthz answers 200 while the process serves HTTP.
func healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 when Redis answers a PING within a second, else 503:
// without Redis the API can neither enqueue nor read a refund.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.rdb != nil {
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		defer cancel()
		if err := s.rdb.Ping(ctx).Err(); err != nil {
			s.log.WithError(err).Warn("readyz: Redis does not answer")
			w.Header().Set("Retry-After", "5")
			writeProblem(w, r, Problem{Status: http.StatusServiceUnavailable, Type: typeUnavailable, Detail: "Redis does not answer"})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
