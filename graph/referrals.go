package graph

import (
	"context"

	"github.com/uptrace/bun"

	"github.com/perkshq/perks/graph/model"
	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/referral"
	"github.com/perkshq/perks/internal/user"
)

// ownReferrals refuses the referral fields of any user but the caller:
// they are only ever read through me.
func ownReferrals(ctx context.Context, obj *user.User) (*auth.ConsumerPrincipal, error) {
	c, err := consumer(ctx)
	if err != nil {
		return nil, err
	}
	if c.User.ID != obj.ID || c.Partner.ID != obj.PartnerID {
		return nil, apperr.New(apperr.CodeForbidden, "referrals are only shown to their user")
	}
	return c, nil
}

func referralStatus(s string) model.ReferralStatus {
	switch s {
	case referral.StatusQualified:
		return model.ReferralStatusQualified
	case referral.StatusRewarded:
		return model.ReferralStatusRewarded
	case referral.StatusCancelled:
		return model.ReferralStatusCancelled
	}
	return model.ReferralStatusPending
}

func referralModel(r *referral.Referral) *model.Referral {
	m := &model.Referral{
		Cursor: encodeCursor("r", r.ID), Status: referralStatus(r.Status), RewardPoints: int(r.ReferrerPoints),
		CreatedAt: r.CreatedAt, QualifiedAt: r.QualifiedAt,
	}
	if r.Status == referral.StatusQualified {
		m.HoldUntil = r.HoldUntil
	}
	if r.Status == referral.StatusPending {
		m.RewardPoints = 0
	}
	return m
}

// applyReferralCode is the mutation: rate-limited per user before
// anything is read, then referral.AttributeTx in its own transaction.
func (r *Resolver) applyReferralCode(ctx context.Context, code string) (*model.ApplyReferralCodePayload, error) {
	c, err := consumer(ctx)
	if err != nil {
		return nil, err
	}
	if err := r.Referrals.AllowApply(c.User.ID); err != nil {
		return nil, err
	}
	var out *referral.Attributed
	err = r.DB.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		out, err = r.Referrals.AttributeTx(ctx, tx, c.Partner.ID, c.User, "code", code, referral.SourceApp)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &model.ApplyReferralCodePayload{Status: referralStatus(out.Referral.Status), AlreadyApplied: out.Already}, nil
}

func (r *Resolver) referralCode(ctx context.Context, obj *user.User) (string, error) {
	if _, err := ownReferrals(ctx, obj); err != nil {
		return "", err
	}
	return r.Referrals.EnsureCode(ctx, r.DB.Bun, obj.PartnerID, obj.ID)
}

func (r *Resolver) referralLink(ctx context.Context, obj *user.User) (*string, error) {
	code, err := r.referralCode(ctx, obj)
	if err != nil {
		return nil, err
	}
	pol, _, err := r.Referrals.Policy(ctx, r.DB.Bun, obj.PartnerID)
	if err != nil {
		return nil, err
	}
	if l := pol.Link(code); l != "" {
		return &l, nil
	}
	return nil, nil
}

func (r *Resolver) referrals(ctx context.Context, obj *user.User, first *int, after *string) ([]*model.Referral, error) {
	if _, err := ownReferrals(ctx, obj); err != nil {
		return nil, err
	}
	limit, err := pageSize(first, 20, referral.MaxPage)
	if err != nil {
		return nil, err
	}
	from, err := decodeCursor("r", after)
	if err != nil {
		return nil, err
	}
	list, err := r.Referrals.Referrals(ctx, r.DB.Bun, obj.PartnerID, obj.ID, from, limit)
	if err != nil {
		return nil, err
	}
	out := make([]*model.Referral, 0, len(list))
	for i := range list {
		out = append(out, referralModel(&list[i]))
	}
	return out, nil
}

func (r *Resolver) referralStats(ctx context.Context, obj *user.User) (*model.ReferralStats, error) {
	if _, err := ownReferrals(ctx, obj); err != nil {
		return nil, err
	}
	st, err := r.Referrals.StatsOf(ctx, r.DB.Bun, obj.PartnerID, obj.ID)
	if err != nil {
		return nil, err
	}
	return &model.ReferralStats{Invited: st.Invited, Qualified: st.Qualified, PointsEarned: int(st.PointsEarned), PointsPending: int(st.PointsPending)}, nil
}
