package campaign_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/campaign"
	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/dbtest"
)

// userInSlot creates a user whose earns charge the budget slot first.
func userInSlot(t *testing.T, ctx context.Context, db bun.IDB, partnerID uuid.UUID, slot int) uuid.UUID {
	t.Helper()
	for {
		id := uuid.New()
		if campaign.SlotOf(id) != slot {
			continue
		}
		_, err := db.NewRaw("INSERT INTO users (partner_id, id, external_id_hash) VALUES (?, ?, ?)", partnerID, id, []byte(id.String())).Exec(ctx)
		require.NoError(t, err)
		return id
	}
}

type slotRow struct {
	Slot   int   `bun:"slot"`
	Budget int64 `bun:"budget"`
	Spent  int64 `bun:"spent"`
}

func slotsOf(t *testing.T, ctx context.Context, db bun.IDB, partnerID uuid.UUID, code string) []slotRow {
	t.Helper()
	var rows []slotRow
	require.NoError(t, db.NewRaw("SELECT slot, budget, spent FROM campaign_budget_slots WHERE partner_id = ? AND code = ? ORDER BY slot",
		partnerID, code).Scan(ctx, &rows))
	return rows
}

func sumSlots(rows []slotRow) (budget, spent int64) {
	for _, r := range rows {
		budget += r.Budget
		spent += r.Spent
	}
	return budget, spent
}

// waitLockWaiters waits until n sessions of the test's database wait for a
// lock (the clock here is PostgreSQL's lock manager, not a timer).
func waitLockWaiters(t *testing.T, ctx context.Context, db bun.IDB, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		var waiting int
		err := db.NewRaw("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'").Scan(ctx, &waiting)
		return err == nil && waiting >= n
	}, 10*time.Second, 5*time.Millisecond)
}

// budgetBundle is a partner with one campaign "budget" (x2, the given
// budget) on a database of its own, for tests whose transactions commit.
type budgetBundle struct {
	ctx context.Context
	db  *database.DB
	svc *campaign.Service
	p   uuid.UUID
}

func setupBudget(t *testing.T, budget int64) *budgetBundle {
	t.Helper()
	b := &budgetBundle{ctx: context.Background(), db: dbtest.NewDB(t), svc: campaign.NewService()}
	b.p = newPartner(t, b.ctx, b.db.Bun)
	_, _, err := b.svc.PutTx(b.ctx, b.db.Bun, b.p, "budget", campaign.Input{Name: "B", MultiplierHundredths: ptr(200), BudgetPoints: ptr(budget), Stacking: campaign.StackAdditive, Enabled: true})
	require.NoError(t, err)
	return b
}

// openEarn applies an earn of u in a transaction it leaves open (the test
// commits it; cleanup rolls back what is left), and checks its award.
func (b *budgetBundle) openEarn(t *testing.T, u uuid.UUID, base int64) bun.Tx {
	t.Helper()
	tx, err := b.db.Bun.BeginTx(b.ctx, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback() })
	awards, err := b.svc.ApplyTx(b.ctx, tx, b.p, u, campaign.Facts{Action: "purchase", BasePoints: base})
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"budget": base}, points(awards))
	return tx
}

// earnWithoutWaiting applies and commits an earn of u that may not wait
// for a lock (lock_timeout 2 s fails it), and checks its award.
func (b *budgetBundle) earnWithoutWaiting(t *testing.T, u uuid.UUID, base int64) error {
	t.Helper()
	return b.db.Bun.RunInTx(b.ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.ExecContext(ctx, "SET LOCAL lock_timeout = '2s'"); err != nil {
			return err
		}
		awards, err := b.svc.ApplyTx(ctx, tx, b.p, u, campaign.Facts{Action: "purchase", BasePoints: base})
		if err == nil {
			require.Equal(t, map[string]int64{"budget": base}, points(awards))
		}
		return err
	})
}

// TestBudgetDoesNotSerialise: an earn of a budgeted campaign whose
// transaction is still open does not hold up the earn of a user in another
// slot (a single budget row locked until the commit did: the second earn
// waited for the first one's commit).
func TestBudgetDoesNotSerialise(t *testing.T) {
	t.Parallel()
	b := setupBudget(t, 10_000)
	u1, u2 := userInSlot(t, b.ctx, b.db.Bun, b.p, 3), userInSlot(t, b.ctx, b.db.Bun, b.p, 11)

	first := b.openEarn(t, u1, 50)
	// The first earn is still open: the second one must not wait for it.
	require.NoError(t, b.earnWithoutWaiting(t, u2, 40))
	require.NoError(t, first.Commit())
	c, err := b.svc.Get(b.ctx, b.db.Bun, b.p, "budget")
	require.NoError(t, err)
	require.Equal(t, int64(90), c.SpentPoints)
}

