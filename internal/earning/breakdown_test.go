package earning_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/earning"
	"github.com/perkshq/perks/internal/ledger"
	"github.com/perkshq/perks/internal/program"
)

func TestMultiplier(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want earning.Multiplier
		str  string
		bad  bool
	}{
		{in: "1", want: 10000, str: "1"},
		{in: "1.25", want: 12500, str: "1.25"},
		{in: "2.0", want: 20000, str: "2"},
		{in: "0.5", want: 5000, str: "0.5"},
		{in: "1.0001", want: 10001, str: "1.0001"},
		{in: "100", want: 1000000, str: "100"},
		{in: "100.0001", bad: true},
		{in: "1.00001", bad: true},
		{in: "-1", bad: true},
		{in: "1e2", bad: true},
		{in: ".5", bad: true},
		{in: "1.", bad: true},
		{in: "", bad: true},
	} {
		m, err := earning.ParseMultiplier(tt.in)
		if tt.bad {
			require.Error(t, err, tt.in)
			continue
		}
		require.NoError(t, err, tt.in)
		require.Equal(t, tt.want, m, tt.in)
		require.Equal(t, tt.str, m.String(), tt.in)
		b, err := json.Marshal(m)
		require.NoError(t, err)
		var back earning.Multiplier
		require.NoError(t, json.Unmarshal(b, &back))
		require.Equal(t, m, back)
	}
}

// TestRounding: every computation rounds down, once, on the exact product.
func TestRounding(t *testing.T) {
	t.Parallel()
	m := func(s string) earning.Multiplier {
		v, err := earning.ParseMultiplier(s)
		require.NoError(t, err)
		return v
	}
	for _, tt := range []struct {
		name string
		got  int64
		want int64
	}{
		{"1.25 on 7 (8.75)", earning.Multiply(7, m("1.25")), 8},
		{"1.25 on 8", earning.Multiply(8, m("1.25")), 10},
		{"1.5 on 1 (1.5)", earning.Multiply(1, m("1.5")), 1},
		{"1.5 on 3 (4.5)", earning.Multiply(3, m("1.5")), 4},
		{"0.5 on 3 (1.5)", earning.Multiply(3, m("0.5")), 1},
		{"2 on 0", earning.Multiply(0, m("2")), 0},
		{"1.0001 on 9999 (9999.9999)", earning.Multiply(9999, m("1.0001")), 9999},
		{"1.0001 on 10000", earning.Multiply(10000, m("1.0001")), 10001},
		{"100 on MaxPoints, exact", earning.Multiply(ledger.MaxPoints, m("100")), 100 * ledger.MaxPoints},
		{"1 per 1.00 on 9.99", earning.PerAmountPoints(999, earning.Rate{Points: 1, PerAmount: 100}), 9},
		{"1 per 1.00 on 10.00", earning.PerAmountPoints(1000, earning.Rate{Points: 1, PerAmount: 100}), 10},
		{"3 per 2.00 on 19.99 (29.985)", earning.PerAmountPoints(1999, earning.Rate{Points: 3, PerAmount: 200}), 29},
		{"1 per 1.00 on 0.99", earning.PerAmountPoints(99, earning.Rate{Points: 1, PerAmount: 100}), 0},
		{"amount 0", earning.PerAmountPoints(0, earning.Rate{Points: 5, PerAmount: 1}), 0},
		{"no overflow: max amount at 7 per 3", earning.PerAmountPoints(earning.MaxAmount/1000, earning.Rate{Points: 7, PerAmount: 3}), earning.MaxAmount / 1000 * 7 / 3},
		{"saturates far above every cap", earning.PerAmountPoints(earning.MaxAmount, earning.Rate{Points: ledger.MaxPoints, PerAmount: 1}), 1 << 53},
	} {
		require.Equal(t, tt.want, tt.got, tt.name)
	}
	st := earning.MultiplierStep(earning.StepTier, "gold", "Gold", 7, m("1.25"))
	require.Equal(t, int64(1), st.Points, "a step adds the rounded product minus what it applied to")
}

