package tasks

import (
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
)

// Task options shared by producers and workers.
const (
	// MaxRetry is how often a refund task is re-run after a run that
	// failed (no answer, a 5xx): the refund's budget. Its asynq task gets one
	// more (asynqMaxRetry): asynq archives a task that returns anything at
	// its last retry, and a run that waits (a settle delay, a breaker open, a
	// blocked refund) must be able to hand its task back at the end of the
	// budget too. The worker counts the budget (see worker's lastRun).
	MaxRetry = 20
	// asynqMaxRetry must stay ≥ 1: asynq archives a MaxRetry(0) task after a
	// worker crash without ever re-running it.
	asynqMaxRetry = MaxRetry + 1
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
// handled still exists while it schedules the next one. "poll:" cannot begin
// a refund task id, and the step (digits) follows the last ':', so no refund
// id, whatever colons it holds, shares a task id with another refund's poll.
func PollTaskID(refundID string, step int) string {
	return "poll:" + refundID + ":" + strconv.Itoa(step)
}

// PollStep returns the step of refundID's poll task id, if taskID is one.
func PollStep(taskID, refundID string) (int, bool) {
	rest, ok := strings.CutPrefix(taskID, "poll:"+refundID+":")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil && n > 0 && strconv.Itoa(n) == rest
}

// NewRefundTask returns the asynq task that refunds r on queue. Its id,
// retries, timeout and retention are what refundq's guarantees rest on, so a
// caller cannot change them.
func NewRefundTask(r Refund, queue string) (*asynq.Task, error) {
	payload, err := EncodeRefund(r)
	if err != nil {
		return nil, err
	}
	return asynq.NewTask(TypeRefund, payload, asynq.TaskID(RefundTaskID(r.RefundID)), asynq.MaxRetry(asynqMaxRetry),
		asynq.Timeout(Timeout), asynq.Retention(Retention), asynq.Queue(queue)), nil
}

// NewPollTask returns the asynq task for poll p on queue, to run after delay.
func NewPollTask(p Poll, delay time.Duration, queue string) (*asynq.Task, error) {
	payload, err := EncodePoll(p)
	if err != nil {
		return nil, err
	}
	// No retention: a refund may poll hundreds of times, and a finished poll
	// says nothing the refund's history does not.
	return asynq.NewTask(TypePoll, payload, asynq.TaskID(PollTaskID(p.RefundID, p.Step)), asynq.MaxRetry(asynqMaxRetry),
		asynq.Timeout(Timeout), asynq.ProcessIn(delay), asynq.Queue(queue)), nil
}

// ResultKey is the Redis hash in which asynq v0.26 keeps task taskID of
// queue, and its result (field "result": what asynq's ResultWriter writes
// and asynqmon shows). A worker records a run's result in the same round
// trip as the refund's outcome; worker tests read it back through asynq's
// Inspector, so an asynq that moved it fails them.
func ResultKey(queue, taskID string) string { return "asynq:{" + queue + "}:t:" + taskID }
