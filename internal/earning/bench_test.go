package earning_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

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
// policy costs an earn.
func BenchmarkEarnTx(b *testing.B) {
	for _, name := range []string{"no-policy", "policy", "policy-read"} {
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
			_, _, err = svc.PutRule(ctx, tx, p.ID, "buy", earning.RuleInput{Name: "buy", Points: 5, Enabled: true})
			require.NoError(b, err)
			_, err = users.UpsertTx(ctx, tx, p.ID, "bench", user.Profile{})
			require.NoError(b, err)
			b.ResetTimer()
			for range b.N {
				if name == "policy-read" {
					_, err = (&program.Service{}).Get(ctx, tx, p.ID)
				} else {
					_, err = svc.EarnTx(ctx, tx, p, earning.EarnParams{ExternalUserID: "bench", Code: "buy"})
				}
				require.NoError(b, err)
			}
		})
	}
}
