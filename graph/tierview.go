package graph

import (
	"context"

	"github.com/google/uuid"

	"github.com/perkshq/perks/graph/model"
	"github.com/perkshq/perks/internal/catalog"
	"github.com/perkshq/perks/internal/tier"
)

// tierModel is a tier as GraphQL shows it.
func tierModel(t *tier.Tier) *model.Tier {
	m, _ := tier.FormatMultiplier(t.Multiplier).Float64()
	return &model.Tier{Code: t.Code, Name: t.Name, Multiplier: m, Benefits: t.Benefits, Threshold: int(t.Threshold)}
}

// minTier is the tier a gift requires, found in the partner's tier list
// (read once per operation by giftViews, however many gifts ask). A
// minTier the partner has since removed from its list is null: the gift's
// reason (TIER_TOO_LOW, fail closed) still says it cannot be claimed.
func minTier(list []tier.Tier, g *catalog.Gift) *model.Tier {
	if g.MinTier == nil {
		return nil
	}
	for i := range list {
		if list[i].Code == *g.MinTier {
			return tierModel(&list[i])
		}
	}
	return nil
}

// tierLists is the batch function of Loaders.Tiers: the tier lists of the
// partners asked (only ever the user's own).
func tierLists(r *Resolver) func(context.Context, []uuid.UUID) (map[uuid.UUID][]tier.Tier, error) {
	return func(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID][]tier.Tier, error) {
		out := make(map[uuid.UUID][]tier.Tier, len(ids))
		for _, id := range ids {
			list, err := r.TierSvc.List(ctx, r.DB.Bun, id)
			if err != nil {
				return nil, err
			}
			out[id] = list
		}
		return out, nil
	}
}

// progress is the tier progress behind User.tier and nextTier: one read
// for both (they are asked together), through the operation's loader
// (the user is always the authenticated one; without loaders it reads
// directly). The loader also primes the tier list for gifts' minTier.
func progress(ctx context.Context, r *Resolver, partnerID, userID uuid.UUID) (tier.Progress, error) {
	if l, c, err := loaders(ctx); err == nil && c.Partner.ID == partnerID {
		p, err := l.Progress.Load(ctx, userID)
		if err != nil || p == nil {
			return tier.Progress{}, err
		}
		return *p, nil
	}
	return r.TierSvc.ProgressTx(ctx, r.DB.Bun, partnerID, userID)
}

// progressOf is the batch function of Loaders.Progress for the users of
// partnerID (only ever the authenticated user).
func progressOf(r *Resolver, partnerID uuid.UUID) func(context.Context, []uuid.UUID) (map[uuid.UUID]*tier.Progress, error) {
	return func(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]*tier.Progress, error) {
		out := make(map[uuid.UUID]*tier.Progress, len(ids))
		for _, id := range ids {
			p, err := r.TierSvc.ProgressTx(ctx, r.DB.Bun, partnerID, id)
			if err != nil {
				return nil, err
			}
			out[id] = &p
		}
		return out, nil
	}
}
