package ledger_test

import (
	"context"
	"encoding/json"
	"io/fs"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/event"
	"github.com/perkshq/perks/internal/keyring"
	"github.com/perkshq/perks/internal/ledger"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/user"
	"github.com/perkshq/perks/migrations"
)

// txBundle works inside one rolled-back transaction with a clock the test
// moves.
type txBundle struct {
	tx      bun.Tx
	ledger  *ledger.Service
	partner uuid.UUID
	user    uuid.UUID
	now     time.Time
}

func setupTx(t testing.TB) *txBundle {
	t.Helper()
	ctx := context.Background()
	tx := dbtest.Tx(t)
	keys, err := keyring.New(make([]byte, keyring.KeySize))
	require.NoError(t, err)
	ev := event.NewRecorder()
	p, err := partner.NewService(keys).Upsert(ctx, tx, partner.CreateParams{Slug: "lots-" + uuid.NewString()[:8], Name: "Lots"})
	require.NoError(t, err)
	res, err := user.NewService(keys, ev).UpsertTx(ctx, tx, p.ID, "u1", user.Profile{})
	require.NoError(t, err)
	b := &txBundle{tx: tx, partner: p.ID, user: res.User.ID, now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	b.ledger = &ledger.Service{Events: ev, Now: func() time.Time { return b.now }}
	return b
}

func (b *txBundle) apply(t *testing.T, c ledger.Change) *ledger.Entry {
	t.Helper()
	c.UserID = b.user
	e, err := b.ledger.ApplyTx(context.Background(), b.tx, b.partner, c)
	require.NoError(t, err)
	return e
}

// refLot is the reference model's lot.
type refLot struct {
	points, remaining int64
	expires           *time.Time // nil: never
	availableAt       time.Time
	pending           bool
}

// refModel is the simplest possible statement of the lot rules: burns take
// available lots by soonest expiry (never last), then by age; due pending
// lots activate, then due lots lose their remainder.
type refModel struct{ lots []*refLot }

func (m *refModel) available() (n int64) {
	for _, l := range m.lots {
		if !l.pending {
			n += l.remaining
		}
	}
	return n
}

func (m *refModel) burn(points int64) {
	order := make([]int, len(m.lots))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		ea, eb := m.lots[a].expires, m.lots[b].expires
		switch {
		case ea == nil && eb == nil:
			return a - b
		case ea == nil:
			return 1
		case eb == nil:
			return -1
		case !ea.Equal(*eb):
			return ea.Compare(*eb)
		}
		return a - b
	})
	for _, i := range order {
		l := m.lots[i]
		if l.pending || points == 0 {
			continue
		}
		take := min(l.remaining, points)
		l.remaining -= take
		points -= take
	}
}

func (m *refModel) tick(now time.Time) {
	for _, l := range m.lots {
		if l.pending && !l.availableAt.After(now) {
			l.pending = false
		}
	}
	for _, l := range m.lots {
		if !l.pending && l.expires != nil && !l.expires.After(now) {
			l.remaining = 0
		}
	}
}

