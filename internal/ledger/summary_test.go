package ledger_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/event"
	"github.com/perkshq/perks/internal/keyring"
	"github.com/perkshq/perks/internal/ledger"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/user"
)

func TestSummaryOf(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	day := func(d int, h int) *time.Time {
		x := time.Date(2026, 1, d, h, 0, 0, 0, time.UTC)
		return &x
	}
	tests := []struct {
		name     string
		timezone string
		setup    func(t *testing.T, b *txBundle)
		want     ledger.Summary
	}{
		{
			name:  "no points",
			setup: func(t *testing.T, b *txBundle) {},
			want:  ledger.Summary{Expiring: []ledger.Expiring{}},
		},
		{
			name: "pending, never expiring, two expiry days, drained and expired lots",
			setup: func(t *testing.T, b *txBundle) {
				b.apply(t, ledger.Change{Kind: ledger.KindEarn, Points: 30, Reason: "never"})
				b.apply(t, ledger.Change{Kind: ledger.KindEarn, Points: 100, Reason: "10th", ExpiresAt: day(10, 9)})
				b.apply(t, ledger.Change{Kind: ledger.KindEarn, Points: 20, Reason: "10th later", ExpiresAt: day(10, 18)})
				b.apply(t, ledger.Change{Kind: ledger.KindEarn, Points: 50, Reason: "20th", ExpiresAt: day(20, 12)})
				b.apply(t, ledger.Change{Kind: ledger.KindEarn, Points: 40, Reason: "drained", ExpiresAt: day(5, 12)})
				b.apply(t, ledger.Change{Kind: ledger.KindEarn, Points: 7, Reason: "expires first", ExpiresAt: day(2, 12)})
				b.apply(t, ledger.Change{Kind: ledger.KindEarn, Points: 500, Reason: "held", AvailableAt: *day(3, 12), ExpiresAt: day(4, 12)})
				// Soonest expiry first: the burn takes the 2nd's 7, then
				// drains the 5th's 40.
				b.apply(t, ledger.Change{Kind: ledger.KindBurn, Points: 47, Reason: "claim"})
			},
			want: ledger.Summary{Balance: 200, PendingPoints: 500, LifetimePoints: 247, Expiring: []ledger.Expiring{
				{Points: 120, ExpiresAt: *day(10, 9)},
				{Points: 50, ExpiresAt: *day(20, 12)},
			}},
		},
		{
			name: "expired remainder is gone",
			setup: func(t *testing.T, b *txBundle) {
				b.apply(t, ledger.Change{Kind: ledger.KindEarn, Points: 100, Reason: "a", ExpiresAt: day(2, 12)})
				b.apply(t, ledger.Change{Kind: ledger.KindBurn, Points: 30, Reason: "claim"})
				b.now = *day(3, 0)
				n, err := ledger.ExpireDueTx(ctx, b.tx, nil, b.now, 10)
				require.NoError(t, err)
				require.Equal(t, 1, n)
			},
			want: ledger.Summary{Balance: 0, LifetimePoints: 100, Expiring: []ledger.Expiring{}},
		},
		{
			name: "at most three days, soonest first",
			setup: func(t *testing.T, b *txBundle) {
				for d := 9; d >= 5; d-- {
					b.apply(t, ledger.Change{Kind: ledger.KindEarn, Points: int64(d), Reason: "x", ExpiresAt: day(d, 12)})
				}
			},
			want: ledger.Summary{Balance: 35, LifetimePoints: 35, Expiring: []ledger.Expiring{
				{Points: 5, ExpiresAt: *day(5, 12)}, {Points: 6, ExpiresAt: *day(6, 12)}, {Points: 7, ExpiresAt: *day(7, 12)},
			}},
		},
		{
			// End of 31 Jan in Singapore is 1 Feb 00:00 local = 31 Jan
			// 16:00 UTC; a lot expiring 31 Jan 10:00 local (02:00 UTC) is
			// the same local day, one at 1 Feb 08:00 local (00:00 UTC) is not.
			name:     "days are the partner's",
			timezone: "Asia/Singapore",
			setup: func(t *testing.T, b *txBundle) {
				endOfDay := time.Date(2026, 1, 31, 16, 0, 0, 0, time.UTC)
				morning := time.Date(2026, 1, 31, 2, 0, 0, 0, time.UTC)
				next := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
				b.apply(t, ledger.Change{Kind: ledger.KindEarn, Points: 10, Reason: "x", ExpiresAt: &endOfDay})
				b.apply(t, ledger.Change{Kind: ledger.KindEarn, Points: 20, Reason: "x", ExpiresAt: &morning})
				b.apply(t, ledger.Change{Kind: ledger.KindEarn, Points: 40, Reason: "x", ExpiresAt: &next})
			},
			want: ledger.Summary{Balance: 70, LifetimePoints: 70, Expiring: []ledger.Expiring{
				{Points: 30, ExpiresAt: time.Date(2026, 1, 31, 2, 0, 0, 0, time.UTC)},
				{Points: 40, ExpiresAt: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setupTx(t)
			if tt.timezone != "" {
				_, err := b.tx.ExecContext(ctx, "UPDATE partners SET timezone = ? WHERE id = ?", tt.timezone, b.partner)
				require.NoError(t, err)
			}
			tt.setup(t, b)
			got, err := b.ledger.SummaryOf(ctx, b.tx, b.partner, b.user)
			require.NoError(t, err)
			for i := range got.Expiring {
				got.Expiring[i].ExpiresAt = got.Expiring[i].ExpiresAt.UTC()
			}
			tt.want.UserID = b.user
			require.Equal(t, &tt.want, got)
		})
	}
}

// SummariesOf answers for a page of users in one query and never reads
// another partner's user.
func TestSummariesOf(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupTx(t)
	exp := b.now.AddDate(0, 0, 10)
	b.apply(t, ledger.Change{Kind: ledger.KindEarn, Points: 10, Reason: "x", ExpiresAt: &exp})

	// Another partner's user with points, in the same transaction.
	keys, err := keyring.New(make([]byte, keyring.KeySize))
	require.NoError(t, err)
	p2, err := partner.NewService(keys).Upsert(ctx, b.tx, partner.CreateParams{Slug: "lots2-" + uuid.NewString()[:8], Name: "Other"})
	require.NoError(t, err)
	u2, err := user.NewService(keys, event.NewRecorder()).UpsertTx(ctx, b.tx, p2.ID, "u1", user.Profile{})
	require.NoError(t, err)
	_, err = b.ledger.ApplyTx(ctx, b.tx, p2.ID, ledger.Change{UserID: u2.User.ID, Kind: ledger.KindEarn, Points: 99, Reason: "x", ExpiresAt: &exp})
	require.NoError(t, err)
	other := struct{ user uuid.UUID }{u2.User.ID}

	stranger := uuid.New()
	got, err := b.ledger.SummariesOf(ctx, b.tx, b.partner, []uuid.UUID{b.user, stranger, other.user})
	require.NoError(t, err)
	require.Len(t, got, 3)
	require.Equal(t, int64(10), got[b.user].Balance)
	require.Len(t, got[b.user].Expiring, 1)
	require.Equal(t, int64(10), got[b.user].Expiring[0].Points)
	require.Zero(t, got[stranger].Balance)
	require.Zero(t, got[other.user].Balance)
	require.Empty(t, got[other.user].Expiring)
}
