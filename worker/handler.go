package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/sirupsen/logrus"

	"github.com/refundq/refundq/internal/spans"
	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/tasks"
)

// Handler handles refund and poll tasks. It is re-entrant: whatever a
// previous run did or how it died, a run reads the record first and only
// sends a refund when no earlier attempt can have been applied.
type Handler struct {
	store    *store.Store
	registry *providers.Registry
	client   *asynq.Client
	queue    string
	log      *logrus.Logger
	attempt  AttemptPolicy
	// blockedRetry is how long a blocked refund waits before it is tried
	// again (without counting against its retries).
	blockedRetry time.Duration
	// inRunWait is the longest wait a run sleeps through; a longer one
	// hands the task back to asynq for later, freeing the slot.
	inRunWait time.Duration
	// dueMargin: see Config.DueMargin.
	dueMargin time.Duration
	knowledge *knowledge
	// resultsInStore: the store and asynq share a Redis database, so a
	// run's task result is written with its outcome (see result.go).
	resultsInStore bool
	metrics        *metrics
	review         reviewPolicy
	guards         guards

	quit     chan struct{}
	quitOnce sync.Once
}

// Mux routes refundq's task types to the handler.
func (h *Handler) Mux() *asynq.ServeMux {
	mux := asynq.NewServeMux()
	mux.HandleFunc(tasks.TypeRefund, h.HandleRefund)
	mux.HandleFunc(tasks.TypePoll, h.HandlePoll)
	mux.HandleFunc(tasks.TypeReconcile, h.HandleReconcile)
	return mux
}

func (h *Handler) stop() { h.quitOnce.Do(func() { close(h.quit) }) }

func (h *Handler) stopping() bool {
	select {
	case <-h.quit:
		return true
	default:
		return false
	}
}

// snooze hands the task back to asynq for later without counting a failure,
// and counts why.
func (h *Handler) snooze(why string, err error, after time.Duration) error {
	h.metrics.snoozes.WithLabelValues(why).Inc()
	return &snoozeError{err: err, after: after}
}

// errShutdown hands the task back to asynq when the worker is stopping
// between two provider calls; the next run reconciles.
var errShutdown = &snoozeError{err: errors.New("worker shutting down; the task will run again"), after: time.Second}

// HandleRefund handles a TypeRefund task.
func (h *Handler) HandleRefund(ctx context.Context, t *asynq.Task) error {
	r, err := tasks.DecodeRefund(t.Payload())
	if err != nil {
		return h.undecodable(ctx, t, err)
	}
	ctx, span := startRun(ctx, spanRefund, r.Trace, r.RefundID)
	err = h.drive(ctx, t, r.RefundID, nil, &r)
	endRun(span, err)
	return err
}

// HandlePoll handles a TypePoll task.
func (h *Handler) HandlePoll(ctx context.Context, t *asynq.Task) error {
	p, err := tasks.DecodePoll(t.Payload())
	if err != nil {
		return h.undecodable(ctx, t, err)
	}
	ctx, span := startRun(ctx, spanPoll, p.Trace, p.RefundID)
	if span.IsRecording() {
		span.SetAttributes(spans.PollStep.Int(p.Step))
	}
	err = h.drive(ctx, t, p.RefundID, func(rec store.Record) bool {
		if p.Step == rec.PollStep {
			return false
		}
		// A newer poll was scheduled (the refund task re-ran while pending):
		// only the newest poll chain drives the refund.
		h.log.WithFields(logrus.Fields{"refund_id": rec.RefundID, "step": p.Step, "current_step": rec.PollStep}).Debug("stale poll ignored")
		return true
	}, nil)
	if errors.Is(err, store.ErrNotFound) {
		err = fmt.Errorf("poll for unknown refund %s: %w", p.RefundID, asynq.SkipRetry)
	}
	endRun(span, err)
	return err
}

// undecodable handles a task whose payload this build cannot read. A newer
// payload version is a rolling deploy in progress: the task is handed back
// (not counted as a failure) for a newer worker. Anything else is archived
// with the reason, and a refund it names is moved to needs_review so it is not
// left open without a task.
func (h *Handler) undecodable(ctx context.Context, t *asynq.Task, err error) error {
	var head struct {
		Version  int    `json:"v"`
		RefundID string `json:"refund_id"`
	}
	_ = json.Unmarshal(t.Payload(), &head) // best effort: the payload may be the malformed part
	log := h.log.WithFields(logrus.Fields{"task_type": t.Type(), "refund_id": head.RefundID})
	if head.Version > tasks.PayloadVersion {
		log.WithError(err).Warn("task payload is newer than this worker; handed back for a newer worker")
		return h.snooze("newer_payload", fmt.Errorf("payload version %d is newer than this worker's %d: %w", head.Version, tasks.PayloadVersion, err), time.Minute)
	}
	log.WithError(err).Error("malformed task archived")
	if head.RefundID != "" {
		id, _ := asynq.GetTaskID(ctx)
		h.escalate(ctx, head.RefundID, id, fmt.Sprintf("its %s task could not be read and was archived: %v", t.Type(), err))
	}
	return fmt.Errorf("malformed %s task, archived without retry: %v: %w", t.Type(), err, asynq.SkipRetry)
}