// TestLotsFollowReferenceModel is the property test of FIFO by expiry: a
// few hundred random earns (some pending, some expiring, many with equal
// expiry days), burns, adjustments down and clock moves with the jobs run,
// compared after every step with refModel, lot by lot, and with the
// invariants at the end. Seeds are fixed so a failure replays.
func TestLotsFollowReferenceModel(t *testing.T) {
	t.Parallel()
	for _, seed := range []uint64{1, 2, 3} {
		t.Run("", func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			b := setupTx(t)
			rng := rand.New(rand.NewPCG(seed, 13))
			m := &refModel{}
			for step := range 300 {
				switch op := rng.IntN(10); {
				case op < 4: // earn
					pts := int64(1 + rng.IntN(50))
					c := ledger.Change{Kind: ledger.KindEarn, Points: pts, Reason: "earn"}
					l := &refLot{points: pts, remaining: pts, availableAt: b.now}
					if rng.IntN(3) == 0 {
						x := b.now.Add(time.Duration(1+rng.IntN(5)) * 24 * time.Hour).Truncate(24 * time.Hour)
						c.ExpiresAt, l.expires = &x, &x
					}
					if rng.IntN(5) == 0 {
						c.AvailableAt = b.now.Add(time.Duration(1+rng.IntN(3)) * 24 * time.Hour)
						l.availableAt, l.pending = c.AvailableAt, true
					}
					b.apply(t, c)
					m.lots = append(m.lots, l)
				case op < 7: // burn or adjust down, within the balance
					if avail := m.available(); avail > 0 {
						pts := 1 + rng.Int64N(avail)
						c := ledger.Change{Kind: ledger.KindBurn, Points: pts, Reason: "burn"}
						if op == 6 {
							c = ledger.Change{Kind: ledger.KindAdjust, Points: -pts, Reason: "fix"}
						}
						b.apply(t, c)
						m.burn(pts)
					}
				default: // time passes, the jobs run
					b.now = b.now.Add(time.Duration(rng.IntN(36)) * time.Hour)
					for {
						n, err := ledger.ActivateDueTx(ctx, b.tx, nil, b.now, 3)
						require.NoError(t, err)
						if n == 0 {
							break
						}
					}
					for {
						n, err := ledger.ExpireDueTx(ctx, b.tx, b.ledger.Events, b.now, 2)
						require.NoError(t, err)
						if n == 0 {
							break
						}
					}
					m.tick(b.now)
				}
				lots, err := b.ledger.Lots(ctx, b.tx, b.partner, b.user)
				require.NoError(t, err)
				require.Len(t, lots, len(m.lots), "step %d", step)
				for i, l := range lots {
					require.Equal(t, m.lots[i].remaining, l.Remaining, "step %d lot %d", step, i)
					require.Equal(t, m.lots[i].pending, l.Pending, "step %d lot %d", step, i)
				}
				bal, err := b.ledger.BalanceOf(ctx, b.tx, b.partner, b.user)
				require.NoError(t, err)
				require.Equal(t, m.available(), bal.Points, "step %d", step)
			}
			require.NoError(t, ledger.CheckInvariants(ctx, b.tx))
		})
	}
}

