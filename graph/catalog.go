package graph

import (
	"context"
	"errors"
	"sync"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/vikstrous/dataloadgen"

	"github.com/perkshq/perks/graph/model"
	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/catalog"
	"github.com/perkshq/perks/internal/ledger"
	"github.com/perkshq/perks/internal/tier"
	"github.com/perkshq/perks/internal/voucher"
)

// availability is the user's availability for g, from the operation's
// loaders (claim count, balance) and the user's country.
func (r *Resolver) availability(ctx context.Context, g *catalog.Gift) (apperr.Code, error) {
	l, c, err := loaders(ctx)
	if err != nil {
		return "", err
	}
	claims, err := l.ClaimCounts.Load(ctx, g.ID)
	if err != nil {
		return "", err
	}
	balance, err := l.Balances.Load(ctx, c.User.ID)
	if err != nil {
		return "", err
	}
	v := catalog.Viewer{Country: c.User.CountryCode, Balance: balance, Claims: claims}
	if g.MinTier != nil {
		if v.TierRank, v.TierRanks, err = tier.RanksTx(ctx, r.DB.Bun, c.Partner.ID, c.User.ID); err != nil {
			return "", err
		}
	}
	return g.Availability(r.Now(), v), nil
}

// prefetchGifts primes the loaders with what a page of gifts will need,
// one query per loader, run concurrently, before gqlgen resolves the
// page's fields. haveBalance says the balance is already loaded.
func prefetchGifts(ctx context.Context, l *Loaders, userID uuid.UUID, gifts []catalog.Gift, fields map[string]bool, haveBalance bool) {
	ids := make([]uuid.UUID, len(gifts))
	for i := range gifts {
		ids[i] = gifts[i].ID
		l.Gifts.Prime(gifts[i].ID, &gifts[i])
	}
	var wg sync.WaitGroup
	if fields["merchants"] || fields["redemption"] {
		wg.Go(func() { prime(ctx, l.GiftMerchants, l.merchants, ids) })
	}
	if fields["claimedByMe"] || fields["canClaim"] || fields["reason"] {
		wg.Go(func() { prime(ctx, l.ClaimCounts, l.claims, ids) })
	}
	if (fields["canClaim"] || fields["reason"]) && !haveBalance {
		wg.Go(func() { prime(ctx, l.Balances, l.balances, []uuid.UUID{userID}) })
	}
	wg.Wait()
}

func voucherStatus(s voucher.Status) model.VoucherStatus {
	switch s {
	case voucher.StatusRedeemed:
		return model.VoucherStatusRedeemed
	case voucher.StatusExpired:
		return model.VoucherStatusExpired
	case voucher.StatusCancelled:
		return model.VoucherStatusCancelled
	}
	return model.VoucherStatusClaimed
}

func domainVoucherStatus(s *model.VoucherStatus) voucher.Status {
	if s == nil {
		return ""
	}
	switch *s {
	case model.VoucherStatusRedeemed:
		return voucher.StatusRedeemed
	case model.VoucherStatusExpired:
		return voucher.StatusExpired
	case model.VoucherStatusCancelled:
		return voucher.StatusCancelled
	}
	return voucher.StatusClaimed
}

// voucherOf resolves the voucher a ledger entry is about, through the
// operation's (user-scoped) voucher loader.
func voucherOf(ctx context.Context, l *Loaders, e *ledger.Entry) (*voucher.Voucher, error) {
	if e.SourceType == nil || *e.SourceType != voucher.SourceType || e.SourceID == nil {
		return nil, nil
	}
	id, err := uuid.Parse(*e.SourceID)
	if err != nil {
		return nil, nil
	}
	v, err := l.Vouchers.Load(ctx, id)
	if errors.Is(err, dataloadgen.ErrNotFound) {
		return nil, nil
	}
	return v, err
}

// inTx runs fn in a transaction and returns its value.
func inTx[T any](ctx context.Context, r *Resolver, fn func(ctx context.Context, tx bun.Tx) (T, error)) (T, error) {
	var out T
	err := r.DB.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		out, err = fn(ctx, tx)
		return err
	})
	return out, err
}

// parseID reads an ID argument that must be a UUID.
func parseID(field, s string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, apperr.Field(apperr.CodeInvalidField, field, "%s is not a valid id", field)
	}
	return id, nil
}
