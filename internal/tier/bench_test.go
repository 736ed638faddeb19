package tier_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/earning"
)

// BenchmarkEarnTiers is one earn in a long transaction (as earning's
// BenchmarkEarnTx), to weigh how qualifying points are kept:
//
//   - no-tracking: the trigger disabled, no evaluation (the earn before tiers);
//   - explicit: the trigger disabled, the earn path upserting the month's
//     bucket itself (the alternative to the trigger: one more statement);
//   - trigger: the statement trigger, no evaluation;
//   - trigger+evaluate: the trigger and tier.EvaluateTx, the partner
//     without tiers;
//   - trigger+evaluate+tiers: the same with three tiers (the user crosses
//     none after the first iterations: the steady state).
func BenchmarkEarnTiers(b *testing.B) {
	for _, name := range []string{"no-tracking", "explicit", "trigger", "trigger+evaluate", "trigger+evaluate+tiers"} {
		b.Run(name, func(bb *testing.B) {
			tx := dbtest.Tx(bb)
			bu := setupOn(bb, tx)
			if name == "no-tracking" || name == "explicit" {
				_, err := tx.ExecContext(bu.ctx, "ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_tier_points")
				require.NoError(bb, err)
			}
			if name != "trigger+evaluate" && name != "trigger+evaluate+tiers" {
				bu.earning.Tiers = nil
			}
			if name == "trigger+evaluate+tiers" {
				bu.putTiers(bb)
			}
			u := bu.user(bb, "bench")
			p := int64(5)
			bb.ResetTimer()
			for range bb.N {
				_, err := bu.earning.EarnTx(bu.ctx, tx, bu.partner, earning.EarnParams{ExternalUserID: "bench", Code: "buy", Points: &p})
				require.NoError(bb, err)
				if name == "explicit" {
					_, err := tx.ExecContext(bu.ctx, `INSERT INTO tier_points AS t (partner_id, user_id, month, points)
						VALUES (?, ?, date_trunc('month', ?::timestamptz AT TIME ZONE 'UTC')::date, ?)
						ON CONFLICT (partner_id, user_id, month) DO UPDATE SET points = t.points + EXCLUDED.points`,
						bu.partner.ID, u, bu.now, p)
					require.NoError(bb, err)
				}
			}
		})
	}
}
