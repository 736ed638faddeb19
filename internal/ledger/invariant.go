package ledger

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"
)

// CheckInvariants verifies, across every user, that the balance equals the
// sum of the user's entries, that lifetime earnings equal the sum of earns
// and positive adjustments, and that each entry's balance_after is the
// running sum in id order. Tests and the benchmark call it after load; an
// operator can run it against production (it reads only).
func CheckInvariants(ctx context.Context, db bun.IDB) error {
	var bad []struct {
		PartnerID string `bun:"partner_id"`
		UserID    string `bun:"user_id"`
		Points    int64  `bun:"points"`
		Sum       int64  `bun:"sum"`
		Lifetime  int64  `bun:"lifetime_earned"`
		Earned    int64  `bun:"earned"`
	}
	err := db.NewRaw(`SELECT b.partner_id, b.user_id, b.points, coalesce(e.sum, 0) AS sum, b.lifetime_earned, coalesce(e.earned, 0) AS earned
		FROM balances b
		LEFT JOIN (SELECT partner_id, user_id, sum(points) AS sum,
		                  sum(points) FILTER (WHERE kind = 'earn' OR (kind = 'adjust' AND points > 0)) AS earned
		           FROM ledger_entries GROUP BY partner_id, user_id) e USING (partner_id, user_id)
		WHERE b.points <> coalesce(e.sum, 0) OR b.lifetime_earned <> coalesce(e.earned, 0) OR b.points < 0
		LIMIT 5`).Scan(ctx, &bad)
	if err != nil {
		return fmt.Errorf("check balances: %w", err)
	}
	if len(bad) > 0 {
		return fmt.Errorf("balance invariant broken for %d+ users, e.g. %+v", len(bad), bad[0])
	}
	var orphans int
	if err := db.NewRaw(`SELECT count(*) FROM (SELECT DISTINCT partner_id, user_id FROM ledger_entries) e
		WHERE NOT EXISTS (SELECT 1 FROM balances b WHERE b.partner_id = e.partner_id AND b.user_id = e.user_id)`).Scan(ctx, &orphans); err != nil {
		return fmt.Errorf("check orphan entries: %w", err)
	}
	if orphans > 0 {
		return fmt.Errorf("%d users have entries but no balance row", orphans)
	}
	var chain int
	if err := db.NewRaw(`SELECT count(*) FROM (
		SELECT balance_after, sum(points) OVER (PARTITION BY partner_id, user_id ORDER BY id) AS running
		FROM ledger_entries) x WHERE balance_after <> running OR running < 0`).Scan(ctx, &chain); err != nil {
		return fmt.Errorf("check running balances: %w", err)
	}
	if chain > 0 {
		return fmt.Errorf("%d entries have a balance_after that is not the running sum", chain)
	}
	return nil
}
