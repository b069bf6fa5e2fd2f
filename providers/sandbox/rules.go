package sandbox

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/refundq/refundq/providers/catalog"
	"github.com/refundq/refundq/providers/sim"
	"github.com/refundq/refundq/tasks"
)

// The rules a sandbox refund follows, by the id its request names (the
// order; ecomCharge: the payment's transaction uid). They exist so a
// newcomer can see every path a refund takes from the command line.
const (
	// PendingPrefix: the provider keeps the refund pending for a few
	// look-ups, then completes it (providers with a pending state).
	PendingPrefix = "pending-"
	// LostPrefix: the first refund request is applied and its answer lost
	// (the connection is reset): the worker looks it up before anything is
	// sent again.
	LostPrefix = "lost-"
	// ReviewPrefix: the refund moves one minor unit less than asked, and
	// the answer says so: the worker stops at needs_review (providers whose
	// answer shows the amount refunded: BBMSL).
	ReviewPrefix = "review-"
)

// Order is a paid order (a payment) the sandbox knows.
type Order struct {
	Provider      string
	OrderID       string
	TransactionID string // the id a refund must carry too, where the provider needs one
	Amount        tasks.Money
}

// Config tunes a Sandbox.
type Config struct {
	// KeyDir is where BBMSL's merchant key is written (see New).
	KeyDir string
	// Auto, when positive, makes every unknown order id a paid order of this
	// many major units (in the provider's currency) on first use, so
	// producers can invent ids. Zero: unknown orders are not found.
	Auto int64
	// PendingPolls is how many look-ups a pending- refund stays pending;
	// default 2.
	PendingPolls int
	// NoSeed leaves out the example orders every sandbox starts with.
	NoSeed bool
	// Documented makes the simulators answer in exactly the documented
	// shape, without the fields refundq only guesses at: the first answers
	// that could show a guess refute it (refundctl guesses), and a lost
	// answer whose look-up rests on one goes to needs_review. Off (the
	// default), they answer as a provider that bears the guesses out would,
	// as the demo's do: the sandbox stands in for the providers, and its
	// answers must not teach the workers that the adapters are wrong.
	Documented bool
}

// Sandbox is every provider's simulator behind one handler, each at
// /<provider>/, with the rules above and a list of the orders it knows.
type Sandbox struct {
	Sims []Sim
	cfg  Config

	mu     sync.Mutex
	orders []Order
	lost   map[string]bool // provider + id: the one lost answer was lost
}

// Open returns a sandbox of every provider, seeded (unless cfg.NoSeed) with
// example orders for each rule.
func Open(cfg Config) (*Sandbox, error) {
	if cfg.PendingPolls <= 0 {
		cfg.PendingPolls = 2
	}
	sims, err := New(cfg.KeyDir)
	if err != nil {
		return nil, err
	}
	sb := &Sandbox{Sims: sims, cfg: cfg, lost: map[string]bool{}}
	for i := range sims {
		s := &sims[i]
		if cfg.Auto > 0 {
			m, _ := tasks.ParseMoney(fmt.Sprint(cfg.Auto), s.Currency)
			s.AutoCreate(m)
		}
		if !cfg.Documented && s.Guessed != nil {
			s.Guessed(true)
		}
		if cfg.NoSeed {
			continue
		}
		for _, o := range seeds(s) {
			if _, err := sb.Add(s.Name, o.OrderID, o.Amount); err != nil {
				return nil, err
			}
		}
	}
	return sb, nil
}

// seeds are the example orders of one provider: one per rule it has.
func seeds(s *Sim) []Order {
	short := map[string]string{"moyasarpg": "mpg", "ecomcharge": "ec", "fatora": "fat", "bbmsl": "bb", "ecartpay": "ep"}[s.Name]
	money := func(minor int64) tasks.Money { return tasks.Money{Minor: minor * 100, Currency: s.Currency} }
	out := []Order{{OrderID: short + "-1001", Amount: money(500)}, {OrderID: short + "-1002", Amount: money(120)}}
	if s.MakePending != nil {
		out = append(out, Order{OrderID: PendingPrefix + short + "-1003", Amount: money(150)})
	}
	out = append(out, Order{OrderID: LostPrefix + short + "-1004", Amount: money(300)})
	if s.WrongAmount != nil {
		out = append(out, Order{OrderID: ReviewPrefix + short + "-1005", Amount: money(80)})
	}
	return out
}

// Sim returns the simulator of provider, or nil.
func (sb *Sandbox) Sim(provider string) *Sim {
	for i := range sb.Sims {
		if sb.Sims[i].Name == provider {
			return &sb.Sims[i]
		}
	}
	return nil
}

// Add makes a paid order of amount at provider and returns it with the
// transaction id its refunds carry.
func (sb *Sandbox) Add(provider, orderID string, amount tasks.Money) (Order, error) {
	s := sb.Sim(provider)
	if s == nil {
		return Order{}, fmt.Errorf("sandbox: no provider %q (known: %s)", provider, strings.Join(sb.names(), ", "))
	}
	if err := amount.Validate(); err != nil {
		return Order{}, fmt.Errorf("sandbox: order %s: %w", orderID, err)
	}
	o := Order{Provider: provider, OrderID: orderID, TransactionID: s.Pay(orderID, amount), Amount: amount}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	sb.orders = append(sb.orders, o)
	return o, nil
}

// Orders lists the orders the sandbox was given, by provider, in the order
// they were added.
func (sb *Sandbox) Orders() []Order {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	out := append([]Order(nil), sb.orders...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Provider < out[j].Provider })
	return out
}

func (sb *Sandbox) names() []string {
	var n []string
	for _, s := range sb.Sims {
		n = append(n, s.Name)
	}
	return n
}