// TestEarnAmount: per-amount rules compute floor(amount × rate); the
// breakdown is answered and stored; the refusals change nothing.
func TestEarnAmount(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := (&program.Service{}).Put(b.ctx, b.tx, b.partner.ID, program.Input{ExpiryMode: "none", NegativeBalance: "forbid", Currency: ptr("EUR")})
	require.NoError(t, err)
	b.rule(t, "spend", earning.RuleInput{Points: 1, PointsPerAmount: ptr(int64(100))})
	b.rule(t, "spend-capped", earning.RuleInput{Points: 3, PointsPerAmount: ptr(int64(200)), MaxPoints: ptr(int64(50))})
	b.rule(t, "visit", earning.RuleInput{Points: 5})
	b.rule(t, "rich", earning.RuleInput{Points: 1000, PointsPerAmount: ptr(int64(1))})
	b.user(t, "alice")

	for _, tt := range []struct {
		name   string
		code   string
		amount *int64
		points *int64
		total  int64
		method string
		steps  []earning.Step
		err    apperr.Code
		field  string
	}{
		{name: "9.99 at 1 per 1.00", code: "spend", amount: ptr(int64(999)), total: 9, method: earning.BasePerAmount},
		{name: "19.99 at 3 per 2.00", code: "spend-capped", amount: ptr(int64(1999)), total: 29, method: earning.BasePerAmount},
		{name: "maxPoints caps the total", code: "spend-capped", amount: ptr(int64(10000)), total: 50, method: earning.BasePerAmount,
			steps: []earning.Step{{Kind: earning.StepCap, Name: "maxPoints", Points: -100}}},
		{name: "ledger MaxPoints caps the total", code: "rich", amount: ptr(earning.MaxAmount), total: ledger.MaxPoints, method: earning.BasePerAmount,
			steps: []earning.Step{{Kind: earning.StepCap, Name: "ledger.MaxPoints", Points: ledger.MaxPoints - earning.MaxAmount*1000}}},
		{name: "amount on a fixed rule is kept, points unchanged", code: "visit", amount: ptr(int64(12345)), total: 5, method: earning.BaseFixed},
		{name: "no amount on a fixed rule", code: "visit", total: 5, method: earning.BaseFixed},
		{name: "per-amount rule without amount", code: "spend", err: apperr.CodeAmountRequired, field: "amount"},
		{name: "per-amount rule with points", code: "spend", amount: ptr(int64(100)), points: ptr(int64(3)), err: apperr.CodeVariablePointsDenied, field: "points"},
		{name: "too small an amount", code: "spend", amount: ptr(int64(99)), err: apperr.CodeNoPointsEarned},
		{name: "amount zero", code: "spend", amount: ptr(int64(0)), err: apperr.CodeNoPointsEarned},
		{name: "negative amount", code: "spend", amount: ptr(int64(-1)), err: apperr.CodeInvalidField, field: "amount"},
		{name: "amount above the bound", code: "spend", amount: ptr(earning.MaxAmount + 1), err: apperr.CodeInvalidField, field: "amount"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var e *ledger.Entry
			before := snapshotEntries(t, b)
			err := b.inSavepoint(t, func(tx bun.Tx) error {
				var err error
				e, err = b.earning.EarnTx(b.ctx, tx, b.partner, earning.EarnParams{ExternalUserID: "alice", Code: tt.code, Amount: tt.amount, Points: tt.points})
				if err == nil {
					// Read back what the statement stored, in the savepoint.
					var stored string
					require.NoError(t, tx.NewRaw("SELECT breakdown::text FROM ledger_entries WHERE id = ?", e.ID).Scan(b.ctx, &stored))
					require.JSONEq(t, string(e.Breakdown), stored)
				}
				return err
			})
			if tt.err != "" {
				requireCode(t, err, tt.err, tt.field)
				require.Equal(t, before, snapshotEntries(t, b))
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.total, e.Points)
			var bd earning.Breakdown
			require.NoError(t, json.Unmarshal(e.Breakdown, &bd))
			require.Equal(t, tt.method, bd.Base.Method)
			require.Equal(t, tt.total, bd.Total)
			if tt.steps == nil {
				tt.steps = []earning.Step{}
			}
			require.Equal(t, tt.steps, bd.Steps)
			sum := bd.Base.Points
			for _, s := range bd.Steps {
				sum += s.Points
			}
			require.Equal(t, bd.Total, sum, "base plus steps is the total")
			require.Equal(t, tt.amount, bd.Base.Amount)
			if tt.amount != nil {
				require.Equal(t, "EUR", *bd.Base.Currency)
			}
			if tt.method == earning.BasePerAmount {
				require.NotNil(t, bd.Base.Rate)
			}
		})
	}
}

