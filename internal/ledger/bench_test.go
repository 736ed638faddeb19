package ledger_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/ledger"
)

// BenchmarkApply measures one earn and one burn transaction of a user
// (what lots add to the hot path: the lot insert inside the earn's
// statement, the consume statement after the burn's).
func BenchmarkApply(b *testing.B) {
	for _, kind := range []ledger.Kind{ledger.KindEarn, ledger.KindBurn} {
		b.Run(string(kind), func(b *testing.B) {
			bb := setup(b)
			u := bb.user(b, "bench")
			ctx := context.Background()
			if kind == ledger.KindBurn {
				for range 20 {
					_, err := bb.apply(ctx, ledger.Change{UserID: u, Kind: ledger.KindEarn, Points: 1_000_000, Reason: "fund"})
					require.NoError(b, err)
				}
			}
			b.ResetTimer()
			for range b.N {
				err := bb.db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
					_, err := bb.ledger.ApplyTx(ctx, tx, bb.partner.ID, ledger.Change{UserID: u, Kind: kind, Points: 7, Reason: "bench"})
					return err
				})
				require.NoError(b, err)
			}
		})
	}
}

// BenchmarkActivateDue measures the lots job's activation of 1000 due lots
// of 100 users in one batch, with their points.activated events (one
// RecordTx for the batch); reported as lots/s.
func BenchmarkActivateDue(b *testing.B) {
	bb := setup(b)
	ctx := context.Background()
	users := make([]uuid.UUID, 100)
	for i := range users {
		users[i] = bb.user(b, fmt.Sprintf("bench-%d", i))
	}
	now := time.Now()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		require.NoError(b, bb.db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			for i := range 1000 {
				if _, err := bb.ledger.ApplyTx(ctx, tx, bb.partner.ID, ledger.Change{UserID: users[i%100], Kind: ledger.KindEarn, Points: 5, Reason: "bench", AvailableAt: time.Now().Add(time.Minute)}); err != nil {
					return err
				}
			}
			return nil
		}))
		now = now.Add(time.Hour)
		b.StartTimer()
		require.NoError(b, bb.db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			n, err := ledger.ActivateDueTx(ctx, tx, bb.ledger.Events, now, 1000)
			if err == nil && n != 1000 {
				err = fmt.Errorf("activated %d", n)
			}
			return err
		}))
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "lots/s")
}

// BenchmarkConfirm measures one confirm of a held earn (a transaction:
// find the earn, lock the balance, read the lot, one statement, the event).
func BenchmarkConfirm(b *testing.B) {
	bb := setup(b)
	ctx := context.Background()
	u := bb.user(b, "bench")
	for i := range b.N {
		_, err := bb.apply(ctx, ledger.Change{UserID: u, Kind: ledger.KindEarn, Points: 5, Reason: "bench", Reference: fmt.Sprintf("held-%d", i), Held: true})
		require.NoError(b, err)
	}
	b.ResetTimer()
	for i := range b.N {
		require.NoError(b, bb.db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			_, err := bb.ledger.ConfirmTx(ctx, tx, bb.partner.ID, fmt.Sprintf("held-%d", i), nil)
			return err
		}))
	}
}
