package rest

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/content"
	"github.com/perkshq/perks/internal/locale"
)

type adRequest struct {
	Kind         *string         `json:"kind"`
	Title        *string         `json:"title"`
	Body         *string         `json:"body"`
	ImageURL     *string         `json:"imageUrl"`
	Link         *string         `json:"link"`
	Action       *string         `json:"action"`
	Priority     *int            `json:"priority"`
	VisibleFrom  json.RawMessage `json:"visibleFrom"`
	VisibleUntil json.RawMessage `json:"visibleUntil"`
	Countries    []string        `json:"countries"`
	// Translations give title and body per locale; omitted or null: none.
	Translations locale.Translations `json:"translations"`
}

type adView struct {
	ID           string     `json:"id"`
	Kind         string     `json:"kind"`
	Title        string     `json:"title"`
	Body         string     `json:"body"`
	ImageURL     *string    `json:"imageUrl"`
	Link         *string    `json:"link"`
	Action       *string    `json:"action"`
	Priority     int        `json:"priority"`
	VisibleFrom  *time.Time `json:"visibleFrom"`
	VisibleUntil *time.Time `json:"visibleUntil"`
	Countries    []string   `json:"countries"`
	// Translations is always an object ({} when none).
	Translations locale.Translations `json:"translations"`
	CreatedAt    time.Time           `json:"createdAt"`
	UpdatedAt    time.Time           `json:"updatedAt"`
}

func newAdView(a *content.Ad) adView {
	countries := a.Countries
	if countries == nil {
		countries = []string{}
	}
	tr := a.Translations
	if tr == nil {
		tr = locale.Translations{}
	}
	return adView{ID: a.ID, Kind: a.Kind, Title: a.Title, Body: a.Body, ImageURL: a.ImageURL, Link: a.LinkURL,
		Action: a.ActionCode, Priority: a.Priority, VisibleFrom: a.VisibleFrom, VisibleUntil: a.VisibleUntil,
		Countries: countries, Translations: tr, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt}
}

// putAd creates (201) or replaces (200) an ad with the partner's id.
func (a *API) putAd(w *Write) (int, any, error) {
	id := w.R.PathValue("id")
	if err := content.ValidateID(id); err != nil {
		return 0, nil, err
	}
	var req adRequest
	if err := DecodeJSON(w.R, w.Body, &req); err != nil {
		return 0, nil, err
	}
	if req.Kind == nil {
		return 0, nil, apperr.Field(apperr.CodeMissingField, "kind", "kind is required")
	}
	if req.Title == nil {
		return 0, nil, apperr.Field(apperr.CodeMissingField, "title", "title is required")
	}
	in := content.Input{Kind: *req.Kind, Title: *req.Title, ImageURL: req.ImageURL, LinkURL: req.Link, ActionCode: req.Action, Countries: req.Countries,
		Translations: req.Translations}
	if req.Body != nil {
		in.Body = *req.Body
	}
	if req.Priority != nil {
		in.Priority = *req.Priority
	}
	var err error
	if in.VisibleFrom, err = parseTime("visibleFrom", req.VisibleFrom); err != nil {
		return 0, nil, err
	}
	if in.VisibleUntil, err = parseTime("visibleUntil", req.VisibleUntil); err != nil {
		return 0, nil, err
	}
	ad, created, err := a.Content.Put(w.Ctx, w.Tx, w.Partner.Partner.ID, id, in)
	if err != nil {
		return 0, nil, err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return status, newAdView(ad), nil
}

func (a *API) getAd(w http.ResponseWriter, r *http.Request, p *auth.PartnerPrincipal) error {
	id := r.PathValue("id")
	if err := content.ValidateID(id); err != nil {
		return err
	}
	ad, err := a.Content.Get(r.Context(), a.DB.Bun, p.Partner.ID, id)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, newAdView(ad))
	return nil
}

func (a *API) listAds(w http.ResponseWriter, r *http.Request, p *auth.PartnerPrincipal) error {
	ads, err := a.Content.List(r.Context(), a.DB.Bun, p.Partner.ID)
	if err != nil {
		return err
	}
	items := make([]adView, 0, len(ads))
	for i := range ads {
		items = append(items, newAdView(&ads[i]))
	}
	WriteJSON(w, http.StatusOK, map[string]any{"items": items})
	return nil
}

func (a *API) deleteAd(w *Write) (int, any, error) {
	id := w.R.PathValue("id")
	if err := content.ValidateID(id); err != nil {
		return 0, nil, err
	}
	if err := a.Content.Delete(w.Ctx, w.Tx, w.Partner.Partner.ID, id); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}
