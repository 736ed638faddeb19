package ledger_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/ledger"
)

func (b *txBundle) reverse(t *testing.T, ref string, points int64, allow bool) (*ledger.Reversed, error) {
	t.Helper()
	r := ledger.Reversal{Reference: ref, Reason: "order refunded", AllowNegative: allow}
	if points > 0 {
		r.Points = &points
	}
	out, err := b.ledger.ReverseTx(context.Background(), b.tx, b.partner, r)
	if err == nil {
		require.NoError(t, ledger.CheckInvariants(context.Background(), b.tx))
	}
	return out, err
}

func (b *txBundle) earn(t *testing.T, ref string, points int64, expires *time.Time) *ledger.Entry {
	t.Helper()
	return b.apply(t, ledger.Change{Kind: ledger.KindEarn, Points: points, Reason: "purchase", Reference: ref, ExpiresAt: expires})
}

func (b *txBundle) balance(t *testing.T) *ledger.Balance {
	t.Helper()
	bal, err := b.ledger.BalanceOf(context.Background(), b.tx, b.partner, b.user)
	require.NoError(t, err)
	return bal
}

// lotsBySource maps each lot's source entry to its remaining and debt paid.
func (b *txBundle) lotsBySource(t *testing.T) map[int64][2]int64 {
	t.Helper()
	lots, err := b.ledger.Lots(context.Background(), b.tx, b.partner, b.user)
	require.NoError(t, err)
	out := map[int64][2]int64{}
	for _, l := range lots {
		out[*l.SourceEntryID] = [2]int64{l.Remaining, l.DebtPaid}
	}
	return out
}

// allocations of one entry: lot source entry id -> points.
func (b *txBundle) allocations(t *testing.T, entryID int64) map[int64]int64 {
	t.Helper()
	var rows []struct {
		Source int64 `bun:"source_entry_id"`
		Points int64 `bun:"points"`
	}
	require.NoError(t, b.tx.NewRaw(`SELECT l.source_entry_id, a.points FROM lot_allocations a
		JOIN point_lots l ON l.partner_id = a.partner_id AND l.id = a.lot_id WHERE a.partner_id = ? AND a.entry_id = ?`,
		b.partner, entryID).Scan(context.Background(), &rows))
	out := map[int64]int64{}
	for _, r := range rows {
		out[r.Source] = r.Points
	}
	return out
}

// TestReversePartialThenFull: a partial reversal takes from the earn's lot
// and lowers balance and lifetime; omitting points takes the rest; then
// nothing remains (EARN_FULLY_REVERSED), and asking for more than remains
// is REVERSAL_EXCEEDS_EARN. Refusals change nothing.
func TestReversePartialThenFull(t *testing.T) {
	t.Parallel()
	b := setupTx(t)
	other := b.earn(t, "o0", 20, nil)
	e := b.earn(t, "o1", 100, nil)

	_, err := b.reverse(t, "o1", 101, false)
	require.True(t, apperr.Is(err, apperr.CodeReversalExceedsEarn), "%v", err)

	out, err := b.reverse(t, "o1", 30, false)
	require.NoError(t, err)
	require.Equal(t, int64(-30), out.Entry.Points)
	require.Equal(t, ledger.KindReverse, out.Entry.Kind)
	require.Equal(t, ledger.SourceEarn, *out.Entry.SourceType)
	require.Equal(t, e.ID, out.EarnEntryID)
	require.Equal(t, [4]int64{30, 0, 90, 70}, [4]int64{out.Reversed, out.Shortfall, out.Balance, out.Remaining})
	require.Equal(t, map[int64]int64{e.ID: 30}, b.allocations(t, out.Entry.ID), "the earn's own lot first")
	require.Equal(t, int64(90), b.balance(t).LifetimeEarned)

	_, err = b.reverse(t, "o1", 71, false)
	require.True(t, apperr.Is(err, apperr.CodeReversalExceedsEarn), "%v", err)

	out, err = b.reverse(t, "o1", 0, false)
	require.NoError(t, err)
	require.Equal(t, [4]int64{70, 0, 20, 0}, [4]int64{out.Reversed, out.Shortfall, out.Balance, out.Remaining})
	require.Equal(t, map[int64][2]int64{other.ID: {20, 0}, e.ID: {0, 0}}, b.lotsBySource(t))

	before := b.balance(t)
	_, err = b.reverse(t, "o1", 0, false)
	require.True(t, apperr.Is(err, apperr.CodeEarnFullyReversed), "%v", err)
	_, err = b.reverse(t, "o1", 1, true)
	require.True(t, apperr.Is(err, apperr.CodeEarnFullyReversed), "%v", err)
	_, err = b.reverse(t, "nope", 0, false)
	require.True(t, apperr.Is(err, apperr.CodeEarnNotFound), "%v", err)
	require.Equal(t, before, b.balance(t))
	require.Equal(t, int64(20), before.LifetimeEarned)
	require.NoError(t, ledger.CheckInvariants(context.Background(), b.tx))
}