// TestExpireDueTx: expiry takes exactly what is left of due lots, in
// batches, once; spent points are never expired and pending points are
// not spendable.
func TestExpireDueTx(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupTx(t)
	soon := b.now.Add(24 * time.Hour)
	later := b.now.Add(48 * time.Hour)
	b.apply(t, ledger.Change{Kind: ledger.KindEarn, Points: 100, Reason: "a", ExpiresAt: &later})
	b.apply(t, ledger.Change{Kind: ledger.KindEarn, Points: 50, Reason: "b", ExpiresAt: &soon})
	b.apply(t, ledger.Change{Kind: ledger.KindEarn, Points: 30, Reason: "c"})
	b.apply(t, ledger.Change{Kind: ledger.KindEarn, Points: 20, Reason: "d", ExpiresAt: &soon})
	b.apply(t, ledger.Change{Kind: ledger.KindEarn, Points: 40, Reason: "held", AvailableAt: later.Add(time.Hour)})

	// The soonest lots first (b, then d), then a; never c.
	b.apply(t, ledger.Change{Kind: ledger.KindBurn, Points: 60, Reason: "spend"})
	remaining := func() []int64 {
		lots, err := b.ledger.Lots(ctx, b.tx, b.partner, b.user)
		require.NoError(t, err)
		var out []int64
		for _, l := range lots {
			out = append(out, l.Remaining)
		}
		return out
	}
	require.Equal(t, []int64{100, 0, 30, 10, 40}, remaining())

	n, err := ledger.ExpireDueTx(ctx, b.tx, b.ledger.Events, soon.Add(-time.Second), 10)
	require.NoError(t, err)
	require.Zero(t, n, "nothing is due before its time")

	n, err = ledger.ExpireDueTx(ctx, b.tx, b.ledger.Events, soon, 10)
	require.NoError(t, err)
	require.Equal(t, 1, n, "b was spent whole: only d's remainder expires")
	require.Equal(t, []int64{100, 0, 30, 0, 40}, remaining())

	n, err = ledger.ExpireDueTx(ctx, b.tx, b.ledger.Events, soon, 10)
	require.NoError(t, err)
	require.Zero(t, n, "idempotent")

	// The held lot activates after a; the expiry is bounded by batch.
	b.now = later.Add(2 * time.Hour)
	n, err = ledger.ExpireDueTx(ctx, b.tx, b.ledger.Events, b.now, 1)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	n, err = ledger.ActivateDueTx(ctx, b.tx, nil, b.now, 10)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	n, err = ledger.ActivateDueTx(ctx, b.tx, nil, b.now, 10)
	require.NoError(t, err)
	require.Zero(t, n)
	require.Equal(t, []int64{0, 0, 30, 0, 40}, remaining())

	bal, err := b.ledger.BalanceOf(ctx, b.tx, b.partner, b.user)
	require.NoError(t, err)
	require.Equal(t, int64(70), bal.Points)
	require.Zero(t, bal.PendingPoints)
	require.Equal(t, int64(240), bal.LifetimeEarned)

	var kinds []struct {
		Kind   string
		Points int64
	}
	require.NoError(t, b.tx.NewRaw("SELECT kind, points FROM ledger_entries WHERE partner_id = ? ORDER BY id", b.partner).Scan(ctx, &kinds))
	require.Equal(t, []struct {
		Kind   string
		Points int64
	}{{"earn", 100}, {"earn", 50}, {"earn", 30}, {"earn", 20}, {"pending", 40}, {"burn", -60}, {"expire", -10}, {"expire", -100}, {"activate", 40}}, kinds)
	require.NoError(t, ledger.CheckInvariants(ctx, b.tx))

	// Pending points are not spendable (70 available, 1000 held); last, as
	// the failed statement aborts the transaction.
	b.apply(t, ledger.Change{Kind: ledger.KindEarn, Points: 1000, Reason: "held", AvailableAt: b.now.Add(time.Hour)})
	_, err = b.ledger.ApplyTx(ctx, b.tx, b.partner, ledger.Change{UserID: b.user, Kind: ledger.KindBurn, Points: 71, Reason: "x"})
	require.True(t, apperr.Is(err, apperr.CodeInsufficientPoints), "%v", err)
}

