package api

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"

	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/tasks"
)

// NewMonitoring returns asynqmon for the Redis at opt, rooted at
// /monitoring, with refundq's payload and result formatters. It is read-only
// unless writable: its delete and archive buttons act on tasks without the
// refund records knowing, so they are for an operator who knows the
// recoverer will re-create a task for any open refund. Close it when done.
func NewMonitoring(opt asynq.RedisConnOpt, writable bool) *asynqmon.HTTPHandler {
	return asynqmon.New(asynqmon.Options{
		RootPath:         monitoringRoot,
		RedisConnOpt:     opt,
		ReadOnly:         !writable,
		PayloadFormatter: PayloadFormatter,
		ResultFormatter:  ResultFormatter,
	})
}

// PayloadFormatter shows a refund task as what it refunds, with the amount
// as a decimal in its currency: "refund rf_1: 2623.46 SAR moyasarpg order
// ord_1". The merchant's free text is not shown: metadata only by how many
// keys it has, the reason not at all (the refund record has both). Other
// task types are shown as asynqmon shows them.
var PayloadFormatter = asynqmon.PayloadFormatterFunc(func(taskType string, payload []byte) string {
	switch taskType {
	case tasks.TypeRefund:
		var r tasks.Refund
		if err := json.Unmarshal(payload, &r); err != nil {
			return fmt.Sprintf("refund task whose payload cannot be read (%d bytes)", len(payload))
		}
		return describeRefund(r)
	case tasks.TypePoll:
		var p tasks.Poll
		if err := json.Unmarshal(payload, &p); err != nil {
			return fmt.Sprintf("poll task whose payload cannot be read (%d bytes)", len(payload))
		}
		return fmt.Sprintf("poll %d of refund %s", p.Step, p.RefundID)
	}
	return asynqmon.DefaultPayloadFormatter.FormatPayload(taskType, payload)
})

func describeRefund(r tasks.Refund) string {
	amount := r.Money().String()
	if _, ok := tasks.Exponent(r.Currency); !ok {
		amount = fmt.Sprintf("%d minor units of unknown currency %q", r.AmountMinor, r.Currency)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "refund %s: %s %s order %s", r.RefundID, amount, r.Provider, r.OrderID)
	if r.TransactionID != "" {
		fmt.Fprintf(&b, " transaction %s", r.TransactionID)
	}
	if n := len(r.Metadata); n > 0 {
		fmt.Fprintf(&b, " metadata: %d key(s), redacted", n)
	}
	return b.String()
}

// taskResult is what the worker writes as a refund or poll task's result
// (worker.run.writeResult).
type taskResult struct {
	State       store.State `json:"state"`
	ProviderRef string      `json:"provider_ref"`
}

// ResultFormatter shows a task's result as the state the refund reached:
// "succeeded, provider ref rfd_123". asynqmon does not always pass the task
// type, so any result of that shape is shown so.
var ResultFormatter = asynqmon.ResultFormatterFunc(func(taskType string, result []byte) string {
	var res taskResult
	if len(result) == 0 {
		return "(no result)"
	}
	if err := json.Unmarshal(result, &res); err != nil || res.State == "" {
		return asynqmon.DefaultResultFormatter.FormatResult(taskType, result)
	}
	if res.ProviderRef == "" {
		return string(res.State)
	}
	return fmt.Sprintf("%s, provider ref %s", res.State, res.ProviderRef)
})
