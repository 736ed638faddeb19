package tier_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/earning"
	"github.com/perkshq/perks/internal/tier"
)

// TestMayChange: an earn skips the tier evaluation only when its points,
// with whatever the user gained concurrently, cannot reach the next
// threshold, no immediate downgrade is pending and no review is near.
func TestMayChange(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	next := func(n int64) *int64 { return &n }
	at := func(d time.Duration) *time.Time { x := now.Add(d); return &x }
	base := tier.EarnState{Threshold: 100, Next: next(1000), Downgrade: tier.DowngradeNever, Qualifying: 500, Lifetime: 700}
	for _, c := range []struct {
		name     string
		edit     func(st *tier.EarnState)
		lifetime int64
		want     bool
	}{
		{"below the next threshold", nil, 1199, false},
		{"reaches the next threshold", nil, 1200, true},
		{"concurrent earns count (the lifetime moved more than this earn)", nil, 1300, true},
		{"top tier", func(st *tier.EarnState) { st.Next = nil }, 9999, false},
		{"a reversal since the read", nil, 600, true},
		{"immediate, user at their tier", func(st *tier.EarnState) { st.Downgrade = tier.DowngradeImmediate }, 710, false},
		{"immediate, user below their tier", func(st *tier.EarnState) {
			st.Downgrade, st.Threshold = tier.DowngradeImmediate, 600
		}, 710, true},
		{"periodEnd, user below their tier keeps it", func(st *tier.EarnState) {
			st.Downgrade, st.Threshold = tier.DowngradePeriodEnd, 600
		}, 710, false},
		{"review far away", func(st *tier.EarnState) { st.ReviewAt = at(2 * tier.ReviewMargin) }, 710, false},
		{"review within the margin", func(st *tier.EarnState) { st.ReviewAt = at(tier.ReviewMargin / 2) }, 710, true},
		{"review overdue", func(st *tier.EarnState) { st.ReviewAt = at(-time.Hour) }, 710, true},
	} {
		st := base
		if c.edit != nil {
			c.edit(&st)
		}
		require.Equal(t, c.want, st.MayChange(c.lifetime, now), c.name)
	}
	require.True(t, (*tier.EarnState)(nil).MayChange(0, now), "an earn that read no state evaluates")
}

// evaluations counts tier_evaluate calls in tx so far (function
// statistics of the current transaction; track_functions is set in tx).
func evaluations(t *testing.T, b *bundle) int64 {
	t.Helper()
	var n int64
	require.NoError(t, b.tx.NewRaw(`SELECT coalesce((SELECT calls FROM pg_stat_xact_user_functions WHERE funcname = 'tier_evaluate'), 0)`).Scan(b.ctx, &n))
	return n
}

// TestEarnSkipsEvaluation: wired as in the app (the tier step reads the
// user's tier with the rule query), an earn evaluates the user's tier only
// when it may move them: an earn that stays below the next threshold runs
// no tier_evaluate, the one that crosses it does and upgrades the user in
// its transaction, and a review due soon makes every earn evaluate.
func TestEarnSkipsEvaluation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.earning.Tier = earning.TierModifier()
	_, err := b.tx.ExecContext(b.ctx, `SET LOCAL track_functions = 'pl'`)
	require.NoError(t, err)
	b.putTiers(t)
	b.policy(t, tier.BasisCalendarYear, tier.DowngradePeriodEnd, 0, 0)
	u := b.user(t, "alice")

	steps := []struct {
		points int64
		evals  int64
		code   string
	}{
		{10, 0, "base"},
		{89, 0, "base"},
		{1, 1, "silver"},   // 100: silver
		{500, 1, "silver"}, // 600: below gold, but the row's review is at year end, far away
		{400, 2, "gold"},   // 1000
		{5000, 2, "gold"},  // top tier: nothing above
	}
	for i, s := range steps {
		b.earn(t, "alice", s.points)
		require.Equal(t, s.evals, evaluations(t, b), "step %d", i)
		require.Equal(t, s.code, b.code(t, u), "step %d", i)
	}
	require.Equal(t, []string{"base>silver", "silver>gold"}, b.changes(t, u))

	// Within ReviewMargin of the row's review (year end), every earn
	// evaluates: a review could be running.
	b.now = time.Date(2026, 12, 31, 23, 30, 0, 0, time.UTC)
	b.earn(t, "alice", 1)
	require.Equal(t, int64(3), evaluations(t, b))
}

