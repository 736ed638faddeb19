package earning_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/earning"
	"github.com/perkshq/perks/internal/event"
	"github.com/perkshq/perks/internal/keyring"
	"github.com/perkshq/perks/internal/ledger"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/program"
	"github.com/perkshq/perks/internal/user"
)

// BenchmarkEarnTx is one earn in a long transaction, without a policy and
// with a rolling one (pending lots), and the policy read alone: what the
// policy costs an earn. per-amount earns with an amount on a per-amount
// rule; modifiers adds a tier and two campaign steps (in-memory modifiers:
// the pipeline's own cost, not tiers' or campaigns' queries).
func BenchmarkEarnTx(b *testing.B) {
	for _, name := range []string{"no-policy", "policy", "policy-read", "per-amount", "modifiers"} {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			tx := dbtest.Tx(b)
			keys, err := keyring.New(make([]byte, keyring.KeySize))
			require.NoError(b, err)
			ev := event.NewRecorder()
			users := user.NewService(keys, ev)
			svc := &earning.Service{Ledger: &ledger.Service{Events: ev, Now: time.Now}, Users: users, Now: time.Now}
			p, err := partner.NewService(keys).Upsert(ctx, tx, partner.CreateParams{Slug: "b-" + uuid.NewString()[:8], Name: "B"})
			require.NoError(b, err)
			if name != "no-policy" {
				_, err := (&program.Service{}).Put(ctx, tx, p.ID, program.Input{ExpiryMode: program.ExpiryRolling, ExpiryDays: ptr(30),
					PendingDays: 7, NegativeBalance: program.NegativeForbid, ExpiryWarningDays: 30})
				require.NoError(b, err)
			}
			rule := earning.RuleInput{Name: "buy", Points: 5, Enabled: true}
			ep := earning.EarnParams{ExternalUserID: "bench", Code: "buy"}
			if name == "per-amount" || name == "modifiers" {
				rule.PointsPerAmount, ep.Amount = ptr(int64(100)), ptr(int64(1999))
			}
			if name == "modifiers" {
				m, err := earning.ParseMultiplier("1.25")
				require.NoError(b, err)
				svc.Tier = earning.ModifierFunc(func(_ context.Context, _ bun.IDB, e *earning.Earn) ([]earning.Step, error) {
					return []earning.Step{earning.MultiplierStep(earning.StepTier, "gold", "Gold", e.Base, m)}, nil
				})
				svc.Campaigns = earning.ModifierFunc(func(_ context.Context, _ bun.IDB, e *earning.Earn) ([]earning.Step, error) {
					return []earning.Step{
						earning.MultiplierStep(earning.StepCampaign, "weekend", "Double weekend", e.Points, 2*earning.MultiplierOne),
						earning.BonusStep(earning.StepCampaign, "welcome", "Welcome", 10),
					}, nil
				})
			}
			_, _, err = svc.PutRule(ctx, tx, p.ID, "buy", rule)
			require.NoError(b, err)
			_, err = users.UpsertTx(ctx, tx, p.ID, "bench", user.Profile{})
			require.NoError(b, err)
			b.ResetTimer()
			for range b.N {
				if name == "policy-read" {
					_, err = (&program.Service{}).Get(ctx, tx, p.ID)
				} else {
					_, err = svc.EarnTx(ctx, tx, p, ep)
				}
				require.NoError(b, err)
			}
		})
	}
}
