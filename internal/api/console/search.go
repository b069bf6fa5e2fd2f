package console

import (
	"errors"
	"net/http"
	"strings"

	"github.com/refundq/refundq/internal/store"
)

// searchHit is a refund the search found, and how.
type searchHit struct {
	store.Record
	How string
}

type searchPage struct {
	base
	Hits     []searchHit
	Searched bool
}

// Search finds refunds by refund id, by order id or by the provider's
// reference, at every provider the console knows. One hit opens its page;
// several are listed.
func (c *Console) Search(w http.ResponseWriter, r *http.Request) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	p := searchPage{base: base{Title: "Search", Viewer: c.viewer(r), Query: q}, Searched: q != ""}
	if q == "" || len(q) > 256 {
		c.render(w, http.StatusOK, "search", p)
		return
	}
	ctx, cancel := reqCtx(r)
	defer cancel()
	seen := map[string]bool{}
	add := func(id, how string) error {
		if seen[id] {
			return nil
		}
		rec, err := c.store.Get(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		seen[id] = true
		p.Hits = append(p.Hits, searchHit{Record: rec, How: how})
		return nil
	}
	if err := add(q, "refund id"); err != nil {
		c.unavailable(w, r, err)
		return
	}
	for _, prov := range providerNames() {
		ids, err := c.store.OrderRefunds(ctx, prov, q)
		if err != nil {
			c.unavailable(w, r, err)
			return
		}
		for _, id := range ids {
			if err := add(id, prov+" order id"); err != nil {
				c.unavailable(w, r, err)
				return
			}
		}
		id, err := c.store.ByProviderRef(ctx, prov, q)
		if err == nil && id != "" {
			err = add(id, prov+" reference")
		}
		if err != nil {
			c.unavailable(w, r, err)
			return
		}
	}
	if len(p.Hits) == 1 {
		http.Redirect(w, r, refundPath(p.Hits[0].RefundID), http.StatusSeeOther)
		return
	}
	c.render(w, http.StatusOK, "search", p)
}
