package console

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/refundq/refundq/internal/store"
)

// workLimit is how many refunds of each list (needs_review, blocked) the
// work list reads, oldest first; the page says when there are more.
const workLimit = 5000

// perPage is how many refunds a page of the work list shows.
const perPage = 50

// blockedKind is the work list's name for refunds blocked by configuration,
// beside the review kinds.
const blockedKind = "blocked"

// ages are the work list's "waiting longer than" filters.
var ages = []struct {
	Value, Label string
	D            time.Duration
}{{"1h", "over an hour", time.Hour}, {"1d", "over a day", 24 * time.Hour}, {"7d", "over a week", 7 * 24 * time.Hour}}

// workRow is one refund of the work list.
type workRow struct {
	ID, Provider, Amount, Order string
	Kind                        string // a review kind or blockedKind
	Why                         string
	Since                       time.Time
	RecheckAt                   time.Time
	Attempts                    int
}

// reasonCount is a card at the top of the work list.
type reasonCount struct {
	Kind, Label string
	Count       int
	Link        string
	On          bool
}

// settledRow counts one provider's refunds settled out of needs_review.
type settledRow struct {
	Provider       string
	Lookup, Person int64
}

type option struct {
	Value, Label string
	On           bool
}

type frontPage struct {
	base
	Reasons []reasonCount
	// Matrix is needs_review by reason (rows) and provider (columns).
	Providers []string
	Matrix    []matrixRow
	Settled   []settledRow
	ByLookup  int64
	ByPerson  int64
	Median    time.Duration
	Timed     int
	// The filtered work list.
	ProviderOpts, KindOpts, AgeOpts []option
	Rows                            []workRow
	Matching, Page                  int
	Prev, Next                      string
	Truncated                       bool // more refunds wait than were read
	Filtered                        bool
}

type matrixRow struct {
	Kind   string
	Counts []int
	Total  int
}

// Front is the console's front page: the counts that matter, then the work
// list (needs_review and blocked refunds, oldest first) filtered by
// provider, reason and age.
func (c *Console) Front(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != Root+"/" {
		c.message(w, r, http.StatusNotFound, "No such page", "The console has no page at "+r.URL.Path+".")
		return
	}
	ctx, cancel := reqCtx(r)
	defer cancel()
	counts, err := c.store.ReviewCounts(ctx)
	if err != nil {
		c.unavailable(w, r, err)
		return
	}
	stats, err := c.store.ReviewStats(ctx)
	if err != nil {
		c.unavailable(w, r, err)
		return
	}
	review, blocked, nReview, nBlocked, err := c.store.WorkList(ctx, workLimit)
	if err != nil {
		c.unavailable(w, r, err)
		return
	}
	q := r.URL.Query()
	prov, kind, age := q.Get("provider"), q.Get("kind"), q.Get("age")
	p := frontPage{base: base{Title: "Work list", Viewer: c.viewer(r)}, Providers: providerNames(),
		Median: stats.MedianTime, Timed: stats.Timed, Truncated: nReview > len(review) || nBlocked > len(blocked),
		Filtered: prov != "" || kind != "" || age != ""}
	p.Reasons, p.Matrix, p.Providers = reasons(counts, nBlocked, p.Providers, q, kind)
	p.Settled, p.ByLookup, p.ByPerson = settled(stats)

	p.ProviderOpts = []option{{"", "every provider", prov == ""}}
	for _, name := range p.Providers {
		p.ProviderOpts = append(p.ProviderOpts, option{name, name, prov == name})
	}
	p.KindOpts = []option{{"", "every reason", kind == ""}}
	for _, k := range store.ReviewKinds {
		p.KindOpts = append(p.KindOpts, option{string(k), string(k), kind == string(k)})
	}
	p.KindOpts = append(p.KindOpts, option{blockedKind, "blocked by configuration", kind == blockedKind})
	p.AgeOpts = []option{{"", "any time", age == ""}}
	var older time.Duration
	for _, a := range ages {
		p.AgeOpts = append(p.AgeOpts, option{a.Value, a.Label, age == a.Value})
		if age == a.Value {
			older = a.D
		}
	}

	now := c.now()
	var rows []workRow
	add := func(it store.WorkItem, k, why string) {
		if prov != "" && it.Provider != prov || kind != "" && k != kind || older > 0 && now.Sub(it.Since) < older {
			return
		}
		rows = append(rows, workRow{ID: it.RefundID, Provider: it.Provider, Amount: it.Amount.String(), Order: it.OrderID,
			Kind: k, Why: why, Since: it.Since, RecheckAt: it.RecheckAt, Attempts: it.Attempts})
	}
	for _, it := range review {
		k := it.Review
		if k == "" {
			k = store.ReviewUnclassified
		}
		add(it, string(k), oneLine(it.LastError, 140))
	}
	for _, it := range blocked {
		add(it, blockedKind, oneLine(it.Blocked, 140))
	}
	// Oldest first across both lists: each is oldest first already.
	slices.SortStableFunc(rows, func(a, b workRow) int { return a.Since.Compare(b.Since) })
	p.Matching = len(rows)
	p.Page, _ = strconv.Atoi(q.Get("page"))
	p.Page = max(1, min(p.Page, (len(rows)+perPage-1)/perPage))
	from := (p.Page - 1) * perPage
	p.Rows = rows[from:min(len(rows), from+perPage)]
	if p.Page > 1 {
		p.Prev = queryWith(q, "page", strconv.Itoa(p.Page-1))
	}
	if from+perPage < len(rows) {
		p.Next = queryWith(q, "page", strconv.Itoa(p.Page+1))
	}
	c.render(w, http.StatusOK, "front", p)
}

