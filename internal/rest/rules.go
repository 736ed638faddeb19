package rest

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/earning"
)

type ruleRequest struct {
	Name              *string         `json:"name"`
	Description       *string         `json:"description"`
	Points            json.RawMessage `json:"points"`
	VariablePoints    bool            `json:"variablePoints"`
	MaxPoints         json.RawMessage `json:"maxPoints"`
	ClientTriggerable bool            `json:"clientTriggerable"`
	LifetimeCap       *int            `json:"lifetimeCap"`
	DailyCap          *int            `json:"dailyCap"`
	CooldownSeconds   *int            `json:"cooldownSeconds"`
	ActiveFrom        json.RawMessage `json:"activeFrom"`
	ActiveUntil       json.RawMessage `json:"activeUntil"`
	Enabled           *bool           `json:"enabled"`
	PendingDays       *int            `json:"pendingDays"`
	ExpiryDays        *int            `json:"expiryDays"`
	PointsPerAmount   json.RawMessage `json:"pointsPerAmount"`
}

type ruleView struct {
	Code              string     `json:"code"`
	Name              string     `json:"name"`
	Description       string     `json:"description"`
	Points            int64      `json:"points"`
	VariablePoints    bool       `json:"variablePoints"`
	MaxPoints         *int64     `json:"maxPoints"`
	ClientTriggerable bool       `json:"clientTriggerable"`
	LifetimeCap       *int       `json:"lifetimeCap"`
	DailyCap          *int       `json:"dailyCap"`
	CooldownSeconds   *int       `json:"cooldownSeconds"`
	ActiveFrom        *time.Time `json:"activeFrom"`
	ActiveUntil       *time.Time `json:"activeUntil"`
	Enabled           bool       `json:"enabled"`
	PendingDays       *int       `json:"pendingDays"`
	ExpiryDays        *int       `json:"expiryDays"`
	PointsPerAmount   *int64     `json:"pointsPerAmount"`
	CreatedAt         time.Time  `json:"createdAt"`
	UpdatedAt         time.Time  `json:"updatedAt"`
}

func newRuleView(r *earning.Rule) ruleView {
	return ruleView{
		Code: r.Code, Name: r.Name, Description: r.Description, Points: r.Points, VariablePoints: r.VariablePoints,
		MaxPoints: r.MaxPoints, ClientTriggerable: r.ClientTriggerable, LifetimeCap: r.LifetimeCap, DailyCap: r.DailyCap,
		CooldownSeconds: r.CooldownSeconds, ActiveFrom: r.ActiveFrom, ActiveUntil: r.ActiveUntil, Enabled: r.Enabled,
		PendingDays: r.PendingDays, ExpiryDays: r.ExpiryDays, PointsPerAmount: r.PointsPerAmount, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
}

// putRule creates (201) or replaces (200) an earning rule. Replace means
// replace: omitted optional fields become unset.
func (a *API) putRule(w *Write) (int, any, error) {
	code := w.R.PathValue("code")
	if err := earning.ValidateCode("code", code); err != nil {
		return 0, nil, err
	}
	var req ruleRequest
	if err := DecodeJSON(w.R, w.Body, &req); err != nil {
		return 0, nil, err
	}
	if req.Name == nil {
		return 0, nil, apperr.Field(apperr.CodeMissingField, "name", "name is required")
	}
	if len(req.Points) == 0 || string(req.Points) == "null" {
		return 0, nil, apperr.Field(apperr.CodeMissingField, "points", "points is required")
	}
	points, err := parseInt("points", req.Points)
	if err != nil {
		return 0, nil, err
	}
	in := earning.RuleInput{
		Name: *req.Name, Points: points, VariablePoints: req.VariablePoints, ClientTriggerable: req.ClientTriggerable,
		LifetimeCap: req.LifetimeCap, DailyCap: req.DailyCap, CooldownSeconds: req.CooldownSeconds, Enabled: true,
		PendingDays: req.PendingDays, ExpiryDays: req.ExpiryDays,
	}
	if req.Description != nil {
		in.Description = *req.Description
	}
	if req.Enabled != nil {
		in.Enabled = *req.Enabled
	}
	if len(req.MaxPoints) > 0 && string(req.MaxPoints) != "null" {
		n, err := parseInt("maxPoints", req.MaxPoints)
		if err != nil {
			return 0, nil, err
		}
		in.MaxPoints = &n
	}
	if len(req.PointsPerAmount) > 0 && string(req.PointsPerAmount) != "null" {
		n, err := parseInt("pointsPerAmount", req.PointsPerAmount)
		if err != nil {
			return 0, nil, err
		}
		in.PointsPerAmount = &n
	}
	if in.ActiveFrom, err = parseTime("activeFrom", req.ActiveFrom); err != nil {
		return 0, nil, err
	}
	if in.ActiveUntil, err = parseTime("activeUntil", req.ActiveUntil); err != nil {
		return 0, nil, err
	}
	r, created, err := a.Earning.PutRule(w.Ctx, w.Tx, w.Partner.Partner.ID, code, in)
	if err != nil {
		return 0, nil, err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return status, newRuleView(r), nil
}

func (a *API) listRules(w http.ResponseWriter, r *http.Request, p *auth.PartnerPrincipal) error {
	all := r.URL.Query().Get("includeDisabled")
	if all != "" && all != "true" && all != "false" {
		return apperr.Field(apperr.CodeInvalidField, "includeDisabled", "includeDisabled must be true or false")
	}
	rules, err := a.Earning.Rules(r.Context(), a.DB.Bun, p.Partner.ID, all == "true")
	if err != nil {
		return err
	}
	items := make([]ruleView, 0, len(rules))
	for i := range rules {
		items = append(items, newRuleView(&rules[i]))
	}
	WriteJSON(w, http.StatusOK, map[string]any{"items": items})
	return nil
}

func (a *API) deleteRule(w *Write) (int, any, error) {
	code := w.R.PathValue("code")
	if err := earning.ValidateCode("code", code); err != nil {
		return 0, nil, err
	}
	if err := a.Earning.DisableRule(w.Ctx, w.Tx, w.Partner.Partner.ID, code); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}