// TestBurnsRaceExpiry: burns and expiry runs on the same lots at once; each
// point is either burnt or expired, never both, and the invariants hold.
func TestBurnsRaceExpiry(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	b.ledger.Now = func() time.Time { return now }
	u := b.user(t, "racer")
	exp := now.Add(time.Hour)
	for range 20 {
		_, err := b.apply(ctx, ledger.Change{UserID: u, Kind: ledger.KindEarn, Points: 10, Reason: "lot", ExpiresAt: &exp})
		require.NoError(t, err)
	}
	_, err := b.apply(ctx, ledger.Change{UserID: u, Kind: ledger.KindEarn, Points: 50, Reason: "forever"})
	require.NoError(t, err)

	var wg sync.WaitGroup
	var mu sync.Mutex
	burnt := int64(0)
	for range 25 {
		wg.Go(func() {
			if _, err := b.apply(ctx, ledger.Change{UserID: u, Kind: ledger.KindBurn, Points: 7, Reason: "race"}); err == nil {
				mu.Lock()
				burnt += 7
				mu.Unlock()
			} else if !apperr.Is(err, apperr.CodeInsufficientPoints) {
				t.Error(err)
			}
		})
	}
	for range 4 {
		wg.Go(func() {
			err := b.db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
				_, err := ledger.ExpireDueTx(ctx, tx, event.NewRecorder(), exp, 5)
				return err
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	require.NoError(t, b.db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		for {
			n, err := ledger.ExpireDueTx(ctx, tx, event.NewRecorder(), exp, 100)
			if err != nil || n == 0 {
				return err
			}
		}
	}))
	if err := ledger.CheckInvariants(ctx, b.db.Bun); err != nil {
		var rows []struct {
			ID, Points, BalanceAfter int64
			Kind                     string
			Xid                      string
		}
		_ = b.db.Bun.NewRaw("SELECT id, points, balance_after, kind, xid::text FROM ledger_entries ORDER BY id").Scan(ctx, &rows)
		for _, r := range rows {
			t.Logf("%+v", r)
		}
		t.Fatal(err)
	}
	var expired int64
	require.NoError(t, b.db.Bun.NewRaw("SELECT coalesce(-sum(points), 0) FROM ledger_entries WHERE kind = 'expire'").Scan(ctx, &expired))
	bal := b.balance(t, u)
	require.Equal(t, int64(250), burnt+expired+bal.Points, "every point burnt, expired or left")
	var left int64
	require.NoError(t, b.db.Bun.NewRaw("SELECT coalesce(sum(remaining), 0) FROM point_lots WHERE expires_at IS NOT NULL").Scan(ctx, &left))
	require.Zero(t, left, "due lots are all expired or spent")
	require.LessOrEqual(t, bal.Points, int64(50))
}

// TestBackfillMigration: the balances that existed before lots become one
// available, never-expiring lot each, which is what makes the invariants
// hold on an upgraded database; running it again adds nothing.
func TestBackfillMigration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupTx(t)
	sqlText, err := fs.ReadFile(migrations.Files(), "20261125800001_point_lots_backfill.up.sql")
	require.NoError(t, err)

	// An old-schema user: a balance and its entries, no lots.
	_, err = b.tx.ExecContext(ctx, `INSERT INTO balances (partner_id, user_id, points, lifetime_earned) VALUES (?, ?, 70, 100)`, b.partner, b.user)
	require.NoError(t, err)
	_, err = b.tx.ExecContext(ctx, `INSERT INTO ledger_entries (partner_id, user_id, kind, points, balance_after, occurred_at) VALUES (?, ?, 'earn', 100, 100, now()), (?, ?, 'burn', -30, 70, now())`,
		b.partner, b.user, b.partner, b.user)
	require.NoError(t, err)
	// A user without points gets no lot.
	keys, err := keyring.New(make([]byte, keyring.KeySize))
	require.NoError(t, err)
	res, err := user.NewService(keys, event.NewRecorder()).UpsertTx(ctx, b.tx, b.partner, "u0", user.Profile{})
	require.NoError(t, err)
	_, err = b.tx.ExecContext(ctx, `INSERT INTO balances (partner_id, user_id) VALUES (?, ?)`, b.partner, res.User.ID)
	require.NoError(t, err)
	require.ErrorContains(t, ledger.CheckInvariants(ctx, b.tx), "lot invariant broken")

	for range 2 {
		_, err = b.tx.ExecContext(ctx, string(sqlText))
		require.NoError(t, err)
	}
	lots, err := b.ledger.Lots(ctx, b.tx, b.partner, b.user)
	require.NoError(t, err)
	require.Len(t, lots, 1)
	require.Equal(t, int64(70), lots[0].Points)
	require.Equal(t, int64(70), lots[0].Remaining)
	require.Nil(t, lots[0].ExpiresAt)
	require.False(t, lots[0].Pending)
	none, err := b.ledger.Lots(ctx, b.tx, b.partner, res.User.ID)
	require.NoError(t, err)
	require.Empty(t, none)
	require.NoError(t, ledger.CheckInvariants(ctx, b.tx))

	// The migrated lot is spendable like any other.
	b.apply(t, ledger.Change{Kind: ledger.KindBurn, Points: 70, Reason: "all"})
	require.NoError(t, ledger.CheckInvariants(ctx, b.tx))
}

// TestApplyRefusesLotKinds: expire, pending and activate entries come from
// the lot functions only (an ApplyTx expire would spend lots FIFO instead of
// one lot's remainder), and only earns may be held pending.
func TestApplyRefusesLotKinds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupTx(t)
	b.apply(t, ledger.Change{Kind: ledger.KindEarn, Points: 10, Reason: "a"})
	for _, c := range []ledger.Change{
		{Kind: ledger.KindExpire, Points: 5},
		{Kind: ledger.KindPending, Points: 5},
		{Kind: ledger.KindActivate, Points: 5},
		{Kind: ledger.KindAdjust, Points: 5, AvailableAt: b.now.Add(time.Hour)},
	} {
		c.UserID = b.user
		_, err := b.ledger.ApplyTx(ctx, b.tx, b.partner, c)
		require.Error(t, err, "%s", c.Kind)
	}
	require.NoError(t, ledger.CheckInvariants(ctx, b.tx))
}

