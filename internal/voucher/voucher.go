// Package voucher turns points into vouchers and vouchers into redemptions.
//
// A claim is one transaction: availability checks, the user's per-gift
// counter (per-user limit), the burn of the points, one unit of stock, a
// code, the voucher and its voucher.claimed event; any error rolls all of
// it back. A voucher then moves once, by a conditional update on its row,
// from claimed to redeemed (online by its user, or at a merchant with a
// one-time code), expired (by a periodic job) or cancelled (by the
// partner). Cancellation, and expiry when the gift says so, refund the
// points in the same transaction as the move, so a voucher is refunded at
// most once; a unique index on refund ledger entries backs that up.
package voucher

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/catalog"
	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/event"
	"github.com/perkshq/perks/internal/keyring"
	"github.com/perkshq/perks/internal/ledger"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/tier"
	"github.com/perkshq/perks/internal/user"
)

// Status is a voucher's state.
type Status string

// Voucher states. claimed is the only state a voucher leaves.
const (
	StatusClaimed   Status = "claimed"
	StatusRedeemed  Status = "redeemed"
	StatusExpired   Status = "expired"
	StatusCancelled Status = "cancelled"
)

// SourceType marks ledger entries caused by a voucher (source_id is the
// voucher id).
const SourceType = "voucher"

// Voucher is one claimed gift.
type Voucher struct {
	bun.BaseModel `bun:"table:vouchers"`

	PartnerID            uuid.UUID  `bun:"partner_id,pk,type:uuid"`
	ID                   uuid.UUID  `bun:"id,pk,type:uuid"`
	Seq                  int64      `bun:"seq,nullzero"`
	GiftID               uuid.UUID  `bun:"gift_id,type:uuid"`
	UserID               uuid.UUID  `bun:"user_id,type:uuid"`
	Code                 *string    `bun:"code"`
	Status               Status     `bun:"status"`
	CostPoints           int64      `bun:"cost_points"`
	BurnEntryID          int64      `bun:"burn_entry_id"`
	RefundEntryID        *int64     `bun:"refund_entry_id"`
	ClaimedAt            time.Time  `bun:"claimed_at"`
	ExpiresAt            *time.Time `bun:"expires_at"`
	RedeemedAt           *time.Time `bun:"redeemed_at"`
	RedeemedByMerchantID *uuid.UUID `bun:"redeemed_by_merchant_id,type:uuid"`
	ExpiredAt            *time.Time `bun:"expired_at"`
	CancelledAt          *time.Time `bun:"cancelled_at"`
	CancelReason         *string    `bun:"cancel_reason"`
	OTPMAC               []byte     `bun:"otp_mac"`
	OTPExpiresAt         *time.Time `bun:"otp_expires_at"`
	OTPAttempts          int        `bun:"otp_attempts"`
	UpdatedAt            time.Time  `bun:"updated_at"`

	// RedeemedByAccountID is the merchant portal operator who redeemed at
	// the till (nil online and for server-to-server redemptions).
	RedeemedByAccountID *uuid.UUID `bun:"redeemed_by_account_id,type:uuid"`
}

// EffectiveStatus is the status as of t: a claimed voucher past its expiry
// is expired even before the periodic job records it, and can no longer
// be redeemed.
func (v *Voucher) EffectiveStatus(t time.Time) Status {
	if v.Status == StatusClaimed && v.ExpiresAt != nil && !t.Before(*v.ExpiresAt) {
		return StatusExpired
	}
	return v.Status
}

// Active reports whether the voucher can still be redeemed at t.
func (v *Voucher) Active(t time.Time) bool { return v.EffectiveStatus(t) == StatusClaimed }

// Service claims, lists, redeems, cancels and expires vouchers.
type Service struct {
	Catalog *catalog.Service
	Ledger  *ledger.Service
	Events  *event.Recorder
	// Keys MACs one-time redemption codes.
	Keys *keyring.Keyring
	Now  func() time.Time
	// Gate, when set, bounds the concurrent claims of this process (see
	// ClaimGate).
	Gate *ClaimGate
}

// Claimed is the outcome of a claim.
type Claimed struct {
	// Voucher is the row as inserted (its times already at PostgreSQL's
	// microsecond precision).
	Voucher *Voucher
	Gift    *catalog.Gift
	Entry   *ledger.Entry
}

