package ledger

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"
)

// CheckInvariants verifies, across every user, that the balance equals the
// sum of the user's entries, that lifetime earnings equal the sum of earns
// and positive adjustments less the reversals of available points, and
// that each entry's balance_after is the running sum in id order (pending
// and cancel entries, and reversals of still-pending points, are not part
// of it), and the lot invariants of checkLots. A balance may be negative
// (a reversal's debt under negativeBalance = allow). Tests and the benchmark call it after load; an
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
		LEFT JOIN (SELECT partner_id, user_id, sum(points) FILTER (WHERE `+inRunningSum+`) AS sum,
		                  sum(points) FILTER (WHERE kind IN ('earn', 'activate') OR (kind = 'adjust' AND points > 0)
		                                         OR (kind = 'reverse' AND source_type = '`+SourceEarn+`')) AS earned
		           FROM ledger_entries GROUP BY partner_id, user_id) e USING (partner_id, user_id)
		WHERE b.points <> coalesce(e.sum, 0) OR b.lifetime_earned <> coalesce(e.earned, 0)
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
		SELECT balance_after, sum(points) FILTER (WHERE `+inRunningSum+`) OVER (PARTITION BY partner_id, user_id ORDER BY id) AS running
		FROM ledger_entries) x WHERE balance_after <> running`).Scan(ctx, &chain); err != nil {
		return fmt.Errorf("check running balances: %w", err)
	}
	if chain > 0 {
		return fmt.Errorf("%d entries have a balance_after that is not the running sum", chain)
	}
	return checkLots(ctx, db)
}

// lotChecks are the lot invariants (docs/points.md, "Lots"): each query
// counts the rows that break one.
var lotChecks = []struct{ what, sql string }{
	{"balances whose available points are not the remaining of their available lots, or whose pending points are not their pending lots", `
		SELECT count(*) FROM balances b
		LEFT JOIN (SELECT partner_id, user_id, sum(remaining) FILTER (WHERE NOT pending) AS avail,
		                  sum(remaining) FILTER (WHERE pending) AS pend
		           FROM point_lots GROUP BY partner_id, user_id) l USING (partner_id, user_id)
		WHERE coalesce(l.avail, 0) <> greatest(b.points, 0) OR b.pending_points <> coalesce(l.pend, 0)`},
	{"lots with remaining outside 0..points or not their points minus the debt they paid and their allocations", `
		SELECT count(*) FROM point_lots l
		LEFT JOIN (SELECT partner_id, lot_id, sum(points) AS used FROM lot_allocations GROUP BY partner_id, lot_id) a
		       ON a.partner_id = l.partner_id AND a.lot_id = l.id
		WHERE l.remaining < 0 OR l.remaining > l.points OR l.remaining <> l.points - l.debt_paid - coalesce(a.used, 0)`},
	{"debits (burn, adjust down, expire; but those before the lots migration) whose allocations do not sum to the debit", `
		SELECT count(*) FROM ledger_entries e
		LEFT JOIN (SELECT partner_id, entry_id, sum(points) AS s FROM lot_allocations GROUP BY partner_id, entry_id) a
		       ON a.partner_id = e.partner_id AND a.entry_id = e.id
		WHERE e.points < 0 AND e.kind <> 'reverse' AND coalesce(a.s, 0) <> -e.points
		  AND NOT EXISTS (SELECT 1 FROM point_lots m WHERE m.partner_id = e.partner_id AND m.user_id = e.user_id AND e.id <= m.migrated_through)`},
	{"allocations of no entry, of a credit, of another user's lot, or of an expiry to another lot than its own", `
		SELECT count(*) FROM lot_allocations a
		LEFT JOIN ledger_entries e ON e.partner_id = a.partner_id AND e.id = a.entry_id
		JOIN point_lots l ON l.partner_id = a.partner_id AND l.id = a.lot_id
		WHERE e.id IS NULL OR e.points > 0 OR e.user_id <> l.user_id OR (e.kind = 'expire' AND (e.source_id IS DISTINCT FROM l.id::text))`},
	{"expiries of more than their lot held, or of a lot not yet expired", `
		SELECT count(*) FROM ledger_entries e
		JOIN point_lots l ON l.partner_id = e.partner_id AND l.id::text = e.source_id
		WHERE e.kind = 'expire' AND e.source_type = 'lot' AND (-e.points > l.points OR l.expires_at IS NULL OR l.expires_at > e.created_at)`},
	{"reversals whose allocations are not what the lots held (the points taken from lots: all of it, up to the balance before when it was positive; none for pending points)", `
		SELECT count(*) FROM ledger_entries e
		LEFT JOIN (SELECT partner_id, entry_id, sum(points) AS s FROM lot_allocations GROUP BY partner_id, entry_id) a
		       ON a.partner_id = e.partner_id AND a.entry_id = e.id
		WHERE e.kind = 'reverse' AND coalesce(a.s, 0) <> CASE WHEN e.source_type = '` + SourcePendingEarn + `' THEN 0
		      ELSE least(-e.points, greatest(e.balance_after - e.points, 0)) END`},
	{"reversals of an earn that sum to more than the earn", `
		SELECT count(*) FROM (
			SELECT r.partner_id, r.source_id, sum(-r.points) AS reversed FROM ledger_entries r
			WHERE r.kind = 'reverse' GROUP BY r.partner_id, r.source_id) r
		LEFT JOIN ledger_entries e ON e.partner_id = r.partner_id AND e.id = r.source_id::bigint AND e.kind IN ('earn', 'pending')
		WHERE e.id IS NULL OR r.reversed > e.points`},
	{"pending lots with allocations", `
		SELECT count(*) FROM point_lots l JOIN lot_allocations a ON a.partner_id = l.partner_id AND a.lot_id = l.id WHERE l.pending`},
}

// inRunningSum is the SQL condition of the entries that are part of the
// available balance's running sum: all but pending points (held earns,
// their cancels, and reversals of points still pending).
const inRunningSum = `kind NOT IN ('pending', 'cancel') AND NOT (kind = 'reverse' AND source_type IS NOT DISTINCT FROM '` + SourcePendingEarn + `')`

func checkLots(ctx context.Context, db bun.IDB) error {
	for _, c := range lotChecks {
		var n int
		if err := db.NewRaw(c.sql).Scan(ctx, &n); err != nil {
			return fmt.Errorf("check lots: %w", err)
		}
		if n > 0 {
			return fmt.Errorf("lot invariant broken: %d %s", n, c.what)
		}
	}
	return nil
}