// TestConcurrentEarnsCrossTogether: two earns of one user, each below the
// next threshold alone, both read the user before either commits; the
// second waits for the first's balance lock. Together they cross: the
// second must see what the first added (the lifetime it gained under the
// lock) and upgrade the user, although its own read said "no crossing".
func TestConcurrentEarnsCrossTogether(t *testing.T) {
	t.Parallel()
	db := dbtest.NewDB(t)
	ctx := context.Background()
	setupTx := mustTx(t, db.Bun)
	b := setupOn(t, setupTx)
	b.earning.Tier = earning.TierModifier()
	b.putTiers(t)
	u := b.user(t, "alice")
	require.NoError(t, setupTx.Commit())

	earn := func(tx bun.Tx) error {
		p := int64(60)
		_, err := b.earning.EarnTx(ctx, tx, b.partner, earning.EarnParams{ExternalUserID: "alice", Code: "buy", Points: &p})
		return err
	}
	first := mustTx(t, db.Bun)
	require.NoError(t, earn(first))
	// The second earn's rule query reads alice at 0 points (the first is
	// not committed); it then waits for her balance row.
	second := make(chan error, 1)
	go func() {
		second <- db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error { return earn(tx) })
	}()
	require.Eventually(t, func() bool {
		var n int
		err := db.Bun.NewRaw(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO balances%'`).Scan(ctx, &n)
		return err == nil && n > 0
	}, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, first.Commit())
	require.NoError(t, <-second)

	check := mustTx(t, db.Bun)
	rb := &bundle{ctx: ctx, tx: check, tiers: b.tiers, partner: b.partner}
	require.Equal(t, int64(120), rb.qualifying(t, u))
	require.Equal(t, "silver", rb.code(t, u), "the second earn crossed silver's threshold of 100 with the first's points")
}

// TestEarnStateAgreesWithCurrentAndQualifying: the earn's prefetched tier
// state (EarnStateSQL) restates currentSQL's tier and qualifyingSQL's
// window in one expression; it must give what CurrentTx and QualifyingTx
// give, for a user without a row, one with a row, and across a rolling
// window that drops old months.
func TestEarnStateAgreesWithCurrentAndQualifying(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.putTiers(t)
	b.policy(t, tier.BasisRolling12, tier.DowngradePeriodEnd, 0, 0)
	fresh := b.user(t, "fresh")
	old := b.user(t, "old")
	b.earn(t, "old", 700)
	b.now = b.now.AddDate(0, 7, 0)
	veteran := b.user(t, "veteran")
	b.earn(t, "veteran", 400)
	b.earn(t, "old", 350) // gold, with 700 of last year's points

	state := func(u uuid.UUID) tier.EarnState {
		var raw string
		require.NoError(t, b.tx.NewRaw(`SELECT `+tier.EarnStateSQL+`::text
			FROM (SELECT ?::uuid AS partner_id) r LEFT JOIN program_policies pp ON pp.partner_id = r.partner_id
			CROSS JOIN (SELECT ?::uuid AS user_id, ?::timestamptz AS now) earn`, b.partner.ID, u, b.now).Scan(b.ctx, &raw))
		var st tier.EarnState
		require.NoError(t, json.Unmarshal([]byte(raw), &st))
		return st
	}
	for _, when := range []time.Time{b.now, b.now.AddDate(0, 6, 0)} { // the second drops the 700
		b.now = when
		for _, u := range []uuid.UUID{fresh, veteran, old} {
			st := state(u)
			cur, ok, err := tier.CurrentTx(b.ctx, b.tx, b.partner.ID, u)
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, cur, st.Current)
			require.Equal(t, b.qualifying(t, u), st.Qualifying)
		}
	}
	require.Equal(t, "gold", state(old).Code)
}
