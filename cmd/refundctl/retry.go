package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/spf13/cobra"

	"github.com/refundq/refundq/internal/rediscfg"
	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/tasks"
)

func retryCmd(g *globals) *cobra.Command {
	var note, actor string
	cmd := &cobra.Command{
		Use:   "retry ID --note TEXT [--actor NAME]",
		Short: "Send a needs_review refund again, when nothing of it can be at the provider",
		Long: `Send a refund in needs_review again: it goes back to queued and gets a new task. This is for a refund whose
task ran out of retries before anything left ("not sent after N runs ... nothing was applied"). It is refused
when anything of the refund may be at the provider — an attempt in flight, a provider reference, a refund the
provider reported in progress, an answer that showed or contradicted it: ask the provider, then use settle.
--note says why, and --actor who (see settle), for the history. Never while a worker holds the refund, nor while a live
task of it is still in asynq; an archived or completed task of it is replaced.`,
		Example: joinExamples(
			`refundctl retry rf_5 --note "alice: Ecart Pay was down all morning, ticket OPS-118"`,
			`refundctl status rf_5 --wait 1m`),
		Args:              exactID,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(note) == "" {
				return usagef("missing --note: say why it is sent again, for the refund's history")
			}
			who, err := resolveActor(actor)
			if err != nil {
				return err
			}
			ctx, id := cmd.Context(), args[0]
			st, closeStore, err := g.openWritableStore(ctx)
			if err != nil {
				return err
			}
			defer closeStore()
			rc, err := rediscfg.Parse(redisURL())
			if err != nil {
				return err
			}
			insp := asynq.NewInspector(rc.Asynq)
			defer insp.Close()
			ac := asynq.NewClient(rc.Asynq)
			defer ac.Close()

			rec, err := st.Get(ctx, id)
			if err != nil {
				return aboutRefund(id, g.prefix, err)
			}
			if rec.State != store.NeedsReview {
				return fmt.Errorf("refund %s is %s, not needs_review: only a refund automation stopped on is sent again by hand%s",
					quote(id), rec.State, notReviewHint(rec.State))
			}
			// asynq keeps a task id while the task is archived or retained
			// as completed, and refuses a second task with it. Such a task
			// is replaced; a live one is left alone, and nothing changes.
			taskID := tasks.RefundTaskID(id)
			old, err := oldTask(insp, g.queue, taskID)
			if err != nil {
				return err
			}
			if err := st.Reopen(ctx, id, note, who); err != nil {
				return aboutRefund(id, g.prefix, err)
			}
			if old != "" {
				if err := insp.DeleteTask(g.queue, taskID); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
					return fmt.Errorf("refund %s reopened (queued), but its %s task %s could not be deleted, so no new task was enqueued: %v. "+
						"Nothing is lost: a worker's recoverer replaces an archived or completed task of an open refund once it is due (%s)",
						quote(id), old, taskID, err, dueText(ctx, st, id))
				}
			}
			task, err := tasks.NewRefundTask(rec.Refund(), g.queue)
			if err == nil {
				_, err = ac.EnqueueContext(ctx, task)
			}
			if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) { // a conflict: another enqueued it meanwhile
				return fmt.Errorf("refund %s reopened (queued), but its task could not be enqueued: %v. Nothing is lost: "+
					"a worker's recoverer creates the missing task of an open refund once it is due (%s)",
					quote(id), err, dueText(ctx, st, id))
			}
			replaced := ""
			if old != "" {
				replaced = fmt.Sprintf(", replacing its %s task", old)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "refund %s reopened: queued, task %s enqueued on queue %s%s\n", id, taskID, g.queue, replaced)
			return nil
		},
	}
	cmd.Flags().StringVar(&note, "note", "", "why it is sent again, for the history (required)")
	actorFlag(cmd, &actor)
	return cmd
}

// oldTask returns the state of the refund's task when retry must delete it
// first (archived or completed), "" when there is none, and an error when a
// live task of the refund is still in asynq: that one may be running, and
// is never deleted.
func oldTask(insp *asynq.Inspector, queue, taskID string) (string, error) {
	info, err := insp.GetTaskInfo(queue, taskID)
	switch {
	case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("cannot read the refund's task %s in queue %s, so nothing was changed: %w", taskID, queue, err)
	case info.State == asynq.TaskStateArchived, info.State == asynq.TaskStateCompleted:
		return info.State.String(), nil
	}
	return "", fmt.Errorf("the refund's task %s is still %s in queue %s, so nothing was changed: wait until it has run "+
		"(it leaves a needs_review refund as it is), then try again", taskID, info.State, queue)
}

// dueText says when a worker's recoverer next looks at the refund.
func dueText(ctx context.Context, st *store.Store, id string) string {
	due, err := st.Due(ctx, id)
	if err != nil || due.IsZero() {
		return "soon"
	}
	return "at " + due.UTC().Format(time.RFC3339)
}
