package campaign_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/campaign"
	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/earning"
	"github.com/perkshq/perks/internal/event"
	"github.com/perkshq/perks/internal/keyring"
	"github.com/perkshq/perks/internal/ledger"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/tier"
	"github.com/perkshq/perks/internal/user"
)

// countedBundle is an earn pipeline wired as app.NewServices wires it
// (tier and campaign modifiers), over a transaction of a database of its
// own whose pool counts every statement sent (prepared or not; nothing else
// uses that pool), at a fixed clock.
type countedBundle struct {
	tx      bun.Tx
	counter *database.StatementCounter
	keys    *keyring.Keyring
	users   *user.Service
	camps   *campaign.Service
	tiers   *tier.Service
	svc     *earning.Service
}

func setupCounted(t *testing.T) *countedBundle {
	t.Helper()
	ctx := context.Background()
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	db := dbtest.NewDB(t)
	b := &countedBundle{counter: db.Statements}
	tx, err := db.Bun.BeginTx(ctx, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback() })
	b.tx = tx
	b.keys, err = keyring.New(make([]byte, keyring.KeySize))
	require.NoError(t, err)
	events := &event.Recorder{Now: clock}
	b.users = &user.Service{Keys: b.keys, Events: events, Now: clock}
	b.camps = &campaign.Service{Now: clock}
	b.tiers = &tier.Service{Events: events, Now: clock}
	b.svc = &earning.Service{Ledger: &ledger.Service{Events: events, Now: clock}, Users: b.users, Tiers: b.tiers, Now: clock,
		Tier: earning.TierModifier(), Campaigns: b.camps.EarnModifier()}
	return b
}

// TestEarnUserConditionCostsNoQuery: a campaign whose condition reads the
// user (country, tier, attributes) costs an earn by external user id no
// more statements than a campaign without a condition: the
// campaigns take the user's row the earn resolved and the tier the tier
// modifier read (earning.Earn.User, Tier) instead of loading them again,
// and still see the right values (the condition holds only for the SG
// silver VIP). An earn by internal user id has no row at hand: the
// campaigns load the facts themselves and award the same.
func TestEarnUserConditionCostsNoQuery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupCounted(t)
	tx, counter, keys, users, camps, tiers, svc := b.tx, b.counter, b.keys, b.users, b.camps, b.tiers, b.svc

	// Each condition gets a partner of its own with the same tiers, rule
	// and users; the condition is the only difference.
	type setupResult struct {
		p   *partner.Partner
		vip uuid.UUID
	}
	setupPartner := func(t *testing.T, condition string) setupResult {
		p, err := partner.NewService(keys).Upsert(ctx, tx, partner.CreateParams{Slug: "uf-" + uuid.NewString()[:8], Name: "UF"})
		require.NoError(t, err)
		_, _, err = svc.PutRule(ctx, tx, p.ID, "purchase", earning.RuleInput{Name: "Purchase", Points: 10, Enabled: true})
		require.NoError(t, err)
		_, err = tiers.PutTx(ctx, tx, p.ID, []tier.Input{{Code: "silver", Name: "Silver", Multiplier: 100}, {Code: "gold", Name: "Gold", Threshold: 1000, Multiplier: 100}})
		require.NoError(t, err)
		bonus := int64(5)
		_, _, err = camps.PutTx(ctx, tx, p.ID, "bonus", campaign.Input{Name: "Bonus", BonusPoints: &bonus, Condition: condition, Stacking: campaign.StackAdditive, Enabled: true})
		require.NoError(t, err)
		sg, my := "SG", "MY"
		vip, err := users.UpsertTx(ctx, tx, p.ID, "vip", user.Profile{CountryCode: &sg, Attributes: json.RawMessage(`{"vip":true}`)})
		require.NoError(t, err)
		_, err = users.UpsertTx(ctx, tx, p.ID, "plain", user.Profile{CountryCode: &my, Attributes: json.RawMessage(`{"vip":false}`)})
		require.NoError(t, err)
		return setupResult{p: p, vip: vip.User.ID}
	}
	earn := func(t *testing.T, p *partner.Partner, ep earning.EarnParams) (int64, int64) {
		t.Helper()
		ep.Code = "purchase"
		var e *ledger.Entry
		n := counter.Count(func() {
			var err error
			e, err = svc.EarnTx(ctx, tx, p, ep)
			require.NoError(t, err)
		})
		return e.Points, n
	}

	always := setupPartner(t, "")
	onUser := setupPartner(t, "user.country == 'SG' && user.tier == 'silver' && user.attributes.vip == true")

	pts, unconditional := earn(t, always.p, earning.EarnParams{ExternalUserID: "vip"})
	require.Equal(t, int64(15), pts)
	pts, userCond := earn(t, onUser.p, earning.EarnParams{ExternalUserID: "vip"})
	require.Equal(t, int64(15), pts, "the SG silver VIP gets the bonus")
	require.Equal(t, unconditional, userCond, "a condition on the user costs the earn no statement of its own")

	pts, _ = earn(t, onUser.p, earning.EarnParams{ExternalUserID: "plain"})
	require.Equal(t, int64(10), pts, "a user outside SG gets no bonus")

	// By internal id: no user row at hand, the facts are loaded.
	pts, byID := earn(t, onUser.p, earning.EarnParams{UserID: onUser.vip})
	require.Equal(t, int64(15), pts)
	require.Greater(t, byID, int64(0))
}

