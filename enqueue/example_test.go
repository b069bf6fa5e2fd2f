package enqueue_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/refundq/refundq/enqueue"
)

// redisURL is the Redis the examples use: an embedded one on loopback, so
// they run anywhere. A producer passes its own, e.g. os.Getenv("REDIS_URL").
var redisURL = func() string {
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		fmt.Fprintln(os.Stderr, "examples: embedded Redis:", err)
		os.Exit(1)
	}
	// miniredis never expires keys on its own; asynq's leases need a clock.
	go func() {
		for range time.Tick(100 * time.Millisecond) {
			m.FastForward(100 * time.Millisecond)
		}
	}()
	return "redis://" + m.Addr() + "/0"
}()

// A producer opens one client from a URL, enqueues a refund, and gets the
// same refund back when it enqueues it again (a retry, a double click).
func ExampleOpen() {
	c, err := enqueue.Open(redisURL) // e.g. os.Getenv("REDIS_URL")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	req := enqueue.Request{
		RefundID: "rf_order_1234", // yours: the idempotency key
		Provider: "moyasarpg", OrderID: "ord_1234", Amount: "2623.46", Currency: "SAR",
		Reason: "order cancelled",
	}
	res, err := c.Enqueue(context.Background(), req)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("created:", res.Created, res.Record.State, res.Record.Amount)

	res, err = c.Enqueue(context.Background(), req)
	fmt.Println("created:", res.Created, res.Record.State, err)
	// Output:
	// created: true queued 2623.46 SAR
	// created: false queued <nil>
}

// Invalid input is refused before anything is written, naming each bad
// field.
func ExampleClient_Enqueue_invalid() {
	c, err := enqueue.Open(redisURL, enqueue.WithPrefix("example-invalid:"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	_, err = c.Enqueue(context.Background(), enqueue.Request{
		RefundID: "rf_1", Provider: "moyasarpg", OrderID: "ord_1", Amount: "12,50", Currency: "SAR",
	})
	fmt.Println(err)
	fmt.Println("about the request itself:", enqueue.IsInvalid(err))
	// Output:
	// invalid refund: amount: amount "12,50": only digits and one '.' are allowed (no sign, exponent or separator)
	// about the request itself: true
}

// ReadBulk reads a JSON Lines file one object per line; a bad line becomes
// a row with an error naming what is wrong, and the other rows still go
// through.
func ExampleReadBulk() {
	file := `{"refund_id":"rf_1","provider":"moyasarpg","order_id":"o1","amount":"10.00","currency":"SAR"}
{"refund_id":"rf_2","provider":"moyasarpg","order_id":7,"amount":"10.00","currency":"SAR"}
{"refund_id":"rf_3","provider":"moyasarpg","order_id":"o3","amount":"1.00","currency":"SAR"} {"refund_id":"rf_4"}
["not", "an", "object"]
`
	rows, err := enqueue.ReadBulk(strings.NewReader(file), enqueue.JSONL)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range rows {
		if r.Err != nil {
			fmt.Printf("line %d: %v\n", r.Line, r.Err)
			continue
		}
		fmt.Printf("line %d: %s %s %s\n", r.Line, r.Request.RefundID, r.Request.Amount, r.Request.Currency)
	}
	// Output:
	// line 1: rf_1 10.00 SAR
	// line 2: field order_id: want a string, got a number
	// line 3: more after the JSON object that ends at byte 92: one object per line
	// line 4: want one JSON object per line, got an array
}
