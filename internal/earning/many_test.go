package earning_test

import (
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/earning"
	"github.com/perkshq/perks/internal/ledger"
)

// TestEarnManyRefusedItemWithPriorReference: a batch's first attempt does
// not read its references (the entries' unique index catches an accepted
// item's), so an item that a cap or cooldown would refuse but whose
// reference the ledger already holds must still come back as the duplicate
// it is, with the original entry, and the items after it decide as they
// would had it been read first.
func TestEarnManyRefusedItemWithPriorReference(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		rule earning.RuleInput
	}{
		{name: "daily cap", rule: earning.RuleInput{Points: 3, DailyCap: ptr(1)}},
		{name: "lifetime cap", rule: earning.RuleInput{Points: 3, LifetimeCap: ptr(1)}},
		{name: "cooldown", rule: earning.RuleInput{Points: 3, CooldownSeconds: ptr(3600)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.rule(t, "limited", tt.rule)
			b.rule(t, "purchase", earning.RuleInput{Points: 1})
			u := b.user(t, "ref")
			first, err := b.earn(earning.EarnParams{UserID: u, Code: "limited", Reference: ptr("order-1")})
			require.NoError(t, err)

			res, err := b.earning.EarnManyTx(b.ctx, b.tx, b.partner, []earning.ManyItem{
				{EarnParams: earning.EarnParams{UserID: u, Code: "limited", Reference: ptr("order-1")}},
				{EarnParams: earning.EarnParams{UserID: u, Code: "limited", Reference: ptr("order-2")}},
				{EarnParams: earning.EarnParams{UserID: u, Code: "purchase", Reference: ptr("order-3")}},
			})
			require.NoError(t, err)
			require.Nil(t, res[0].Err, "a resent item is a duplicate, not refused by the limit")
			require.True(t, res[0].Duplicate)
			require.Equal(t, first.ID, *res[0].EntryID)
			require.NotNil(t, res[1].Err, "a new item is still refused by the limit")
			require.Contains(t, []apperr.Code{apperr.CodeDailyCapReached, apperr.CodeLifetimeCapReached, apperr.CodeCooldown}, res[1].Err.Code)
			require.Nil(t, res[2].Err)
			require.Equal(t, int64(4), *res[2].Balance)
			require.NoError(t, ledger.CheckInvariants(b.ctx, b.tx))
		})
	}
}

// TestEarnManyEntryIDsInInputOrder: the entries' insert allocates their ids
// and returns them in input order: each item's result names the entry with
// its own reference, points and lot, across users and with refused items
// between.
func TestEarnManyEntryIDsInInputOrder(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.rule(t, "purchase", earning.RuleInput{Points: 1, VariablePoints: true})
	users := []uuid.UUID{b.user(t, "o1"), b.user(t, "o2"), b.user(t, "o3")}
	var items []earning.ManyItem
	for i := range 60 {
		code := "purchase"
		if i%7 == 3 {
			code = "nope" // refused: no entry
		}
		items = append(items, earning.ManyItem{EarnParams: earning.EarnParams{UserID: users[i%3], Code: code,
			Points: ptr(int64(i + 1)), Reference: ptr(fmt.Sprintf("io-%d", i))}})
	}
	res, err := b.earning.EarnManyTx(b.ctx, b.tx, b.partner, items)
	require.NoError(t, err)
	for i, r := range res {
		if i%7 == 3 {
			require.NotNil(t, r.Err)
			continue
		}
		require.Nil(t, r.Err)
		var e struct {
			Reference string    `bun:"reference"`
			Points    int64     `bun:"points"`
			UserID    uuid.UUID `bun:"user_id"`
			Lot       int64     `bun:"lot"`
		}
		require.NoError(t, b.tx.NewRaw(`SELECT e.reference, e.points, e.user_id, l.points AS lot FROM ledger_entries e
			JOIN point_lots l ON l.partner_id = e.partner_id AND l.source_entry_id = e.id WHERE e.partner_id = ? AND e.id = ?`,
			b.partner.ID, *r.EntryID).Scan(b.ctx, &e))
		require.Equal(t, fmt.Sprintf("io-%d", i), e.Reference)
		require.Equal(t, int64(i+1), e.Points)
		require.Equal(t, int64(i+1), e.Lot)
		require.Equal(t, users[i%3], e.UserID)
	}
	require.NoError(t, ledger.CheckInvariants(b.ctx, b.tx))
}