// TestBurnsRaceActivation: burns and activation runs at once; a burn never
// spends pending points, and the invariants hold whatever the interleaving.
func TestBurnsRaceActivation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	b.ledger.Now = func() time.Time { return now }
	u := b.user(t, "racer")
	for range 10 {
		_, err := b.apply(ctx, ledger.Change{UserID: u, Kind: ledger.KindEarn, Points: 10, Reason: "held", AvailableAt: now.Add(time.Hour)})
		require.NoError(t, err)
	}
	_, err := b.apply(ctx, ledger.Change{UserID: u, Kind: ledger.KindEarn, Points: 30, Reason: "now"})
	require.NoError(t, err)

	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			_, err := b.apply(ctx, ledger.Change{UserID: u, Kind: ledger.KindBurn, Points: 6, Reason: "race"})
			if err != nil && !apperr.Is(err, apperr.CodeInsufficientPoints) {
				t.Error(err)
			}
		})
	}
	for range 3 {
		wg.Go(func() {
			if err := b.db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
				_, err := ledger.ActivateDueTx(ctx, tx, nil, now.Add(time.Hour), 4)
				return err
			}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	require.NoError(t, ledger.CheckInvariants(ctx, b.db.Bun))
	bal := b.balance(t, u)
	require.Equal(t, int64(130), bal.LifetimeEarned+bal.PendingPoints, "every held point activated once or still held")
}

// TestExpireDueTxEmitsOneEventPerLot: every expire entry has exactly one
// points.expired event naming its lot and entry, with the entry's amount and
// balance; a drained lot and a second run emit none.
func TestExpireDueTxEmitsOneEventPerLot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupTx(t)
	soon := b.now.Add(24 * time.Hour)
	b.apply(t, ledger.Change{Kind: ledger.KindEarn, Points: 50, Reason: "a", ExpiresAt: &soon})
	b.apply(t, ledger.Change{Kind: ledger.KindEarn, Points: 20, Reason: "b", ExpiresAt: &soon})
	b.apply(t, ledger.Change{Kind: ledger.KindEarn, Points: 30, Reason: "c", ExpiresAt: &soon})
	b.apply(t, ledger.Change{Kind: ledger.KindEarn, Points: 5, Reason: "forever"})
	b.apply(t, ledger.Change{Kind: ledger.KindBurn, Points: 60, Reason: "spend"}) // a whole, 10 of b

	for range 3 { // batches of 1, then nothing: still one event per lot
		_, err := ledger.ExpireDueTx(ctx, b.tx, b.ledger.Events, soon, 1)
		require.NoError(t, err)
	}

	type payload struct {
		UserID  uuid.UUID `json:"userId"`
		LotID   int64     `json:"lotId"`
		EntryID int64     `json:"entryId"`
		Points  int64     `json:"points"`
		Balance int64     `json:"balance"`
	}
	var evs []event.Event
	require.NoError(t, b.tx.NewSelect().Model(&evs).Where("partner_id = ? AND type = ?", b.partner, event.PointsExpired).Scan(ctx))
	var got []payload
	for _, e := range evs {
		var p payload
		require.NoError(t, json.Unmarshal(e.Data, &p))
		require.Equal(t, b.user, *e.UserID)
		require.NotContains(t, string(e.Data), "u1", "no external id or other personal data")
		got = append(got, p)
	}
	var want []payload
	require.NoError(t, b.tx.NewRaw(`SELECT e.user_id, e.source_id::bigint AS lot_id, e.id AS entry_id, e.points, e.balance_after AS balance
		FROM ledger_entries e WHERE e.partner_id = ? AND e.kind = 'expire' ORDER BY e.id`, b.partner).Scan(ctx, &want))
	require.Len(t, want, 2, "b's 10 and c's 30; a was spent")
	slices.SortFunc(got, func(x, y payload) int { return int(x.EntryID - y.EntryID) })
	require.Equal(t, want, got)
	require.Equal(t, []int64{-10, -30}, []int64{got[0].Points, got[1].Points})
	require.Equal(t, int64(5), got[1].Balance)
}