// TestReverseSpentPoints: when the user spent the earn's points, the
// reversal takes the earn's lot's remainder, then the other lots soonest
// expiry first.
func TestReverseSpentPoints(t *testing.T) {
	t.Parallel()
	b := setupTx(t)
	in10, in30 := b.now.AddDate(0, 0, 10), b.now.AddDate(0, 0, 30)
	a := b.earn(t, "a", 100, nil)
	bb := b.earn(t, "b", 50, &in10)
	c := b.earn(t, "c", 40, &in30)
	b.apply(t, ledger.Change{Kind: ledger.KindBurn, Points: 60, Reason: "gift"}) // b 50, c 10
	out, err := b.reverse(t, "b", 0, false)
	require.NoError(t, err)
	require.Equal(t, int64(50), out.Reversed)
	require.Equal(t, map[int64]int64{c.ID: 30, a.ID: 20}, b.allocations(t, out.Entry.ID))
	require.Equal(t, map[int64][2]int64{a.ID: {80, 0}, bb.ID: {0, 0}, c.ID: {0, 0}}, b.lotsBySource(t))
	require.Equal(t, int64(80), b.balance(t).Points)
}

// TestReverseBeyondBalance is the case: an earn of 500 refunded
// when the user has 7 points left. allow: the balance goes to -493, burns
// are refused, the next earn pays the debt first (its lot keeps only what
// is above zero); forbid: 7 reversed, 493 short, balance 0, and the
// shortfall may be reversed later.
func TestReverseBeyondBalance(t *testing.T) {
	t.Parallel()
	setup := func(t *testing.T) (*txBundle, *ledger.Entry) {
		b := setupTx(t)
		b.earn(t, "o1", 10, nil)
		big := b.earn(t, "o2", 500, nil)
		b.apply(t, ledger.Change{Kind: ledger.KindBurn, Points: 503, Reason: "gift"}) // o1 10, o2 493
		require.Equal(t, int64(7), b.balance(t).Points)
		return b, big
	}

	t.Run("Allow", func(t *testing.T) {
		t.Parallel()
		b, big := setup(t)
		out, err := b.reverse(t, "o2", 0, true)
		require.NoError(t, err)
		require.Equal(t, [5]int64{500, 0, -493, 0, 7}, [5]int64{out.Reversed, out.Shortfall, out.Balance, out.Remaining, out.TakenFromLots})
		require.Equal(t, int64(-493), out.Entry.BalanceAfter)
		require.Equal(t, map[int64]int64{big.ID: 7}, b.allocations(t, out.Entry.ID))
		bal := b.balance(t)
		require.Equal(t, [2]int64{-493, 10}, [2]int64{bal.Points, bal.LifetimeEarned})

		_, err = b.ledger.ApplyTx(context.Background(), b.tx, b.partner, ledger.Change{UserID: b.user, Kind: ledger.KindBurn, Points: 1, Reason: "gift"})
		require.True(t, apperr.Is(err, apperr.CodeInsufficientPoints), "a burn never goes below zero: %v", err)

		small := b.earn(t, "o3", 300, nil)
		require.Equal(t, int64(-193), small.BalanceAfter)
		require.Equal(t, [2]int64{0, 300}, b.lotsBySource(t)[small.ID], "all of it paid the debt")
		next := b.earn(t, "o4", 200, nil)
		require.Equal(t, int64(7), next.BalanceAfter)
		require.Equal(t, [2]int64{7, 193}, b.lotsBySource(t)[next.ID], "the rest of the debt first")
		require.NoError(t, ledger.CheckInvariants(context.Background(), b.tx))

		// A debt is reversed too: reversing the earn that paid it.
		out, err = b.reverse(t, "o4", 0, true)
		require.NoError(t, err)
		require.Equal(t, [3]int64{200, -193, 7}, [3]int64{out.Reversed, out.Balance, out.TakenFromLots})
	})

	t.Run("Forbid", func(t *testing.T) {
		t.Parallel()
		b, big := setup(t)
		out, err := b.reverse(t, "o2", 0, false)
		require.NoError(t, err)
		require.Equal(t, [5]int64{500, 7, 493, 0, 493}, [5]int64{out.Requested, out.Reversed, out.Shortfall, out.Balance, out.Remaining})
		require.Equal(t, map[int64]int64{big.ID: 7}, b.allocations(t, out.Entry.ID))
		require.Equal(t, int64(503), b.balance(t).LifetimeEarned)

		// Nothing to take: no entry, the whole shortfall reported.
		out, err = b.reverse(t, "o2", 0, false)
		require.NoError(t, err)
		require.Nil(t, out.Entry)
		require.Equal(t, [3]int64{0, 493, 0}, [3]int64{out.Reversed, out.Shortfall, out.Balance})

		// Later points make the rest reversible.
		later := b.earn(t, "o3", 100, nil)
		out, err = b.reverse(t, "o2", 0, false)
		require.NoError(t, err)
		require.Equal(t, [4]int64{100, 393, 0, 393}, [4]int64{out.Reversed, out.Shortfall, out.Balance, out.Remaining})
		require.Equal(t, map[int64]int64{later.ID: 100}, b.allocations(t, out.Entry.ID))
	})
}