// TestBudgetHeldSlotDoesNotWait: an earn whose user's slot another open
// earn holds takes the next free slot instead of queueing on it (SKIP
// LOCKED), so two users of one slot do not wait for each other either.
func TestBudgetHeldSlotDoesNotWait(t *testing.T) {
	t.Parallel()
	b := setupBudget(t, 10*campaign.BudgetSlots)
	const k = 9
	u1, u2 := userInSlot(t, b.ctx, b.db.Bun, b.p, k), userInSlot(t, b.ctx, b.db.Bun, b.p, k)

	first := b.openEarn(t, u1, 5)
	require.NoError(t, b.earnWithoutWaiting(t, u2, 6), "the second earn of slot %d must not wait for the first", k)
	require.NoError(t, first.Commit())

	rows := slotsOf(t, b.ctx, b.db.Bun, b.p, "budget")
	require.Equal(t, int64(5), rows[k].Spent)
	require.Equal(t, int64(6), rows[k+1].Spent, "the next slot paid")
}

// TestBudgetFallbackNoDeadlock: earns whose awards no single slot can pay
// lock all the slots in order and wait for an open earn holding one of
// them, while other earns keep taking free slots; once it commits, each is
// paid in full from several slots, and nobody deadlocks (a deadlock aborts
// one of them with 40P01).
func TestBudgetFallbackNoDeadlock(t *testing.T) {
	t.Parallel()
	b := setupBudget(t, 10*campaign.BudgetSlots) // slots of 10 points each
	ctx, db, svc, p := b.ctx, b.db, b.svc, b.p
	const k = 9
	uc, ua, ub, ud := userInSlot(t, ctx, db.Bun, p, k), userInSlot(t, ctx, db.Bun, p, k), userInSlot(t, ctx, db.Bun, p, 2), userInSlot(t, ctx, db.Bun, p, k)

	c := b.openEarn(t, uc, 5)

	earn := func(u uuid.UUID, base int64, out *[]campaign.Award) <-chan error {
		done := make(chan error, 1)
		go func() {
			done <- db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
				awards, err := svc.ApplyTx(ctx, tx, p, u, campaign.Facts{Action: "purchase", BasePoints: base})
				*out = awards
				return err
			})
		}()
		return done
	}
	var aAwards, bAwards, dAwards []campaign.Award
	aDone := earn(ua, 12, &aAwards)
	waitLockWaiters(t, ctx, db.Bun, 1) // A holds 0..k-1, waits on slot k
	bDone := earn(ub, 15, &bAwards)
	waitLockWaiters(t, ctx, db.Bun, 2) // B waits on slot 0
	// An award one slot can pay does not queue behind them: D (slot k,
	// held by C) takes the first free slot above k.
	require.NoError(t, <-earn(ud, 4, &dAwards))
	require.Equal(t, map[string]int64{"budget": 4}, points(dAwards))
	require.NoError(t, c.Commit())
	require.NoError(t, <-aDone)
	require.NoError(t, <-bDone)
	require.Equal(t, map[string]int64{"budget": 12}, points(aAwards))
	require.Equal(t, map[string]int64{"budget": 15}, points(bAwards))

	rows := slotsOf(t, ctx, db.Bun, p, "budget")
	budget, spent := sumSlots(rows)
	require.Equal(t, int64(10*campaign.BudgetSlots), budget)
	require.Equal(t, int64(5+12+15+4), spent)
}

