package campaign

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/slot"
)

// BudgetSlots is how many rows a campaign's budget is spread over
// (campaign_budget_slots). Earns of users in different slots charge
// different rows, so up to BudgetSlots earns of one budgeted campaign run
// at once instead of one; more slots make every earn's read of what is left
// sum more rows, and the fallback (chargeBudgets) lock more rows near the end
// of a budget. 32 measured a lower p99 than 16 at 64 clients
// (docs/benchmarks.md). The migration that created the table spread the
// existing budgets over 32 slots; a PUT rewrites a campaign's slots to
// BudgetSlots, so changing it needs a migration that re-spreads them.
const BudgetSlots = 32

// slotOf is the slot an earn of userID charges first (slot.Of): one
// user's earns go to one slot and the users spread over all of them.
func slotOf(userID uuid.UUID) int { return slot.Of(userID, BudgetSlots) }

// share is slot i's part of total spread over BudgetSlots (slot.Share):
// spreading both a budget and what was spent this way keeps every slot's
// spent within its budget.
func share(total int64, i int) int64 { return slot.Share(total, i, BudgetSlots) }

// chargeBudgets takes each candidate's payable points from its campaign's
// budget, inside tx, and sets payable to what it took (0 when the budget
// is spent or gone): one round trip for all of them, the SQL function
// campaign_charge_budgets (migration 20261128100000), with cands in code
// order. Per campaign it charges the first slot from the user's on that
// can pay the whole award and that no concurrent earn holds (SKIP LOCKED:
// no earn queues there), else the user's own slot, waiting for it, and only
// when no slot can pay locks every slot in ascending order and takes what
// is left, slot after slot, up to the award.
// The migration's comment and docs/program.md ("Budgets and per-user
// caps") say why that cannot deadlock; TestBudgetFallbackNoDeadlock and
// TestBudgetStorm run it under contention.
func chargeBudgets(ctx context.Context, tx bun.IDB, partnerID, userID uuid.UUID, cands []*candidate) error {
	if len(cands) == 0 {
		return nil
	}
	codes, wants := make([]string, len(cands)), make([]int64, len(cands))
	for i, c := range cands {
		codes[i], wants[i] = c.Code, c.payable
	}
	var got []int64
	// Prepared: every budgeted campaign's earn runs it, and a call's
	// parse and plan cost a quarter of its run.
	row, err := database.QueryRow(ctx, tx, `SELECT campaign_charge_budgets($1, $2::smallint, $3::text[], $4::bigint[])`,
		partnerID, slotOf(userID), codes, wants)
	if err == nil {
		err = row.Scan(pgdialect.Array(&got))
	}
	if err != nil {
		return fmt.Errorf("charge campaign budgets: %w", err)
	}
	if len(got) != len(cands) {
		return fmt.Errorf("charge campaign budgets: %d answers for %d campaigns", len(got), len(cands))
	}
	for i, c := range cands {
		c.payable = got[i]
	}
	return nil
}

// slotsSpent locks the campaign's row and its slots (ascending, as
// chargeBudgets does) and answers what the campaign spent in all:
// spent_points plus the slots'. exists is false when there is no campaign.
func slotsSpent(ctx context.Context, db bun.IDB, partnerID uuid.UUID, code string) (spent int64, exists bool, err error) {
	var rows []int64
	err = db.NewRaw(`SELECT spent_points FROM campaigns WHERE partner_id = ? AND code = ? FOR UPDATE`, partnerID, code).Scan(ctx, &rows)
	if err != nil {
		return 0, false, fmt.Errorf("lock campaign: %w", err)
	}
	if len(rows) == 0 {
		return 0, false, nil
	}
	spent = rows[0]
	var slots []int64
	err = db.NewRaw(`SELECT spent FROM campaign_budget_slots WHERE partner_id = ? AND code = ? ORDER BY slot FOR NO KEY UPDATE`, partnerID, code).Scan(ctx, &slots)
	if err != nil {
		return 0, false, fmt.Errorf("lock campaign budget slots: %w", err)
	}
	for _, s := range slots {
		spent += s
	}
	return spent, true, nil
}

// writeSlots makes the campaign's slots hold budget and spent (spent <=
// budget), spread by share; with no budget it drops them. The caller holds
// the slots' locks (slotsSpent).
func writeSlots(ctx context.Context, db bun.IDB, partnerID uuid.UUID, code string, budget *int64, spent int64) error {
	if budget == nil {
		_, err := db.NewRaw(`DELETE FROM campaign_budget_slots WHERE partner_id = ? AND code = ?`, partnerID, code).Exec(ctx)
		if err != nil {
			return fmt.Errorf("drop campaign budget slots: %w", err)
		}
		return nil
	}
	if spent > *budget {
		return errors.New("write campaign budget slots: spent above the budget")
	}
	type slotRow struct {
		bun.BaseModel `bun:"table:campaign_budget_slots"`
		PartnerID     uuid.UUID `bun:"partner_id,type:uuid"`
		Code          string    `bun:"code"`
		Slot          int       `bun:"slot"`
		Budget        int64     `bun:"budget"`
		Spent         int64     `bun:"spent"`
	}
	rows := make([]slotRow, BudgetSlots)
	for i := range rows {
		rows[i] = slotRow{PartnerID: partnerID, Code: code, Slot: i, Budget: share(*budget, i), Spent: share(spent, i)}
	}
	// Rows are updated in place rather than deleted and inserted, so that
	// an earn waiting on a slot re-checks the new row and does not miss it.
	_, err := db.NewInsert().Model(&rows).
		On("CONFLICT (partner_id, code, slot) DO UPDATE").
		Set("budget = EXCLUDED.budget, spent = EXCLUDED.spent").Exec(ctx)
	if err != nil {
		return fmt.Errorf("write campaign budget slots: %w", err)
	}
	_, err = db.NewRaw(`DELETE FROM campaign_budget_slots WHERE partner_id = ? AND code = ? AND slot >= ?`, partnerID, code, BudgetSlots).Exec(ctx)
	if err != nil {
		return fmt.Errorf("drop campaign budget slots: %w", err)
	}
	return nil
}

// addSlotsSpent adds the slots' spent to each campaign's SpentPoints.
func addSlotsSpent(ctx context.Context, db bun.IDB, partnerID uuid.UUID, cs []Campaign) error {
	if len(cs) == 0 {
		return nil
	}
	codes := make([]string, len(cs))
	for i := range cs {
		codes[i] = cs[i].Code
	}
	var sums []struct {
		Code  string `bun:"code"`
		Spent int64  `bun:"spent"`
	}
	err := db.NewRaw(`SELECT code, sum(spent)::bigint AS spent FROM campaign_budget_slots
		WHERE partner_id = ? AND code IN (?) GROUP BY code`, partnerID, bun.List(codes)).Scan(ctx, &sums)
	if err != nil {
		return fmt.Errorf("read campaign budget slots: %w", err)
	}
	for _, s := range sums {
		for i := range cs {
			if cs[i].Code == s.Code {
				cs[i].SpentPoints += s.Spent
			}
		}
	}
	return nil
}
