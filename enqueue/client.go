// Package enqueue is the producers' library: it validates a refund request,
// records it, and enqueues its task, idempotently by refund id.
package enqueue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"

	"github.com/refundq/refundq/internal/durability"
	"github.com/refundq/refundq/internal/spans"
	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/providers/catalog"
	"github.com/refundq/refundq/tasks"
)

// Client enqueues refunds. It is safe for concurrent use.
type Client struct {
	ac       *asynq.Client
	store    *store.Store
	registry *providers.Registry
	queue    string
	insp     *asynq.Inspector

	servedMu sync.Mutex
	servedAt map[string]servedAnswer // by provider; see served

	owned redis.UniversalClient // the go-redis client Open made, closed by Close

	// keeper waits until Redis keeps each new refund before the call
	// returns; it asks what Redis promises at the first write.
	keeper *durability.Keeper
}

// Option configures a Client.
type Option func(*options)

type options struct {
	queue       string
	prefix      string
	registry    *providers.Registry
	queuedGrace time.Duration
	acceptLoss  bool
}

// AcceptRedisLoss lets the client record refunds on a Redis that cannot
// promise to keep what it acknowledged (a lone Redis before 7.2 without
// appendfsync always). Without it, the first enqueue on such a Redis fails
// with what to change: a refund Redis accepted and then lost in a crash
// would be lost, though the producer was told it was taken. Given to Open,
// it is REFUNDQ_ACCEPT_REDIS_LOSS=1, logged as an error: Open still refuses
// a Redis without AOF or with eviction.
func AcceptRedisLoss() Option { return func(o *options) { o.acceptLoss = true } }

// WithQueue sets the asynq queue refund tasks go to (default "default").
func WithQueue(name string) Option { return func(o *options) { o.queue = name } }

// WithPrefix sets the prefix of refundq's record keys (default "refundq:");
// it must match the workers'.
func WithPrefix(p string) Option { return func(o *options) { o.prefix = p } }

// WithQueuedGrace sets how long a new refund may wait for its first run
// before a worker's recoverer makes sure its task exists (default
// store.DueQueued): longer for a producer that queues a large backlog.
func WithQueuedGrace(d time.Duration) Option { return func(o *options) { o.queuedGrace = d } }

// WithRegistry makes every request pass the registry's checks: the provider
// exists, is configured, and accepts this refund; where the provider is
// configured in the registry and can tell (Fatora: the whole payment only),
// it is asked before the refund is accepted. The default is catalog.Rules():
// every provider's own rules, no credentials, nothing asked;
// catalog.FromEnv(os.Getenv).RulesOnly() also asks the providers whose
// credentials are set.
func WithRegistry(r *providers.Registry) Option { return func(o *options) { o.registry = r } }

// New returns a Client using the given Redis for both asynq and the records.
func New(redisOpt asynq.RedisConnOpt, rdb redis.UniversalClient, opts ...Option) *Client {
	o := resolve(opts)
	return newClient(redisOpt, rdb, o, durability.NewKeeper(rdb, o.acceptLoss, logrus.StandardLogger()))
}

// resolve applies opts to the defaults.
func resolve(opts []Option) options {
	o := options{queue: "default", prefix: "refundq:"}
	for _, opt := range opts {
		opt(&o)
	}
	if o.registry == nil {
		o.registry = catalog.Rules()
	}
	return o
}

// newClient is New with the keeper that waits after each write: Open's
// knows already what Redis promises.
func newClient(redisOpt asynq.RedisConnOpt, rdb redis.UniversalClient, o options, keeper *durability.Keeper) *Client {
	return &Client{
		ac:       asynq.NewClient(redisOpt),
		store:    store.New(rdb, o.prefix).WithQueue(o.queue).WithQueuedGrace(o.queuedGrace).WithDurability(keeper.Wait),
		registry: o.registry,
		queue:    o.queue,
		insp:     asynq.NewInspector(redisOpt),
		servedAt: map[string]servedAnswer{},
		keeper:   keeper,
	}
}