// escalate moves an open refund to needs_review when its task is given up,
// so it does not stay open with nothing to drive it.
func (h *Handler) escalate(ctx context.Context, id, taskID, reason string) {
	moved, err := h.store.Escalate(recordCtx(ctx), id, taskID, reason, h.review.first())
	switch {
	case err != nil && !errors.Is(err, store.ErrNotFound):
		h.log.WithField("refund_id", id).WithError(err).Error("could not move the refund to needs_review; the recoverer will find it")
	case moved:
		h.log.WithFields(logrus.Fields{"refund_id": id, "state": store.NeedsReview, "reason": reason}).Error("refund needs review")
	}
}

// drive moves a refund towards a final state: reconcile first if an earlier
// attempt may have been applied, send only when the provider shows nothing
// was, and act on what decide makes of each answer.
// skip, when not nil, lets the caller drop a run that is no longer wanted,
// judged on the record as read under the lease. payload, for a refund task,
// is the refund the task carries: producers create the record before the
// task, and creating it here when it is missing makes a task enqueued by
// other means safe; a task whose payload disagrees with the record of the
// same refund id, or that would be a second refund on an order its provider
// refunds once, is archived.
func (h *Handler) drive(ctx context.Context, t *asynq.Task, id string, skip func(store.Record) bool, payload *tasks.Refund) error {
	lease, rec, err := h.store.Acquire(ctx, id, LeaseTTL)
	if errors.Is(err, store.ErrNotFound) && payload != nil {
		create := h.store.Create
		if h.registry.OncePerOrder(payload.Provider) {
			create = h.store.CreateSole
		}
		if _, _, err = create(ctx, *payload); err == nil {
			lease, rec, err = h.store.Acquire(ctx, id, LeaseTTL)
		}
	}
	if err == nil && payload != nil {
		if diff := rec.Differs(*payload); diff != "" {
			lease.Release(recordCtx(ctx))
			err = fmt.Errorf("refund %s: %w: %s", id, store.ErrConflict, diff)
		}
	}
	if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrOrderTaken) {
		h.log.WithField("refund_id", id).WithError(err).Error("refund task refused by its record or its order's; archived")
		return fmt.Errorf("%v: %w", err, asynq.SkipRetry)
	}
	var busy *store.BusyError
	if errors.As(err, &busy) {
		return h.snooze("lease_busy", fmt.Errorf("refund %s: %w", id, err), busy.Remaining+time.Second)
	}
	if err != nil {
		return err
	}
	defer lease.Release(recordCtx(ctx))
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go lease.KeepAlive(ctx, cancel)

	log := h.log.WithFields(logrus.Fields{"refund_id": rec.RefundID, "provider": rec.Provider})
	noteRefund(ctx, rec)
	if rec.State.Final() {
		log.WithField("state", rec.State).Debug("refund already final; nothing to do")
		return nil
	}
	if skip != nil && skip(rec) {
		return nil
	}
	taskID, _ := asynq.GetTaskID(ctx)
	r := &run{Handler: h, lease: lease, log: log, rec: rec, task: taskID, result: t.ResultWriter(), b: h.newBackoff(ctx)}
	err = r.drive(ctx)
	noteRefund(ctx, r.rec)
	if err != nil && !isSnooze(err) && !isSkipRetry(err) {
		if lastRun(ctx) {
			// asynq gives up on the task after this: never leave the refund
			// open without one.
			return r.finalize(ctx, err)
		}
		// asynq runs it again after the delay chosen here (retryDelay reads
		// it from the error); the recoverer looks if it has not by then.
		var ra *retryAfterError
		if !errors.As(err, &ra) || ra.after <= 0 {
			n, _ := asynq.GetRetryCount(ctx) // as asynq passes retryDelay: the retries done
			ra = &retryAfterError{err: err, after: jittered(baseRetryDelay(n))}
			err = ra
		}
		_ = h.store.Postpone(recordCtx(ctx), id, ra.after+h.dueMargin)
	}
	return err
}

// LeaseTTL is how long a worker holds a refund without renewing; it renews
// every third of it. A killed worker's refund is free again after this.
const LeaseTTL = 30 * time.Second

// recordCtx lets an outcome be written even when the handler's context has
// just ended (task timeout, shutdown deadline): losing the record of a call
// that reached the provider costs a reconcile, or worse. go-redis's own
// read and write timeouts still bound the write.
func recordCtx(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }
