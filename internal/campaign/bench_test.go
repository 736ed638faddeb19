package campaign_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/campaign"
	"github.com/perkshq/perks/internal/dbtest"
)

// BenchmarkApplyTx is what campaigns cost one earn, in a long transaction:
// a partner without any active campaign (the one indexed read), two active
// campaigns with conditions (the read, the user's row, two cached
// programs), and the same two with a budget and a per-user cap (locks and
// two UPDATEs each). The long transaction flatters none of them but
// penalises the budgeted case: each UPDATE of the budget's row walks the
// versions the transaction left behind (committed earns do not), so read
// it as an upper bound.
func BenchmarkApplyTx(b *testing.B) {
	for _, name := range []string{"none", "two-conditions", "two-budgeted"} {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			tx := dbtest.Tx(b)
			svc := campaign.NewService()
			p := newPartnerTB(b, ctx, tx)
			u := newUserTB(b, ctx, tx, p, "SG", `{"segment":"vip","visits":12}`)
			put := func(code string, in campaign.Input) {
				in.Name, in.Stacking, in.Enabled = code, campaign.StackAdditive, true
				if name == "two-budgeted" {
					in.BudgetPoints, in.UserCapPoints = ptr(int64(1_000_000_000)), ptr(int64(1_000_000_000))
				}
				_, _, err := svc.PutTx(ctx, tx, p, code, in)
				require.NoError(b, err)
			}
			if name != "none" {
				put("double-weekend", campaign.Input{MultiplierHundredths: ptr(200), Actions: []string{"purchase"},
					Condition: "user.country == 'SG' && now.getDayOfWeek('Asia/Singapore') in [0, 1, 2, 3, 4, 5, 6]"})
				put("vip-basket", campaign.Input{BonusPoints: ptr(int64(50)),
					Condition: "user.attributes.segment == 'vip' && has(earn.amount) && earn.amount >= 10000"})
			}
			amount := int64(12_000)
			f := campaign.Facts{Action: "purchase", BasePoints: 120, Amount: &amount}
			b.ResetTimer()
			for range b.N {
				awards, err := svc.ApplyTx(ctx, tx, p, u, f)
				require.NoError(b, err)
				if name != "none" && len(awards) != 2 {
					b.Fatalf("awards: %+v", awards)
				}
			}
		})
	}
}