// Close releases the asynq client, and the go-redis client when Open made
// it (not one passed to New).
func (c *Client) Close() error {
	c.insp.Close()
	err := c.ac.Close()
	if c.owned != nil {
		if cerr := c.owned.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// Request is a refund as a producer states it: the amount is a decimal string
// in major units ("403.33"), converted once to minor units.
type Request struct {
	RefundID      string            `json:"refund_id"`
	Provider      string            `json:"provider"`
	OrderID       string            `json:"order_id"`
	TransactionID string            `json:"transaction_id,omitempty"`
	Amount        string            `json:"amount"`
	Currency      string            `json:"currency"`
	Reason        string            `json:"reason,omitempty"`
	Metadata      map[string]string `json:"metadata,omitempty"`
}

// Refund converts the request into a validated task payload.
func (r Request) Refund() (tasks.Refund, error) {
	t := tasks.Refund{
		Version: tasks.PayloadVersion, RefundID: r.RefundID, Provider: r.Provider, OrderID: r.OrderID,
		TransactionID: r.TransactionID, Currency: r.Currency, Reason: r.Reason, Metadata: r.Metadata,
	}
	m, err := tasks.ParseMoney(r.Amount, r.Currency)
	if err != nil {
		// Report the amount problem with every other field problem at once.
		verr, _ := t.Validate().(tasks.ValidationError)
		out := tasks.ValidationError{{Field: "amount", Message: err.Error()}}
		if errors.Is(err, tasks.ErrUnknownCurrency) {
			out[0].Field = "currency"
			// A bad currency must not hide a bad amount.
			if aerr := tasks.CheckAmount(r.Amount); aerr != nil {
				out = append(out, tasks.FieldError{Field: "amount", Message: aerr.Error()})
			}
		}
		for _, f := range verr {
			if f.Field != "amount" && f.Field != "currency" {
				out = append(out, f)
			}
		}
		return tasks.Refund{}, out
	}
	t.AmountMinor, t.Currency = m.Minor, m.Currency
	if err := t.Validate(); err != nil {
		return tasks.Refund{}, err
	}
	return t, nil
}

// Validate converts req into a validated task payload as req.Refund does,
// and names a provider the client's registry does not know among the other
// field problems, so a caller can fix them all at once (EnqueueRefund finds
// an unknown provider only once every other field is right).
func (c *Client) Validate(req Request) (tasks.Refund, error) {
	t, err := req.Refund()
	var verr tasks.ValidationError
	if req.Provider == "" || err != nil && !errors.As(err, &verr) {
		return t, err // a missing provider is among them already
	}
	if _, perr := c.registry.Get(req.Provider); errors.Is(perr, providers.ErrUnknownProvider) {
		return tasks.Refund{}, append(verr, tasks.FieldError{Field: "provider", Message: perr.Error()})
	}
	return t, err
}

// Result is what an enqueue call found or made.
type Result struct {
	Record  store.Record
	Created bool // false: the refund id was known, and this is that refund
}

// Enqueue validates req and enqueues it; see EnqueueRefund.
func (c *Client) Enqueue(ctx context.Context, req Request) (Result, error) {
	t, err := req.Refund()
	if err != nil {
		return Result{}, err
	}
	return c.EnqueueRefund(ctx, t)
}

// EnqueueRefund records refund r and enqueues its task. It is idempotent by
// refund id: the same id again returns the existing refund (Created false)
// and never makes a second task or a second refund, even after the first
// task has left asynq; the same id for a different refund is an error
// wrapping store.ErrConflict. Invalid input is a tasks.ValidationError or
// wraps providers.ErrUnknownProvider / providers.ErrDisabled.
//
// When ctx carries a span (OpenTelemetry), the enqueue is a span of its
// trace, and the task carries it (r.Trace is set here) so that the
// refund's runs join the same trace.
func (c *Client) EnqueueRefund(ctx context.Context, r tasks.Refund) (Result, error) {
	ctx, span := startEnqueue(ctx, r, nil)
	r.Trace = spans.Inject(ctx)
	res, err := c.enqueueRefund(ctx, r)
	endEnqueue(span, res, err)
	return res, err
}

func (c *Client) enqueueRefund(ctx context.Context, r tasks.Refund) (Result, error) {
	r.Version = tasks.PayloadVersion
	if err := r.Validate(); err != nil {
		return Result{}, err
	}
	if err := c.check(ctx, r); err != nil {
		return Result{}, err
	}
	create := c.store.Create
	if c.registry.OncePerOrder(r.Provider) {
		create = c.store.CreateSole
	}
	rec, created, err := create(ctx, r)
	if err != nil {
		return Result{Record: rec}, err
	}
	// Only a refund no worker has touched needs its task; a queued record
	// whose task is already there is refused by asynq's task id. This also
	// repairs a producer that died between the two writes: its retry
	// enqueues the missing task.
	if rec.State == store.Queued && rec.Task == tasks.RefundTaskID(r.RefundID) {
		if err := c.enqueueTask(ctx, r); err != nil {
			return Result{Record: rec, Created: created}, err
		}
	}
	return Result{Record: rec, Created: created}, nil
}

// enqueueTask enqueues r's task. asynq keeps a task id while the task is
// archived or retained as completed, so "the id exists" does not mean "it
// will run": such a task of a refund still queued is replaced.
func (c *Client) enqueueTask(ctx context.Context, r tasks.Refund) error {
	task, err := tasks.NewRefundTask(r, c.queue)
	if err != nil {
		return err
	}
	_, err = c.ac.EnqueueContext(ctx, task)
	if !errors.Is(err, asynq.ErrTaskIDConflict) {
		if err != nil {
			return fmt.Errorf("enqueue refund %s: %w", r.RefundID, err)
		}
		return nil
	}
	id := tasks.RefundTaskID(r.RefundID)
	info, err := c.insp.GetTaskInfo(c.queue, id)
	if err != nil {
		if errors.Is(err, asynq.ErrTaskNotFound) {
			return c.enqueueTask(ctx, r) // gone between the two calls
		}
		return fmt.Errorf("enqueue refund %s: task id taken, and its task cannot be read: %w", r.RefundID, err)
	}
	if info.State != asynq.TaskStateArchived && info.State != asynq.TaskStateCompleted {
		return nil // it will run
	}
	if err := c.insp.DeleteTask(c.queue, id); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
		return fmt.Errorf("enqueue refund %s: replace its %s task: %w", r.RefundID, info.State, err)
	}
	if _, err := c.ac.EnqueueContext(ctx, task); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("enqueue refund %s: %w", r.RefundID, err)
	}
	return nil
}

