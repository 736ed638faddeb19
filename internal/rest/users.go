package rest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/ledger"
	"github.com/perkshq/perks/internal/referral"
	"github.com/perkshq/perks/internal/tier"
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
	// Attributes replace the user's custom attributes when present (null:
	// unchanged); see user.ValidateAttributes.
	Attributes json.RawMessage `json:"attributes"`
	// ReferralCode sets the user's own referral code (seed 003's
	// referralCode); ReferredBy attributes the user to the owner of that
	// code (docs/referrals.md).
	ReferralCode *string `json:"referralCode"`
	ReferredBy   *string `json:"referredBy"`
}

type upsertUserResponse struct {
	UserID  uuid.UUID `json:"userId"`
	Created bool      `json:"created"`
}

// upsertUser is seed 000 step 1: 201 when created, 200 when updated or
// revived. Absent (or null) fields leave stored values unchanged.
func (a *API) upsertUser(w *Write) (int, any, error) {
	var req upsertUserRequest
	if err := DecodeJSON(w.R, w.Body, &req); err != nil {
		return 0, nil, err
	}
	if req.ExternalUserID == nil {
		return 0, nil, apperr.Field(apperr.CodeMissingField, "externalUserId", "externalUserId is required")
	}
	if err := user.ValidateExternalID("externalUserId", *req.ExternalUserID); err != nil {
		return 0, nil, err
	}
	profile, err := user.Normalize(user.Profile{
		Email: req.Email, DisplayName: req.DisplayName, FirstName: req.FirstName,
		LastName: req.LastName, Locale: req.Locale, CountryCode: req.CountryCode,
		Attributes: attributesInput(req.Attributes),
	})
	if err != nil {
		return 0, nil, err
	}
	res, err := a.Users.UpsertTx(w.Ctx, w.Tx, w.Partner.Partner.ID, *req.ExternalUserID, profile)
	if err != nil {
		return 0, nil, err
	}
	w.UserID = &res.User.ID
	// Referral fields, in the upsert's transaction: a refused code or
	// attribution refuses the whole upsert (it changes nothing).
	if req.ReferralCode != nil {
		if _, err := a.Referrals.SetCodeTx(w.Ctx, w.Tx, w.Partner.Partner.ID, res.User.ID, "referralCode", *req.ReferralCode); err != nil {
			return 0, nil, err
		}
	}
	if req.ReferredBy != nil {
		if _, err := a.Referrals.AttributeTx(w.Ctx, w.Tx, w.Partner.Partner.ID, res.User, "referredBy", *req.ReferredBy, referral.SourceAPI); err != nil {
			return 0, nil, err
		}
	}
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
	}
	return status, upsertUserResponse{UserID: res.User.ID, Created: res.Created}, nil
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

	// Attributes are the custom attributes ({} when none, and once
	// anonymised).
	Attributes json.RawMessage `json:"attributes"`
}

func newUserView(u *user.User) userView {
	return userView{
		UserID: u.ID, ExternalUserID: u.ExternalID, Email: u.Email, DisplayName: u.DisplayName,
		FirstName: u.FirstName, LastName: u.LastName, Locale: u.Locale, CountryCode: u.CountryCode,
		Anonymised: u.Anonymised(), AnonymisedAt: u.AnonymisedAt, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt,
		Attributes: attributesView(u.Attributes),
	}
}

// attributesInput is nil (unchanged) for an absent or null attributes.
func attributesInput(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return nil
	}
	return raw
}

func attributesView(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return json.RawMessage("{}")
	}
	return raw
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
	sum, err := a.Ledger.SummaryOf(r.Context(), a.DB.Bun, p.Partner.ID, u.ID)
	if err != nil {
		return err
	}
	recent, err := a.Ledger.History(r.Context(), a.DB.Bun, p.Partner.ID, u.ID, ledger.DirectionAll, 0, recentEntries)
	if err != nil {
		return err
	}
	info := userInfo{userView: newUserView(u), pointsView: newPointsView(sum), RecentEntries: make([]entryView, 0, len(recent))}
	if c, ok, err := tier.CurrentTx(r.Context(), a.DB.Bun, p.Partner.ID, u.ID); err != nil {
		return err
	} else if ok {
		info.Tier = &c.Code
	}
	for _, e := range recent {
		info.RecentEntries = append(info.RecentEntries, newEntryView(&e))
	}
	if info.Referral, err = a.referralInfoOf(r, p.Partner.ID, u.ID); err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, info)
	return nil
}

