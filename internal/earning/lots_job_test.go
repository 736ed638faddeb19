package earning_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/earning"
	"github.com/perkshq/perks/internal/ledger"
	"github.com/perkshq/perks/internal/program"
)

// policyBundle is setup with a rolling policy (expiryDays after the points
// become available, pendingDays pending) and the lots job on the test's
// transaction and clock.
func policyBundle(t *testing.T, pendingDays, expiryDays, batch int) (*bundle, *ledger.LotsWorker) {
	t.Helper()
	b := setup(t)
	_, err := (&program.Service{}).Put(b.ctx, b.tx, b.partner.ID, program.Input{
		ExpiryMode: program.ExpiryRolling, ExpiryDays: ptr(expiryDays), PendingDays: pendingDays,
		NegativeBalance: program.NegativeForbid, ExpiryWarningDays: 30,
	})
	require.NoError(t, err)
	b.rule(t, "buy", earning.RuleInput{Points: 1, VariablePoints: true})
	return b, &ledger.LotsWorker{DB: b.tx, Now: func() time.Time { return b.now }, Batch: batch}
}

func (b *bundle) burn(t *testing.T, u uuid.UUID, points int64) error {
	t.Helper()
	// In a savepoint: a refused burn must not abort the test's transaction.
	return b.tx.RunInTx(b.ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		_, err := b.earning.Ledger.ApplyTx(ctx, tx, b.partner.ID, ledger.Change{UserID: u, Kind: ledger.KindBurn, Points: points, Reason: "gift"})
		return err
	})
}

func (b *bundle) balance(t *testing.T, u uuid.UUID) *ledger.Balance {
	t.Helper()
	bal, err := b.earning.Ledger.BalanceOf(b.ctx, b.tx, b.partner.ID, u)
	require.NoError(t, err)
	return bal
}

// TestLotsJobPendingThenExpiry: 100 points earned under a rolling 30-day
// policy with 7 pending days cannot be spent before day 7, are after the
// job at day 8, and the 60 left unspent expire after day 38 while the 40
// spent stay spent.
func TestLotsJobPendingThenExpiry(t *testing.T) {
	t.Parallel()
	b, job := policyBundle(t, 7, 30, 0)
	day := 24 * time.Hour
	u := b.user(t, "alice")
	_, err := b.earn(earning.EarnParams{ExternalUserID: "alice", Code: "buy", Points: ptr(int64(100))})
	require.NoError(t, err)

	b.advance(6 * day)
	a, x, err := job.Run(b.ctx)
	require.NoError(t, err)
	require.Equal(t, [2]int{0, 0}, [2]int{a, x})
	requireCode(t, b.burn(t, u, 40), apperr.CodeInsufficientPoints, "")
	require.Equal(t, int64(100), b.balance(t, u).PendingPoints)

	b.advance(2 * day) // day 8
	a, x, err = job.Run(b.ctx)
	require.NoError(t, err)
	require.Equal(t, [2]int{1, 0}, [2]int{a, x})
	bal := b.balance(t, u)
	require.Equal(t, [3]int64{100, 0, 100}, [3]int64{bal.Points, bal.PendingPoints, bal.LifetimeEarned})
	require.NoError(t, b.burn(t, u, 40))
	require.NoError(t, ledger.CheckInvariants(b.ctx, b.tx))

	b.advance(29 * day) // day 37, the lot's expiry (7 pending + 30 days): a minute before it
	b.advance(-time.Minute)
	a, x, err = job.Run(b.ctx)
	require.NoError(t, err)
	require.Equal(t, [2]int{0, 0}, [2]int{a, x}, "not yet expired")
	b.advance(day + time.Minute) // day 38
	a, x, err = job.Run(b.ctx)
	require.NoError(t, err)
	require.Equal(t, [2]int{0, 1}, [2]int{a, x})
	bal = b.balance(t, u)
	require.Equal(t, [3]int64{0, 0, 100}, [3]int64{bal.Points, bal.PendingPoints, bal.LifetimeEarned})
	entries, err := b.earning.Ledger.History(b.ctx, b.tx, b.partner.ID, u, ledger.DirectionAll, 0, 10)
	require.NoError(t, err)
	var kinds []ledger.Kind
	var pts []int64
	for _, e := range entries {
		kinds, pts = append(kinds, e.Kind), append(pts, e.Points)
	}
	require.ElementsMatch(t, []ledger.Kind{ledger.KindPending, ledger.KindActivate, ledger.KindBurn, ledger.KindExpire}, kinds)
	require.ElementsMatch(t, []int64{100, 100, -40, -60}, pts)
	require.NoError(t, ledger.CheckInvariants(b.ctx, b.tx))

	a, x, err = job.Run(b.ctx)
	require.NoError(t, err)
	require.Equal(t, [2]int{0, 0}, [2]int{a, x}, "a second run changes nothing")
}

