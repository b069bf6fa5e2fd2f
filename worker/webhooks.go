package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/sirupsen/logrus"

	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/tasks"
	"github.com/refundq/refundq/webhook"
)

// Webhooks tell the merchant when a refund is final (succeeded, failed) or
// needs review. The state change and its event are one write (store's
// events stream); a dispatcher in every worker reads the stream in a consumer
// group and turns each such event into one asynq task, acknowledging the
// event only once the task exists, so neither a crash nor a Redis restart
// loses a notification. Each task POSTs the signed event and is retried for
// about a day; every delivery attempt is written to the refund's history.

// TypeWebhook is the asynq task type of one webhook delivery.
const TypeWebhook = "refund:webhook"

// WebhookConfig says where and how to send notifications.
type WebhookConfig struct {
	URL string // the merchant's endpoint; "" sends none
	// Secrets are the HMAC keys (webhook.Sign): one, or two while the
	// merchant rotates it, and each delivery is signed with every one.
	Secrets [][]byte
	Timeout time.Duration
	Client  *http.Client // default: one with Timeout
	// FirstRetry is the wait before the second try (default a minute); it
	// doubles up to 60 times that (an hour) and stays there, for about a day.
	FirstRetry time.Duration
}

const (
	webhookGroup    = "webhooks"
	webhookMaxRetry = 28 // with webhookDelay, about a day
)

// webhookReclaimIdle is how long an event may sit with a dispatcher that
// took it and did not acknowledge it before another dispatcher takes it
// over. A live dispatcher acknowledges within milliseconds (it only creates
// the delivery task), so an event idle this long belongs to a dead one; and
// taking one too early is harmless, since the task id "webhook:<event id>"
// makes a second enqueue of the same event a no-op. Short, so a killed
// worker's notifications go out seconds later, not a minute later.
const webhookReclaimIdle = 10 * time.Second

// webhookDelay grows from first to 60 times first and stays there.
func webhookDelay(first time.Duration, n int) time.Duration { return min(first<<min(n, 6), 60*first) }

type hookTask struct {
	RefundID string      `json:"refund_id"`
	EventID  string      `json:"event_id"`
	State    store.State `json:"state"`
	AtMS     int64       `json:"at_ms"`
	Reason   string      `json:"reason,omitempty"`
}

type dispatcher struct {
	h        *Handler
	cfg      WebhookConfig
	consumer string
	stop     context.CancelFunc
	done     chan struct{}
}

func newDispatcher(h *Handler, cfg WebhookConfig) *dispatcher {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: cfg.Timeout}
	}
	if cfg.FirstRetry <= 0 {
		cfg.FirstRetry = time.Minute
	}
	host, _ := os.Hostname()
	return &dispatcher{h: h, cfg: cfg, consumer: host + "-" + uuid.NewString()[:8]}
}

func (d *dispatcher) start() {
	ctx, cancel := context.WithCancel(context.Background())
	d.stop, d.done = cancel, make(chan struct{})
	go func() {
		defer close(d.done)
		for ctx.Err() == nil {
			if !d.pass(ctx) {
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
		}
	}()
}

func (d *dispatcher) shutdown() {
	if d.stop != nil {
		d.stop()
		<-d.done
	}
}

// pass takes events a dead consumer left unacknowledged, then new ones, and
// turns them into delivery tasks. It reports false after an error.
func (d *dispatcher) pass(ctx context.Context) bool {
	st := d.h.store
	evs, err := st.ClaimStale(ctx, webhookGroup, d.consumer, webhookReclaimIdle, 100)
	if err == nil && len(evs) == 0 {
		evs, err = st.ReadEvents(ctx, webhookGroup, d.consumer, 100, 2*time.Second)
	}
	if err != nil {
		if ctx.Err() == nil {
			d.h.log.WithError(err).Warn("webhooks: cannot read refund events")
		}
		return false
	}
	for _, ev := range evs {
		if ev.To.Final() {
			if err := d.queue(ctx, ev); err != nil {
				d.h.log.WithError(err).WithField("refund_id", ev.RefundID).Warn("webhooks: cannot queue a delivery; will try again")
				return false
			}
		}
		if err := st.Ack(ctx, webhookGroup, ev.ID); err != nil {
			return false
		}
	}
	return true
}

// queue enqueues the delivery of ev, entering it in the outbox first, so a
// delivery never finishes (and leaves the outbox) before it is entered.
// When the task exists already (an event claimed again, after a dispatcher
// died before acknowledging it), an outbox entry this call made means the
// delivery had finished and left: it is taken out again, or the backlog
// would count a delivered notification for days.
func (d *dispatcher) queue(ctx context.Context, ev store.Event) error {
	added, err := d.h.store.OutboxAdd(ctx, ev.ID, ev.At)
	if err != nil {
		return err
	}
	payload, _ := json.Marshal(hookTask{RefundID: ev.RefundID, EventID: ev.ID, State: ev.To, AtMS: ev.At.UnixMilli(), Reason: ev.Reason})
	t := asynq.NewTask(TypeWebhook, payload, asynq.TaskID("webhook:"+ev.ID), asynq.MaxRetry(webhookMaxRetry),
		asynq.Queue(d.h.queue), asynq.Timeout(2*d.cfg.Timeout), asynq.Retention(tasks.Retention))
	_, err = d.h.client.EnqueueContext(ctx, t)
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		if added {
			return d.h.store.OutboxDone(ctx, ev.ID)
		}
		return nil // queued already, and not yet delivered
	}
	return err
}