func snapshotEntries(t *testing.T, b *bundle) int {
	t.Helper()
	n, err := b.tx.NewSelect().Table("ledger_entries").Where("partner_id = ?", b.partner.ID).Count(b.ctx)
	require.NoError(t, err)
	return int(n)
}

// TestModifiers: the tier runs on the rule's points, the campaigns on top,
// in that order; caps apply to the total; no modifier, no step.
func TestModifiers(t *testing.T) {
	t.Parallel()
	gold, err := earning.ParseMultiplier("1.25")
	require.NoError(t, err)
	double, err := earning.ParseMultiplier("2")
	require.NoError(t, err)
	var seen []string
	tier := earning.ModifierFunc(func(_ context.Context, _ bun.IDB, e *earning.Earn) ([]earning.Step, error) {
		seen = append(seen, "tier")
		require.Equal(t, e.Base, e.Points, "the tier sees the rule's points")
		return []earning.Step{earning.MultiplierStep(earning.StepTier, "gold", "Gold", e.Base, gold)}, nil
	})
	campaigns := earning.ModifierFunc(func(_ context.Context, _ bun.IDB, e *earning.Earn) ([]earning.Step, error) {
		seen = append(seen, "campaigns")
		return []earning.Step{
			earning.MultiplierStep(earning.StepCampaign, "weekend", "Double weekend", e.Points, double),
			earning.BonusStep(earning.StepCampaign, "welcome", "Welcome bonus", 3),
		}, nil
	})

	for _, tt := range []struct {
		name      string
		tier      earning.Modifier
		campaigns earning.Modifier
		rule      earning.RuleInput
		amount    int64
		steps     []int64 // points of each step
		total     int64
	}{
		{name: "none by default", rule: earning.RuleInput{Points: 7}, steps: []int64{}, total: 7},
		{name: "tier 1.25 on odd points", tier: tier, rule: earning.RuleInput{Points: 7}, steps: []int64{1}, total: 8},
		{name: "tier then campaigns", tier: tier, campaigns: campaigns, rule: earning.RuleInput{Points: 7}, steps: []int64{1, 8, 3}, total: 19},
		{name: "campaigns alone", campaigns: campaigns, rule: earning.RuleInput{Points: 7}, steps: []int64{7, 3}, total: 17},
		{name: "per amount with both", tier: tier, campaigns: campaigns, rule: earning.RuleInput{Points: 1, PointsPerAmount: ptr(int64(100))},
			amount: 1099, steps: []int64{2, 12, 3}, total: 27}, // 10 → 12 → 24 → 27
		{name: "cap on the total", tier: tier, campaigns: campaigns, rule: earning.RuleInput{Points: 1, PointsPerAmount: ptr(int64(100)), MaxPoints: ptr(int64(20))},
			amount: 1099, steps: []int64{2, 12, 3, -7}, total: 20},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := setup(t)
			b.earning.Tier, b.earning.Campaigns = tt.tier, tt.campaigns
			seen = nil
			b.rule(t, "r", tt.rule)
			b.user(t, "alice")
			ep := earning.EarnParams{ExternalUserID: "alice", Code: "r"}
			if tt.amount > 0 {
				ep.Amount = &tt.amount
			}
			e, err := b.earn(ep)
			require.NoError(t, err)
			require.Equal(t, tt.total, e.Points)
			var bd earning.Breakdown
			require.NoError(t, json.Unmarshal(e.Breakdown, &bd))
			got := []int64{}
			for _, s := range bd.Steps {
				got = append(got, s.Points)
			}
			require.Equal(t, tt.steps, got)
			require.Equal(t, tt.total, bd.Total)
			if tt.tier != nil && tt.campaigns != nil {
				require.Equal(t, []string{"tier", "campaigns"}, seen)
				require.Equal(t, "gold", bd.Steps[0].Code)
				require.Equal(t, "1.25", bd.Steps[0].Multiplier.String())
			}
		})
	}
}

