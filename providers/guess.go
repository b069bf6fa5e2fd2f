package providers

// Some of what an adapter relies on is not in its provider's documents
// (ecomCharge keeping our tracking_id on a refund, Fatora's verify showing a
// refund, …). Such a fact is a Guess. An adapter never lets an unconfirmed
// guess prove that a refund was not applied: until the provider's own answers
// have shown that the guess holds, the absence of the guessed field is
// Unknown. Adapters report what each answer showed (Outcome.Observed); the
// worker remembers it per provider in Redis and hands it back in
// Refund.Known.

// Guess names one undocumented fact an adapter relies on, e.g.
// "ecomcharge.tracking_id".
type Guess string

// Verdict is what refundq has learned about a guess.
type Verdict int

const (
	// Unconfirmed: no answer has shown it either way. Fail closed.
	Unconfirmed Verdict = iota
	// Confirmed: the provider's answers have shown the guess holds, and
	// none has shown otherwise.
	Confirmed
	// Refuted: at least one answer has shown the guess does not hold. It
	// stays refuted until an operator clears it.
	Refuted
)

func (v Verdict) String() string {
	switch v {
	case Confirmed:
		return "confirmed"
	case Refuted:
		return "refuted"
	}
	return "unconfirmed"
}

// Knowledge is the verdict on each guess of one provider. The zero value
// knows nothing, so every guess is unconfirmed.
type Knowledge map[Guess]Verdict

// Holds reports whether g is confirmed (and never refuted).
func (k Knowledge) Holds(g Guess) bool { return k[g] == Confirmed }

// Open reports whether nothing is known of g yet, so an answer that could
// show it is worth asking for.
func (k Knowledge) Open(g Guess) bool { return k[g] == Unconfirmed }

// Observation is what one answer showed about a guess.
type Observation struct {
	Guess  Guess
	Holds  bool
	Detail string // what showed it, for the log and refundctl; never a secret
}

// GuessInfo describes a guess for operators.
type GuessInfo struct {
	Guess Guess
	// Means says what the adapter assumes and what it does while the guess
	// is unconfirmed.
	Means string
}
