package report_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/ledger"
)

// BenchmarkRollupCost measures what the report triggers add to one earn and
// one burn transaction of a user (ledger.ApplyTx, as BenchmarkApply in
// internal/ledger): the same loop with the insert trigger on and off, on a
// database of its own. Run both in one go and compare (docs/benchmarks.md).
func BenchmarkRollupCost(b *testing.B) {
	for _, kind := range []ledger.Kind{ledger.KindEarn, ledger.KindBurn} {
		for _, on := range []bool{true, false} {
			name := string(kind) + "/triggers-on"
			if !on {
				name = string(kind) + "/triggers-off"
			}
			b.Run(name, func(b *testing.B) {
				db := dbtest.NewDB(b)
				bb := setup(b, db.Bun)
				ctx := context.Background()
				if !on {
					_, err := db.Bun.ExecContext(ctx, "ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_report_insert")
					require.NoError(b, err)
				}
				u := bb.user(b, "bench")
				bb.now = time.Now()
				for range 20 {
					bb.apply(b, ledger.Change{UserID: u, Kind: ledger.KindEarn, Points: 1_000_000, Reason: "fund"})
				}
				b.ResetTimer()
				for range b.N {
					bb.apply(b, ledger.Change{UserID: u, Kind: kind, Points: 7, Reason: "bench"})
				}
			})
		}
	}
}