// TestReversePending: a reversal of a still-pending earn shrinks its
// pending lot (outside the available balance and lifetime), activation
// makes the rest available, and reversing that is an ordinary reversal; a
// whole reversal removes the lot, so activation finds nothing.
func TestReversePending(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupTx(t)
	b.earn(t, "o0", 5, nil)
	held := b.apply(t, ledger.Change{Kind: ledger.KindEarn, Points: 100, Reason: "purchase", Reference: "p1", AvailableAt: b.now.AddDate(0, 0, 7)})
	b.apply(t, ledger.Change{Kind: ledger.KindEarn, Points: 40, Reason: "purchase", Reference: "p2", AvailableAt: b.now.AddDate(0, 0, 7)})

	out, err := b.reverse(t, "p1", 30, true)
	require.NoError(t, err)
	require.True(t, out.Pending)
	require.Equal(t, ledger.SourcePendingEarn, *out.Entry.SourceType)
	require.Equal(t, [4]int64{30, 5, 110, 70}, [4]int64{out.Reversed, out.Balance, out.PendingPoints, out.Remaining})
	require.Equal(t, int64(5), out.Entry.BalanceAfter, "outside the running sum: the available balance")
	require.Equal(t, [2]int64{70, 0}, b.lotsBySource(t)[held.ID])

	out, err = b.reverse(t, "p2", 0, false)
	require.NoError(t, err)
	require.Equal(t, [2]int64{40, 70}, [2]int64{out.Reversed, out.PendingPoints})
	require.Len(t, b.lotsBySource(t), 2, "the whole pending lot is removed")

	b.now = b.now.AddDate(0, 0, 8)
	n, err := ledger.ActivateDueTx(ctx, b.tx, nil, b.now, 10)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	bal := b.balance(t)
	require.Equal(t, [3]int64{75, 0, 75}, [3]int64{bal.Points, bal.PendingPoints, bal.LifetimeEarned})
	require.NoError(t, ledger.CheckInvariants(ctx, b.tx))

	out, err = b.reverse(t, "p1", 0, false)
	require.NoError(t, err)
	require.False(t, out.Pending)
	require.Equal(t, ledger.SourceEarn, *out.Entry.SourceType)
	require.Equal(t, [3]int64{70, 5, 0}, [3]int64{out.Reversed, out.Balance, out.Remaining})
	require.Equal(t, int64(5), b.balance(t).LifetimeEarned)
}

