package rest

import (
	"net/http"
	"time"

	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/program"
)

// programRequest is PUT /integrations/program's body: the whole policy.
// Every field is optional and an omitted one takes its default (replace
// means replace, as for rules).
type programRequest struct {
	ExpiryMode            *string  `json:"expiryMode"`
	ExpiryDays            *int     `json:"expiryDays"`
	ExpiryRoundToMonthEnd *bool    `json:"expiryRoundToMonthEnd"`
	ExpiryDates           []string `json:"expiryDates"`
	PendingDays           *int     `json:"pendingDays"`
	NegativeBalance       *string  `json:"negativeBalance"`
	ExpiryWarningDays     *int     `json:"expiryWarningDays"`
	Currency              *string  `json:"currency"`
	TierBasis             *string  `json:"tierBasis"`
	TierDowngrade         *string  `json:"tierDowngrade"`
	TierGraceDays         *int     `json:"tierGraceDays"`
	// DefaultLocale is the content locale shown when the user's has no
	// translation (omitted or null: none, the base text).
	DefaultLocale *string `json:"defaultLocale"`
}

type programView struct {
	ExpiryMode            string     `json:"expiryMode"`
	ExpiryDays            *int       `json:"expiryDays"`
	ExpiryRoundToMonthEnd bool       `json:"expiryRoundToMonthEnd"`
	ExpiryDates           []string   `json:"expiryDates"`
	PendingDays           int        `json:"pendingDays"`
	NegativeBalance       string     `json:"negativeBalance"`
	ExpiryWarningDays     int        `json:"expiryWarningDays"`
	Currency              *string    `json:"currency"`
	TierBasis             string     `json:"tierBasis"`
	TierDowngrade         string     `json:"tierDowngrade"`
	TierGraceDays         int        `json:"tierGraceDays"`
	DefaultLocale         *string    `json:"defaultLocale"`
	UpdatedAt             *time.Time `json:"updatedAt"`
}

func newProgramView(p program.Policy) programView {
	v := programView{
		ExpiryMode: p.ExpiryMode, ExpiryDays: p.ExpiryDays, ExpiryRoundToMonthEnd: p.ExpiryRoundToMonthEnd,
		ExpiryDates: p.ExpiryDates, PendingDays: p.PendingDays, NegativeBalance: p.NegativeBalance,
		ExpiryWarningDays: p.ExpiryWarningDays, Currency: p.Currency,
		TierBasis: p.TierBasis, TierDowngrade: p.TierDowngrade, TierGraceDays: p.TierGraceDays,
	}
	if v.ExpiryDates == nil {
		v.ExpiryDates = []string{}
	}
	if !p.UpdatedAt.IsZero() {
		t := p.UpdatedAt
		v.UpdatedAt = &t
	}
	return v
}

// getProgram answers the partner's program policy, the defaults when it
// never set one (updatedAt null).
func (a *API) getProgram(w http.ResponseWriter, r *http.Request, p *auth.PartnerPrincipal) error {
	pol, err := a.Program.Get(r.Context(), a.DB.Bun, p.Partner.ID)
	if err != nil {
		return err
	}
	v := newProgramView(pol)
	v.DefaultLocale = p.Partner.DefaultLocale
	WriteJSON(w, http.StatusOK, v)
	return nil
}

// putProgram replaces the partner's program policy.
func (a *API) putProgram(w *Write) (int, any, error) {
	var req programRequest
	if err := DecodeJSON(w.R, w.Body, &req); err != nil {
		return 0, nil, err
	}
	def := program.Default(w.Partner.Partner.ID)
	in := program.Input{
		ExpiryMode: def.ExpiryMode, ExpiryDays: req.ExpiryDays, ExpiryDates: req.ExpiryDates,
		PendingDays: def.PendingDays, NegativeBalance: def.NegativeBalance, ExpiryWarningDays: def.ExpiryWarningDays,
		TierBasis: def.TierBasis, TierDowngrade: def.TierDowngrade, TierGraceDays: def.TierGraceDays,
	}
	if req.TierBasis != nil {
		in.TierBasis = *req.TierBasis
	}
	if req.TierDowngrade != nil {
		in.TierDowngrade = *req.TierDowngrade
	}
	if req.TierGraceDays != nil {
		in.TierGraceDays = *req.TierGraceDays
	}
	if req.ExpiryMode != nil {
		in.ExpiryMode = *req.ExpiryMode
	}
	if req.ExpiryRoundToMonthEnd != nil {
		in.ExpiryRoundToMonthEnd = *req.ExpiryRoundToMonthEnd
	}
	if req.PendingDays != nil {
		in.PendingDays = *req.PendingDays
	}
	if req.NegativeBalance != nil {
		in.NegativeBalance = *req.NegativeBalance
	}
	if req.ExpiryWarningDays != nil {
		in.ExpiryWarningDays = *req.ExpiryWarningDays
	}
	in.Currency = req.Currency
	pol, err := a.Program.Put(w.Ctx, w.Tx, w.Partner.Partner.ID, in)
	if err != nil {
		return 0, nil, err
	}
	dl, err := a.Program.SetDefaultLocale(w.Ctx, w.Tx, w.Partner.Partner.ID, req.DefaultLocale)
	if err != nil {
		return 0, nil, err
	}
	v := newProgramView(pol)
	v.DefaultLocale = dl
	return http.StatusOK, v, nil
}