// TestEarnManyAmounts: batch items carry amounts and breakdowns like
// single earns; with modifiers, an item refused after them leaves nothing
// of their writes.
func TestEarnManyAmounts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.rule(t, "spend", earning.RuleInput{Points: 1, PointsPerAmount: ptr(int64(100))})
	b.rule(t, "visit", earning.RuleInput{Points: 5, LifetimeCap: ptr(1)})
	alice := b.user(t, "alice")
	_, err := b.tx.ExecContext(b.ctx, "CREATE TEMP TABLE modifier_writes (amount bigint)")
	require.NoError(t, err)
	// A campaign that writes (as a budget would) and gives a bonus, except
	// on an amount of 1, where it takes everything (the item then earns no
	// points and is refused after the modifier ran).
	b.earning.Campaigns = earning.ModifierFunc(func(ctx context.Context, tx bun.IDB, e *earning.Earn) ([]earning.Step, error) {
		if _, err := tx.ExecContext(ctx, "INSERT INTO modifier_writes VALUES (?)", e.Params.Amount); err != nil {
			return nil, err
		}
		if e.Params.Amount != nil && *e.Params.Amount == 1 {
			return []earning.Step{earning.BonusStep(earning.StepCampaign, "zero", "Zero", -e.Points)}, nil
		}
		return []earning.Step{earning.BonusStep(earning.StepCampaign, "bonus", "Bonus", 2)}, nil
	})
	res, err := b.earning.EarnManyTx(b.ctx, b.tx, b.partner, []earning.ManyItem{
		{EarnParams: earning.EarnParams{UserID: alice, Code: "spend", Amount: ptr(int64(1250))}},
		{EarnParams: earning.EarnParams{UserID: alice, Code: "spend"}},
		{EarnParams: earning.EarnParams{UserID: alice, Code: "visit", Amount: ptr(int64(1))}},
		{EarnParams: earning.EarnParams{UserID: alice, Code: "visit", Amount: ptr(int64(300))}},
		{EarnParams: earning.EarnParams{UserID: alice, Code: "spend", Amount: ptr(int64(99))}},
	})
	require.NoError(t, err)
	require.Nil(t, res[0].Err)
	require.Equal(t, int64(14), res[0].Breakdown.Total) // 12 + 2
	require.Equal(t, apperr.CodeAmountRequired, res[1].Err.Code)
	require.Equal(t, apperr.CodeNoPointsEarned, res[2].Err.Code)
	require.Nil(t, res[3].Err, "the refused item before did not use the lifetime cap: %v", res[3].Err)
	require.Equal(t, int64(7), res[3].Breakdown.Total)
	require.Nil(t, res[4].Err, "99 cents earn 0 + the bonus 2")
	require.Equal(t, int64(2), res[4].Breakdown.Total)

	var stored []struct {
		Points    int64  `bun:"points"`
		Breakdown string `bun:"breakdown"`
	}
	require.NoError(t, b.tx.NewRaw("SELECT points, breakdown::text AS breakdown FROM ledger_entries WHERE partner_id = ? ORDER BY id", b.partner.ID).Scan(b.ctx, &stored))
	require.Len(t, stored, 3)
	for i, want := range []int64{14, 7, 2} {
		var bd earning.Breakdown
		require.NoError(t, json.Unmarshal([]byte(stored[i].Breakdown), &bd))
		require.Equal(t, want, stored[i].Points)
		require.Equal(t, want, bd.Total)
	}
	var writes []int64
	require.NoError(t, b.tx.NewRaw("SELECT amount FROM modifier_writes ORDER BY amount").Scan(b.ctx, &writes))
	require.Equal(t, []int64{99, 300, 1250}, writes, "the refused item's modifier write was undone")
}