// TestActivationPaysDebt: a pending lot activating while the balance is
// negative pays the debt first.
func TestActivationPaysDebt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupTx(t)
	b.earn(t, "o1", 50, nil)
	b.apply(t, ledger.Change{Kind: ledger.KindBurn, Points: 50, Reason: "gift"})
	held := b.apply(t, ledger.Change{Kind: ledger.KindEarn, Points: 80, Reason: "purchase", Reference: "p1", AvailableAt: b.now.AddDate(0, 0, 1)})
	out, err := b.reverse(t, "o1", 0, true)
	require.NoError(t, err)
	require.Equal(t, int64(-50), out.Balance)
	require.Equal(t, [2]int64{80, 0}, b.lotsBySource(t)[held.ID], "a pending lot is whole")

	b.now = b.now.AddDate(0, 0, 2)
	n, err := ledger.ActivateDueTx(ctx, b.tx, nil, b.now, 10)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, [2]int64{30, 50}, b.lotsBySource(t)[held.ID])
	require.Equal(t, int64(30), b.balance(t).Points)
	require.NoError(t, ledger.CheckInvariants(ctx, b.tx))
}

// TestReverseRacesBurn: a reversal and a burn of the same points, started
// together, serialise on the balance row: under forbid either the burn
// spends them (the reversal takes nothing and reports the shortfall) or the
// reversal takes them (the burn is refused); under allow a burn first
// leaves a debt. Never both, never more, invariants after every round.
func TestReverseRacesBurn(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	for _, allow := range []bool{false, true} {
		outcomes := map[string]int{}
		for i := range 12 {
			u := b.user(t, fmt.Sprintf("race-%t-%d", allow, i))
			ref := fmt.Sprintf("order-%t-%d", allow, i)
			_, err := b.apply(ctx, ledger.Change{UserID: u, Kind: ledger.KindEarn, Points: 100, Reason: "purchase", Reference: ref})
			require.NoError(t, err)
			var wg sync.WaitGroup
			var burnErr, revErr error
			var rev *ledger.Reversed
			start := make(chan struct{})
			wg.Add(2)
			go func() {
				defer wg.Done()
				<-start
				_, burnErr = b.apply(ctx, ledger.Change{UserID: u, Kind: ledger.KindBurn, Points: 100, Reason: "gift"})
			}()
			go func() {
				defer wg.Done()
				<-start
				revErr = b.db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
					var err error
					rev, err = b.ledger.ReverseTx(ctx, tx, b.partner.ID, ledger.Reversal{Reference: ref, Reason: "refund", AllowNegative: allow})
					return err
				})
			}()
			close(start)
			wg.Wait()
			require.NoError(t, revErr)
			bal := b.balance(t, u)
			switch {
			case burnErr == nil && allow:
				outcomes["burn first"]++
				require.Equal(t, [2]int64{100, -100}, [2]int64{rev.Reversed, bal.Points})
			case burnErr == nil:
				outcomes["burn first"]++
				require.Nil(t, rev.Entry)
				require.Equal(t, [3]int64{0, 100, 0}, [3]int64{rev.Reversed, rev.Shortfall, bal.Points})
			default:
				outcomes["reversal first"]++
				require.True(t, apperr.Is(burnErr, apperr.CodeInsufficientPoints), "%v", burnErr)
				require.Equal(t, [3]int64{100, 0, 0}, [3]int64{rev.Reversed, rev.Shortfall, bal.Points})
			}
			require.NoError(t, ledger.CheckInvariants(ctx, b.db.Bun))
		}
		t.Logf("allow=%t: %v", allow, outcomes)
	}
}

