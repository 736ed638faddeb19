package earning

import (
	"context"

	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/tier"
)

// TierModifier is the tier step of every earn's breakdown
// (Service.Tier): the user's tier multiplier (tier.CurrentTx, one indexed
// read in the earn's transaction) on the rule's points, rounded down once
// (MultiplierStep). A partner without tiers, or a tier of x1, adds no
// step. The tier is the one the user holds before this earn: the earn that
// crosses a threshold upgrades the user (Service.Tiers) and the next earn
// gets the new multiplier, as in every tiered program. It records the
// tier it read on the Earn (Tier, TierKnown) for the campaigns after it.
func TierModifier() Modifier {
	return PartModifier{Uses: func(p ProgramParts) bool { return p.Tiers }, Modifier: ModifierFunc(func(ctx context.Context, tx bun.IDB, e *Earn) ([]Step, error) {
		c, ok, err := tier.CurrentTx(ctx, tx, e.Partner.ID, e.UserID)
		if err != nil {
			return nil, err
		}
		// The campaigns' conditions (user.tier) reuse what was read.
		e.Tier, e.TierKnown = c.Code, true
		if !ok || c.Multiplier == tier.MultiplierScale {
			return nil, nil
		}
		// Tier multipliers are in hundredths, the breakdown's in
		// ten-thousandths.
		m := Multiplier(c.Multiplier) * (MultiplierOne / tier.MultiplierScale)
		return []Step{MultiplierStep(StepTier, c.Code, c.Name, e.Points, m)}, nil
	})}
}