// Claim runs one claim of giftID by u: it waits for its place in the gate
// (ClaimGate, PERKS_CLAIMS_AT_ONCE), then calls run, which opens
// the claim's transaction as its transport needs (the GraphQL mutation's
// holds the idempotency record) and calls claim inside it. Every claim
// transport goes through here, so none bypasses the gate; the place is
// given back when run returns, committed or not. A caller whose context
// ends while queued gets its error and nothing ran.
func (s *Service) Claim(ctx context.Context, p *partner.Partner, u *user.User, giftID uuid.UUID,
	run func(ctx context.Context, claim func(ctx context.Context, tx bun.Tx) (*Claimed, error)) error) error {
	release, err := s.Gate.Enter(ctx, giftID)
	if err != nil {
		return err
	}
	defer release()
	return run(ctx, func(ctx context.Context, tx bun.Tx) (*Claimed, error) {
		return s.ClaimTx(ctx, tx, p, u, giftID)
	})
}

// ClaimTx claims a gift for u inside tx (seed 001 gift/checkavailability).
// Errors: GIFT_NOT_FOUND, GIFT_UNAVAILABLE, NOT_IN_COUNTRY, OUT_OF_STOCK,
// CODES_EXHAUSTED, LIMIT_REACHED, INSUFFICIENT_POINTS (and CONFLICT when
// the partner changed the gift's code source mid-claim); on any error the
// caller rolls tx back and nothing happened.
//
// Locks are taken in one order: the user's counter row for the gift, the
// user's balance, a code (SKIP LOCKED: concurrent claims of one pool take
// different codes without waiting), and last one of the gift's claim slots
// (catalog.TakeUnitTx). Two claims of one user serialise on the first two;
// claims of one gift no longer serialise on its row: each holds one of its
// catalog.GiftSlots slots until commit, taken last so that it is held for
// that one statement, the caller's idempotency record and the commit.
func (s *Service) ClaimTx(ctx context.Context, tx bun.Tx, p *partner.Partner, u *user.User, giftID uuid.UUID) (*Claimed, error) {
	// PostgreSQL keeps microseconds: the voucher returned is then exactly
	// the row stored, and a caller may answer with it without reading it back.
	now := s.Now().UTC().Truncate(time.Microsecond)
	// The gift and, in the same statement, the user's claim counted
	// (unless the gift is retired or sold out as read).
	g, claims, err := s.Catalog.GiftForClaimTx(ctx, tx, p.ID, giftID, u.ID)
	if err != nil {
		return nil, err
	}
	// Everything but the user's balance and claims, from a snapshot: cheap
	// refusals. The gift is checked again once a unit is taken.
	viewer := catalog.Viewer{Country: u.CountryCode, Balance: math.MaxInt64}
	if g.MinTier != nil {
		if viewer.TierRank, viewer.TierRanks, err = tier.RanksTx(ctx, tx, p.ID, u.ID); err != nil {
			return nil, err
		}
	}
	if code := g.Availability(now, viewer); code != "" {
		return nil, unavailable(code, g)
	}
	switch {
	case claims == 0:
		return nil, fmt.Errorf("claim of gift %s was not counted", g.SKU) // Availability refuses first
	case g.PerUserLimit != nil && claims > *g.PerUserLimit:
		// The counter's row lock makes this exact under concurrency; the
		// caller rolls the count back.
		return nil, unavailable(apperr.CodeLimitReached, g)
	}
	id := uuid.New()
	entry, err := s.Ledger.ApplyTx(ctx, tx, p.ID, ledger.Change{
		UserID: u.ID, Kind: ledger.KindBurn, Points: g.CostPoints, Reason: "Claimed: " + g.Title,
		SourceType: SourceType, SourceID: id.String(),
	})
	if err != nil {
		return nil, err
	}
	v := &Voucher{
		PartnerID: p.ID, ID: id, GiftID: g.ID, UserID: u.ID, Status: StatusClaimed,
		CostPoints: g.CostPoints, BurnEntryID: entry.ID, ClaimedAt: now, ExpiresAt: g.VoucherExpiry(now), UpdatedAt: now,
	}
	if err := insertTx(ctx, tx, v, g); err != nil {
		return nil, err
	}
	pool := g.CodeSource == catalog.SourcePool
	if _, err := s.Events.EmitTx(ctx, tx, p.ID, event.VoucherClaimed, &u.ID, map[string]any{
		"voucherId": v.ID, "userId": u.ID, "giftId": g.ID, "sku": g.SKU, "points": g.CostPoints,
		"entryId": entry.ID, "balance": entry.BalanceAfter, "expiresAt": v.ExpiresAt,
	}); err != nil {
		return nil, err
	}
	locked, err := s.Catalog.TakeUnitTx(ctx, tx, p.ID, g.ID, u.ID, pool)
	if err != nil {
		return nil, err
	}
	if locked.CodeSource != g.CodeSource {
		return nil, apperr.New(apperr.CodeConflict, "gift %q changed while it was being claimed; retry", g.SKU)
	}
	if locked.MinTier != nil && viewer.TierRanks == nil {
		if viewer.TierRank, viewer.TierRanks, err = tier.RanksTx(ctx, tx, p.ID, u.ID); err != nil {
			return nil, err
		}
	}
	if code := locked.Availability(now, viewer); code != "" && code != apperr.CodeOutOfStock && code != apperr.CodeCodesExhausted {
		// Changed by the partner while we waited for the lock (the unit we
		// took may have been the last one, hence the two codes ignored).
		return nil, unavailable(code, locked)
	}
	return &Claimed{Voucher: v, Gift: locked, Entry: entry}, nil
}

