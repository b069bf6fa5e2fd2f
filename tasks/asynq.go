package tasks

import (
	"fmt"
	"time"

	"github.com/hibiken/asynq"
)

// Task options shared by producers and workers.
const (
	// MaxRetry is how often asynq re-runs a refund task that returned an
	// error. It must stay ≥ 1: asynq archives a MaxRetry(0) task after a
	// worker crash without ever re-running it.
	MaxRetry = 20
	// Timeout bounds one run of a handler: a few provider calls with backoff
	// in between. asynq re-runs a task that overruns it while the first run
	// may still be going, so keep it well above the in-attempt backoff budget.
	Timeout = 5 * time.Minute
	// Retention keeps a finished task visible in asynqmon for a day; the
	// refund record outlives it.
	Retention = 24 * time.Hour
)

// RefundTaskID is the asynq task id of a refund: one task per refund id, so
// a second enqueue while the first is queued, running, retrying or retained
// is refused by asynq itself.
func RefundTaskID(refundID string) string { return "refund:" + refundID }

// PollTaskID is the asynq task id of poll number step of a refund. Each step
// needs its own id: asynq refuses an id that still exists, and the poll being
// handled still exists while it schedules the next one.
func PollTaskID(refundID string, step int) string {
	return fmt.Sprintf("refund:%s:poll:%d", refundID, step)
}

// NewRefundTask returns the asynq task that refunds r; opts (e.g. a queue)
// are applied after the defaults.
func NewRefundTask(r Refund, opts ...asynq.Option) (*asynq.Task, error) {
	payload, err := EncodeRefund(r)
	if err != nil {
		return nil, err
	}
	base := []asynq.Option{asynq.TaskID(RefundTaskID(r.RefundID)), asynq.MaxRetry(MaxRetry),
		asynq.Timeout(Timeout), asynq.Retention(Retention)}
	return asynq.NewTask(TypeRefund, payload, append(base, opts...)...), nil
}

// NewPollTask returns the asynq task for poll p, to run after delay.
func NewPollTask(p Poll, delay time.Duration, opts ...asynq.Option) (*asynq.Task, error) {
	payload, err := EncodePoll(p)
	if err != nil {
		return nil, err
	}
	base := []asynq.Option{asynq.TaskID(PollTaskID(p.RefundID, p.Step)), asynq.MaxRetry(MaxRetry),
		asynq.Timeout(Timeout), asynq.Retention(Retention), asynq.ProcessIn(delay)}
	return asynq.NewTask(TypePoll, payload, append(base, opts...)...), nil
}
