package ledger_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/event"
	"github.com/perkshq/perks/internal/ledger"
	"github.com/perkshq/perks/internal/program"
)

const day = 24 * time.Hour

// expiringPayload is the data of a points.expiring event.
type expiringPayload struct {
	UserID    uuid.UUID `json:"userId"`
	LotID     int64     `json:"lotId"`
	Points    int64     `json:"points"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// warnSetup is setupTx with the partner's expiry_warning_days (nil: no
// policy, program.Default's 30) and the warning job on the test's
// transaction and clock.
func warnSetup(t *testing.T, days *int, batch int) (*txBundle, *ledger.LotWarningsWorker) {
	t.Helper()
	b := setupTx(t)
	if days != nil {
		_, err := (&program.Service{}).Put(context.Background(), b.tx, b.partner, program.Input{
			ExpiryMode: program.ExpiryNone, NegativeBalance: program.NegativeForbid, ExpiryWarningDays: *days,
		})
		require.NoError(t, err)
	}
	return b, &ledger.LotWarningsWorker{DB: b.tx, Now: func() time.Time { return b.now }, Batch: batch, Events: b.ledger.Events}
}

func (b *txBundle) warnings(t *testing.T) []expiringPayload {
	t.Helper()
	var evs []event.Event
	require.NoError(t, b.tx.NewSelect().Model(&evs).Where("partner_id = ? AND type = ?", b.partner, event.PointsExpiring).Order("created_at").Scan(context.Background()))
	out := make([]expiringPayload, len(evs))
	for i, e := range evs {
		require.Equal(t, b.user, *e.UserID)
		require.NoError(t, json.Unmarshal(e.Data, &out[i]))
	}
	return out
}

func (b *txBundle) lotIDs(t *testing.T) []int64 {
	t.Helper()
	lots, err := b.ledger.Lots(context.Background(), b.tx, b.partner, b.user)
	require.NoError(t, err)
	ids := make([]int64, len(lots))
	for i, l := range lots {
		ids[i] = l.ID
	}
	return ids
}

// TestLotWarningsOncePerLotByPolicy travels time around each policy's
// warning moment: nothing a second before, one event at it, nothing ever
// after; a partner with 0 days gets none.
func TestLotWarningsOncePerLotByPolicy(t *testing.T) {
	t.Parallel()
	zero, seven := 0, 7
	for _, tc := range []struct {
		name string
		days *int
		warn time.Duration // after the earn; 0: never
	}{
		{"no policy: 30 days", nil, 10 * day},
		{"policy 7 days", &seven, 33 * day},
		{"policy 0 days", &zero, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			b, job := warnSetup(t, tc.days, 0)
			start := b.now
			exp := start.Add(40 * day)
			b.apply(t, ledger.Change{Kind: ledger.KindEarn, Points: 100, Reason: "a", ExpiresAt: &exp})
			b.apply(t, ledger.Change{Kind: ledger.KindEarn, Points: 5, Reason: "forever"})
			b.apply(t, ledger.Change{Kind: ledger.KindBurn, Points: 30, Reason: "spend"})

			steps := []time.Duration{0, 5 * day}
			if tc.warn > 0 {
				steps = append(steps, tc.warn-time.Second)
			} else {
				steps = append(steps, 10*day, 33*day, 39*day)
			}
			for _, at := range steps {
				b.now = start.Add(at)
				n, err := job.Run(ctx)
				require.NoError(t, err)
				require.Zero(t, n, "nothing at +%s", at)
			}
			if tc.warn > 0 {
				b.now = start.Add(tc.warn)
				n, err := job.Run(ctx)
				require.NoError(t, err)
				require.Equal(t, 1, n)
			}
			for _, at := range []time.Duration{tc.warn, tc.warn + day, 40*day - time.Second} {
				b.now = start.Add(at)
				n, err := job.Run(ctx)
				require.NoError(t, err)
				require.Zero(t, n, "once per lot: nothing more at +%s", at)
			}
			got := b.warnings(t)
			if tc.warn == 0 {
				require.Empty(t, got)
				return
			}
			require.Equal(t, []expiringPayload{{UserID: b.user, LotID: b.lotIDs(t)[0], Points: 70, ExpiresAt: exp}}, got)
		})
	}
}

// TestLotWarningsSkipDrainedAndExpired: a lot spent before its warning time
// and a lot past its expiry get none; a lot earned inside its warning
// period is warned at the next run; the points are what is left.
func TestLotWarningsSkipDrainedAndExpired(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, job := warnSetup(t, nil, 0)
	start := b.now
	d20, d40, d45 := start.Add(20*day), start.Add(40*day), start.Add(45*day)
	b.apply(t, ledger.Change{Kind: ledger.KindEarn, Points: 10, Reason: "drained", ExpiresAt: &d20})
	b.apply(t, ledger.Change{Kind: ledger.KindEarn, Points: 50, Reason: "expires unwarned", ExpiresAt: &d40})
	b.apply(t, ledger.Change{Kind: ledger.KindEarn, Points: 80, Reason: "later", ExpiresAt: &d45})
	b.apply(t, ledger.Change{Kind: ledger.KindBurn, Points: 10, Reason: "spend"}) // the d20 lot, before any run
	ids := b.lotIDs(t)

	// The job is down until after d40: that lot's warning time passed with
	// its expiry; d45's is due.
	b.now = d40
	n, err := job.Run(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, []expiringPayload{{UserID: b.user, LotID: ids[2], Points: 80, ExpiresAt: d45}}, b.warnings(t))

	_, _, err = (&ledger.LotsWorker{DB: b.tx, Now: func() time.Time { return b.now }, Events: b.ledger.Events}).Run(ctx)
	require.NoError(t, err)
	n, err = job.Run(ctx)
	require.NoError(t, err)
	require.Zero(t, n)

	// Earned 3 days before its expiry with 30 warning days: warned at once.
	d43 := b.now.Add(3 * day)
	b.apply(t, ledger.Change{Kind: ledger.KindEarn, Points: 7, Reason: "late", ExpiresAt: &d43})
	n, err = job.Run(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	got := b.warnings(t)
	require.Len(t, got, 2)
	require.Equal(t, int64(7), got[1].Points)
	require.NoError(t, ledger.CheckInvariants(ctx, b.tx))
}

// TestLotWarningsResume: a batch that fails rolls its warnings back with its
// events, and the next run (in small batches) warns every lot exactly once.
func TestLotWarningsResume(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, job := warnSetup(t, nil, 2)
	exp := b.now.Add(10 * day)
	for range 5 {
		b.apply(t, ledger.Change{Kind: ledger.KindEarn, Points: 10, Reason: "lot", ExpiresAt: &exp})
	}
	crash := errors.New("crash")
	err := b.tx.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		n, err := ledger.WarnDueTx(ctx, tx, b.ledger.Events, b.now, 3)
		require.NoError(t, err)
		require.Equal(t, 3, n)
		return crash
	})
	require.ErrorIs(t, err, crash)
	require.Empty(t, b.warnings(t), "rolled back with the batch")

	n, err := job.Run(ctx)
	require.NoError(t, err)
	require.Equal(t, 5, n)
	n, err = job.Run(ctx)
	require.NoError(t, err)
	require.Zero(t, n)

	got := b.warnings(t)
	seen := map[int64]bool{}
	for _, w := range got {
		seen[w.LotID] = true
	}
	require.Len(t, got, 5)
	require.Len(t, seen, 5, "one per lot")
	var unwarned int
	require.NoError(t, b.tx.NewRaw("SELECT count(*) FROM point_lots WHERE partner_id = ? AND warned_at IS NULL", b.partner).Scan(ctx, &unwarned))
	require.Zero(t, unwarned)
}

// TestLotWarningsRaceBurns: burns drawing from many lots and warning runs at
// once never deadlock (the job locks only lot rows, SKIP LOCKED), and every
// lot is warned at most once, all of them in the end.
func TestLotWarningsRaceBurns(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	b.ledger.Now = func() time.Time { return now }
	u := b.user(t, "racer")
	for i := range 40 {
		exp := now.Add(time.Duration(10+i%5) * day)
		_, err := b.apply(ctx, ledger.Change{UserID: u, Kind: ledger.KindEarn, Points: 10, Reason: "lot", ExpiresAt: &exp})
		require.NoError(t, err)
	}
	job := &ledger.LotWarningsWorker{DB: b.db.Bun, Now: func() time.Time { return now }, Batch: 3}
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if _, err := b.apply(ctx, ledger.Change{UserID: u, Kind: ledger.KindBurn, Points: 25, Reason: "race"}); err != nil {
				t.Error(err)
			}
		})
	}
	for range 3 {
		wg.Go(func() {
			if _, err := job.Run(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	_, err := job.Run(ctx)
	require.NoError(t, err)

	var rows []struct {
		LotID  int64 `bun:"lot_id"`
		Events int   `bun:"events"`
	}
	require.NoError(t, b.db.Bun.NewRaw(`SELECT (data->>'lotId')::bigint AS lot_id, count(*) AS events FROM events
		WHERE type = ? GROUP BY 1`, event.PointsExpiring).Scan(ctx, &rows))
	for _, r := range rows {
		require.Equal(t, 1, r.Events, "lot %d", r.LotID)
	}
	var open, unwarned int
	require.NoError(t, b.db.Bun.NewRaw("SELECT count(*) FILTER (WHERE open), count(*) FILTER (WHERE open AND warned_at IS NULL) FROM point_lots").Scan(ctx, &open, &unwarned))
	require.Zero(t, unwarned, "every open lot warned")
	require.Equal(t, 15, open, "250 of 400 points burnt: 15 lots left")
	require.GreaterOrEqual(t, len(rows), open)
	require.NoError(t, ledger.CheckInvariants(ctx, b.db.Bun))
}