// TestLotsJobTravelsAYear: several users earn every few days and spend
// some; a job run each week (in batches of 3, so every run takes several
// transactions) over a year leaves every user with exactly the points of
// the lots not yet expired minus what they spent, and the invariants hold
// after every run.
func TestLotsJobTravelsAYear(t *testing.T) {
	t.Parallel()
	b, job := policyBundle(t, 3, 60, 3)
	day := 24 * time.Hour
	const users = 4
	ids := make([]uuid.UUID, users)
	exts := []string{"u0", "u1", "u2", "u3"}
	for i := range ids {
		ids[i] = b.user(t, exts[i])
	}
	type lot struct {
		at     time.Time
		points int64
	}
	earned := make([][]lot, users)
	spent := make([]int64, users)
	totalActivated, totalExpired := 0, 0
	for d := 0; d < 365; d++ {
		for i := range ids {
			if (d+i)%5 == 0 {
				p := int64(10 * (i + 1))
				_, err := b.earn(earning.EarnParams{ExternalUserID: exts[i], Code: "buy", Points: ptr(p)})
				require.NoError(t, err)
				earned[i] = append(earned[i], lot{b.now, p})
			}
		}
		if d%7 == 6 {
			a, x, err := job.Run(b.ctx)
			require.NoError(t, err)
			totalActivated, totalExpired = totalActivated+a, totalExpired+x
			require.NoError(t, ledger.CheckInvariants(b.ctx, b.tx))
			// User 0 spends a little each week, from whatever is available.
			if bal := b.balance(t, ids[0]); bal.Points >= 15 {
				require.NoError(t, b.burn(t, ids[0], 15))
				spent[0] += 15
			}
		}
		b.advance(day)
	}
	a, x, err := job.Run(b.ctx)
	require.NoError(t, err)
	totalActivated, totalExpired = totalActivated+a, totalExpired+x
	require.NoError(t, ledger.CheckInvariants(b.ctx, b.tx))
	require.Greater(t, totalExpired, 100)
	lots := 0
	for i, u := range ids {
		lots += len(earned[i])
		var live, pending int64
		for _, l := range earned[i] {
			avail := l.at.AddDate(0, 0, 3)
			switch {
			case avail.After(b.now):
				pending += l.points
			case avail.AddDate(0, 0, 60).After(b.now):
				live += l.points
			}
		}
		bal := b.balance(t, u)
		require.Equal(t, pending, bal.PendingPoints, "user %d pending", i)
		if i > 0 {
			require.Equal(t, live, bal.Points, "user %d available", i)
		} else {
			// Spent points came from the soonest-expiring lots: what is
			// left is at most the live lots, never more.
			require.LessOrEqual(t, bal.Points, live)
			require.Positive(t, spent[0])
		}
	}
	require.Equal(t, lots, totalActivated+countPending(t, b, ids), "every lot activated or still pending")
}

func countPending(t *testing.T, b *bundle, ids []uuid.UUID) int {
	t.Helper()
	n := 0
	for _, u := range ids {
		lots, err := b.earning.Ledger.Lots(b.ctx, b.tx, b.partner.ID, u)
		require.NoError(t, err)
		for _, l := range lots {
			if l.Pending {
				n++
			}
		}
	}
	return n
}