// TestPutRulePerAmount: pointsPerAmount's own rules.
func TestPutRulePerAmount(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, tt := range []struct {
		name  string
		in    earning.RuleInput
		field string
	}{
		{"per amount", earning.RuleInput{Name: "n", Points: 1, PointsPerAmount: ptr(int64(100))}, ""},
		{"per amount with maxPoints", earning.RuleInput{Name: "n", Points: 1, PointsPerAmount: ptr(int64(100)), MaxPoints: ptr(int64(500))}, ""},
		{"per amount and variable", earning.RuleInput{Name: "n", Points: 1, PointsPerAmount: ptr(int64(100)), VariablePoints: true}, "pointsPerAmount"},
		{"zero per amount", earning.RuleInput{Name: "n", Points: 1, PointsPerAmount: ptr(int64(0))}, "pointsPerAmount"},
		{"per amount too large", earning.RuleInput{Name: "n", Points: 1, PointsPerAmount: ptr(earning.MaxPointsPerAmount + 1)}, "pointsPerAmount"},
		{"maxPoints on a fixed rule", earning.RuleInput{Name: "n", Points: 1, MaxPoints: ptr(int64(5))}, "maxPoints"},
	} {
		r, _, err := b.earning.PutRule(b.ctx, b.tx, b.partner.ID, "r", tt.in)
		if tt.field != "" {
			requireCode(t, err, apperr.CodeInvalidField, tt.field)
			continue
		}
		require.NoError(t, err, tt.name)
		require.Equal(t, *tt.in.PointsPerAmount, *r.PointsPerAmount)
		got, err := b.earning.Rule(b.ctx, b.tx, b.partner.ID, "r")
		require.NoError(t, err)
		require.Equal(t, *tt.in.PointsPerAmount, *got.PointsPerAmount)
	}
}

// TestDryRun: a dry run answers the earn's breakdown and changes nothing:
// no entry, balance, lot, counter (a lifetime cap of 1 is not consumed),
// event, user, nor a modifier's write (a campaign budget).
func TestDryRun(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.rule(t, "spend", earning.RuleInput{Points: 1, PointsPerAmount: ptr(int64(100)), LifetimeCap: ptr(1)})
	b.user(t, "alice")
	_, err := b.tx.ExecContext(b.ctx, "CREATE TEMP TABLE budget (spent bigint NOT NULL)")
	require.NoError(t, err)
	_, err = b.tx.ExecContext(b.ctx, "INSERT INTO budget VALUES (0)")
	require.NoError(t, err)
	b.earning.Campaigns = earning.ModifierFunc(func(ctx context.Context, tx bun.IDB, e *earning.Earn) ([]earning.Step, error) {
		if _, err := tx.ExecContext(ctx, "UPDATE budget SET spent = spent + 5"); err != nil {
			return nil, err
		}
		return []earning.Step{earning.BonusStep(earning.StepCampaign, "b", "Bonus", 5)}, nil
	})
	budget := func() int64 {
		var n int64
		require.NoError(t, b.tx.NewRaw("SELECT spent FROM budget").Scan(b.ctx, &n))
		return n
	}
	before := dbtest.Snapshot(t, b.tx)
	for range 2 {
		e, err := b.earning.DryRun(b.ctx, b.tx, b.partner, earning.EarnParams{ExternalUserID: "alice", Code: "spend", Amount: ptr(int64(1250)), Reference: ptr("order-1")})
		require.NoError(t, err, "the cap of 1 is not consumed by a dry run")
		require.Equal(t, int64(17), e.Points)
		require.Equal(t, int64(17), e.BalanceAfter, "the balance the earn would leave")
		require.Zero(t, e.ID)
		var bd earning.Breakdown
		require.NoError(t, json.Unmarshal(e.Breakdown, &bd))
		require.Equal(t, int64(12), bd.Base.Points)
		require.Len(t, bd.Steps, 1)
	}
	_, err = b.earning.DryRun(b.ctx, b.tx, b.partner, earning.EarnParams{ExternalUserID: "bob", CreateUser: true, Code: "spend", Amount: ptr(int64(100))})
	require.NoError(t, err)
	_, err = b.earning.DryRun(b.ctx, b.tx, b.partner, earning.EarnParams{ExternalUserID: "alice", Code: "spend"})
	requireCode(t, err, apperr.CodeAmountRequired, "amount")
	require.Equal(t, before, dbtest.Snapshot(t, b.tx), "nothing changed")
	require.Zero(t, budget())

	// The real earn still can, once.
	e, err := b.earn(earning.EarnParams{ExternalUserID: "alice", Code: "spend", Amount: ptr(int64(1250))})
	require.NoError(t, err)
	require.Equal(t, int64(17), e.Points)
	require.Equal(t, int64(5), budget())
	_, err = b.earning.DryRun(b.ctx, b.tx, b.partner, earning.EarnParams{ExternalUserID: "alice", Code: "spend", Amount: ptr(int64(1250))})
	requireCode(t, err, apperr.CodeLifetimeCapReached, "")
}