// Handler serves every simulator at /<provider>/, with the rules applied.
func (sb *Sandbox) Handler() http.Handler {
	mux := http.NewServeMux()
	for i := range sb.Sims {
		s := &sb.Sims[i]
		mux.Handle("/"+s.Name+"/", http.StripPrefix("/"+s.Name, sb.rules(s)))
	}
	return mux
}

// Env returns the environment lines that point a worker at the sandbox
// served at base, with polls fast enough to watch.
func (sb *Sandbox) Env(base string) []string {
	var env []string
	for _, s := range sb.Sims {
		env = append(env, s.Env(strings.TrimRight(base, "/")+"/"+s.Name)...)
	}
	env = append(env, catalog.FastPolls(2*time.Second, 10*time.Second)...)
	// The simulators apply what they apply at once (a lost answer is lost
	// after the refund moved), so a short settle delay is safe here. Nothing
	// here lifts the Redis check: the walk-through's Redis is one that keeps
	// what it acknowledges (refundctl dev-redis), so a sandbox run exercises
	// the check production runs.
	return append(env, catalog.FastSettle(5*time.Second)...)
}

// rules applies the sandbox's rules to s's refund requests.
func (sb *Sandbox) rules(s *Sim) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.Target == nil || r.Method != http.MethodPost {
			s.Handler.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "cannot read the request", http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		id, ok := s.Target(r, body)
		if !ok {
			s.Handler.ServeHTTP(w, r)
			return
		}
		switch {
		case strings.HasPrefix(id, PendingPrefix) && s.MakePending != nil:
			s.MakePending(id, sb.cfg.PendingPolls)
		case strings.HasPrefix(id, ReviewPrefix) && s.WrongAmount != nil:
			s.WrongAmount(id)
		case strings.HasPrefix(id, LostPrefix) && sb.loseOnce(s.Name, id):
			s.Handler.ServeHTTP(sim.Discard{}, r)
			sim.Reset(w)
			return
		}
		s.Handler.ServeHTTP(w, r)
	})
}

// loseOnce reports whether this is the first refund request on id, whose
// answer is the one lost.
func (sb *Sandbox) loseOnce(provider, id string) bool {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	k := provider + "\x00" + id
	if sb.lost[k] {
		return false
	}
	sb.lost[k] = true
	return true
}

// Describe writes, per provider, the orders the sandbox knows and what a
// refund of each does: the sandbox's rules, told rather than hidden.
func (sb *Sandbox) Describe(w io.Writer) {
	byProvider := map[string][]Order{}
	for _, o := range sb.Orders() {
		byProvider[o.Provider] = append(byProvider[o.Provider], o)
	}
	for _, s := range sb.Sims {
		partial := "partial refunds, several per payment"
		switch {
		case !s.Partial:
			partial = "whole payments only, once"
		case !s.Multiple:
			partial = "one refund per order, whole or partial"
		}
		fmt.Fprintf(w, "\n%s (%s): payments in %s; %s\n", s.Name, s.Title, s.Currency, partial)
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  ORDER\tTRANSACTION\tCAPTURED\tA REFUND OF IT")
		for _, o := range byProvider[s.Name] {
			txn := o.TransactionID
			if !s.NeedsTransaction || txn == "" {
				txn = "-"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", o.OrderID, txn, o.Amount, sb.fate(&s, o.OrderID))
		}
		if sb.cfg.Auto > 0 {
			m, _ := tasks.ParseMoney(fmt.Sprint(sb.cfg.Auto), s.Currency)
			txn := "-"
			switch s.Name {
			case "fatora":
				txn = "txn-<order id>"
			case "ecomcharge":
				txn = "<order id>"
			}
			fmt.Fprintf(tw, "  (any other id)\t%s\t%s\tcreated paid on first use; the rules above apply by prefix\n", txn, m)
		}
		tw.Flush()
		if s.Name == "ecomcharge" {
			fmt.Fprintln(w, "  ecomCharge's refund names the payment, not the order: pass the same id as --transaction")
		}
		fmt.Fprintln(w, "  rejected: more than is left to refund on the payment (e.g. 500.01 on the first order above)")
		for _, r := range s.Refuses {
			fmt.Fprintln(w, "  rejected: "+r)
		}
		fmt.Fprintln(w, "  another currency than "+s.Currency+": "+s.OtherCurrency)
	}
}

// fate says what a refund of order id does at s.
func (sb *Sandbox) fate(s *Sim, id string) string {
	// A provider whose look-up rests on a guess shows nothing conclusive in
	// its documented answer until the guess is confirmed.
	// (With an idempotency key the worker reconciles by sending again.)
	blind := s.Guessed != nil && sb.cfg.Documented && !s.Idempotent
	const unproven = "; its documented answer cannot show the outcome (refundctl guesses), so the refund waits, then goes to a human (needs_review), never sent twice; in the default shape (no --guessed=false) it succeeds"
	switch {
	case strings.HasPrefix(id, PendingPrefix) && s.MakePending != nil && blind:
		return fmt.Sprintf("stays pending for %d look-ups%s", sb.cfg.PendingPolls, unproven)
	case strings.HasPrefix(id, PendingPrefix) && s.MakePending != nil:
		return fmt.Sprintf("stays pending for %d look-ups, then succeeds", sb.cfg.PendingPolls)
	case strings.HasPrefix(id, LostPrefix) && blind:
		return "applied, its answer lost (connection reset): the worker looks it up" + unproven
	case strings.HasPrefix(id, LostPrefix):
		return "applied, its answer lost (connection reset): the worker looks it up, then succeeds"
	case strings.HasPrefix(id, ReviewPrefix) && s.WrongAmount != nil:
		return "moves one minor unit less than asked: needs_review, for a human to settle"
	}
	return "succeeds"
}
