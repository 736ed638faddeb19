package graph

import (
	"context"
	"slices"
	"sync"

	"github.com/google/uuid"
	"github.com/vikstrous/dataloadgen"

	"github.com/perkshq/perks/graph/model"
	"github.com/perkshq/perks/internal/catalog"
	"github.com/perkshq/perks/internal/merchant"
	"github.com/perkshq/perks/internal/tier"
)

// giftNeeds says which of Gift's computed fields an operation selects.
// Each costs a read shared by every gift of the operation (a loader), or
// a computation per gift.
type giftNeeds struct {
	// merchants: merchants and redemption (the gifts' merchants).
	merchants bool
	// claims: claimedByMe, canClaim and reason (the user's claim counts).
	claims bool
	// availability: canClaim and reason (also the user's balance, and the
	// user's tier ranks when a gift requires a tier).
	availability bool
	// tier: minTier (the partner's tier list, when a gift requires a tier).
	tier bool
}

// giftNeedsOf reads the needs from the names of the fields selected on
// Gift (nodeFields, selectedFields).
func giftNeedsOf(fields map[string]bool) giftNeeds {
	availability := fields["canClaim"] || fields["reason"]
	return giftNeeds{
		merchants:    fields["merchants"] || fields["redemption"],
		claims:       availability || fields["claimedByMe"],
		availability: availability,
		tier:         fields["minTier"],
	}
}

// needsTier reports whether availability of any of gifts depends on the
// user's tier.
func needsTier(gifts []*catalog.Gift) bool {
	return slices.ContainsFunc(gifts, func(g *catalog.Gift) bool { return g.MinTier != nil })
}

// prefetchGifts primes the loaders with what a page of gifts will need,
// one query per loader, run concurrently, so that giftViews reads them
// without waiting out a batching window. haveBalance says the balance is
// already loaded.
func prefetchGifts(ctx context.Context, l *Loaders, userID uuid.UUID, gifts []*catalog.Gift, need giftNeeds, haveBalance bool) {
	ids := make([]uuid.UUID, len(gifts))
	for i, g := range gifts {
		ids[i] = g.ID
		l.Gifts.Prime(g.ID, g)
	}
	var wg sync.WaitGroup
	if need.merchants {
		wg.Go(func() { prime(ctx, l.GiftMerchants, l.merchants, ids) })
	}
	if need.claims {
		wg.Go(func() { prime(ctx, l.ClaimCounts, l.claims, ids) })
	}
	if need.availability && !haveBalance {
		wg.Go(func() { prime(ctx, l.Balances, l.balances, []uuid.UUID{userID}) })
	}
	if need.availability && needsTier(gifts) {
		wg.Go(func() { prime(ctx, l.Ranks, l.ranks, []uuid.UUID{userID}) })
	}
	wg.Wait()
}

