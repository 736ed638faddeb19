package rest

import (
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/referral"
)

// referralPolicyRequest is PUT /integrations/referral-policy's body: the
// whole policy (replace means replace; omitted optional fields take their
// defaults). qualifyAction, referrerPoints and refereePoints are required.
type referralPolicyRequest struct {
	Enabled               *bool   `json:"enabled"`
	CodePattern           *string `json:"codePattern"`
	LinkTemplate          *string `json:"linkTemplate"`
	AttributionWindowDays *int    `json:"attributionWindowDays"`
	QualifyAction         *string `json:"qualifyAction"`
	QualifyMinAmount      *int64  `json:"qualifyMinAmount"`
	ReferrerPoints        *int64  `json:"referrerPoints"`
	RefereePoints         *int64  `json:"refereePoints"`
	HoldDays              *int    `json:"holdDays"`
	MonthlyCap            *int    `json:"monthlyCap"`
	LifetimeCap           *int    `json:"lifetimeCap"`
	VelocityLimit         *int    `json:"velocityLimit"`
	VelocityWindowMinutes *int    `json:"velocityWindowMinutes"`
}

type referralPolicyView struct {
	Enabled               bool       `json:"enabled"`
	CodePattern           string     `json:"codePattern"`
	LinkTemplate          *string    `json:"linkTemplate"`
	AttributionWindowDays int        `json:"attributionWindowDays"`
	QualifyAction         *string    `json:"qualifyAction"`
	QualifyMinAmount      *int64     `json:"qualifyMinAmount"`
	ReferrerPoints        int64      `json:"referrerPoints"`
	RefereePoints         int64      `json:"refereePoints"`
	HoldDays              int        `json:"holdDays"`
	MonthlyCap            *int       `json:"monthlyCap"`
	LifetimeCap           *int       `json:"lifetimeCap"`
	VelocityLimit         *int       `json:"velocityLimit"`
	VelocityWindowMinutes int        `json:"velocityWindowMinutes"`
	UpdatedAt             *time.Time `json:"updatedAt"`
}

func newReferralPolicyView(p referral.Policy, set bool) referralPolicyView {
	v := referralPolicyView{
		Enabled: p.Enabled, CodePattern: p.CodePattern, AttributionWindowDays: p.AttributionWindowDays,
		QualifyMinAmount: p.QualifyMinAmount, ReferrerPoints: p.ReferrerPoints, RefereePoints: p.RefereePoints,
		HoldDays: p.HoldDays, MonthlyCap: p.MonthlyCap, LifetimeCap: p.LifetimeCap, VelocityLimit: p.VelocityLimit,
		VelocityWindowMinutes: p.VelocityWindowMinutes,
	}
	if p.LinkTemplate != "" {
		v.LinkTemplate = &p.LinkTemplate
	}
	if set {
		v.QualifyAction, v.UpdatedAt = &p.QualifyAction, &p.UpdatedAt
	}
	return v
}

// getReferralPolicy answers the partner's referral policy; without one,
// the defaults (enabled false, updatedAt null: no rewards).
func (a *API) getReferralPolicy(w http.ResponseWriter, r *http.Request, p *auth.PartnerPrincipal) error {
	pol, set, err := a.Referrals.Policy(r.Context(), a.DB.Bun, p.Partner.ID)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, newReferralPolicyView(pol, set))
	return nil
}

// putReferralPolicy replaces the partner's referral policy.
func (a *API) putReferralPolicy(w *Write) (int, any, error) {
	var req referralPolicyRequest
	if err := DecodeJSON(w.R, w.Body, &req); err != nil {
		return 0, nil, err
	}
	for _, f := range []struct {
		name string
		set  bool
	}{{"qualifyAction", req.QualifyAction != nil}, {"referrerPoints", req.ReferrerPoints != nil}, {"refereePoints", req.RefereePoints != nil}} {
		if !f.set {
			return 0, nil, apperr.Field(apperr.CodeMissingField, f.name, "%s is required", f.name)
		}
	}
	pol := referral.DefaultPolicy(w.Partner.Partner.ID)
	pol.Enabled = true
	pol.QualifyAction, pol.ReferrerPoints, pol.RefereePoints = *req.QualifyAction, *req.ReferrerPoints, *req.RefereePoints
	pol.QualifyMinAmount, pol.MonthlyCap, pol.LifetimeCap, pol.VelocityLimit = req.QualifyMinAmount, req.MonthlyCap, req.LifetimeCap, req.VelocityLimit
	set := func(dst *int, src *int) {
		if src != nil {
			*dst = *src
		}
	}
	set(&pol.AttributionWindowDays, req.AttributionWindowDays)
	set(&pol.HoldDays, req.HoldDays)
	set(&pol.VelocityWindowMinutes, req.VelocityWindowMinutes)
	if req.Enabled != nil {
		pol.Enabled = *req.Enabled
	}
	if req.CodePattern != nil {
		pol.CodePattern = *req.CodePattern
	}
	if req.LinkTemplate != nil {
		pol.LinkTemplate = *req.LinkTemplate
	}
	out, err := a.Referrals.PutPolicy(w.Ctx, w.Tx, w.Partner.Partner.ID, pol)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, newReferralPolicyView(out, true), nil
}

