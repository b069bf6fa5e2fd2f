package worker

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/sirupsen/logrus"

	"github.com/refundq/refundq/store"
	"github.com/refundq/refundq/tasks"
)

// recoverer makes sure every open refund has a task that will drive it.
// Every open refund sits in an index ordered by when it is next due (queued:
// soon after creation; processing: a run plus asynq's longest retry delay;
// pending: its next poll; blocked or waiting: its next try), plus a margin.
// The recoverer takes only what is overdue, asks asynq for the task the
// record names, and re-creates it when it is missing, completed or archived
// by hand; never a second live one (asynq refuses the same task id). That
// covers a producer that died between the record and the task, a poll chain
// broken between two writes, an operator's delete or archive in asynqmon,
// and Redis losing a task. A task archived because its retries ran out moves
// the refund to needs_review instead: automation has given up on it.
// Several workers may recover at once; each repair is logged and counted.
type recoverer struct {
	h     *Handler
	insp  *asynq.Inspector
	every time.Duration
	// repairs counts tasks re-created; escalations counts refunds moved to
	// needs_review because their task's retries ran out.
	repairs, escalations atomic.Int64
	ticking
}

// recoverBatch bounds one pass; the rest waits for the next.
const recoverBatch = 200

func (r *recoverer) start() { r.ticking.start(r.every, func(ctx context.Context) { r.recover(ctx) }) }

// recover repairs the overdue refunds and returns how many tasks it
// re-created.
func (r *recoverer) recover(ctx context.Context) int {
	h := r.h
	recs, err := h.store.Overdue(ctx, time.Now(), recoverBatch)
	if err != nil {
		if ctx.Err() == nil {
			h.log.WithError(err).Warn("recoverer: cannot list overdue refunds")
		}
		return 0
	}
	n := 0
	for _, rec := range recs {
		if ctx.Err() != nil {
			break
		}
		if r.check(ctx, rec) {
			n++
		}
	}
	return n
}

// check makes sure the task rec names is alive; it reports whether it
// re-created it.
func (r *recoverer) check(ctx context.Context, rec store.Record) bool {
	h := r.h
	log := h.log.WithFields(logrus.Fields{"refund_id": rec.RefundID, "provider": rec.Provider, "state": rec.State, "task_id": rec.Task})
	info, err := r.insp.GetTaskInfo(h.queue, rec.Task)
	why := ""
	switch {
	case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
		if now, err := h.store.Get(ctx, rec.RefundID); err != nil || now.State.Final() || now.Task != rec.Task {
			return false // finished, or moved to another task, since it was read
		}
		why = "its task is gone"
	case err != nil:
		log.WithError(err).Warn("recoverer: cannot read the refund's task")
		return false
	case info.State == asynq.TaskStateArchived && info.Retried >= info.MaxRetry:
		reason := fmt.Sprintf("its task %s was archived after %d retries (last error: %s)", rec.Task, info.Retried, info.LastErr)
		if moved, err := h.store.Escalate(ctx, rec.RefundID, rec.Task, reason); err != nil {
			log.WithError(err).Warn("recoverer: cannot move the refund to needs_review")
		} else if moved {
			r.escalations.Add(1)
			log.WithField("reason", reason).Error("refund needs review")
		}
		return false
	case info.State == asynq.TaskStateArchived, info.State == asynq.TaskStateCompleted:
		// The record was read before the task: a run may have finished the
		// refund in between. Read it again before touching its task.
		if now, err := h.store.Get(ctx, rec.RefundID); err != nil || now.State.Final() || now.Task != rec.Task {
			return false
		}
		why = fmt.Sprintf("its task was %s while the refund is %s", info.State, rec.State)
		if err := r.insp.DeleteTask(h.queue, rec.Task); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
			log.WithError(err).Warn("recoverer: cannot delete the stale task")
			return false
		}
	default:
		// Alive (pending, scheduled, active, retry): look again when it
		// should have run.
		next := h.dueRunning()
		if at := info.NextProcessAt; at.After(time.Now()) {
			next = at.Add(h.dueMargin)
		}
		_ = h.store.Postpone(ctx, rec.RefundID, next)
		return false
	}
	task, err := r.task(rec)
	if err != nil {
		log.WithError(err).Error("recoverer: cannot rebuild the refund's task")
		return false
	}
	_, err = h.client.EnqueueContext(ctx, task)
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		log.WithError(err).Warn("recoverer: cannot re-create the refund's task")
		return false
	}
	_ = h.store.Postpone(ctx, rec.RefundID, h.dueRunning())
	if err != nil {
		return false // re-created by someone else meanwhile
	}
	r.repairs.Add(1)
	log.WithField("why", why).Warn("recoverer: task re-created")
	return true
}

// task rebuilds the task the record names, to run now.
func (r *recoverer) task(rec store.Record) (*asynq.Task, error) {
	if step, ok := tasks.PollStep(rec.Task, rec.RefundID); ok {
		return tasks.NewPollTask(tasks.Poll{RefundID: rec.RefundID, Step: step}, 0, r.h.queue)
	}
	return tasks.NewRefundTask(rec.Refund(), r.h.queue)
}
