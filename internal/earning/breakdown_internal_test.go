package earning

import (
	"context"
	"testing"

	"github.com/uptrace/bun"
)

// BenchmarkBreakdown is the pipeline's own CPU cost per earn, without the
// database: base of a per-amount rule, a tier and two campaign steps, the
// cap check and the JSON the entry stores.
func BenchmarkBreakdown(b *testing.B) {
	per := int64(100)
	amount := int64(1999)
	r := &Rule{Code: "buy", Name: "Buy", Points: 1, PointsPerAmount: &per}
	s := &Service{
		Tier: ModifierFunc(func(_ context.Context, _ bun.IDB, e *Earn) ([]Step, error) {
			return []Step{MultiplierStep(StepTier, "gold", "Gold", e.Base, 12500)}, nil
		}),
		Campaigns: ModifierFunc(func(_ context.Context, _ bun.IDB, e *Earn) ([]Step, error) {
			return []Step{MultiplierStep(StepCampaign, "weekend", "Double weekend", e.Points, 20000), BonusStep(StepCampaign, "welcome", "Welcome", 10)}, nil
		}),
	}
	plain := &Service{}
	ctx := context.Background()
	for _, c := range []struct {
		name string
		s    *Service
	}{{"none", plain}, {"tier-and-two-campaigns", s}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				ep := &EarnParams{Code: "buy", Amount: &amount}
				bd, err := c.s.breakdownTx(ctx, nil, &Earn{Rule: r, Params: ep}, r.base(ep, nil))
				if err != nil {
					b.Fatal(err)
				}
				if _, err := bd.encode(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
