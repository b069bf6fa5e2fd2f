package enqueue_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/refundq/refundq/enqueue"
	"github.com/refundq/refundq/internal/redistest"
	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/providers/fatora"
	"github.com/refundq/refundq/providers/fatora/fatorasim"
	"github.com/refundq/refundq/tasks"
)

// fatoraClient is an enqueue client whose registry has Fatora configured
// against a simulator holding one 100.00 QAR payment on order ord-f.
func fatoraClient(t *testing.T) (*enqueue.Client, *redistest.Env, *fatorasim.Simulator, *httptest.Server, string) {
	t.Helper()
	sim := fatorasim.New("fatora_key")
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	txn := sim.AddPayment("ord-f", tasks.Money{Minor: 10000, Currency: "QAR"})
	reg := providers.NewRegistry(fatora.Entry(func(k string) string {
		return map[string]string{"FATORA_BASE_URL": srv.URL, "FATORA_API_KEY": "fatora_key"}[k]
	}))
	env := redistest.New(t)
	c := enqueue.New(env.Asynq, env.Client, enqueue.WithQueue(env.Queue), enqueue.WithPrefix(env.Prefix), enqueue.WithRegistry(reg.RulesOnly()), enqueue.AcceptRedisLoss())
	t.Cleanup(func() { c.Close() })
	return c, env, sim, srv, txn
}

func fatoraReq(id, txn, amount string) enqueue.Request {
	return enqueue.Request{RefundID: id, Provider: providers.Fatora, OrderID: "ord-f", TransactionID: txn, Amount: amount, Currency: "QAR"}
}

func TestFatoraPartialRefundIsRefusedAtEnqueue(t *testing.T) {
	c, env, sim, _, txn := fatoraClient(t)
	ctx := context.Background()

	_, err := c.Enqueue(ctx, fatoraReq("rf-part", txn, "40.00"))
	var ce *providers.CheckError
	if !errors.As(err, &ce) || !enqueue.IsInvalid(err) || !strings.Contains(err.Error(), "the payment is 100.00 QAR, the refund asks 40.00 QAR") {
		t.Fatalf("partial Fatora refund: err = %v, want a check error naming both amounts", err)
	}
	if _, _, err := c.Status(ctx, "rf-part"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("refused refund was recorded: %v", err)
	}
	if n := len(pending(t, env)); n != 0 {
		t.Fatalf("refused refund queued %d tasks", n)
	}

	res, err := c.Enqueue(ctx, fatoraReq("rf-full", txn, "100.00"))
	if err != nil || !res.Created {
		t.Fatalf("whole-payment refund = %+v, %v", res, err)
	}
	if n := sim.RefundRequests(); n != 0 {
		t.Fatalf("enqueueing sent %d refund requests to Fatora, want 0", n)
	}
}

func TestFatoraKnownRefundIDIsNotPrecheckedAgain(t *testing.T) {
	c, _, _, _, txn := fatoraClient(t)
	ctx := context.Background()
	if _, err := c.Enqueue(ctx, fatoraReq("rf-1", txn, "100.00")); err != nil {
		t.Fatal(err)
	}
	// The same id again answers with its record; a different amount under
	// that id is the usual conflict, not a precheck refusal.
	if res, err := c.Enqueue(ctx, fatoraReq("rf-1", txn, "100.00")); err != nil || res.Created {
		t.Fatalf("re-enqueue = %+v, %v", res, err)
	}
	if _, err := c.Enqueue(ctx, fatoraReq("rf-1", txn, "40.00")); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("same id, other amount: err = %v, want ErrConflict", err)
	}
}

func TestFatoraUnreachableAtEnqueueDecidesNothing(t *testing.T) {
	c, _, _, srv, txn := fatoraClient(t)
	srv.Close()
	// The worker checks the amount again before sending, so a producer that
	// cannot reach Fatora still hands the refund over.
	if res, err := c.Enqueue(context.Background(), fatoraReq("rf-2", txn, "40.00")); err != nil || !res.Created {
		t.Fatalf("enqueue with Fatora down = %+v, %v", res, err)
	}
}

func TestBulkDryRunReportsFatoraPartialByLine(t *testing.T) {
	c, env, _, _, txn := fatoraClient(t)
	file := fmt.Sprintf("refund_id,provider,order_id,transaction_id,amount,currency,reason\n"+
		"rf-b1,fatora,ord-f,%s,100.00,QAR,\n"+
		"rf-b2,fatora,ord-f,%s,40.00,QAR,\n", txn, txn)
	rows, err := enqueue.ReadBulk(strings.NewReader(file), enqueue.CSV)
	if err != nil {
		t.Fatal(err)
	}
	checkSummary(t, c.EnqueueBulk(context.Background(), rows, enqueue.BulkOptions{DryRun: true}), 1, map[int]string{3: "whole payments only"})
	if n := len(pending(t, env)); n != 0 {
		t.Fatalf("dry run queued %d tasks", n)
	}
}

