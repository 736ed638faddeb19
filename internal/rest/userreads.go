package rest

import (
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/ledger"
	"github.com/perkshq/perks/internal/user"
	"github.com/perkshq/perks/internal/voucher"
)

// registerUserReads mounts the reads the portal's Users and Exports & jobs
// pages show, so automation reads the same: a user's whole history and
// vouchers in pages (user/info has only the recent entries), and the
// partner's recent bulk jobs.
func (a *API) registerUserReads(rt *Router) {
	rt.Handle(http.MethodGet, "/integrations/users/{externalUserId}/entries", a.Partner(a.listUserEntries))
	rt.Handle(http.MethodGet, "/integrations/users/{externalUserId}/vouchers", a.Partner(a.listUserVouchers))
	rt.Handle(http.MethodGet, "/integrations/jobs", a.Partner(a.listJobs))
}

// pageQuery reads ?before= (a positive keyset bound, 0 when absent) and
// ?limit= (1 to max, def when absent).
func pageQuery(r *http.Request, def, max int) (int64, int, error) {
	q := r.URL.Query()
	var before int64
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return 0, 0, apperr.Field(apperr.CodeInvalidField, "before", "before must be a positive whole number (nextBefore of the previous page)")
		}
		before = n
	}
	limit := def
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > max {
			return 0, 0, apperr.Field(apperr.CodeInvalidField, "limit", "limit must be between 1 and %d", max)
		}
		limit = n
	}
	return before, limit, nil
}

type entriesPage struct {
	Items []entryView `json:"items"`
	// NextBefore is the before of the next (older) page; null on the last.
	NextBefore *int64 `json:"nextBefore"`
}

// listUserEntries is a user's ledger history, newest first, in keyset
// pages (ledger.Service.History).
func (a *API) listUserEntries(w http.ResponseWriter, r *http.Request, p *auth.PartnerPrincipal) error {
	ext := r.PathValue("externalUserId")
	if err := user.ValidateExternalID("externalUserId", ext); err != nil {
		return err
	}
	before, limit, err := pageQuery(r, 50, 500)
	if err != nil {
		return err
	}
	u, err := a.Users.Get(r.Context(), a.DB.Bun, p.Partner.ID, ext)
	if err != nil {
		return err
	}
	es, err := a.Ledger.History(r.Context(), a.DB.Bun, p.Partner.ID, u.ID, ledger.DirectionAll, before, limit+1)
	if err != nil {
		return err
	}
	out := entriesPage{Items: make([]entryView, 0, len(es))}
	if len(es) > limit {
		es = es[:limit]
		next := es[limit-1].ID
		out.NextBefore = &next
	}
	for i := range es {
		out.Items = append(out.Items, newEntryView(&es[i]))
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

type vouchersPage struct {
	Items      []partnerVoucherView `json:"items"`
	NextBefore *int64               `json:"nextBefore"`
}

// listUserVouchers is a user's vouchers, newest first, in keyset pages,
// as GET /integrations/vouchers/{id} shows each (never the code).
func (a *API) listUserVouchers(w http.ResponseWriter, r *http.Request, p *auth.PartnerPrincipal) error {
	ext := r.PathValue("externalUserId")
	if err := user.ValidateExternalID("externalUserId", ext); err != nil {
		return err
	}
	before, limit, err := pageQuery(r, 50, 500)
	if err != nil {
		return err
	}
	u, err := a.Users.Get(r.Context(), a.DB.Bun, p.Partner.ID, ext)
	if err != nil {
		return err
	}
	now := a.now()
	vs, err := a.Vouchers.List(r.Context(), a.DB.Bun, p.Partner.ID, u.ID, now, voucher.ListQuery{BeforeSeq: before, Limit: limit + 1})
	if err != nil {
		return err
	}
	out := vouchersPage{Items: make([]partnerVoucherView, 0, len(vs))}
	if len(vs) > limit {
		vs = vs[:limit]
		next := vs[limit-1].Seq
		out.NextBefore = &next
	}
	for i := range vs {
		out.Items = append(out.Items, newPartnerVoucherView(&vs[i], now))
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

type jobSummary struct {
	ID         uuid.UUID  `json:"id"`
	Kind       string     `json:"kind"`
	State      string     `json:"state"`
	Total      int        `json:"total"`
	Done       int        `json:"done"`
	Failed     int        `json:"failed"`
	CreatedAt  time.Time  `json:"createdAt"`
	StartedAt  *time.Time `json:"startedAt"`
	FinishedAt *time.Time `json:"finishedAt"`
}

// listJobs is the partner's most recent bulk jobs, newest first, with
// their counters (per-item results are GET /integrations/jobs/{id}'s).
func (a *API) listJobs(w http.ResponseWriter, r *http.Request, p *auth.PartnerPrincipal) error {
	limit := 50
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 200 {
			return apperr.Field(apperr.CodeInvalidField, "limit", "limit must be between 1 and 200")
		}
		limit = n
	}
	js, err := a.Bulk.List(r.Context(), a.DB.Bun, p.Partner.ID, limit)
	if err != nil {
		return err
	}
	out := make([]jobSummary, len(js))
	for i, j := range js {
		out[i] = jobSummary{ID: j.ID, Kind: j.Kind, State: j.State, Total: j.Total, Done: j.Done, Failed: j.Failed,
			CreatedAt: j.CreatedAt, StartedAt: j.StartedAt, FinishedAt: j.FinishedAt}
	}
	WriteJSON(w, http.StatusOK, map[string]any{"items": out})
	return nil
}