// TestSmallBudgetStorm: a budget of 100 over the slots (32 slots: shares of
// 3 and 4) and awards of 7: no slot can pay a whole award, so every earn
// goes through the fallback. The campaign pays exactly 100 (fourteen awards of 7
// and one partial award of 2), every slot ends spent, and the slots, the
// campaign's spent and the awards the committed earns got all agree.
func TestSmallBudgetStorm(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.NewDB(t)
	svc := campaign.NewService()
	p := newPartner(t, ctx, db.Bun)
	_, _, err := svc.PutTx(ctx, db.Bun, p, "small", campaign.Input{Name: "Small", BonusPoints: ptr(int64(7)), BudgetPoints: ptr(int64(100)), Stacking: campaign.StackAdditive, Enabled: true})
	require.NoError(t, err)
	// A second budgeted campaign on the same earns: the locks of two
	// campaigns interleave too.
	_, _, err = svc.PutTx(ctx, db.Bun, p, "twin", campaign.Input{Name: "Twin", BonusPoints: ptr(int64(5)), BudgetPoints: ptr(int64(61)), Stacking: campaign.StackAdditive, Enabled: true})
	require.NoError(t, err)
	users := make([]uuid.UUID, 32)
	for i := range users {
		users[i] = newUser(t, ctx, db.Bun, p, "", "")
	}

	const workers, earns = 32, 4
	var mu sync.Mutex
	got := map[string][]int64{}
	var failed atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range earns {
				var awards []campaign.Award
				err := db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
					var err error
					awards, err = svc.ApplyTx(ctx, tx, p, users[w], campaign.Facts{Action: "purchase", BasePoints: 10})
					return err
				})
				if err != nil {
					t.Error(err)
					failed.Add(1)
					return
				}
				mu.Lock()
				for _, a := range awards {
					got[a.Code] = append(got[a.Code], a.Points)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	require.Zero(t, failed.Load())

	for _, tc := range []struct {
		code          string
		budget, award int64
	}{{"small", 100, 7}, {"twin", 61, 5}} {
		var sum, partial int64
		for _, pts := range got[tc.code] {
			sum += pts
			if pts != tc.award {
				require.Zero(t, partial, "%s: a second partial award", tc.code)
				partial = pts
			}
		}
		require.Equal(t, tc.budget, sum, tc.code)
		require.Equal(t, tc.budget%tc.award, partial, tc.code)
		c, err := svc.Get(ctx, db.Bun, p, tc.code)
		require.NoError(t, err)
		require.Equal(t, tc.budget, c.SpentPoints, tc.code)
		rows := slotsOf(t, ctx, db.Bun, p, tc.code)
		require.Len(t, rows, campaign.BudgetSlots)
		for _, r := range rows {
			require.Equal(t, r.Budget, r.Spent, "%s slot %d", tc.code, r.Slot)
		}
		budget, spent := sumSlots(rows)
		require.Equal(t, tc.budget, budget)
		require.Equal(t, tc.budget, spent)
	}
}

// TestPutRespreadsBudget: a PUT that changes the budget re-spreads it and
// what was spent over the slots, exactly; lifting the budget keeps the
// spent total on the campaign, setting one again brings it back to the
// slots; DELETE drops the slots.
func TestPutRespreadsBudget(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.put(t, "grow", campaign.Input{BonusPoints: ptr(int64(9)), BudgetPoints: ptr(int64(1000))})
	for slot := range 5 {
		u := userInSlot(t, b.ctx, b.db, b.partner, slot)
		require.Equal(t, map[string]int64{"grow": 9}, points(b.apply(t, u, campaign.Facts{Action: "purchase", BasePoints: 10})))
	}
	check := func(budget, spent int64) {
		t.Helper()
		c, err := b.svc.Get(b.ctx, b.db, b.partner, "grow")
		require.NoError(t, err)
		require.Equal(t, spent, c.SpentPoints)
		rows := slotsOf(t, b.ctx, b.db, b.partner, "grow")
		require.Len(t, rows, campaign.BudgetSlots)
		gotBudget, gotSpent := sumSlots(rows)
		require.Equal(t, budget, gotBudget)
		require.Equal(t, spent, gotSpent)
		for _, r := range rows {
			require.LessOrEqual(t, r.Spent, r.Budget)
		}
	}
	check(1000, 45)
	for _, budget := range []int64{45, 47, 5000, 61} {
		c := b.put(t, "grow", campaign.Input{BonusPoints: ptr(int64(9)), BudgetPoints: ptr(budget)})
		require.Equal(t, int64(45), c.SpentPoints)
		check(budget, 45)
	}
	// 61 - 45 = 16 left, at most 1 per slot: the 9 come from the fallback.
	u := userInSlot(t, b.ctx, b.db, b.partner, 0)
	require.Equal(t, map[string]int64{"grow": 9}, points(b.apply(t, u, campaign.Facts{Action: "purchase", BasePoints: 10})))
	check(61, 54)

	c := b.put(t, "grow", campaign.Input{BonusPoints: ptr(int64(9))})
	require.Equal(t, int64(54), c.SpentPoints)
	require.Empty(t, slotsOf(t, b.ctx, b.db, b.partner, "grow"))
	require.Equal(t, map[string]int64{"grow": 9}, points(b.apply(t, u, campaign.Facts{Action: "purchase", BasePoints: 10})))
	c, err := b.svc.Get(b.ctx, b.db, b.partner, "grow")
	require.NoError(t, err)
	require.Equal(t, int64(54), c.SpentPoints, "no budget: nothing is counted")

	c = b.put(t, "grow", campaign.Input{BonusPoints: ptr(int64(9)), BudgetPoints: ptr(int64(60))})
	require.Equal(t, int64(54), c.SpentPoints)
	check(60, 54)
	require.Equal(t, map[string]int64{"grow": 6}, points(b.apply(t, u, campaign.Facts{Action: "purchase", BasePoints: 10})))
	check(60, 60)

	require.NoError(t, b.svc.DeleteTx(b.ctx, b.db, b.partner, "grow"))
	require.Empty(t, slotsOf(t, b.ctx, b.db, b.partner, "grow"))
}
