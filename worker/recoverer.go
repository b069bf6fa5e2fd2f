package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/sirupsen/logrus"

	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/tasks"
)

// recoverer makes sure every open refund has a task that will drive it.
// Every open refund sits in an index ordered by when it is next due: when
// what it waits for (its task's next run, poll or try; the lease of a run
// that died) is over, plus a margin. The recoverer takes what is overdue,
// asks asynq for the task the record names in the queue the record names,
// and re-creates it when it is missing, completed or archived; never a
// second live one (asynq refuses the same task id). That covers a producer
// that died between the record and the task, a poll chain broken between
// two writes, an operator's delete or archive in asynqmon, a last retry
// that was snoozed (asynq archives it), and Redis losing a task. A refund
// whose task ran out of retries more than maxResumes times moves to
// needs_review instead: automation has given up on it.
//
// It runs at start, so a worker that lives less than a period still
// recovers, and then every period. A pass goes on while batches come back
// full, for at most a period; taking a batch pushes each refund back by
// claimHold, so recoverers on several workers share a backlog and a refund
// a pass does not finish is due again on its own. Each repair is logged and
// counted.
type recoverer struct {
	h     *Handler
	insp  *asynq.Inspector
	every time.Duration
	// repairs counts tasks re-created; escalations counts refunds moved to
	// needs_review because their task's retries ran out; unreadable counts
	// records skipped because they cannot be parsed.
	repairs, escalations, unreadable atomic.Int64
	// started is closed when the pass at start is over (tests wait on it).
	started chan struct{}
	ticking
}

const (
	// recoverBatch is the refunds taken at once.
	recoverBatch = 200
	// recoverParallel is the checks made at once: each waits on Redis.
	recoverParallel = 8
	// unreadableWait is how long a record that cannot be parsed waits
	// before it is reported again.
	unreadableWait = time.Hour
	// maxResumes bounds how often a refund gets a new task after its task
	// ran out of retries.
	maxResumes = 3
)

func (r *recoverer) start() {
	var once sync.Once
	r.ticking.start(r.every, func(ctx context.Context) {
		r.recover(ctx)
		once.Do(func() { close(r.started) })
	})
}

// claimHold is how long a refund a pass took stays out of the next passes.
func (r *recoverer) claimHold() time.Duration { return LeaseTTL + r.h.dueMargin }

// recover runs one pass: batches of overdue refunds while they come back
// full, for at most a period. It returns how many tasks it re-created.
func (r *recoverer) recover(ctx context.Context) int {
	end := time.Now().Add(r.every)
	n := 0
	for {
		repaired, full := r.batch(ctx)
		n += repaired
		if !full || ctx.Err() != nil || time.Now().After(end) {
			return n
		}
	}
}

// batch checks one batch of overdue refunds and reports how many tasks it
// re-created and whether the batch was full.
func (r *recoverer) batch(ctx context.Context) (int, bool) {
	h := r.h
	od, err := h.store.ClaimOverdue(ctx, recoverBatch, r.claimHold())
	if err != nil {
		if ctx.Err() == nil {
			h.log.WithError(err).Warn("recoverer: cannot list overdue refunds")
		}
		return 0, false
	}
	for id, err := range od.Bad {
		r.unreadable.Add(1)
		h.log.WithField("refund_id", id).WithError(err).Error("recoverer: the refund's record cannot be read; skipped (fix or delete the record)")
		_ = h.store.Postpone(ctx, id, unreadableWait)
	}
	var repaired atomic.Int64
	var wg sync.WaitGroup
	work := make(chan store.Record)
	for range min(recoverParallel, len(od.Records)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for rec := range work {
				if r.check(ctx, rec) {
					repaired.Add(1)
				}
			}
		}()
	}
	for _, rec := range od.Records {
		if ctx.Err() != nil {
			break
		}
		work <- rec
	}
	close(work)
	wg.Wait()
	return int(repaired.Load()), len(od.Records)+len(od.Bad) >= recoverBatch
}

