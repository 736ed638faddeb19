package campaign

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/earning"
)

// EarnModifier is the campaigns step of every earn's breakdown
// (earning.Service.Campaigns): ApplyTx on the points after the tier
// multiplier, in the earn's transaction, so a budget is charged exactly
// when the earn commits and a dry run (rolled back) charges nothing. Each
// award becomes one step, by the campaign's code and name.
//
// Windows are checked at the earn's occurredAt when the partner sent one:
// a purchase made during a weekend campaign and reported on Monday gets
// the weekend's points (the partner's back end is trusted with occurredAt;
// it is bounded by earning.MaxOccurredAtSkew in the future).
//
// Conditions on the user read the user's row and tier the earn already
// loaded (earning.Earn.User, Tier), not the database again: one round trip
// less per earn of a partner with user conditions. The campaigns that may
// apply come with the earn's rule query (CandidatesSQL as the
// PrefetchSQL): another round trip less.
func (s *Service) EarnModifier() earning.Modifier {
	uses := func(p earning.ProgramParts) bool { return p.Campaigns }
	return earning.PartModifier{Uses: uses, PrefetchSQL: CandidatesSQL, Modifier: earning.ModifierFunc(func(ctx context.Context, tx bun.IDB, e *earning.Earn) ([]earning.Step, error) {
		f := Facts{Action: e.Rule.Code, BasePoints: e.Points, Amount: e.Params.Amount, At: e.Now,
			Candidates: e.Prefetched, CandidatesKnown: e.PrefetchKnown}
		if !e.Params.OccurredAt.IsZero() {
			f.At = e.Params.OccurredAt
		}
		if len(e.Params.Metadata) > 0 {
			meta, err := DecodeObject(e.Params.Metadata)
			if err != nil {
				return nil, fmt.Errorf("decode earn metadata for campaign conditions: %w", err)
			}
			f.Metadata = meta
		}
		if e.User != nil && e.TierKnown {
			u, err := earnUserFacts(e)
			if err != nil {
				return nil, err
			}
			f.User = u
		}
		awards, err := s.ApplyTx(ctx, tx, e.Partner.ID, e.UserID, f)
		if err != nil {
			return nil, err
		}
		return Steps(awards), nil
	})}
}

// earnUserFacts are the user's facts from what the earn already read: the
// user's row (country, attributes) and the tier the tier modifier found,
// so a condition on the user costs the earn no query (LoadUserFacts reads
// the same columns again when the earn has not read them: an earn by
// internal user id, or no tier modifier).
func earnUserFacts(e *earning.Earn) (*UserFacts, error) {
	u := &UserFacts{Tier: e.Tier}
	if e.User.CountryCode != nil {
		u.Country = *e.User.CountryCode
	}
	attrs, err := DecodeObject(e.User.Attributes)
	if err != nil {
		return nil, fmt.Errorf("decode user attributes: %w", err)
	}
	u.Attributes = attrs
	return u, nil
}

// Steps turns campaign awards into breakdown steps. A campaign multiplier
// in hundredths is the breakdown's in ten-thousandths; Points is the
// award's, already cut to the budget and the user's cap.
func Steps(awards []Award) []earning.Step {
	if len(awards) == 0 {
		return nil
	}
	steps := make([]earning.Step, 0, len(awards))
	for _, a := range awards {
		st := earning.Step{Kind: earning.StepCampaign, Code: a.Code, Name: a.Name, Points: a.Points}
		switch {
		case a.MultiplierHundredths != nil:
			m := earning.Multiplier(*a.MultiplierHundredths) * 100
			st.Multiplier = &m
		case a.Bonus != nil:
			b := *a.Bonus
			st.Bonus = &b
		}
		steps = append(steps, st)
	}
	return steps
}
