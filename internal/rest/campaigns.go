package rest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"time"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/campaign"
)

// campaignRequest is PUT /integrations/campaigns/{code}'s body: the whole
// campaign (replace means replace: omitted optional fields are unset).
type campaignRequest struct {
	Name        *string         `json:"name"`
	Description *string         `json:"description"`
	From        json.RawMessage `json:"from"`
	Until       json.RawMessage `json:"until"`
	Actions     []string        `json:"actions"`
	Multiplier  json.RawMessage `json:"multiplier"`
	Bonus       json.RawMessage `json:"bonus"`
	Condition   *string         `json:"condition"`
	Budget      json.RawMessage `json:"budget"`
	PerUserCap  json.RawMessage `json:"perUserCap"`
	Stacking    *string         `json:"stacking"`
	Enabled     *bool           `json:"enabled"`
}

type campaignView struct {
	Code        string     `json:"code"`
	Name        string     `json:"name"`
	Description string     `json:"description"`
	From        *time.Time `json:"from"`
	Until       *time.Time `json:"until"`
	// Actions are the rules it applies to; [] means every rule.
	Actions    []string        `json:"actions"`
	Multiplier json.RawMessage `json:"multiplier"`
	Bonus      *int64          `json:"bonus"`
	Condition  string          `json:"condition"`
	Budget     *int64          `json:"budget"`
	Spent      int64           `json:"spent"`
	Remaining  *int64          `json:"remaining"`
	PerUserCap *int64          `json:"perUserCap"`
	Stacking   string          `json:"stacking"`
	Enabled    bool            `json:"enabled"`
	Version    int             `json:"version"`
	CreatedAt  time.Time       `json:"createdAt"`
	UpdatedAt  time.Time       `json:"updatedAt"`
}

func newCampaignView(c *campaign.Campaign) campaignView {
	v := campaignView{
		Code: c.Code, Name: c.Name, Description: c.Description, From: c.StartsAt, Until: c.EndsAt, Actions: c.Actions,
		Multiplier: json.RawMessage("null"), Bonus: c.BonusPoints, Condition: c.Condition, Budget: c.BudgetPoints,
		Spent: c.SpentPoints, PerUserCap: c.UserCapPoints, Stacking: c.Stacking, Enabled: c.Enabled,
		Version: c.Version, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
	}
	if m := c.Multiplier(); m != "" {
		v.Multiplier = json.RawMessage(m)
	}
	if v.Actions == nil {
		v.Actions = []string{}
	}
	if c.BudgetPoints != nil {
		r := *c.BudgetPoints - c.SpentPoints
		v.Remaining = &r
	}
	return v
}

func present(raw json.RawMessage) bool {
	return len(raw) > 0 && string(bytes.TrimSpace(raw)) != "null"
}

// putCampaign creates (201) or replaces (200) a campaign.
func (a *API) putCampaign(w *Write) (int, any, error) {
	code := w.R.PathValue("code")
	if err := campaign.ValidateCode("code", code); err != nil {
		return 0, nil, err
	}
	var req campaignRequest
	if err := DecodeJSON(w.R, w.Body, &req); err != nil {
		return 0, nil, err
	}
	if req.Name == nil {
		return 0, nil, apperr.Field(apperr.CodeMissingField, "name", "name is required")
	}
	in := campaign.Input{Name: *req.Name, Actions: req.Actions, Stacking: campaign.StackAdditive, Enabled: true}
	if req.Description != nil {
		in.Description = *req.Description
	}
	if req.Condition != nil {
		in.Condition = *req.Condition
	}
	if req.Stacking != nil {
		in.Stacking = *req.Stacking
	}
	if req.Enabled != nil {
		in.Enabled = *req.Enabled
	}
	var err error
	if in.StartsAt, err = parseTime("from", req.From); err != nil {
		return 0, nil, err
	}
	if in.EndsAt, err = parseTime("until", req.Until); err != nil {
		return 0, nil, err
	}
	if present(req.Multiplier) {
		s := string(bytes.TrimSpace(req.Multiplier))
		var num json.Number
		if json.Unmarshal(req.Multiplier, &num) != nil || s[0] == '"' {
			return 0, nil, apperr.Field(apperr.CodeInvalidField, "multiplier", "multiplier must be a number such as 2 or 1.5")
		}
		m, err := campaign.ParseMultiplier("multiplier", s)
		if err != nil {
			return 0, nil, err
		}
		in.MultiplierHundredths = &m
	}
	if in.BonusPoints, err = parseIntIn("bonus", req.Bonus, 1, campaign.MaxBonus); err != nil {
		return 0, nil, err
	}
	if in.BudgetPoints, err = parseIntIn("budget", req.Budget, 1, campaign.MaxBudget); err != nil {
		return 0, nil, err
	}
	if in.UserCapPoints, err = parseIntIn("perUserCap", req.PerUserCap, 1, campaign.MaxUserCap); err != nil {
		return 0, nil, err
	}
	c, created, err := a.Campaigns.PutTx(w.Ctx, w.Tx, w.Partner.Partner.ID, code, in)
	if err != nil {
		return 0, nil, err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return status, newCampaignView(c), nil
}

func (a *API) listCampaigns(w http.ResponseWriter, r *http.Request, p *auth.PartnerPrincipal) error {
	list, err := a.Campaigns.List(r.Context(), a.DB.Bun, p.Partner.ID)
	if err != nil {
		return err
	}
	items := make([]campaignView, 0, len(list))
	for i := range list {
		items = append(items, newCampaignView(&list[i]))
	}
	WriteJSON(w, http.StatusOK, map[string]any{"items": items})
	return nil
}

func (a *API) getCampaign(w http.ResponseWriter, r *http.Request, p *auth.PartnerPrincipal) error {
	c, err := a.Campaigns.Get(r.Context(), a.DB.Bun, p.Partner.ID, r.PathValue("code"))
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, newCampaignView(c))
	return nil
}

func (a *API) deleteCampaign(w *Write) (int, any, error) {
	if err := a.Campaigns.DeleteTx(w.Ctx, w.Tx, w.Partner.Partner.ID, w.R.PathValue("code")); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

// registerCampaigns mounts the campaign routes (docs/program.md).
func (a *API) registerCampaigns(rt *Router) {
	rt.Handle(http.MethodGet, "/integrations/campaigns", a.Partner(a.listCampaigns))
	rt.Handle(http.MethodPut, "/integrations/campaigns/{code}", a.PartnerWrite(a.putCampaign))
	rt.Handle(http.MethodGet, "/integrations/campaigns/{code}", a.Partner(a.getCampaign))
	rt.Handle(http.MethodDelete, "/integrations/campaigns/{code}", a.PartnerWrite(a.deleteCampaign))
}
