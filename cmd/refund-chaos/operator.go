package main

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"

	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/tasks"
)

// operator deletes, archives or re-runs random tasks, as a person clicking
// in asynqmon might; the workers' recoverer must re-create every task taken
// away whose refund is still open. Each click that took away the task an
// open refund depends on is noted, so the report can say how late the
// refund went on.
type operator struct {
	insp                   *asynq.Inspector
	st                     *store.Store
	rng                    *rand.Rand
	deleted, archived, ran int
	removed                []removal
	// harmless counts deletes and archives of a refund task that no open
	// refund depended on: its refund was final, or its record already named
	// another task (a poll chain that had moved on), which still drives it.
	harmless int
}

// removal is one click that took away the task an open refund's record
// names.
type removal struct {
	refundID string
	at       time.Time // the click
	due      time.Time // when the task would have run: the click for a pending task
}

func (o *operator) click() {
	switch o.rng.IntN(3) {
	case 0:
		o.remove("delete")
	case 1:
		o.remove("archive")
	default:
		// Re-running a scheduled or retry task runs it early; re-running an
		// archived one is a person's own recovery (or a second run of a
		// refund that is already final, which must change nothing).
		t := o.pick(o.insp.ListScheduledTasks, o.insp.ListRetryTasks, o.insp.ListArchivedTasks)
		if t != nil && o.insp.RunTask(t.Queue, t.ID) == nil {
			o.ran++
		}
	}
}

func (o *operator) remove(how string) {
	t := o.pick(o.insp.ListPendingTasks, o.insp.ListScheduledTasks, o.insp.ListRetryTasks)
	if t == nil {
		return
	}
	at := time.Now()
	if how == "delete" {
		if o.insp.DeleteTask(t.Queue, t.ID) != nil {
			return // run, finished or gone meanwhile
		}
		o.deleted++
	} else {
		if o.insp.ArchiveTask(t.Queue, t.ID) != nil {
			return
		}
		o.archived++
	}
	id := refundOf(t)
	if id == "" {
		return // not a refund's task (a webhook delivery)
	}
	// Read after the click: a run records the next task before it creates
	// it, so a record that names another task was not waiting on this one.
	rec, err := o.record(id)
	if err != nil || rec.State.Final() || rec.Task != t.ID {
		o.harmless++
		return
	}
	due := at
	if t.State != asynq.TaskStatePending && t.NextProcessAt.After(at) {
		due = t.NextProcessAt
	}
	o.removed = append(o.removed, removal{refundID: id, at: at, due: due})
}

// record reads refund id's record, waiting out a Redis restart.
func (o *operator) record(id string) (store.Record, error) {
	for try := 0; ; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		rec, err := o.st.Get(ctx, id)
		cancel()
		if err == nil || errors.Is(err, store.ErrNotFound) || try == 10 {
			return rec, err
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// pick returns a random task from the first page of each list, or nil.
func (o *operator) pick(lists ...func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error)) *asynq.TaskInfo {
	var all []*asynq.TaskInfo
	for _, list := range lists {
		ts, err := list("default", asynq.PageSize(50))
		if err == nil {
			all = append(all, ts...)
		}
	}
	if len(all) == 0 {
		return nil
	}
	return all[o.rng.IntN(len(all))]
}

// refundOf returns the refund a refund or poll task drives, or "".
func refundOf(t *asynq.TaskInfo) string {
	switch t.Type {
	case tasks.TypeRefund:
		if r, err := tasks.DecodeRefund(t.Payload); err == nil {
			return r.RefundID
		}
	case tasks.TypePoll:
		if p, err := tasks.DecodePoll(t.Payload); err == nil {
			return p.RefundID
		}
	}
	return ""
}