// generateAttempts bounds the draws of a generated code on collisions;
// catalog.ParsePattern makes the chance of needing a second one at most
// 1/1000.
const generateAttempts = 8

// insertTx inserts the claim's voucher v with its code, in one statement
// with the code's (prepared, like every statement of a claim; the columns
// left out are NULL or their defaults, as in a new Voucher):
//
//   - pool: the gift's oldest free code, assigned. A claim takes its code
//     before its unit of stock (catalog.TakeUnitTx comes last), so
//     concurrent claims of one pool run here together: SKIP LOCKED gives
//     each a different code instead of making them queue. A code held by a
//     claim still in flight counts as taken, so when the last few codes are
//     in flight a claim may answer CODES_EXHAUSTED and charge nothing.
//   - generated: a fresh random code of the gift's pattern, registered as
//     assigned; a code is unique per partner (the gift_codes key), and on a
//     collision with any code, uploaded or generated, it draws again.
//   - none: no code.
func insertTx(ctx context.Context, tx bun.Tx, v *Voucher, g *catalog.Gift) error {
	const insert = `INSERT INTO vouchers (partner_id, id, gift_id, user_id, code, status, cost_points,
			burn_entry_id, claimed_at, expires_at, otp_attempts, updated_at)
		SELECT $1, $2, $3, $4, code.code, $6, $7, $8, $9, $10, 0, $11 FROM code RETURNING seq, code`
	var query string
	switch g.CodeSource {
	case catalog.SourcePool:
		query = `WITH code AS (UPDATE gift_codes SET assigned_at = $9
			WHERE partner_id = $1 AND code = (
				SELECT code FROM gift_codes WHERE partner_id = $1 AND gift_id = $3 AND assigned_at IS NULL AND $5::text IS NULL
				ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED)
			RETURNING code) ` + insert
	case catalog.SourceGenerated:
		query = `WITH code AS (INSERT INTO gift_codes (partner_id, code, gift_id, source, created_at, assigned_at)
			VALUES ($1, $5, $3, 'generated', $9, $9) ON CONFLICT (partner_id, code) DO NOTHING
			RETURNING code) ` + insert
	default:
		query = `WITH code AS (SELECT $5::text AS code) ` + insert
	}
	for range generateAttempts {
		var code *string
		if g.CodeSource == catalog.SourceGenerated {
			c, err := catalog.Pattern(*g.CodePattern).Generate()
			if err != nil {
				return err
			}
			code = &c
		}
		row, err := database.QueryRow(ctx, tx, query, v.PartnerID, v.ID, v.GiftID, v.UserID, code, string(v.Status),
			v.CostPoints, v.BurnEntryID, v.ClaimedAt, v.ExpiresAt, v.UpdatedAt)
		if err == nil {
			err = row.Scan(&v.Seq, &v.Code)
		}
		switch {
		case err == nil:
			return nil
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("insert voucher: %w", err)
		case g.CodeSource == catalog.SourcePool:
			return apperr.New(apperr.CodeCodesExhausted, "gift %q has no codes left", g.SKU)
		}
		// A generated code that was already taken: draw again.
	}
	return apperr.New(apperr.CodeCodesExhausted, "no free code was found for the gift's pattern; the partner must widen it")
}

