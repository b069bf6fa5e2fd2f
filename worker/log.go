package worker

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/hibiken/asynq"
	"github.com/sirupsen/logrus"
)

// asynqLogger sends asynq's own log lines through logrus, so one JSON stream
// holds everything.
type asynqLogger struct{ l logrus.FieldLogger }

func (a asynqLogger) Debug(args ...any) { a.l.WithField("component", "asynq").Debug(args...) }
func (a asynqLogger) Info(args ...any)  { a.l.WithField("component", "asynq").Info(args...) }
func (a asynqLogger) Warn(args ...any)  { a.l.WithField("component", "asynq").Warn(args...) }
func (a asynqLogger) Error(args ...any) { a.l.WithField("component", "asynq").Error(args...) }

// Fatal is called by asynq only when it cannot go on; it must not exit the
// process from inside a library, so it logs at error level and lets asynq
// return its error to Run.
func (a asynqLogger) Fatal(args ...any) {
	a.l.WithField("component", "asynq").Error(append([]any{"fatal: "}, args...)...)
}

// errorHandler logs every failed run of a task with the refund id, provider
// and attempt, so an operator can match asynqmon's retry list to the record.
func errorHandler(l logrus.FieldLogger) asynq.ErrorHandlerFunc {
	return func(ctx context.Context, t *asynq.Task, err error) {
		var ids struct {
			RefundID string `json:"refund_id"`
			Provider string `json:"provider"`
		}
		_ = json.Unmarshal(t.Payload(), &ids) // best effort: the payload may be the malformed part
		retry, _ := asynq.GetRetryCount(ctx)
		maxRetry, _ := asynq.GetMaxRetry(ctx)
		if isSnooze(err) {
			// Not a failure: the record says what the refund waits for.
			l.WithFields(logrus.Fields{"task_type": t.Type(), "refund_id": ids.RefundID, "provider": ids.Provider}).
				WithError(err).Debug("task handed back for later")
			return
		}
		l.WithFields(logrus.Fields{
			"task_type": t.Type(),
			"refund_id": ids.RefundID,
			"provider":  ids.Provider,
			"task_run":  retry + 1, // asynq's run of the task; "attempt" is a send to the provider
			"max_retry": maxRetry,
		}).WithError(err).Warn(fmt.Sprintf("task run failed (%s)", verdict(retry, maxRetry, err)))
	}
}

func verdict(retry, maxRetry int, err error) string {
	if isSkipRetry(err) || retry >= maxRetry {
		return "archived"
	}
	return "will retry"
}