// check applies the registry's rules, asks whether a running worker has the
// provider (see served) and, where the provider is configured here and can
// tell, asks it whether it will ever take r (Fatora: the whole payment only).
func (c *Client) check(ctx context.Context, r tasks.Refund) error {
	if err := c.registry.Check(r); err != nil {
		return err
	}
	err := c.served(ctx, r.Provider)
	if err == nil {
		err = c.registry.Precheck(ctx, r)
	}
	if err == nil {
		return nil
	}
	// A known refund id answers with its record, whatever the workers or the
	// provider say now: the payment may well be refunded by now, by this very
	// refund.
	if _, gerr := c.store.Get(ctx, r.RefundID); gerr == nil {
		return nil
	}
	return err
}

// served refuses a provider that is not configured here (producers need no
// credentials) when workers serving this queue are running and none of them
// has it configured. With no worker running there is nobody to ask: the
// refund waits for one, which fails it, unsent, naming the variables to set.
// The answer is kept for servedFor, so a bulk file asks Redis once a
// provider rather than once a row.
func (c *Client) served(ctx context.Context, provider string) error {
	e, err := c.registry.Get(provider)
	if !errors.Is(err, providers.ErrDisabled) {
		return nil
	}
	c.servedMu.Lock()
	known, ok := c.servedAt[provider]
	c.servedMu.Unlock()
	if ok && time.Since(known.at) < servedFor {
		return known.err
	}
	enabled, anyWorker, err := c.store.Serving(ctx, c.queue, provider)
	if err != nil {
		return nil // a Redis failure surfaces on the write that follows
	}
	var refusal error
	if anyWorker && !enabled {
		refusal = fmt.Errorf("%s: %w: no running worker on queue %q has it; set %s on the workers",
			provider, providers.ErrDisabled, c.queue, strings.Join(e.Missing, " and "))
	}
	c.servedMu.Lock()
	c.servedAt[provider] = servedAnswer{at: time.Now(), err: refusal}
	c.servedMu.Unlock()
	return refusal
}

// servedFor is how long a client trusts what the workers announced; they
// announce every worker.AnnounceEvery, for three times as long.
const servedFor = 2 * time.Second

type servedAnswer struct {
	at  time.Time
	err error
}

// soleHolder is, for a dry run, what creating r would be refused with where
// its provider refunds an order once.
func (c *Client) soleHolder(ctx context.Context, r tasks.Refund) error {
	if !c.registry.OncePerOrder(r.Provider) {
		return nil
	}
	return c.store.SoleHolder(ctx, r)
}

// Status returns a refund's record and history.
func (c *Client) Status(ctx context.Context, refundID string) (store.Record, []store.Entry, error) {
	rec, err := c.store.Get(ctx, refundID)
	if err != nil {
		return store.Record{}, nil, err
	}
	hist, err := c.store.History(ctx, refundID)
	return rec, hist, err
}

// List returns every refund record, oldest first.
func (c *Client) List(ctx context.Context) ([]store.Record, error) { return c.store.List(ctx, 0) }

// Settle closes a needs_review refund by hand, recording who did it; see
// store.Store.Settle.
func (c *Client) Settle(ctx context.Context, refundID string, v store.Settlement) error {
	return c.store.Settle(ctx, refundID, v)
}

// IsInvalid reports whether err is about the request itself (bad field,
// unknown or disabled provider, refund id reused for another refund, a
// second refund on an order its provider refunds once) rather than a failure
// to reach Redis.
func IsInvalid(err error) bool {
	var verr tasks.ValidationError
	return errors.As(err, &verr) || errors.Is(err, providers.ErrUnknownProvider) ||
		errors.Is(err, providers.ErrDisabled) || errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrOrderTaken) ||
		isCheckErr(err)
}

// isCheckErr: a provider's own Check rejected the refund.
func isCheckErr(err error) bool {
	var ce *providers.CheckError
	return errors.As(err, &ce)
}

// Wait returns the refund's record once it is final (succeeded, failed or
// needs_review), or ctx's error. It reads the record with a growing pause
// (100 ms to 2 s); a refund that waits on its provider for days is better
// followed through webhooks or the events stream.
func (c *Client) Wait(ctx context.Context, refundID string) (store.Record, error) {
	pause := 100 * time.Millisecond
	for {
		rec, err := c.store.Get(ctx, refundID)
		if err != nil {
			return store.Record{}, err
		}
		if rec.State.Final() {
			return rec, nil
		}
		select {
		case <-ctx.Done():
			return rec, ctx.Err()
		case <-time.After(pause):
		}
		pause = min(pause*2, 2*time.Second)
	}
}
