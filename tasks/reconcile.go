package tasks

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
)

// TypeReconcile drives one reconciliation run (a record of its own in the
// store): re-read at their providers the refunds that became final in a
// window. Only workers hold provider credentials, so a worker runs it.
const TypeReconcile = "refundq:reconcile"

// Reconcile is the payload of a TypeReconcile task. The run's window, filter
// and cursor live in its record, so a task run again goes on from there.
type Reconcile struct {
	Version int    `json:"v"`
	RunID   string `json:"run_id"`
}

// ReconcileTaskID is the asynq task id of run id's task: one task per run.
func ReconcileTaskID(runID string) string { return "reconcile:" + runID }

// ReconcileTimeout bounds one run of a reconcile task; the handler hands
// its task back well before (its slice), so a long run is many short ones.
const ReconcileTimeout = 10 * time.Minute

// NewReconcileTask returns the task that drives run runID on queue.
func NewReconcileTask(runID, queue string) (*asynq.Task, error) {
	if runID == "" || !isIDChars(runID) || len(runID) > maxIDLen {
		return nil, fmt.Errorf("reconcile: bad run id %q", truncate(runID, 80))
	}
	payload, err := json.Marshal(Reconcile{Version: PayloadVersion, RunID: runID})
	if err != nil {
		return nil, err
	}
	// Its retries are for a worker that dies mid-run: a handed-back slice
	// spends none (the worker counts it as a snooze).
	return asynq.NewTask(TypeReconcile, payload, asynq.TaskID(ReconcileTaskID(runID)), asynq.MaxRetry(asynqMaxRetry),
		asynq.Timeout(ReconcileTimeout), asynq.Retention(Retention), asynq.Queue(queue)), nil
}

// DecodeReconcile parses and validates a TypeReconcile payload.
func DecodeReconcile(b []byte) (Reconcile, error) {
	var r Reconcile
	if err := json.Unmarshal(b, &r); err != nil {
		return Reconcile{}, fmt.Errorf("decode reconcile payload: %w", err)
	}
	if r.Version != PayloadVersion {
		return Reconcile{}, ValidationError{{"v", fmt.Sprintf("unsupported payload version %d", r.Version)}}
	}
	if r.RunID == "" || !isIDChars(r.RunID) || len(r.RunID) > maxIDLen {
		return Reconcile{}, ValidationError{{"run_id", "missing or malformed"}}
	}
	return r, nil
}