// TestBurnSpendsDueLotsUntilTheJobRuns pins the rule of docs/points.md
// ("Expiry"): a lot past its expires_at that the job has not expired yet is
// still in the balance, so it stays spendable, and FIFO spends it first; the
// job then expires only what is left of it.
func TestBurnSpendsDueLotsUntilTheJobRuns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupTx(t)
	exp := b.now.Add(time.Hour)
	b.apply(t, ledger.Change{Kind: ledger.KindEarn, Points: 30, Reason: "forever"})
	b.apply(t, ledger.Change{Kind: ledger.KindEarn, Points: 50, Reason: "due", ExpiresAt: &exp})

	b.now = exp.Add(time.Minute) // due, the job has not run
	b.apply(t, ledger.Change{Kind: ledger.KindBurn, Points: 60, Reason: "spend"})
	lots, err := b.ledger.Lots(ctx, b.tx, b.partner, b.user)
	require.NoError(t, err)
	require.Equal(t, []int64{20, 0}, []int64{lots[0].Remaining, lots[1].Remaining}, "the due lot first, then the other")

	n, err := ledger.ExpireDueTx(ctx, b.tx, b.ledger.Events, b.now, 10)
	require.NoError(t, err)
	require.Zero(t, n, "spent before the job ran: nothing left to expire")
	bal, err := b.ledger.BalanceOf(ctx, b.tx, b.partner, b.user)
	require.NoError(t, err)
	require.Equal(t, int64(20), bal.Points)
	require.NoError(t, ledger.CheckInvariants(ctx, b.tx))
}

// TestBurnWalksOnlyTheLotsItNeeds: ledger_consume_lots reads the user's
// lots in FIFO order through the index and stops when the debit is covered,
// so a burn of a user with 5,000 lots reads a handful of them, not all
// (buffer reads of the lots table and its FIFO index, counted with the
// transaction's statistics).
func TestBurnWalksOnlyTheLotsItNeeds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupTx(t)
	exp := b.now.Add(24 * time.Hour)
	b.apply(t, ledger.Change{Kind: ledger.KindEarn, Points: 10, Reason: "first", ExpiresAt: &exp})
	_, err := b.tx.NewRaw(`WITH l AS (
		INSERT INTO point_lots (partner_id, user_id, points, remaining, available_at, expires_at)
		SELECT ?0, ?1, 10, 10, ?2, ?2::timestamptz + interval '2 days' + i * interval '1 minute' FROM generate_series(1, 5000) i
		RETURNING points)
		UPDATE balances SET points = points + (SELECT sum(points) FROM l) WHERE partner_id = ?0 AND user_id = ?1`,
		b.partner, b.user, b.now).Exec(ctx)
	require.NoError(t, err)
	// With statistics that know the user has 5,000 lots, a plan for all of
	// them would sort them rather than walk the index.
	_, err = b.tx.ExecContext(ctx, "ANALYZE point_lots")
	require.NoError(t, err)

	read := func() (n int64) {
		require.NoError(t, b.tx.NewRaw(`SELECT pg_stat_get_xact_blocks_fetched('point_lots'::regclass)
			+ pg_stat_get_xact_blocks_fetched('point_lots_fifo_idx'::regclass)`).Scan(ctx, &n))
		return n
	}
	before := read()
	b.apply(t, ledger.Change{Kind: ledger.KindBurn, Points: 15, Reason: "spend"})
	// Measured: 20 buffer reads walking (the two lots, the update's own),
	// 151 with the window over every lot.
	require.Less(t, read()-before, int64(50), "the burn reads the lots it draws from, not all 5,000")

	lots, err := b.ledger.Lots(ctx, b.tx, b.partner, b.user)
	require.NoError(t, err)
	require.Equal(t, []int64{0, 5, 10}, []int64{lots[0].Remaining, lots[1].Remaining, lots[2].Remaining})
}