// deliver is the TypeWebhook handler: one signed POST.
func (d *dispatcher) deliver(ctx context.Context, t *asynq.Task) error {
	var ht hookTask
	if err := json.Unmarshal(t.Payload(), &ht); err != nil || ht.RefundID == "" {
		d.finished(ctx, ht.EventID, "malformed", 0)
		return fmt.Errorf("malformed webhook task: %v: %w", err, asynq.SkipRetry)
	}
	rec, err := d.h.store.Get(ctx, ht.RefundID)
	if errors.Is(err, store.ErrNotFound) {
		d.finished(ctx, ht.EventID, "unknown_refund", 0)
		return fmt.Errorf("webhook for unknown refund %s: %w", ht.RefundID, asynq.SkipRetry)
	}
	try, _ := asynq.GetRetryCount(ctx)
	if err != nil {
		if try >= webhookMaxRetry {
			d.finished(ctx, ht.EventID, "gave_up", 0)
		}
		return err
	}
	ev := webhook.Event{ID: ht.EventID, Type: "refund." + string(ht.State), Created: time.UnixMilli(ht.AtMS).UTC(),
		Refund: webhook.Refund{RefundID: rec.RefundID, Provider: rec.Provider, OrderID: rec.OrderID, TransactionID: rec.TransactionID,
			Amount: rec.Amount.Decimal(), Currency: rec.Amount.Currency, State: string(ht.State), ProviderRef: rec.ProviderRef,
			Reason: ht.Reason, Metadata: rec.Metadata}}
	body, _ := json.Marshal(ev)
	start := time.Now()
	status, err := d.post(ctx, body)
	took := time.Since(start)
	entry := store.Entry{Event: "webhook", Attempt: try + 1, HTTPStatus: status, DurationMS: took.Milliseconds()}
	log := d.h.log.WithFields(logrus.Fields{"refund_id": rec.RefundID, "event_id": ht.EventID, "type": ev.Type, "try": try + 1, "http_status": status})
	if err == nil {
		entry.Detail = fmt.Sprintf("%s delivered", ev.Type)
		_ = d.h.store.Note(recordCtx(ctx), rec.RefundID, entry)
		d.finished(ctx, ht.EventID, "delivered", took)
		log.Debug("webhook delivered")
		return nil
	}
	entry.Detail = fmt.Sprintf("%s not delivered (try %d of %d): %v", ev.Type, try+1, webhookMaxRetry+1, err)
	outcome := "failed"
	if try >= webhookMaxRetry {
		entry.Detail += "; giving up"
		outcome = "gave_up"
		d.finished(ctx, ht.EventID, outcome, took)
	} else {
		d.h.metrics.webhooks.WithLabelValues(outcome).Inc()
		d.h.metrics.webhookTime.Observe(took.Seconds())
	}
	_ = d.h.store.Note(recordCtx(ctx), rec.RefundID, entry)
	log.WithError(err).Warn("webhook not delivered")
	return &retryAfterError{err: err, after: webhookDelay(d.cfg.FirstRetry, try)}
}

// finished counts a delivery's last try by outcome and takes its event out of
// the outbox's measure. took is 0 when nothing was posted.
func (d *dispatcher) finished(ctx context.Context, eventID, outcome string, took time.Duration) {
	d.h.metrics.webhooks.WithLabelValues(outcome).Inc()
	if took > 0 {
		d.h.metrics.webhookTime.Observe(took.Seconds())
	}
	if eventID == "" {
		return
	}
	if err := d.h.store.OutboxDone(recordCtx(ctx), eventID); err != nil {
		d.h.log.WithError(err).WithField("event_id", eventID).Warn("webhooks: the outbox still counts a notification that is done")
	}
}

func (d *dispatcher) post(ctx context.Context, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "refundq-webhooks")
	req.Header.Set(webhook.Header, webhook.Sign(d.cfg.Secrets, time.Now(), body))
	resp, err := providers.Do(ctx, d.cfg.Client, req)
	if err != nil {
		return 0, err
	}
	if resp.Status < 200 || resp.Status > 299 {
		return resp.Status, fmt.Errorf("HTTP %d: %s", resp.Status, providers.Snippet(resp.Body))
	}
	return resp.Status, nil
}
