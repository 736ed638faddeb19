package voucher

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/ledger"
)

// invariants are queries that must return 0 rows' worth of count: each
// counts the rows that break one rule.
var invariants = []struct{ name, query string }{
	{"a gift's claimed count (its row's and its claim slots') equals its vouchers, erased ones included (issued = initial stock - stock left)", `
		SELECT count(*) FROM gifts g
		WHERE g.claimed_count + coalesce((SELECT sum(s.claimed) FROM gift_claim_slots s WHERE s.partner_id = g.partner_id AND s.gift_id = g.id), 0)
			<> g.erased_claims + (SELECT count(*) FROM vouchers v WHERE v.partner_id = g.partner_id AND v.gift_id = g.id)`},
	{"stock left is never negative", `
		SELECT count(*) FROM gifts g WHERE g.stock_total IS NOT NULL
		AND g.claimed_count + coalesce((SELECT sum(s.claimed) FROM gift_claim_slots s WHERE s.partner_id = g.partner_id AND s.gift_id = g.id), 0) > g.stock_total`},
	{"a limited gift's claim slots hold exactly its stock left, an unlimited gift's no room", `
		SELECT count(*) FROM gifts g
		JOIN (SELECT partner_id, gift_id, sum(claimed) AS claimed, sum(room) AS room, count(room) AS limited, count(*) AS slots
			FROM gift_claim_slots GROUP BY partner_id, gift_id) s ON s.partner_id = g.partner_id AND s.gift_id = g.id
		WHERE CASE WHEN g.stock_total IS NULL THEN s.limited <> 0
			ELSE s.limited <> s.slots OR g.claimed_count + s.claimed + s.room <> g.stock_total END`},
	{"a gift's available count (its row's less its claim slots') equals its unassigned codes", `
		SELECT count(*) FROM gifts g
		WHERE g.codes_available - coalesce((SELECT sum(s.pool_taken) FROM gift_claim_slots s WHERE s.partner_id = g.partner_id AND s.gift_id = g.id), 0)
			<> (SELECT count(*) FROM gift_codes c
			WHERE c.partner_id = g.partner_id AND c.gift_id = g.id AND c.assigned_at IS NULL)`},
	{"a voucher's code is an assigned code of its gift", `
		SELECT count(*) FROM vouchers v LEFT JOIN gift_codes c ON c.partner_id = v.partner_id AND c.code = v.code
		WHERE v.code IS NOT NULL AND (c.code IS NULL OR c.assigned_at IS NULL OR c.gift_id <> v.gift_id)`},
	{"each code is used by at most one voucher", `
		SELECT count(*) FROM (SELECT 1 FROM vouchers WHERE code IS NOT NULL
			GROUP BY partner_id, code HAVING count(*) > 1) d`},
	{"each voucher has exactly its burn entry", `
		SELECT count(*) FROM vouchers v LEFT JOIN ledger_entries e ON e.partner_id = v.partner_id AND e.id = v.burn_entry_id
		WHERE e.id IS NULL OR e.kind <> 'burn' OR e.points <> -v.cost_points OR e.user_id <> v.user_id
		   OR e.source_type <> 'voucher' OR e.source_id <> v.id::text`},
	{"voucher burns and vouchers match one to one", `
		SELECT count(*) FROM ledger_entries e
		WHERE e.kind = 'burn' AND e.source_type = 'voucher'
		  AND NOT EXISTS (SELECT 1 FROM vouchers v WHERE v.partner_id = e.partner_id AND v.burn_entry_id = e.id)`},
	{"a refunded voucher has exactly its refund entry", `
		SELECT count(*) FROM vouchers v LEFT JOIN ledger_entries e ON e.partner_id = v.partner_id AND e.id = v.refund_entry_id
		WHERE v.refund_entry_id IS NOT NULL AND (e.id IS NULL OR e.kind <> 'refund' OR e.points <> v.cost_points
		   OR e.source_type <> 'voucher' OR e.source_id <> v.id::text)`},
	{"every voucher refund entry is recorded on its voucher (at most one refund)", `
		SELECT count(*) FROM ledger_entries e
		WHERE e.kind = 'refund' AND e.source_type = 'voucher'
		  AND NOT EXISTS (SELECT 1 FROM vouchers v WHERE v.partner_id = e.partner_id AND v.refund_entry_id = e.id)`},
	{"every cancelled voucher was refunded", `
		SELECT count(*) FROM vouchers WHERE status = 'cancelled' AND refund_entry_id IS NULL`},
	{"a user's per-gift claim counter equals their vouchers of the gift", `
		SELECT count(*) FROM gift_claim_counters c
		WHERE c.claims <> (SELECT count(*) FROM vouchers v
			WHERE v.partner_id = c.partner_id AND v.user_id = c.user_id AND v.gift_id = c.gift_id)`},
}

// CheckInvariants verifies the ledger invariants and, across every partner,
// the catalog's: claimed counts (a gift's row plus its claim slots) equal
// vouchers issued (so issued = initial stock - stock left), stock left is
// never negative and is exactly what the slots hold, each code is used
// once and belongs to its voucher's gift, each voucher has its one burn and
// at most one refund, and per-user counters equal the vouchers. Tests and
// `make bench` run it after concurrent load; it only reads.
func CheckInvariants(ctx context.Context, db bun.IDB) error {
	if err := ledger.CheckInvariants(ctx, db); err != nil {
		return err
	}
	for _, inv := range invariants {
		var n int
		if err := db.NewRaw(inv.query).Scan(ctx, &n); err != nil {
			return fmt.Errorf("check %q: %w", inv.name, err)
		}
		if n > 0 {
			return fmt.Errorf("invariant broken (%d rows): %s", n, inv.name)
		}
	}
	return nil
}