// referralInfo is a user's referral side as the partner sees it in
// GET /integrations/users/{id}: their code and link, who referred them,
// their stats and latest referrals.
type referralInfo struct {
	Code       string            `json:"code"`
	Link       *string           `json:"link"`
	ReferredBy *referralView     `json:"referredBy"`
	Stats      referralStatsView `json:"stats"`
	// Referrals are the latest (at most recentReferrals), newest first.
	Referrals []referralView `json:"referrals"`
}

type referralView struct {
	ID             int64      `json:"id"`
	ReferrerUserID uuid.UUID  `json:"referrerUserId"`
	RefereeUserID  uuid.UUID  `json:"refereeUserId"`
	Code           string     `json:"code"`
	Source         string     `json:"source"`
	Status         string     `json:"status"`
	ReferrerPoints int64      `json:"referrerPoints"`
	RefereePoints  int64      `json:"refereePoints"`
	Capped         bool       `json:"capped"`
	HoldUntil      *time.Time `json:"holdUntil"`
	CreatedAt      time.Time  `json:"createdAt"`
	QualifiedAt    *time.Time `json:"qualifiedAt"`
	RewardedAt     *time.Time `json:"rewardedAt"`
	CancelledAt    *time.Time `json:"cancelledAt"`
}

type referralStatsView struct {
	Invited       int   `json:"invited"`
	Qualified     int   `json:"qualified"`
	PointsEarned  int64 `json:"pointsEarned"`
	PointsPending int64 `json:"pointsPending"`
}

func newReferralView(r *referral.Referral) referralView {
	return referralView{
		ID: r.ID, ReferrerUserID: r.ReferrerID, RefereeUserID: r.RefereeID, Code: r.Code, Source: r.Source, Status: r.Status,
		ReferrerPoints: r.ReferrerPoints, RefereePoints: r.RefereePoints, Capped: r.Capped, HoldUntil: r.HoldUntil,
		CreatedAt: r.CreatedAt, QualifiedAt: r.QualifiedAt, RewardedAt: r.RewardedAt, CancelledAt: r.CancelledAt,
	}
}

// recentReferrals is how many of a user's referrals user/info shows.
const recentReferrals = 20

// referralInfoOf reads a user's referral side (giving them a code the
// first time, see referral.Service.EnsureCode).
func (a *API) referralInfoOf(r *http.Request, partnerID, userID uuid.UUID) (*referralInfo, error) {
	ctx, db := r.Context(), a.DB.Bun
	code, err := a.Referrals.EnsureCode(ctx, db, partnerID, userID)
	if err != nil {
		return nil, err
	}
	pol, _, err := a.Referrals.Policy(ctx, db, partnerID)
	if err != nil {
		return nil, err
	}
	info := &referralInfo{Code: code, Referrals: []referralView{}}
	if l := pol.Link(code); l != "" {
		info.Link = &l
	}
	if by, err := a.Referrals.ReferredBy(ctx, db, partnerID, userID); err != nil {
		return nil, err
	} else if by != nil {
		v := newReferralView(by)
		info.ReferredBy = &v
	}
	st, err := a.Referrals.StatsOf(ctx, db, partnerID, userID)
	if err != nil {
		return nil, err
	}
	info.Stats = referralStatsView(st)
	list, err := a.Referrals.Referrals(ctx, db, partnerID, userID, 0, recentReferrals)
	if err != nil {
		return nil, err
	}
	for i := range list {
		info.Referrals = append(info.Referrals, newReferralView(&list[i]))
	}
	return info, nil
}