func TestSecondRefundOnAFatoraPaymentIsRefusedAtEnqueue(t *testing.T) {
	c, env, _, _, txn := fatoraClient(t)
	ctx := context.Background()
	if _, err := c.Enqueue(ctx, fatoraReq("rf-first", txn, "100.00")); err != nil {
		t.Fatal(err)
	}
	_, err := c.Enqueue(ctx, fatoraReq("rf-second", txn, "100.00"))
	if !errors.Is(err, store.ErrOrderTaken) || !enqueue.IsInvalid(err) ||
		!strings.Contains(err.Error(), "fatora refunds an order once, and order ord-f already has refund rf-first (queued)") {
		t.Fatalf("second refund on the payment: err = %v", err)
	}
	if n := len(pending(t, env)); n != 1 {
		t.Fatalf("%d tasks queued, want the first refund's only", n)
	}
}

func TestBulkDryRunSeesOnceOnlyOrders(t *testing.T) {
	c, env, sim, _, txn := fatoraClient(t)
	ctx := context.Background()
	txn2 := sim.AddPayment("ord-g", tasks.Money{Minor: 10000, Currency: "QAR"})
	txn3 := sim.AddPayment("ord-k", tasks.Money{Minor: 10000, Currency: "QAR"})
	if _, err := c.Enqueue(ctx, fatoraReq("rf-earlier", txn, "100.00")); err != nil {
		t.Fatal(err)
	}
	// Line 2: ord-f is refunded already (rf-earlier); lines 3 and 4 both
	// refund ord-g, and the file's first one wins; line 5 repeats line 3.
	// Line 6 is refused (partial), so line 7 gets ord-k.
	file := fmt.Sprintf("refund_id,provider,order_id,transaction_id,amount,currency,reason\n"+
		"rf-d1,fatora,ord-f,%[1]s,100.00,QAR,\n"+
		"rf-d2,fatora,ord-g,%[2]s,100.00,QAR,\n"+
		"rf-d3,fatora,ord-g,%[2]s,100.00,QAR,\n"+
		"rf-d2,fatora,ord-g,%[2]s,100.00,QAR,\n"+
		"rf-d4,fatora,ord-k,%[3]s,40.00,QAR,\n"+
		"rf-d5,fatora,ord-k,%[3]s,100.00,QAR,\n", txn, txn2, txn3)
	rows, err := enqueue.ReadBulk(strings.NewReader(file), enqueue.CSV)
	if err != nil {
		t.Fatal(err)
	}
	bad := map[int]string{
		2: "order ord-f already has refund rf-earlier (queued)",
		4: "line 3 (rf-d2) already refunds order ord-g",
		6: "whole payments only",
	}
	checkSummary(t, c.EnqueueBulk(ctx, rows, enqueue.BulkOptions{DryRun: true}), 3, maps.Clone(bad))
	// The real run agrees with the dry run, line for line.
	bad[4] = "order ord-g already has refund rf-d2 (queued)"
	sum := c.EnqueueBulk(ctx, rows, enqueue.BulkOptions{})
	if sum.Existing != 1 { // line 5, the same refund as line 3
		t.Errorf("existing = %d, want 1", sum.Existing)
	}
	sum.Enqueued += sum.Existing
	checkSummary(t, sum, 3, bad)
	if n := len(pending(t, env)); n != 3 {
		t.Fatalf("%d tasks pending, want rf-earlier's, rf-d2's and rf-d5's", n)
	}
}

func TestBulkFirstRowByLineGetsAOnceOnlyOrder(t *testing.T) {
	c, _, sim, _, _ := fatoraClient(t)
	txn := sim.AddPayment("ord-h", tasks.Money{Minor: 10000, Currency: "QAR"})
	var b strings.Builder
	b.WriteString("refund_id,provider,order_id,transaction_id,amount,currency,reason\n")
	// Lines 2 and 3 refund ord-h and would race; line 2 must win every time.
	fmt.Fprintf(&b, "rf-h1,fatora,ord-h,%s,100.00,QAR,\n", txn)
	fmt.Fprintf(&b, "rf-h2,fatora,ord-h,%s,100.00,QAR,\n", txn)
	for i := range 30 {
		fmt.Fprintf(&b, "rf-fill-%d,fatora,ord-fill-%d,t-%d,1.00,QAR,\n", i, i, i)
	}
	rows, err := enqueue.ReadBulk(strings.NewReader(b.String()), enqueue.CSV)
	if err != nil {
		t.Fatal(err)
	}
	checkSummary(t, c.EnqueueBulk(context.Background(), rows, enqueue.BulkOptions{}), 31,
		map[int]string{3: "order ord-h already has refund rf-h1"})
}
