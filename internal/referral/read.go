package referral

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// MaxPage bounds a page of referrals.
const MaxPage = 100

// Referrals lists the referrals the user made, newest first, after the
// referral id after (0: from the newest), at most first (1..MaxPage).
// The caller's user id scopes it: a user never sees another referrer's.
func (s *Service) Referrals(ctx context.Context, db bun.IDB, partnerID, referrerID uuid.UUID, after int64, first int) ([]Referral, error) {
	first = min(max(first, 1), MaxPage)
	var out []Referral
	q := db.NewSelect().Model(&out).Where("partner_id = ? AND referrer_id = ?", partnerID, referrerID).OrderExpr("id DESC").Limit(int64(first))
	if after > 0 {
		q = q.Where("id < ?", after)
	}
	if err := q.Scan(ctx); err != nil {
		return nil, fmt.Errorf("list referrals: %w", err)
	}
	return out, nil
}

// Stats is a referrer's summary.
type Stats struct {
	// Invited counts every referral (cancelled ones too).
	Invited int `bun:"invited"`
	// Qualified counts referrals that qualified and were not cancelled
	// (on hold or rewarded).
	Qualified int `bun:"qualified"`
	// PointsEarned is the referrer's rewards available (rewarded), and
	// PointsPending those on hold.
	PointsEarned  int64 `bun:"points_earned"`
	PointsPending int64 `bun:"points_pending"`
}

// StatsOf sums the user's referrals in one query.
func (s *Service) StatsOf(ctx context.Context, db bun.IDB, partnerID, referrerID uuid.UUID) (Stats, error) {
	var st Stats
	err := db.NewRaw(`SELECT count(*) AS invited,
			count(*) FILTER (WHERE status IN ('qualified', 'rewarded')) AS qualified,
			coalesce(sum(referrer_points) FILTER (WHERE status = 'rewarded'), 0) AS points_earned,
			coalesce(sum(referrer_points) FILTER (WHERE status = 'qualified'), 0) AS points_pending
		FROM referrals WHERE partner_id = ? AND referrer_id = ?`, partnerID, referrerID).Scan(ctx, &st)
	if err != nil {
		return Stats{}, fmt.Errorf("referral stats: %w", err)
	}
	return st, nil
}

// ReferredBy is the user's own referral (who referred them), nil when none.
func (s *Service) ReferredBy(ctx context.Context, db bun.IDB, partnerID, refereeID uuid.UUID) (*Referral, error) {
	r := new(Referral)
	err := db.NewSelect().Model(r).Where("partner_id = ? AND referee_id = ?", partnerID, refereeID).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load the user's referrer: %w", err)
	}
	return r, nil
}