// check makes sure the task rec names is alive; it reports whether it
// re-created it. Whatever it does not finish, the refund is due again after
// the claim's hold.
func (r *recoverer) check(ctx context.Context, rec store.Record) bool {
	h := r.h
	queue := rec.Queue
	if queue == "" {
		queue = h.queue
	}
	log := h.log.WithFields(logrus.Fields{"refund_id": rec.RefundID, "provider": rec.Provider, "state": rec.State, "task_id": rec.Task, "queue": queue})
	info, err := r.insp.GetTaskInfo(queue, rec.Task)
	switch {
	case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
		if !r.stillOpen(ctx, rec) {
			return false
		}
		return r.recreate(ctx, log, rec, queue, "its task is gone", nil)
	case err != nil:
		log.WithError(err).Warn("recoverer: cannot read the refund's task")
		return false
	case info.State == asynq.TaskStateArchived, info.State == asynq.TaskStateCompleted:
		// The record was read before the task: a run may have finished the
		// refund in between. Read it again before touching its task.
		if !r.stillOpen(ctx, rec) {
			return false
		}
		why := fmt.Sprintf("its task was %s while the refund is %s", info.State, rec.State)
		// Spent: by failures (its last run died, or could not record the
		// refund's review), or archived by hand while it waited for its
		// last run.
		spent := info.State == asynq.TaskStateArchived && info.Retried >= info.MaxRetry
		if spent {
			if rec.Resumes >= maxResumes {
				r.escalate(ctx, log, rec, fmt.Sprintf("its task ran out of retries %d times (last error: %s)", rec.Resumes+1, info.LastErr))
				return false
			}
			why = fmt.Sprintf("its task was archived after %d retries (last error: %s); new task %d of %d", info.Retried, info.LastErr, rec.Resumes+1, maxResumes)
		}
		if !r.recreate(ctx, log, rec, queue, why, info) {
			return false
		}
		if spent {
			if _, err := h.store.Resumed(ctx, rec.RefundID); err != nil {
				log.WithError(err).Warn("recoverer: cannot count the refund's resumes")
			}
		}
		return true
	default:
		// Alive (pending, scheduled, active, retry): look again when it
		// should have run.
		_ = h.store.Postpone(ctx, rec.RefundID, r.untilRun(info, rec)+h.dueMargin)
		return false
	}
}

// untilRun is how long until a live task should have run, or its run's
// lease would have run out.
func (r *recoverer) untilRun(info *asynq.TaskInfo, rec store.Record) time.Duration {
	switch info.State {
	case asynq.TaskStateScheduled, asynq.TaskStateRetry:
		return max(time.Until(info.NextProcessAt), LeaseTTL)
	case asynq.TaskStatePending:
		// Waiting its turn behind a backlog: looked at less often the
		// longer it waits (a quarter of its wait so far, 15 s to 5 min),
		// so a million queued refunds are not each checked every minute.
		return min(max(time.Since(rec.UpdatedAt)/4, 15*time.Second), 5*time.Minute)
	}
	return LeaseTTL
}

// stillOpen reads the refund again: a run may have finished it, or moved it
// to another task, since it was taken.
func (r *recoverer) stillOpen(ctx context.Context, rec store.Record) bool {
	now, err := r.h.store.Get(ctx, rec.RefundID)
	return err == nil && !now.State.Final() && now.Task == rec.Task
}

// recreate enqueues rec's task again, deleting the dead one (stale; nil
// when it is gone) first. The new task carries the dead one's trace
// context, so its runs stay in the refund's trace; a task that is gone
// took it along, and the new one's runs start a trace of their own.
func (r *recoverer) recreate(ctx context.Context, log *logrus.Entry, rec store.Record, queue, why string, stale *asynq.TaskInfo) bool {
	h := r.h
	var trace map[string]string
	if stale != nil {
		if err := r.insp.DeleteTask(queue, rec.Task); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
			log.WithError(err).Warn("recoverer: cannot delete the stale task")
			return false
		}
		trace = tasks.TraceOf(stale.Payload)
	}
	task, err := r.task(rec, queue, trace)
	if err != nil {
		// It will not build next time either.
		r.escalate(ctx, log, rec, "its task could not be rebuilt: "+err.Error())
		return false
	}
	_, err = h.client.EnqueueContext(ctx, task)
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		log.WithError(err).Warn("recoverer: cannot re-create the refund's task")
		return false
	}
	_ = h.store.Postpone(ctx, rec.RefundID, LeaseTTL+h.dueMargin)
	if err != nil {
		return false // re-created by someone else meanwhile
	}
	r.repairs.Add(1)
	log.WithField("why", why).Warn("recoverer: task re-created")
	return true
}

// escalate moves the refund to needs_review with the reason.
func (r *recoverer) escalate(ctx context.Context, log *logrus.Entry, rec store.Record, reason string) {
	moved, err := r.h.store.Escalate(ctx, rec.RefundID, rec.Task, reason, r.h.review.first())
	switch {
	case err != nil:
		log.WithError(err).Warn("recoverer: cannot move the refund to needs_review")
	case moved:
		r.escalations.Add(1)
		log.WithField("reason", reason).Error("refund needs review")
	}
}

// task rebuilds the task the record names, to run now, carrying trace.
func (r *recoverer) task(rec store.Record, queue string, trace map[string]string) (*asynq.Task, error) {
	if step, ok := tasks.PollStep(rec.Task, rec.RefundID); ok {
		return tasks.NewPollTask(tasks.Poll{RefundID: rec.RefundID, Step: step, Trace: trace}, 0, queue)
	}
	t := rec.Refund()
	t.Trace = trace
	return tasks.NewRefundTask(t, queue)
}
