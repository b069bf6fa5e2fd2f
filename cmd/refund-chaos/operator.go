package main

import (
	"math/rand/v2"

	"github.com/hibiken/asynq"
)

// operator deletes or archives random tasks, as a person clicking in
// asynqmon might; the workers' recoverer must re-create every one whose
// refund is still open.
type operator struct {
	insp              *asynq.Inspector
	rng               *rand.Rand
	deleted, archived int
}

func (o *operator) click() {
	var tasks []*asynq.TaskInfo
	for _, list := range []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){
		o.insp.ListPendingTasks, o.insp.ListScheduledTasks, o.insp.ListRetryTasks,
	} {
		ts, err := list("default", asynq.PageSize(50))
		if err == nil {
			tasks = append(tasks, ts...)
		}
	}
	if len(tasks) == 0 {
		return
	}
	t := tasks[o.rng.IntN(len(tasks))]
	if o.rng.IntN(2) == 0 {
		if o.insp.DeleteTask("default", t.ID) == nil {
			o.deleted++
		}
		return
	}
	if o.insp.ArchiveTask("default", t.ID) == nil {
		o.archived++
	}
}
