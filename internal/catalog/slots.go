package catalog

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/slot"
)

// GiftSlots is how many rows a gift's claims are counted over
// (gift_claim_slots, migration 20261201010000). A claim updates one slot
// instead of the gift's row, so up to GiftSlots claims of one gift hold
// their unit at once instead of one, and more wait one queue per slot. More
// slots make every read of a gift sum more rows (the catalog page reads 20
// gifts: 8 slots and both sums cost it 0.37 ms more PostgreSQL time a
// page, 4 slots and the codes sum for pool gifts only 0.06 ms)
// and the end of a small stock lock more rows; claims beyond a gift's slots
// wait for one (the claim gate, PERKS_CLAIMS_AT_ONCE, bounds how many wait
// inside PostgreSQL). The migration spread the existing gifts over 4 slots;
// PutGiftTx rewrites a gift's slots to GiftSlots, so changing it needs a
// migration that re-spreads them.
const GiftSlots = 4

// slotOf is the slot a claim of userID tries first (slot.Of), so that
// concurrent claims of one gift by different users start on different
// slots.
func slotOf(userID uuid.UUID) int16 { return int16(slot.Of(userID, GiftSlots)) }

// slotShare is slot i's part of n units spread over GiftSlots (slot.Share).
func slotShare(n, i int) int { return int(slot.Share(int64(n), i, GiftSlots)) }

// countedColumns is Gift's column list for a SELECT from gifts aliased
// alias, with claimed_count and codes_available counting the gift's slots:
// what a reader sees is exact (one statement, one snapshot), whatever the
// claims in flight.
func countedColumns(db bun.IDB, alias string) string {
	cols := strings.Split(database.Columns(db, (*Gift)(nil), alias), ", ")
	slots := func(col string) string {
		return fmt.Sprintf(`coalesce((SELECT sum(s.%s) FROM gift_claim_slots s WHERE s.partner_id = %s.partner_id AND s.gift_id = %s.id), 0)`, col, alias, alias)
	}
	for i, c := range cols {
		switch c {
		case alias + `."claimed_count"`, alias + ".claimed_count":
			cols[i] = fmt.Sprintf(`(%s.claimed_count + %s)::int AS claimed_count`, alias, slots("claimed"))
		case alias + `."codes_available"`, alias + ".codes_available":
			// Only a pool gift's slots hold taken codes: PutGiftTx folds
			// them when the gift changes source, and a claim that took a pool
			// code of a gift changed meanwhile is refused (CONFLICT). The
			// CASE spares other gifts the second sum.
			cols[i] = fmt.Sprintf(`(CASE WHEN %[1]s.code_source = 'pool' THEN %[1]s.codes_available - %[2]s ELSE %[1]s.codes_available END)::int AS codes_available`, alias, slots("pool_taken"))
		}
	}
	return strings.Join(cols, ", ")
}

// slotTotals locks the gift's slots (ascending, as a claim's fallback
// does: every claim of the gift holding one finishes first) and answers
// what they counted that the gift row does not hold yet.
func slotTotals(ctx context.Context, tx bun.Tx, partnerID, giftID uuid.UUID) (claimed, poolTaken int, err error) {
	var rows []struct {
		Claimed   int `bun:"claimed"`
		PoolTaken int `bun:"pool_taken"`
	}
	err = tx.NewRaw(`SELECT claimed, pool_taken FROM gift_claim_slots WHERE partner_id = ? AND gift_id = ?
		ORDER BY slot FOR NO KEY UPDATE`, partnerID, giftID).Scan(ctx, &rows)
	if err != nil {
		return 0, 0, fmt.Errorf("lock the claim slots of gift %s: %w", giftID, err)
	}
	for _, r := range rows {
		claimed += r.Claimed
		poolTaken += r.PoolTaken
	}
	return claimed, poolTaken, nil
}

// foldSlotsTx moves what the gift's slots counted into the gift row and
// spreads the stock left over GiftSlots fresh slots (room NULL when the
// stock is unlimited). The caller holds the slots' locks (slotTotals) and
// the gift row's; g is updated to the folded counts.
func foldSlotsTx(ctx context.Context, tx bun.Tx, g *Gift, claimed, poolTaken int) error {
	err := tx.NewRaw(`UPDATE gifts SET claimed_count = claimed_count + ?, codes_available = codes_available - ?
		WHERE partner_id = ? AND id = ? RETURNING claimed_count, codes_available`,
		claimed, poolTaken, g.PartnerID, g.ID).Scan(ctx, &g.ClaimedCount, &g.CodesAvailable)
	if err != nil {
		return fmt.Errorf("fold the claim slots of gift %s: %w", g.SKU, err)
	}
	type slotRow struct {
		bun.BaseModel `bun:"table:gift_claim_slots"`
		PartnerID     uuid.UUID `bun:"partner_id,type:uuid"`
		GiftID        uuid.UUID `bun:"gift_id,type:uuid"`
		Slot          int       `bun:"slot"`
		Claimed       int       `bun:"claimed"`
		PoolTaken     int       `bun:"pool_taken"`
		Room          *int      `bun:"room"`
	}
	rows := make([]slotRow, GiftSlots)
	for i := range rows {
		rows[i] = slotRow{PartnerID: g.PartnerID, GiftID: g.ID, Slot: i}
		if g.StockTotal != nil {
			n := slotShare(max(*g.StockTotal-g.ClaimedCount, 0), i)
			rows[i].Room = &n
		}
	}
	// Updated in place rather than deleted and inserted: a claim waiting on
	// a slot then checks the new row and does not miss it.
	_, err = tx.NewInsert().Model(&rows).
		On("CONFLICT (partner_id, gift_id, slot) DO UPDATE").
		Set("claimed = 0, pool_taken = 0, room = EXCLUDED.room").Exec(ctx)
	if err != nil {
		return fmt.Errorf("write the claim slots of gift %s: %w", g.SKU, err)
	}
	_, err = tx.NewRaw(`DELETE FROM gift_claim_slots WHERE partner_id = ? AND gift_id = ? AND slot >= ?`, g.PartnerID, g.ID, GiftSlots).Exec(ctx)
	if err != nil {
		return fmt.Errorf("drop the claim slots of gift %s: %w", g.SKU, err)
	}
	return nil
}