// recentEntries is how much history user/info shows; the export and
// GraphQL history page through the rest.
const recentEntries = 20

// userInfo is seed 001 user/info: the profile, balance and recent history.
type userInfo struct {
	userView
	pointsView
	RecentEntries []entryView `json:"recentEntries"`
	// Tier is the user's tier code (null: the partner has no tiers).
	Tier *string `json:"tier"`
	// Referral is the user's referral code, link, referrer and referrals.
	Referral *referralInfo `json:"referral"`
}

// pointsView is a user's points lifecycle (ledger.Summary) as the partner
// API shows it, in user/info and the user list alike.
type pointsView struct {
	// Balance is the available (spendable) balance.
	Balance int64 `json:"balance"`
	// PendingPoints are earned but not yet spendable.
	PendingPoints int64 `json:"pendingPoints"`
	// ExpiringPoints are the next expiry days, soonest first.
	ExpiringPoints []ledger.Expiring `json:"expiringPoints"`
	LifetimePoints int64             `json:"lifetimePoints"`
}

func newPointsView(s *ledger.Summary) pointsView {
	return pointsView{Balance: s.Balance, PendingPoints: s.PendingPoints, ExpiringPoints: s.Expiring, LifetimePoints: s.LifetimePoints}
}

type entryView struct {
	ID           int64   `json:"id"`
	Kind         string  `json:"kind"`
	Points       int64   `json:"points"`
	BalanceAfter int64   `json:"balanceAfter"`
	Reason       string  `json:"reason"`
	Action       *string `json:"action"`
	Reference    *string `json:"reference"`
	// SourceType and SourceID say what inside Perks caused the entry: a
	// voucher for a burn, the lot for an activate or expire, the earn for
	// a reverse or cancel.
	SourceType *string   `json:"sourceType"`
	SourceID   *string   `json:"sourceId"`
	OccurredAt time.Time `json:"occurredAt"`
	CreatedAt  time.Time `json:"createdAt"`
	// Breakdown is how an earn's points were computed (null for other
	// entries and for earns older than breakdowns).
	Breakdown json.RawMessage `json:"breakdown"`
}

func newEntryView(e *ledger.Entry) entryView {
	v := entryView{ID: e.ID, Kind: string(e.Kind), Points: e.Points, BalanceAfter: e.BalanceAfter, Reason: e.Reason,
		Action: e.ActionCode, Reference: e.Reference, SourceType: e.SourceType, SourceID: e.SourceID, OccurredAt: e.OccurredAt, CreatedAt: e.CreatedAt,
		Breakdown: e.Breakdown}
	if len(v.Breakdown) == 0 {
		v.Breakdown = json.RawMessage("null")
	}
	return v
}

// deleteUser is seed 000 step 6: anonymise, 204, history kept.
func (a *API) deleteUser(w *Write) (int, any, error) {
	ext := w.R.PathValue("externalUserId")
	if err := user.ValidateExternalID("externalUserId", ext); err != nil {
		return 0, nil, err
	}
	switch mode := w.R.URL.Query().Get("mode"); mode {
	case "", "anonymise":
		u, err := a.Users.AnonymiseTx(w.Ctx, w.Tx, w.Partner.Partner.ID, ext)
		if err != nil {
			return 0, nil, err
		}
		w.UserID = &u.ID
	case "erase":
		// Seed 001 user/delete: the user and their history go entirely. The
		// stored response is not tied to the user, or erasing would erase it.
		u, err := a.Users.Get(w.Ctx, w.Tx, w.Partner.Partner.ID, ext)
		if err != nil {
			return 0, nil, err
		}
		if err := a.Users.EraseTx(w.Ctx, w.Tx, w.Partner.Partner.ID, []uuid.UUID{u.ID}); err != nil {
			return 0, nil, err
		}
	default:
		return 0, nil, apperr.Field(apperr.CodeInvalidField, "mode", "mode must be anonymise or erase")
	}
	return http.StatusNoContent, nil, nil
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

// logoutUser is seed 001's user/logout from the back end: every consumer
// token of the user issued before now is refused from now on (204).
func (a *API) logoutUser(w *Write) (int, any, error) {
	ext := w.R.PathValue("externalUserId")
	if err := user.ValidateExternalID("externalUserId", ext); err != nil {
		return 0, nil, err
	}
	if err := a.Users.LogoutExternalTx(w.Ctx, w.Tx, w.Partner.Partner.ID, ext); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}