func unavailable(code apperr.Code, g *catalog.Gift) error {
	switch code {
	case apperr.CodeGiftUnavailable:
		return apperr.New(code, "gift %q cannot be claimed now (retired, hidden or outside its claim window)", g.SKU)
	case apperr.CodeNotInCountry:
		return apperr.New(code, "gift %q is not offered in your country", g.SKU)
	case apperr.CodeTierTooLow:
		return apperr.New(code, "gift %q requires the tier %q or higher", g.SKU, *g.MinTier)
	case apperr.CodeOutOfStock:
		return apperr.New(code, "gift %q is out of stock", g.SKU)
	case apperr.CodeCodesExhausted:
		return apperr.New(code, "gift %q has no codes left", g.SKU)
	case apperr.CodeLimitReached:
		return apperr.New(code, "gift %q can be claimed %d times per user", g.SKU, *g.PerUserLimit)
	}
	return apperr.New(code, "gift %q cannot be claimed", g.SKU)
}

// ForUser loads one of the user's vouchers; another user's (or partner's)
// voucher is VOUCHER_NOT_FOUND, like a missing one.
func (s *Service) ForUser(ctx context.Context, db bun.IDB, partnerID, userID, id uuid.UUID) (*Voucher, error) {
	v := new(Voucher)
	err := db.NewSelect().Model(v).
		Where("partner_id = ? AND user_id = ? AND id = ?", partnerID, userID, id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.New(apperr.CodeVoucherNotFound, "voucher not found")
	}
	if err != nil {
		return nil, fmt.Errorf("load voucher %s: %w", id, err)
	}
	return v, nil
}

// ByID loads a voucher of the partner.
func (s *Service) ByID(ctx context.Context, db bun.IDB, partnerID, id uuid.UUID) (*Voucher, error) {
	v := new(Voucher)
	err := db.NewSelect().Model(v).Where("partner_id = ? AND id = ?", partnerID, id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.New(apperr.CodeVoucherNotFound, "voucher not found")
	}
	if err != nil {
		return nil, fmt.Errorf("load voucher %s: %w", id, err)
	}
	return v, nil
}

// ManyForUser loads several of the user's vouchers (for dataloaders).
func (s *Service) ManyForUser(ctx context.Context, db bun.IDB, partnerID, userID uuid.UUID, ids []uuid.UUID) (map[uuid.UUID]*Voucher, error) {
	var vs []Voucher
	err := db.NewSelect().Model(&vs).
		Where("partner_id = ? AND user_id = ? AND id IN (?)", partnerID, userID, bun.List(ids)).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("load vouchers: %w", err)
	}
	out := make(map[uuid.UUID]*Voucher, len(vs))
	for i := range vs {
		out[vs[i].ID] = &vs[i]
	}
	return out, nil
}

// ListQuery filters a user's vouchers.
type ListQuery struct {
	// Status filters by effective status ("" for all).
	Status    Status
	BeforeSeq int64
	Limit     int
}

// List returns a user's vouchers, newest first, keyed by insertion order so
// pages stay stable while new vouchers arrive.
func (s *Service) List(ctx context.Context, db bun.IDB, partnerID, userID uuid.UUID, now time.Time, q ListQuery) ([]Voucher, error) {
	var out []Voucher
	sel := db.NewSelect().Model(&out).
		Where("partner_id = ? AND user_id = ?", partnerID, userID).OrderExpr("seq DESC").Limit(int64(q.Limit))
	if q.BeforeSeq > 0 {
		sel = sel.Where("seq < ?", q.BeforeSeq)
	}
	switch q.Status {
	case "":
	case StatusClaimed:
		sel = sel.Where("status = 'claimed' AND (expires_at IS NULL OR expires_at > ?)", now)
	case StatusExpired:
		sel = sel.Where("(status = 'expired' OR (status = 'claimed' AND expires_at <= ?))", now)
	case StatusRedeemed, StatusCancelled:
		sel = sel.Where("status = ?", q.Status)
	default:
		return nil, apperr.Field(apperr.CodeInvalidField, "status", "unknown voucher status %q", q.Status)
	}
	if err := sel.Scan(ctx); err != nil {
		return nil, fmt.Errorf("list vouchers: %w", err)
	}
	return out, nil
}
