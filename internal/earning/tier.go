package earning

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/tier"
)

// TierModifier is the tier step of every earn's breakdown
// (Service.Tier): the user's tier multiplier on the rule's points, rounded
// down once (MultiplierStep). A partner without tiers, or a tier of x1,
// adds no step. The tier is the one the user holds before this earn: the
// earn that crosses a threshold upgrades the user (Service.Tiers) and the
// next earn gets the new multiplier, as in every tiered program. It
// records the tier it read on the Earn (Tier, TierKnown) for the campaigns
// after it.
//
// EarnTx reads the user's tier with its rule query (tier.EarnStateSQL as
// the PrefetchSQL), which also tells it whether the earn may move the user
// (Earn.TierState); a batch reads the tier here (tier.CurrentTx, one
// indexed query).
func TierModifier() Modifier {
	return PartModifier{Uses: func(p ProgramParts) bool { return p.Tiers }, PrefetchSQL: tier.EarnStateSQL, Modifier: ModifierFunc(func(ctx context.Context, tx bun.IDB, e *Earn) ([]Step, error) {
		var c tier.Current
		var ok bool
		switch {
		case e.PrefetchKnown && e.Prefetched != nil:
			var st tier.EarnState
			if err := json.Unmarshal(e.Prefetched, &st); err != nil {
				return nil, fmt.Errorf("decode the user's tier state: %w", err)
			}
			e.TierState, c, ok = &st, st.Current, true
		case e.PrefetchKnown:
			// No tier row: the parts probe and this read share one
			// snapshot, so this only happens if the partner has no base
			// tier, which PutTx never leaves. No multiplier.
		default:
			var err error
			if c, ok, err = tier.CurrentTx(ctx, tx, e.Partner.ID, e.UserID); err != nil {
				return nil, err
			}
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