// TestEarnWithoutProgramSkipsItsQueries: an earn of a partner without
// tiers or campaigns runs none of their statements (the tier read, the
// tier evaluation, the campaign read): the rule query says which parts the
// partner uses. It still earns, and a partner that adds a campaign (or
// tiers) is served by the very next earn, whose rule query also reads the
// campaigns and the tier: only a budget's charge costs a statement.
func TestEarnWithoutProgramSkipsItsQueries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupCounted(t)
	tx, counter, keys, users, camps, tiers, svc := b.tx, b.counter, b.keys, b.users, b.camps, b.tiers, b.svc
	p, err := partner.NewService(keys).Upsert(ctx, tx, partner.CreateParams{Slug: "np-" + uuid.NewString()[:8], Name: "NP"})
	require.NoError(t, err)
	_, _, err = svc.PutRule(ctx, tx, p.ID, "purchase", earning.RuleInput{Name: "Purchase", Points: 10, Enabled: true})
	require.NoError(t, err)
	_, err = users.UpsertTx(ctx, tx, p.ID, "u", user.Profile{})
	require.NoError(t, err)
	earn := func() (int64, int64) {
		t.Helper()
		var e *ledger.Entry
		n := counter.Count(func() {
			var err error
			e, err = svc.EarnTx(ctx, tx, p, earning.EarnParams{ExternalUserID: "u", Code: "purchase"})
			require.NoError(t, err)
		})
		return e.Points, n
	}

	pts, plain := earn()
	require.Equal(t, int64(10), pts)
	// The user with the rule, the policy and the parts; the balance, entry
	// and lot; the points.earned event. Before the parts, the tier and
	// campaign reads came on top.
	require.Equal(t, int64(3), plain, "%s", counter.Texts())

	bonus := int64(5)
	_, _, err = camps.PutTx(ctx, tx, p.ID, "bonus", campaign.Input{Name: "Bonus", BonusPoints: &bonus, Stacking: campaign.StackAdditive, Enabled: true})
	require.NoError(t, err)
	pts, withCampaign := earn()
	require.Equal(t, int64(15), pts, "the next earn applies the new campaign")
	require.Equal(t, plain, withCampaign, "the campaigns come with the rule query: no statement of their own")

	_, err = tiers.PutTx(ctx, tx, p.ID, []tier.Input{{Code: "member", Name: "Member", Multiplier: 200}})
	require.NoError(t, err)
	pts, withTiers := earn()
	require.Equal(t, int64(25), pts, "and the new tier's multiplier: 10 x2 + 5")
	require.Equal(t, plain, withTiers, "nor does the user's tier")

	// A budget is charged by a statement of its own (campaign_budget_slots).
	budget := int64(1000)
	_, _, err = camps.PutTx(ctx, tx, p.ID, "budgeted", campaign.Input{Name: "Budgeted", BonusPoints: &bonus, BudgetPoints: &budget, Stacking: campaign.StackAdditive, Enabled: true})
	require.NoError(t, err)
	pts, withBudget := earn()
	require.Equal(t, int64(30), pts)
	require.Equal(t, plain+1, withBudget)
}

// TestEarnManyWithoutProgramIsSetBased: a batch of a partner without tiers
// or campaigns runs as many statements for 20 items as for 2 (no
// per-item savepoint, tier read or campaign read); once the partner has a
// campaign, its items go through the modifiers and get the bonus.
func TestEarnManyWithoutProgramIsSetBased(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupCounted(t)
	p, err := partner.NewService(b.keys).Upsert(ctx, b.tx, partner.CreateParams{Slug: "nb-" + uuid.NewString()[:8], Name: "NB"})
	require.NoError(t, err)
	_, _, err = b.svc.PutRule(ctx, b.tx, p.ID, "purchase", earning.RuleInput{Name: "Purchase", Points: 10, Enabled: true})
	require.NoError(t, err)
	for i := range 20 {
		_, err = b.users.UpsertTx(ctx, b.tx, p.ID, fmt.Sprintf("u%d", i), user.Profile{})
		require.NoError(t, err)
	}
	batch := func(n int) ([]earning.ManyResult, int64) {
		t.Helper()
		items := make([]earning.ManyItem, n)
		for i := range items {
			items[i] = earning.ManyItem{EarnParams: earning.EarnParams{ExternalUserID: fmt.Sprintf("u%d", i), Code: "purchase"}}
		}
		var res []earning.ManyResult
		sent := b.counter.Count(func() {
			var err error
			res, err = b.svc.EarnManyTx(ctx, b.tx, p, items)
			require.NoError(t, err)
		})
		return res, sent
	}
	_, two := batch(2)
	_, twenty := batch(20)
	require.Equal(t, two, twenty, "statements do not grow with the items")

	bonus := int64(5)
	_, _, err = b.camps.PutTx(ctx, b.tx, p.ID, "bonus", campaign.Input{Name: "Bonus", BonusPoints: &bonus, Stacking: campaign.StackAdditive, Enabled: true})
	require.NoError(t, err)
	res, _ := batch(2)
	for _, r := range res {
		require.Nil(t, r.Err)
		require.Equal(t, int64(15), r.Breakdown.Total)
	}
}