// TestHoldsMeetReversals: the paths where a held earn meets a reversal. A
// cancelled earn cannot be reversed (it never paid out: reversing it would
// charge the balance); an earn reversed whole while pending has nothing
// left to confirm or cancel; confirming into a debt pays the debt first.
func TestHoldsMeetReversals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	noExpiry := func(context.Context, bun.Tx, *ledger.Entry, time.Time) (*time.Time, error) { return nil, nil }

	t.Run("cancelled then reversed", func(t *testing.T) {
		t.Parallel()
		b := setupTx(t)
		b.earn(t, "spendable", 50, nil)
		b.apply(t, ledger.Change{Kind: ledger.KindEarn, Points: 100, Reason: "order", Reference: "held", Held: true})
		_, err := b.ledger.CancelTx(ctx, b.tx, b.partner, "held", "order cancelled")
		require.NoError(t, err)
		_, err = b.reverse(t, "held", 0, true)
		require.Equal(t, apperr.CodeEarnCancelled, apperr.CodeOf(err))
		bal := b.balance(t)
		require.Equal(t, [2]int64{50, 0}, [2]int64{bal.Points, bal.PendingPoints})
		require.NoError(t, ledger.CheckInvariants(ctx, b.tx))
	})
	t.Run("reversed whole while held, then confirmed or cancelled", func(t *testing.T) {
		t.Parallel()
		b := setupTx(t)
		b.apply(t, ledger.Change{Kind: ledger.KindEarn, Points: 100, Reason: "order", Reference: "held", Held: true})
		_, err := b.reverse(t, "held", 0, false)
		require.NoError(t, err)
		_, err = b.ledger.ConfirmTx(ctx, b.tx, b.partner, "held", noExpiry)
		require.Equal(t, apperr.CodeEarnFullyReversed, apperr.CodeOf(err))
		_, err = b.ledger.CancelTx(ctx, b.tx, b.partner, "held", "")
		require.Equal(t, apperr.CodeEarnFullyReversed, apperr.CodeOf(err))
		require.NoError(t, ledger.CheckInvariants(ctx, b.tx))
	})
	t.Run("confirm pays a debt first", func(t *testing.T) {
		t.Parallel()
		b := setupTx(t)
		b.earn(t, "spent", 40, nil)
		b.apply(t, ledger.Change{Kind: ledger.KindBurn, Points: 40, Reason: "gift"})
		_, err := b.reverse(t, "spent", 0, true)
		require.NoError(t, err)
		require.Equal(t, int64(-40), b.balance(t).Points)
		held := b.apply(t, ledger.Change{Kind: ledger.KindEarn, Points: 100, Reason: "order", Reference: "held", Held: true})
		_, err = b.ledger.ConfirmTx(ctx, b.tx, b.partner, "held", noExpiry)
		require.NoError(t, err)
		require.Equal(t, int64(60), b.balance(t).Points)
		require.Equal(t, [2]int64{60, 40}, b.lotsBySource(t)[held.ID], "remaining 60, debt paid 40")
		require.NoError(t, ledger.CheckInvariants(ctx, b.tx))
	})
}
