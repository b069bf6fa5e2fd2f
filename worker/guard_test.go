package worker

import (
	"context"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/refundq/refundq/providers"
)

// An adapter that panics during the breaker's one trial call (asynq
// recovers the handler's panic) still reports the call: the breaker opens
// again and, its period over, lets the next trial through, instead of
// refusing every call to the provider for good.
func TestATrialCallThatPanicsFreesTheBreaker(t *testing.T) {
	g := &guards{open: 20 * time.Millisecond}
	gd := g.of(providers.Entry{Name: "p"})
	ctx := context.Background()
	for range breakerTrips {
		done, ref := gd.admit(ctx, time.Second)
		if ref != nil {
			t.Fatalf("refused before tripping: %v", ref)
		}
		reported(done, func() providers.Outcome { return providers.Outcome{Kind: providers.Transient, HTTPStatus: 503} })
	}
	halfOpen := func() {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); gd.breaker.State() != gobreaker.StateHalfOpen; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("breaker %s, never half-open", gd.breaker.State())
			}
		}
	}
	halfOpen()
	done, ref := gd.admit(ctx, time.Second)
	if ref != nil {
		t.Fatalf("trial call refused: %v", ref)
	}
	func() {
		defer func() { _ = recover() }()
		reported(done, func() providers.Outcome { panic("adapter bug") })
	}()
	if s := gd.breaker.State(); s != gobreaker.StateOpen {
		t.Fatalf("after a trial call that panicked the breaker is %s, want open (a failed trial)", s)
	}
	halfOpen()
	if _, ref := gd.admit(ctx, time.Second); ref != nil {
		t.Fatalf("the next trial call is refused (%v): the panicked trial kept its slot", ref)
	}
}