// giftViews answers gifts as the operation's user sees them (model.Gift),
// computing what need asks for with one load per loader for all of them:
// a page costs the same reads for 5 gifts as for 100, and a list of
// vouchers whose gift resolvers each ask for one gift shares the
// loaders' batches. A failed read fails the whole list (the resolver that
// asked answers the error).
func (r *Resolver) giftViews(ctx context.Context, gifts []*catalog.Gift, need giftNeeds) ([]*model.Gift, error) {
	l, c, err := loaders(ctx)
	if err != nil {
		return nil, err
	}
	ids := make([]uuid.UUID, len(gifts))
	for i, g := range gifts {
		ids[i] = g.ID
	}
	// Every load is asked before any is awaited, so loads that are not
	// primed share one batching window.
	var merchantsOf func() ([][]merchant.Merchant, error)
	var claimsOf func() ([]int, error)
	var balanceOf func() (int64, error)
	var ranksOf func() (*tierRanks, error)
	var tiersOf func() ([]tier.Tier, error)
	if need.merchants {
		merchantsOf = l.GiftMerchants.LoadAllThunk(ctx, ids)
	}
	if need.claims {
		claimsOf = l.ClaimCounts.LoadAllThunk(ctx, ids)
	}
	if need.availability {
		balanceOf = l.Balances.LoadThunk(ctx, c.User.ID)
		if needsTier(gifts) {
			ranksOf = l.Ranks.LoadThunk(ctx, c.User.ID)
		}
	}
	if need.tier && needsTier(gifts) {
		tiersOf = l.Tiers.LoadThunk(ctx, c.Partner.ID)
	}
	var merchants [][]merchant.Merchant
	var claims []int
	var viewer catalog.Viewer
	if merchantsOf != nil {
		if merchants, err = merchantsOf(); err != nil {
			return nil, firstError(err)
		}
	}
	if claimsOf != nil {
		if claims, err = claimsOf(); err != nil {
			return nil, firstError(err)
		}
	}
	if balanceOf != nil {
		if viewer.Balance, err = balanceOf(); err != nil {
			return nil, err
		}
		viewer.Country = c.User.CountryCode
	}
	if ranksOf != nil {
		ranks, err := ranksOf()
		if err != nil {
			return nil, err
		}
		viewer.TierRank, viewer.TierRanks = ranks.rank, ranks.ranks
	}
	var tiers []tier.Tier
	if tiersOf != nil {
		if tiers, err = tiersOf(); err != nil {
			return nil, err
		}
	}

	now := r.Now()
	views := make([]model.Gift, len(gifts))
	out := make([]*model.Gift, len(gifts))
	for i, g := range gifts {
		v := &views[i]
		v.Gift = g
		v.LocalizedTitle = g.LocalTitle(ctx)
		v.LocalizedDescription = g.LocalDescription(ctx)
		if need.merchants {
			ms := merchants[i]
			v.Redemption = model.RedemptionChannelOnline
			if len(ms) > 0 {
				v.Redemption = model.RedemptionChannelMerchant
			}
			v.Merchants = make([]*merchant.Merchant, 0, len(ms))
			for j := range ms {
				if ms[j].Enabled {
					v.Merchants = append(v.Merchants, &ms[j])
				}
			}
		}
		if need.claims {
			v.ClaimedByMe = claims[i]
		}
		if need.tier {
			v.MinTierView = minTier(tiers, g)
		}
		if need.availability {
			viewer.Claims = claims[i]
			code := g.Availability(now, viewer)
			v.CanClaim = code == ""
			if code != "" {
				reason := model.UnavailableReason(code)
				v.Reason = &reason
			}
		}
		out[i] = v
	}
	return out, nil
}

// giftView is giftViews of one gift, for the fields selected on it.
func (r *Resolver) giftView(ctx context.Context, g *catalog.Gift) (*model.Gift, error) {
	views, err := r.giftViews(ctx, []*catalog.Gift{g}, giftNeedsOf(selectedFields(ctx)))
	if err != nil {
		return nil, err
	}
	return views[0], nil
}

// firstError is the first error of a loader's LoadAll (an ErrorSlice,
// which neither errors.As nor errors.Is looks into), as Load answers it.
func firstError(err error) error {
	if errs, ok := err.(dataloadgen.ErrorSlice); ok {
		for _, e := range errs {
			if e != nil {
				return e
			}
		}
	}
	return err
}

// tierRanks is the user's tier rank and the partner's tier codes by rank
// (tier.RanksTx), for gifts with a minTier.
type tierRanks struct {
	rank  int
	ranks map[string]int
}

// ranksOf is the batch function of Loaders.Ranks for the users of
// partnerID (only ever the authenticated user).
func ranksOf(r *Resolver, partnerID uuid.UUID) func(context.Context, []uuid.UUID) (map[uuid.UUID]*tierRanks, error) {
	return func(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]*tierRanks, error) {
		out := make(map[uuid.UUID]*tierRanks, len(ids))
		for _, id := range ids {
			rank, ranks, err := tier.RanksTx(ctx, r.DB.Bun, partnerID, id)
			if err != nil {
				return nil, err
			}
			out[id] = &tierRanks{rank: rank, ranks: ranks}
		}
		return out, nil
	}
}
