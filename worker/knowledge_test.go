package worker

import (
	"context"
	"io"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/refundq/refundq/internal/redistest"
	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers"
)

// A guess this worker saw confirmed, then another worker refuted: the copy
// kept for sends may lag by knowledgeTTL, but a look-up (whose "not
// applied" may rest on the guess) reads what is known now.
func TestLookupsReadARefutationAtOnce(t *testing.T) {
	env := redistest.New(t)
	st := store.New(env.Client, env.Prefix)
	log := logrus.New()
	log.SetOutput(io.Discard)
	k := newKnowledge(st, log)
	const g = providers.Guess("ecomcharge.tracking_lookup")
	ctx := context.Background()
	k.observe(ctx, "ecomcharge", providers.Observation{Guess: g, Holds: true, Detail: "a look-up showed our refund"})
	if v := k.of("ecomcharge")[g]; v != providers.Confirmed {
		t.Fatalf("after a confirmation: %s", v)
	}
	// Another worker's refutation, written to Redis directly.
	if _, err := st.Observe(ctx, "ecomcharge", string(g), false, "a look-up did not list a refund it answered"); err != nil {
		t.Fatal(err)
	}
	if v := k.of("ecomcharge")[g]; v != providers.Confirmed {
		t.Fatalf("the cached copy changed at once (%s): this test no longer shows the lag look-ups avoid", v)
	}
	if v := k.fresh("ecomcharge")[g]; v != providers.Refuted {
		t.Fatalf("what a look-up reads after another worker's refutation: %s; want refuted", v)
	}
}

// A guess this worker refuted, then an operator cleared (refundctl guesses
// clear, after the provider fixed what refuted it): the next look-up reads
// it as unknown again, not refuted for as long as this process lives; and
// the answer after that can confirm it.
func TestAClearedRefutationIsHeardWithoutARestart(t *testing.T) {
	env := redistest.New(t)
	st := store.New(env.Client, env.Prefix)
	log := logrus.New()
	log.SetOutput(io.Discard)
	k := newKnowledge(st, log)
	const g = providers.Guess("ecartpay.order_refunds")
	ctx := context.Background()
	k.observe(ctx, "ecartpay", providers.Observation{Guess: g, Holds: false, Detail: "an order with a refund has no refunds list"})
	if v := k.fresh("ecartpay")[g]; v != providers.Refuted {
		t.Fatalf("after this worker's refutation: %s; want refuted", v)
	}
	if err := st.ClearGuess(ctx, "ecartpay", string(g)); err != nil {
		t.Fatal(err)
	}
	if v, ok := k.fresh("ecartpay")[g]; ok {
		t.Fatalf("after the operator cleared it, a look-up still reads %s", v)
	}
	k.observe(ctx, "ecartpay", providers.Observation{Guess: g, Holds: true, Detail: "a refund answer lists the new refund_id with our amount"})
	if v := k.fresh("ecartpay")[g]; v != providers.Confirmed {
		t.Fatalf("confirmed after the clear: %s; want confirmed", v)
	}
}
