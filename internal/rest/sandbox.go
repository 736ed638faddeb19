package rest

import (
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/partner"
)

// HeaderEnvironment marks every answer given to a sandbox's credential or
// consumer token (docs/sandbox.md). Live answers do not carry it, so live
// responses stay byte for byte what they were.
const HeaderEnvironment = "Perks-Environment"

// MarkEnvironment sets Perks-Environment: sandbox on w when p is a sandbox.
// It is called where a request's partner becomes known (partner and
// consumer authentication), before any answer, errors included.
func MarkEnvironment(w http.ResponseWriter, p *partner.Partner) {
	if p.IsSandbox() {
		w.Header().Set(HeaderEnvironment, partner.EnvironmentSandbox)
	}
}

func (a *API) registerSandbox(rt *Router) {
	rt.Handle(http.MethodGet, "/integrations/sandbox", a.Partner(a.getSandbox))
	rt.Handle(http.MethodPost, "/integrations/sandbox", a.PartnerWrite(a.createSandbox))
	rt.Handle(http.MethodPost, "/integrations/sandbox/reset", a.PartnerWrite(a.resetSandbox))
}

type sandboxView struct {
	ID          uuid.UUID `json:"id"`
	Slug        string    `json:"slug"`
	Environment string    `json:"environment"`
	LiveID      uuid.UUID `json:"livePartnerId"`
	CreatedAt   time.Time `json:"createdAt"`
	// Created and HMACSecret answer POST /integrations/sandbox only.
	Created    *bool  `json:"created,omitempty"`
	HMACSecret string `json:"hmacSecret,omitempty"`
	SecretNote string `json:"secretNote,omitempty"`
}

func newSandboxView(p *partner.Partner) sandboxView {
	return sandboxView{ID: p.ID, Slug: p.Slug, Environment: p.Environment(), LiveID: p.LiveID(), CreatedAt: p.CreatedAt.UTC()}
}

// getSandbox answers the caller's sandbox (itself when the caller is the
// sandbox), 404 NOT_FOUND before one is created.
func (a *API) getSandbox(w http.ResponseWriter, r *http.Request, p *auth.PartnerPrincipal) error {
	sb, err := a.Partners.Sandbox(r.Context(), a.DB.Bun, p.Partner.ID)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, newSandboxView(sb))
	return nil
}

// createSandbox creates the caller's sandbox (201, with the secret of its
// first HMAC credential, shown once; a retry with the same Idempotency-Key
// gets the answer without it) or answers the existing one (200).
func (a *API) createSandbox(w *Write) (int, any, error) {
	res, err := a.Partners.CreateSandboxTx(w.Ctx, w.Tx, w.Partner.Partner.ID)
	if err != nil {
		return 0, nil, err
	}
	v := newSandboxView(res.Sandbox)
	v.Created = &res.Created
	if !res.Created {
		return http.StatusOK, v, nil
	}
	stored := v
	stored.SecretNote = sandboxSecretNote
	w.StoreInstead(stored)
	v.HMACSecret = res.HMACSecret
	return http.StatusCreated, v, nil
}

// sandboxSecretNote replaces the secret in the stored answer.
const sandboxSecretNote = "the sandbox's first HMAC secret was shown once, in the answer to the original request, and is not stored with it; if it was lost, add a credential to the sandbox in the portal (Sandbox, then API access) or with perks key"

type resetView struct {
	sandboxView
	// Deleted counts the rows wiped per table.
	Deleted map[string]int64 `json:"deleted"`
}

// resetSandbox wipes the caller's sandbox (the caller may be the live
// partner or the sandbox itself) and keeps its credentials.
func (a *API) resetSandbox(w *Write) (int, any, error) {
	sb, err := a.Partners.Sandbox(w.Ctx, w.Tx, w.Partner.Partner.ID)
	if err != nil {
		return 0, nil, err
	}
	deleted, err := a.Partners.ResetSandboxTx(w.Ctx, w.Tx, sb.ID)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, resetView{sandboxView: newSandboxView(sb), Deleted: deleted}, nil
}
