package rest

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/tier"
)

// tiersRequest is PUT /integrations/tiers's body: the whole ordered list.
type tiersRequest struct {
	Tiers *[]tierRequest `json:"tiers"`
}

type tierRequest struct {
	Code      string `json:"code"`
	Name      string `json:"name"`
	Threshold int64  `json:"threshold"`
	// Multiplier is read as the literal JSON text so that 1.255 (or "1.5",
	// a string) is refused, not rounded or converted.
	Multiplier json.RawMessage `json:"multiplier"`
	Benefits   string          `json:"benefits"`
}

type tierView struct {
	Code       string      `json:"code"`
	Name       string      `json:"name"`
	Threshold  int64       `json:"threshold"`
	Multiplier json.Number `json:"multiplier"`
	Benefits   string      `json:"benefits"`
}

type tiersView struct {
	Tiers []tierView `json:"tiers"`
}

func newTiersView(list []tier.Tier) tiersView {
	v := tiersView{Tiers: make([]tierView, len(list))}
	for i, t := range list {
		v.Tiers[i] = tierView{Code: t.Code, Name: t.Name, Threshold: t.Threshold, Multiplier: tier.FormatMultiplier(t.Multiplier), Benefits: t.Benefits}
	}
	return v
}

// getTiers answers the partner's tiers in order.
func (a *API) getTiers(w http.ResponseWriter, r *http.Request, p *auth.PartnerPrincipal) error {
	list, err := a.Tiers.List(r.Context(), a.DB.Bun, p.Partner.ID)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, newTiersView(list))
	return nil
}

// putTiers replaces the partner's tiers (multiplier defaults to 1).
func (a *API) putTiers(w *Write) (int, any, error) {
	var req tiersRequest
	if err := DecodeJSON(w.R, w.Body, &req); err != nil {
		return 0, nil, err
	}
	if req.Tiers == nil {
		return 0, nil, apperr.Field(apperr.CodeMissingField, "tiers", "tiers is required (an empty list removes every tier)")
	}
	if len(*req.Tiers) > tier.MaxTiers {
		return 0, nil, apperr.Field(apperr.CodeInvalidField, "tiers", "tiers holds at most %d tiers", tier.MaxTiers)
	}
	in := make([]tier.Input, len(*req.Tiers))
	for i, t := range *req.Tiers {
		in[i] = tier.Input{Code: t.Code, Name: t.Name, Threshold: t.Threshold, Multiplier: tier.MultiplierScale, Benefits: t.Benefits}
		if len(t.Multiplier) > 0 && string(t.Multiplier) != "null" {
			m, err := tier.ParseMultiplier(fmt.Sprintf("tiers[%d].multiplier", i), json.Number(t.Multiplier))
			if err != nil {
				return 0, nil, err
			}
			in[i].Multiplier = m
		}
	}
	list, err := a.Tiers.PutTx(w.Ctx, w.Tx, w.Partner.Partner.ID, in)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, newTiersView(list), nil
}
