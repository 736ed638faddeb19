package ledger_test

import (
	"context"
	"errors"
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

// BenchmarkBurnLots measures one burn transaction of a user holding 1, 3
// or 10,000 spendable lots (with distinct expiries), each burn small enough
// that the first lot or two cover it: what ledger_consume_lots's read costs
// as the user's lots grow. The extra lots are inserted directly (their
// entries do not matter to the burn).
func BenchmarkBurnLots(b *testing.B) {
	for _, lots := range []int{1, 3, 10_000} {
		b.Run(fmt.Sprintf("lots=%d", lots), func(b *testing.B) {
			bb := setup(b)
			u := bb.user(b, "bench")
			ctx := context.Background()
			_, err := bb.apply(ctx, ledger.Change{UserID: u, Kind: ledger.KindEarn, Points: 1_000_000, Reason: "fund"})
			require.NoError(b, err)
			_, err = bb.db.Bun.NewRaw(`WITH l AS (
				INSERT INTO point_lots (partner_id, user_id, points, remaining, available_at, expires_at)
				SELECT ?0, ?1, 1000000, 1000000, now(), now() + i * interval '1 hour' FROM generate_series(1, ?2) i
				RETURNING points)
				UPDATE balances SET points = points + (SELECT coalesce(sum(points), 0) FROM l) WHERE partner_id = ?0 AND user_id = ?1`,
				bb.partner.ID, u, lots-1).Exec(ctx)
			require.NoError(b, err)
			_, err = bb.db.Bun.ExecContext(ctx, "ANALYZE point_lots")
			require.NoError(b, err)
			b.ResetTimer()
			for range b.N {
				err := bb.db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
					_, err := bb.ledger.ApplyTx(ctx, tx, bb.partner.ID, ledger.Change{UserID: u, Kind: ledger.KindBurn, Points: 7, Reason: "bench"})
					return err
				})
				require.NoError(b, err)
			}
		})
	}
}

// BenchmarkConsumeLots measures ledger_consume_lots alone (one call of 7
// points per op, inside one rolled-back transaction, so no commit and no
// balance update blur it) for a user with 1, 3 or 10,000 spendable lots.
func BenchmarkConsumeLots(b *testing.B) {
	for _, lots := range []int{1, 3, 10_000} {
		b.Run(fmt.Sprintf("lots=%d", lots), func(b *testing.B) {
			bb := setupTx(b)
			ctx := context.Background()
			_, err := bb.tx.NewRaw(`INSERT INTO point_lots (partner_id, user_id, points, remaining, available_at, expires_at)
				SELECT ?0, ?1, 1000000000, 1000000000, now(), now() + i * interval '1 hour' FROM generate_series(1, ?2) i`,
				bb.partner, bb.user, lots).Exec(ctx)
			require.NoError(b, err)
			_, err = bb.tx.ExecContext(ctx, "ANALYZE point_lots")
			require.NoError(b, err)
			b.ResetTimer()
			// Each call in a savepoint rolled back: the lots stay as they
			// were, and the row versions it wrote are dead at once (in one
			// transaction they would pile up in the lot's HOT chain).
			rollback := errors.New("rollback")
			for i := range b.N {
				err := bb.tx.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
					var got int64
					if err := tx.NewRaw("SELECT ledger_consume_lots(?, ?, 7, ?)", bb.partner, bb.user, i+1).Scan(ctx, &got); err != nil {
						return err
					}
					if got != 7 {
						return fmt.Errorf("consumed %d", got)
					}
					return rollback
				})
				require.ErrorIs(b, err, rollback)
			}
		})
	}
}

// BenchmarkLotsWorkerExpire expires 50,000 due lots of 5,000 users with one
// LotsWorker.Run per op (the fixture is reloaded between ops, untimed), in
// batches of 1,000 and 5,000: the statement shape and batch size of the
// expiry, at a size a quick run can afford (`make bench -scenario expiry`
// does a million).
func BenchmarkLotsWorkerExpire(b *testing.B) {
	const users, perUser = 5_000, 10
	for _, batch := range []int{1000, 2500, 5000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			bb := setup(b)
			ctx := context.Background()
			now := time.Now().UTC()
			for range b.N {
				b.StopTimer()
				_, err := bb.db.Bun.NewRaw(`WITH u AS (
					INSERT INTO users (partner_id, external_id_hash, external_id)
					SELECT ?0, sha256(convert_to(gen_random_uuid()::text, 'UTF8')), 'b' || i FROM generate_series(1, ?1) i
					RETURNING partner_id, id
				), bal AS (
					INSERT INTO balances (partner_id, user_id, points, lifetime_earned) SELECT partner_id, id, 10 * ?2, 10 * ?2 FROM u
				)
				INSERT INTO point_lots (partner_id, user_id, points, remaining, available_at, expires_at)
				SELECT u.partner_id, u.id, 10, 10, ?3::timestamptz - interval '60 days', ?3::timestamptz - (k + i) * interval '1 second'
				FROM u, generate_series(1, ?2) k, LATERAL (SELECT 0 AS i) x`, bb.partner.ID, users, perUser, now).Exec(ctx)
				require.NoError(b, err)
				_, err = bb.db.Bun.ExecContext(ctx, "VACUUM ANALYZE point_lots, balances")
				require.NoError(b, err)
				job := &ledger.LotsWorker{DB: bb.db.Bun, Now: func() time.Time { return now }, Batch: batch}
				b.StartTimer()
				_, n, err := job.Run(ctx)
				require.NoError(b, err)
				require.Equal(b, users*perUser, n)
			}
			b.ReportMetric(float64(users*perUser*b.N)/b.Elapsed().Seconds(), "lots/s")
		})
	}
}
