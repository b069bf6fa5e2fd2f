package providers

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/refundq/refundq/tasks"
)

// Entry is one provider as the worker and the producers see it.
type Entry struct {
	Name     string
	Provider Provider // nil when the provider is not configured
	Schedule Schedule
	// Check rejects, at enqueue time, a refund this provider can never
	// accept (e.g. a partial refund where only full refunds exist). May be nil.
	Check func(tasks.Refund) error
	// OncePerOrder: the provider refunds an order once (BBMSL; Fatora, whose
	// refunds are whole payments). A second refund on an order that has one
	// is refused at enqueue time.
	OncePerOrder bool
	// Missing names the environment variables that must be set to enable a
	// provider that is not configured.
	Missing []string
	// Err is set when the configuration is present but unusable (e.g. an
	// unreadable key file): a worker should refuse to start rather than
	// quietly run without the provider.
	Err error
	// Keyless: the provider keeps nothing of ours with a refund (no key to
	// find it by), so a lost answer can only be judged from the order or
	// payment as a whole. The worker then keeps one refund of ours in flight
	// per order, and trusts "not applied" only from two look-ups SettleDelay
	// apart.
	Keyless bool
	// Idempotent: a resend with the same Key is answered from the first
	// request (Moyasar PG's transaction_id, documented), never applied again.
	// A refund the provider had pending and now cannot find may be sent
	// again rather than handed to a human.
	Idempotent bool
	// SettleDelay is how long after a send a look-up's "not applied" is
	// believed: a provider may still apply a request after our client gave
	// up on it. Default DefaultSettleDelay.
	SettleDelay time.Duration
	// Guesses lists the undocumented facts the adapter relies on (see Guess).
	Guesses []GuessInfo
	// RateLimit caps calls to the provider per second, per worker process
	// (0: no cap); RateBurst is how many may go at once.
	RateLimit float64
	RateBurst int
}

// DefaultSettleDelay is longer than a provider operation may run
// (OperationTimeout), with a margin for a provider that finishes a request
// after we hung up.
const DefaultSettleDelay = OperationTimeout + 10*time.Second

// Settle returns the entry's settle delay, or the default.
func (e Entry) Settle() time.Duration {
	if e.SettleDelay > 0 {
		return e.SettleDelay
	}
	return DefaultSettleDelay
}

// Enabled reports whether the provider is configured.
func (e Entry) Enabled() bool { return e.Provider != nil }

// Registry maps provider names to entries.
type Registry struct {
	entries   map[string]Entry
	rulesOnly bool
}

// RulesOnly returns a registry whose Check ignores whether a provider is
// configured: for producers, which do not hold the providers' credentials.
func (r *Registry) RulesOnly() *Registry { return &Registry{entries: r.entries, rulesOnly: true} }

// NewRegistry returns a registry of the given entries.
func NewRegistry(entries ...Entry) *Registry {
	r := &Registry{entries: map[string]Entry{}}
	for _, e := range entries {
		r.entries[e.Name] = e
	}
	return r
}

// ErrUnknownProvider is returned for a name no adapter exists for.
var ErrUnknownProvider = errors.New("unknown provider")

// ErrDisabled is returned for a known provider that is not configured.
var ErrDisabled = errors.New("provider not configured")

// Get returns the configured provider called name, or an error that names
// the missing environment variables.
func (r *Registry) Get(name string) (Entry, error) {
	e, ok := r.entries[name]
	if !ok {
		return Entry{}, fmt.Errorf("%w %q (known: %s)", ErrUnknownProvider, name, strings.Join(r.Names(), ", "))
	}
	if !e.Enabled() {
		return e, fmt.Errorf("%s: %w: set %s", name, ErrDisabled, strings.Join(e.Missing, ", "))
	}
	return e, nil
}

// Check validates r against its provider's rules: the provider must exist,
// be configured, and accept this kind of refund.
func (r *Registry) Check(t tasks.Refund) error {
	e, err := r.Get(t.Provider)
	if err != nil && !(r.rulesOnly && errors.Is(err, ErrDisabled)) {
		return err
	}
	if e.Check != nil {
		if err := e.Check(t); err != nil {
			return &CheckError{Provider: t.Provider, Err: err}
		}
	}
	return nil
}

// OncePerOrder reports whether the provider called name refunds an order
// once (see Entry.OncePerOrder).
func (r *Registry) OncePerOrder(name string) bool { return r.entries[name].OncePerOrder }

// PrecheckTimeout bounds a Precheck: an enqueue call must not hang on a slow
// provider, and a precheck that times out decides nothing.
const PrecheckTimeout = 5 * time.Second

// Precheck asks t's provider, when it is configured here and can tell, whether
// it will ever accept t (see Prechecker). It returns a *CheckError on a
// definite no and nil otherwise, including when nothing could be asked.
func (r *Registry) Precheck(ctx context.Context, t tasks.Refund) error {
	e, ok := r.entries[t.Provider]
	if !ok {
		return nil
	}
	pc, ok := e.Provider.(Prechecker)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, PrecheckTimeout)
	defer cancel()
	ref := Refund{RefundID: t.RefundID, OrderID: t.OrderID, TransactionID: t.TransactionID, Amount: t.Money(), Reason: t.Reason}
	if err := pc.Precheck(ctx, ref); err != nil {
		return &CheckError{Provider: t.Provider, Err: err}
	}
	return nil
}

// CheckError is a refund a provider can never accept, found before sending.
type CheckError struct {
	Provider string
	Err      error
}

func (e *CheckError) Error() string { return e.Provider + ": " + e.Err.Error() }
func (e *CheckError) Unwrap() error { return e.Err }

// Names lists every known provider, sorted.
func (r *Registry) Names() []string {
	names := make([]string, 0, len(r.entries))
	for n := range r.entries {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// MissingError names the environment variables a provider needs and lacks.
type MissingError struct {
	Provider string
	Vars     []string
}

func (e *MissingError) Error() string { return e.Provider + ": set " + strings.Join(e.Vars, " and ") }

// Require returns a *MissingError for the variables whose value is blank,
// given as name, value pairs, or nil when all are set.
func Require(provider string, nameValues ...string) error {
	var missing []string
	for i := 0; i+1 < len(nameValues); i += 2 {
		if strings.TrimSpace(nameValues[i+1]) == "" {
			missing = append(missing, nameValues[i])
		}
	}
	if len(missing) > 0 {
		return &MissingError{Provider: provider, Vars: missing}
	}
	return nil
}
