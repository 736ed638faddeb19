package rest

import (
	"context"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/user"
)

type upsertUserRequest struct {
	ExternalUserID *string `json:"externalUserId"`
	Email          *string `json:"email"`
	DisplayName    *string `json:"displayName"`
	FirstName      *string `json:"firstName"`
	LastName       *string `json:"lastName"`
	Locale         *string `json:"locale"`
	CountryCode    *string `json:"countryCode"`
}

type upsertUserResponse struct {
	UserID  uuid.UUID `json:"userId"`
	Created bool      `json:"created"`
}

// upsertUser is seed 000 step 1: 201 when created, 200 when updated or
// revived. Absent (or null) fields leave stored values unchanged.
func (a *API) upsertUser(w http.ResponseWriter, r *http.Request, p *auth.PartnerPrincipal) error {
	var req upsertUserRequest
	if err := DecodeJSON(r, Body(r.Context()), &req); err != nil {
		return err
	}
	if req.ExternalUserID == nil {
		return apperr.Field(apperr.CodeMissingField, "externalUserId", "externalUserId is required")
	}
	if err := user.ValidateExternalID("externalUserId", *req.ExternalUserID); err != nil {
		return err
	}
	profile, err := user.Normalize(user.Profile{
		Email: req.Email, DisplayName: req.DisplayName, FirstName: req.FirstName,
		LastName: req.LastName, Locale: req.Locale, CountryCode: req.CountryCode,
	})
	if err != nil {
		return err
	}
	var res *user.UpsertResult
	err = a.DB.Bun.RunInTx(r.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
		res, err = a.Users.UpsertTx(ctx, tx, p.Partner.ID, *req.ExternalUserID, profile)
		return err
	})
	if err != nil {
		return err
	}
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
	}
	WriteJSON(w, status, upsertUserResponse{UserID: res.User.ID, Created: res.Created})
	return nil
}

// userView is a user as its partner sees it. Personal fields are null once
// the user is anonymised.
type userView struct {
	UserID         uuid.UUID  `json:"userId"`
	ExternalUserID *string    `json:"externalUserId"`
	Email          *string    `json:"email"`
	DisplayName    *string    `json:"displayName"`
	FirstName      *string    `json:"firstName"`
	LastName       *string    `json:"lastName"`
	Locale         *string    `json:"locale"`
	CountryCode    *string    `json:"countryCode"`
	Anonymised     bool       `json:"anonymised"`
	AnonymisedAt   *time.Time `json:"anonymisedAt"`
	CreatedAt      time.Time  `json:"createdAt"`
	UpdatedAt      time.Time  `json:"updatedAt"`
}

func newUserView(u *user.User) userView {
	return userView{
		UserID: u.ID, ExternalUserID: u.ExternalID, Email: u.Email, DisplayName: u.DisplayName,
		FirstName: u.FirstName, LastName: u.LastName, Locale: u.Locale, CountryCode: u.CountryCode,
		Anonymised: u.Anonymised(), AnonymisedAt: u.AnonymisedAt, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt,
	}
}

func (a *API) getUser(w http.ResponseWriter, r *http.Request, p *auth.PartnerPrincipal) error {
	ext := r.PathValue("externalUserId")
	if err := user.ValidateExternalID("externalUserId", ext); err != nil {
		return err
	}
	u, err := a.Users.Get(r.Context(), a.DB.Bun, p.Partner.ID, ext)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, newUserView(u))
	return nil
}

// deleteUser is seed 000 step 6: anonymise, 204, history kept.
func (a *API) deleteUser(w http.ResponseWriter, r *http.Request, p *auth.PartnerPrincipal) error {
	ext := r.PathValue("externalUserId")
	if err := user.ValidateExternalID("externalUserId", ext); err != nil {
		return err
	}
	if mode := r.URL.Query().Get("mode"); mode != "" && mode != "anonymise" {
		return apperr.Field(apperr.CodeInvalidField, "mode", "mode must be anonymise")
	}
	err := a.DB.Bun.RunInTx(r.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
		_, err := a.Users.AnonymiseTx(ctx, tx, p.Partner.ID, ext)
		return err
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// logoutUser is seed 001's user/logout from the back end: every consumer
// token of the user issued before now is refused from now on (204).
func (a *API) logoutUser(w http.ResponseWriter, r *http.Request, p *auth.PartnerPrincipal) error {
	ext := r.PathValue("externalUserId")
	if err := user.ValidateExternalID("externalUserId", ext); err != nil {
		return err
	}
	err := a.DB.Bun.RunInTx(r.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
		return a.Users.LogoutExternalTx(ctx, tx, p.Partner.ID, ext)
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type meResponse struct {
	ID          uuid.UUID   `json:"id"`
	Email       *string     `json:"email"`
	DisplayName *string     `json:"displayName"`
	Partner     partnerView `json:"partner"`
}

type partnerView struct {
	ID          uuid.UUID `json:"id"`
	Name        string    `json:"name"`
	Slug        string    `json:"slug"`
	DisplayName string    `json:"displayName"`
	LogoPath    string    `json:"logoPath"`
}

// me is seed 000 step 3, the same data as GraphQL `me`.
func (a *API) me(w http.ResponseWriter, r *http.Request, c *auth.ConsumerPrincipal) error {
	p := c.Partner
	WriteJSON(w, http.StatusOK, meResponse{
		ID: c.User.ID, Email: c.User.Email, DisplayName: c.User.DisplayName,
		Partner: partnerView{ID: p.ID, Name: p.Name, Slug: p.Slug, DisplayName: p.DisplayName, LogoPath: p.LogoPath},
	})
	return nil
}
