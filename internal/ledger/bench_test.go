package ledger_test

import (
	"context"
	"testing"

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
