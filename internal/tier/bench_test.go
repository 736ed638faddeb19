package tier_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/earning"
)

// BenchmarkEarnTiers weighs how qualifying points are kept, one earn at a
// time in one long transaction (as earning's BenchmarkEarnTx):
//
//   - none: the trigger disabled, no evaluation (the earn before tiers);
//   - explicit: the trigger disabled, the earn path upserting the month's
//     bucket itself (the alternative to the trigger: one more statement);
//   - trigger: the statement trigger, no evaluation;
//   - evaluate: the trigger and tier.EvaluateTx, the partner without tiers;
//   - tiers: the same with three tiers (steady state: no crossing).
//
// The variants run in turns of 50 earns within each iteration, so that the
// load of a shared machine weighs on all of them alike; each reports its
// own µs/earn metric (ns/op is a whole turn of all five).
func BenchmarkEarnTiers(b *testing.B) {
	tx := dbtest.Tx(b)
	names := []string{"none", "explicit", "trigger", "evaluate", "tiers"}
	bundles := make([]*bundle, len(names))
	for i, name := range names {
		bu := setupOn(b, tx)
		if name != "evaluate" && name != "tiers" {
			bu.earning.Tiers = nil
		}
		if name == "tiers" {
			bu.putTiers(b)
		}
		bu.user(b, "bench")
		bundles[i] = bu
	}
	const turn = 50
	spent := make([]time.Duration, len(names))
	p := int64(5)
	toggle := func(on bool) {
		verb := "DISABLE"
		if on {
			verb = "ENABLE"
		}
		_, err := tx.ExecContext(b.Context(), "ALTER TABLE ledger_entries "+verb+" TRIGGER ledger_entries_tier_points")
		require.NoError(b, err)
	}
	b.ResetTimer()
	for range b.N {
		for i, name := range names {
			bu := bundles[i]
			b.StopTimer()
			toggle(name != "none" && name != "explicit")
			b.StartTimer()
			start := time.Now()
			for range turn {
				_, err := bu.earning.EarnTx(bu.ctx, tx, bu.partner, earning.EarnParams{ExternalUserID: "bench", Code: "buy", Points: &p})
				require.NoError(b, err)
				if name == "explicit" {
					_, err := tx.ExecContext(bu.ctx, `INSERT INTO tier_points AS t (partner_id, user_id, month, points)
						SELECT ?, id, date_trunc('month', ?::timestamptz AT TIME ZONE 'UTC')::date, ? FROM users WHERE partner_id = ?
						ON CONFLICT (partner_id, user_id, month) DO UPDATE SET points = t.points + EXCLUDED.points`,
						bu.partner.ID, bu.now, p, bu.partner.ID)
					require.NoError(b, err)
				}
			}
			spent[i] += time.Since(start)
		}
	}
	b.StopTimer()
	toggle(true)
	for i, name := range names {
		b.ReportMetric(float64(spent[i].Microseconds())/float64(b.N*turn), "µs/earn-"+name)
	}
}