// reasons returns the cards (needs_review per reason, then blocked), the
// reason-by-provider table, and its columns: provs and any other provider
// a refund in review names.
func reasons(counts []store.ReviewCount, nBlocked int, provs []string, q url.Values, on string) ([]reasonCount, []matrixRow, []string) {
	byKind := map[store.ReviewKind]map[string]int{}
	for _, rc := range counts {
		if byKind[rc.Kind] == nil {
			byKind[rc.Kind] = map[string]int{}
		}
		byKind[rc.Kind][rc.Provider] += rc.Count
		if !slices.Contains(provs, rc.Provider) {
			provs = append(provs, rc.Provider)
		}
	}
	q = withoutPage(q)
	var cards []reasonCount
	var matrix []matrixRow
	for _, k := range store.ReviewKinds {
		row := matrixRow{Kind: string(k)}
		for _, p := range provs {
			n := byKind[k][p]
			row.Counts = append(row.Counts, n)
			row.Total += n
		}
		if row.Total == 0 && !k.Rechecked() {
			continue
		}
		matrix = append(matrix, row)
		cards = append(cards, reasonCount{Kind: string(k), Label: k.Describe(), Count: row.Total,
			Link: Root + "/" + queryWith(q, "kind", string(k)), On: on == string(k)})
	}
	cards = append(cards, reasonCount{Kind: blockedKind, Label: "blocked until the configuration is fixed", Count: nBlocked,
		Link: Root + "/" + queryWith(q, "kind", blockedKind), On: on == blockedKind})
	return cards, matrix, provs
}

// settled sums the refunds settled out of needs_review by whom, per
// provider.
func settled(st store.ReviewStats) (rows []settledRow, lookup, person int64) {
	at := map[string]int{}
	for _, s := range st.Settled {
		i, ok := at[s.Provider]
		if !ok {
			i = len(rows)
			at[s.Provider] = i
			rows = append(rows, settledRow{Provider: s.Provider})
		}
		switch s.By {
		case store.ByLookup:
			rows[i].Lookup += s.Count
			lookup += s.Count
		case store.ByPerson:
			rows[i].Person += s.Count
			person += s.Count
		}
	}
	slices.SortFunc(rows, func(a, b settledRow) int { return strings.Compare(a.Provider, b.Provider) })
	return rows, lookup, person
}

// withoutPage is q for a link that changes the filter: it starts again at
// page 1.
func withoutPage(q url.Values) url.Values {
	c := url.Values{}
	for k, v := range q {
		if k != "page" {
			c[k] = v
		}
	}
	return c
}
