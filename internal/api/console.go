package api

import (
	"net/http"

	"github.com/refundq/refundq/internal/api/console"
	"github.com/refundq/refundq/internal/store"
)

// consoleRoutes mounts the review console (package console) at /console/:
// its pages need the read scope, its settle form the settle scope, and a
// browser signs in at /console/login with a cookie of the console's own.
// It settles through s.settle, as POST /v1/refunds/{id}/settle does.
func (s *Server) consoleRoutes(st *store.Store) ([]route, error) {
	c, err := console.New(console.Config{Store: st, Logger: s.log,
		Viewer: func(r *http.Request) console.Viewer {
			ri := info(r)
			return console.Viewer{Actor: ri.who.Actor(), CanSettle: ri.who.Can(ScopeSettle), FormToken: ri.form}
		},
		Settle: func(r *http.Request, id string, state store.State, ref, note string) (map[string]string, error) {
			errs, err := s.settle(r, id, settleBody{State: state, ProviderRef: ref, Note: note})
			if len(errs) == 0 {
				return nil, err
			}
			fields := map[string]string{}
			for _, e := range errs {
				fields[e.Field] = e.Message
			}
			return fields, nil
		},
	})
	if err != nil {
		return nil, err
	}
	return []route{
		{"GET " + consoleRoot + "/login", public, "", s.login(consoleArea)},
		{"POST " + consoleRoot + "/login", public, "", s.login(consoleArea)},
		{"GET " + consoleRoot + "/static/", public, "", http.HandlerFunc(c.Static)},
		{"GET " + consoleRoot + "/", consolePages, ScopeRead, http.HandlerFunc(c.Front)},
		{"GET " + consoleRoot + "/refunds/{id}", consolePages, ScopeRead, http.HandlerFunc(c.Refund)},
		{"POST " + consoleRoot + "/refunds/{id}/settle", consolePages, ScopeSettle, http.HandlerFunc(c.Settle)},
		{"GET " + consoleRoot + "/search", consolePages, ScopeRead, http.HandlerFunc(c.Search)},
		{"GET " + consoleRoot + "/health", consolePages, ScopeRead, http.HandlerFunc(c.Health)},
	}, nil
}
