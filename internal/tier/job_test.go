package tier_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/earning"
	"github.com/perkshq/perks/internal/tier"
)

func (b *bundle) job(batch int) *tier.ReviewWorker {
	return &tier.ReviewWorker{DB: b.tx, Service: b.tiers, Now: func() time.Time { return b.now }, Batch: batch}
}

func (b *bundle) run(t *testing.T, w *tier.ReviewWorker) (int, int) {
	t.Helper()
	r, c, err := w.Run(b.ctx)
	require.NoError(t, err)
	return r, c
}

// TestReviewPeriodEndCalendarYear travels past two year ends: gold reached
// in March 2026 holds through 2026 and, with 2026's points, through 2027
// too; with nothing earned in 2027 it drops after 1 January 2028 plus the
// 10 grace days, once, whatever the number of runs. Points earned during
// the grace keep a tier they reach.
func TestReviewPeriodEndCalendarYear(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.putTiers(t)
	b.policy(t, tier.BasisCalendarYear, tier.DowngradePeriodEnd, 10, 0)
	u, v := b.user(t, "alice"), b.user(t, "bob")
	b.earn(t, "alice", 1000) // 2026-03-10: gold
	b.earn(t, "bob", 1000)
	require.Equal(t, "gold", b.code(t, u))
	w := b.job(0)

	b.now = time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC)
	require.Equal(t, [2]int{0, 0}, fmt2(b.run(t, w)), "nothing due before the year ends")
	b.now = time.Date(2027, 1, 5, 0, 0, 0, 0, time.UTC)
	require.Equal(t, [2]int{0, 0}, fmt2(b.run(t, w)), "within the grace")
	b.now = time.Date(2027, 1, 11, 0, 1, 0, 0, time.UTC)
	require.Equal(t, [2]int{2, 0}, fmt2(b.run(t, w)), "2026's points keep gold through 2027")
	require.Equal(t, "gold", b.code(t, u))
	require.Equal(t, [2]int{0, 0}, fmt2(b.run(t, w)), "reviewed once")

	// Bob earns 150 during 2028's grace: silver in the new window.
	b.now = time.Date(2028, 1, 3, 0, 0, 0, 0, time.UTC)
	b.earn(t, "bob", 150)
	require.Equal(t, "gold", b.code(t, v), "not lowered by an earn")
	b.now = time.Date(2028, 1, 11, 0, 1, 0, 0, time.UTC)
	require.Equal(t, [2]int{2, 2}, fmt2(b.run(t, w)))
	require.Equal(t, "base", b.code(t, u))
	require.Equal(t, "silver", b.code(t, v))
	require.Equal(t, [2]int{0, 0}, fmt2(b.run(t, w)), "a second run changes nothing")
	require.Equal(t, []string{"base>gold", "gold>base"}, b.changes(t, u))
	require.Equal(t, []string{"base>gold", "gold>silver"}, b.changes(t, v))
}

func fmt2(a, b int) [2]int { return [2]int{a, b} }

// TestReviewImmediateRolling: under immediate with a rolling 12-month
// window, gold drops when the month that earned it leaves the window.
func TestReviewImmediateRolling(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.putTiers(t)
	b.policy(t, tier.BasisRolling12, tier.DowngradeImmediate, 0, 0)
	u := b.user(t, "alice")
	b.earn(t, "alice", 1000) // March 2026
	b.now = time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	b.earn(t, "alice", 200)
	w := b.job(0)
	for _, m := range []time.Month{4, 5, 6, 7, 8, 9, 10, 11, 12} {
		b.now = time.Date(2026, m, 1, 0, 1, 0, 0, time.UTC)
		b.run(t, w)
		require.Equal(t, "gold", b.code(t, u), "month %d", m)
	}
	b.now = time.Date(2027, 2, 28, 0, 0, 0, 0, time.UTC)
	b.run(t, w)
	require.Equal(t, "gold", b.code(t, u))
	b.now = time.Date(2027, 3, 1, 0, 1, 0, 0, time.UTC) // March 2026 left the window
	b.run(t, w)
	require.Equal(t, "silver", b.code(t, u))
	require.Equal(t, []string{"base>gold", "gold>silver"}, b.changes(t, u))
}

// TestReviewResumable: a pass in batches of 2 whose second batch fails
// (a crash) keeps the first batch's changes, and the next run finishes the
// rest; every user changes exactly once.
func TestReviewResumable(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.putTiers(t)
	b.policy(t, tier.BasisCalendarYear, tier.DowngradeImmediate, 0, 0)
	ids := make([]uuid.UUID, 5)
	for i := range ids {
		ext := fmt.Sprintf("u%d", i)
		ids[i] = b.user(t, ext)
		b.earn(t, ext, 1000)
	}
	b.now = time.Date(2027, 1, 1, 0, 1, 0, 0, time.UTC)
	crash := &crashingDB{IDB: b.tx, failAfter: 1}
	w := &tier.ReviewWorker{DB: crash, Service: b.tiers, Now: func() time.Time { return b.now }, Batch: 2}
	r, c, err := w.Run(b.ctx)
	require.ErrorIs(t, err, errCrash)
	require.Equal(t, [2]int{2, 2}, [2]int{r, c}, "the first batch committed")
	require.Equal(t, [2]int{3, 3}, fmt2(b.run(t, b.job(2))))
	require.Equal(t, [2]int{0, 0}, fmt2(b.run(t, b.job(2))))
	for _, u := range ids {
		require.Equal(t, "base", b.code(t, u))
		require.Equal(t, []string{"base>gold", "gold>base"}, b.changes(t, u))
	}
}

var errCrash = errors.New("crash")

// crashingDB fails the transaction after failAfter successful ones, after
// its work ran (so the batch is rolled back).
type crashingDB struct {
	bun.IDB
	failAfter, n int
}

func (c *crashingDB) RunInTx(ctx context.Context, opts *sql.TxOptions, fn func(context.Context, bun.Tx) error) error {
	return c.IDB.RunInTx(ctx, opts, func(ctx context.Context, tx bun.Tx) error {
		if err := fn(ctx, tx); err != nil {
			return err
		}
		c.n++
		if c.n > c.failAfter {
			return errCrash
		}
		return nil
	})
}

// TestUpgradeRacesReview: earns on many connections race review passes on
// others, across a month boundary that drops old points out of a rolling
// window under immediate. After a final pass every user's tier is the one
// their qualifying points give, and each user's events chain from base to
// that tier.
func TestUpgradeRacesReview(t *testing.T) {
	t.Parallel()
	db := dbtest.NewDB(t)
	ctx := context.Background()
	var (
		mu  sync.Mutex
		now = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	tx, err := db.Bun.BeginTx(ctx, nil)
	require.NoError(t, err)
	b := setupOn(t, tx)
	b.tiers.Now, b.earning.Now = clock, clock
	b.earning.Ledger.Now = clock
	// Wired as in the app: the earns read the tier with their rule query
	// and skip the evaluation when they cannot have moved the user.
	b.earning.Tier = earning.TierModifier()
	b.putTiers(t)
	b.policy(t, tier.BasisRolling12, tier.DowngradeImmediate, 0, 0)
	const users = 30
	ext := func(i int) string { return fmt.Sprintf("u%d", i) }
	for i := range users {
		b.user(t, ext(i))
		b.earn(t, ext(i), 1000) // gold, March 2026
	}
	require.NoError(t, tx.Commit())

	mu.Lock()
	now = time.Date(2027, 3, 2, 0, 0, 0, 0, time.UTC) // March 2026 left the window
	mu.Unlock()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 3 {
				p := int64(250 * (i%4 + k))
				if p == 0 {
					continue
				}
				err := db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
					_, err := b.earning.EarnTx(ctx, tx, b.partner, earning.EarnParams{ExternalUserID: ext(i), Code: "buy", Points: &p})
					return err
				})
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &tier.ReviewWorker{DB: db.Bun, Service: b.tiers, Now: clock, Batch: 2}
			for range 3 {
				if _, _, err := w.Run(ctx); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	w := &tier.ReviewWorker{DB: db.Bun, Service: b.tiers, Now: clock}
	_, _, err = w.Run(ctx)
	require.NoError(t, err)

	list, err := b.tiers.List(ctx, db.Bun, b.partner.ID)
	require.NoError(t, err)
	rb := &bundle{ctx: ctx, tx: mustTx(t, db.Bun), tiers: b.tiers, partner: b.partner}
	for i := range users {
		var u uuid.UUID
		require.NoError(t, db.Bun.NewRaw("SELECT id FROM users WHERE partner_id = ? AND external_id = ?", b.partner.ID, ext(i)).Scan(ctx, &u))
		q := rb.qualifying(t, u)
		want := ""
		for _, tr := range list {
			if tr.Threshold <= q {
				want = tr.Code
			}
		}
		require.Equal(t, want, rb.code(t, u), "user %d with %d points", i, q)
		// The events of one instant have no order, but they must form a
		// path from base to the tier: every change recorded once.
		net := map[string]int{}
		for _, c := range rb.changes(t, u) {
			net[splitFrom(c)]--
			net[splitTo(c)]++
		}
		want2 := map[string]int{}
		if want != "base" {
			want2["base"], want2[want] = -1, 1
		}
		for k, n := range net {
			if n == 0 {
				delete(net, k)
			}
		}
		require.Equal(t, want2, net, "user %d events %v", i, rb.changes(t, u))
	}
}

func splitFrom(s string) string {
	for i := range s {
		if s[i] == '>' {
			return s[:i]
		}
	}
	return s
}

func splitTo(s string) string {
	for i := range s {
		if s[i] == '>' {
			return s[i+1:]
		}
	}
	return s
}

func mustTx(t *testing.T, db *bun.DB) bun.Tx {
	t.Helper()
	tx, err := db.BeginTx(context.Background(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback() })
	return tx
}

// TestUpgradeWaitsForReview is the interleaving the race test can only hope
// for, made deterministic: a review locks a gold user whose points left the
// window and lowers them (without seeing an earn in flight), the earn that
// brings them back to gold blocks on the row, then goes on after the review
// commits. The earn must compare against the review's result, not against
// what its snapshot saw (gold, "no change"): the user ends gold.
func TestUpgradeWaitsForReview(t *testing.T) {
	t.Parallel()
	db := dbtest.NewDB(t)
	ctx := context.Background()
	var (
		mu  sync.Mutex
		now = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	setupTx := mustTx(t, db.Bun)
	b := setupOn(t, setupTx)
	b.tiers.Now, b.earning.Now, b.earning.Ledger.Now = clock, clock, clock
	b.putTiers(t)
	b.policy(t, tier.BasisRolling12, tier.DowngradeImmediate, 0, 0)
	u := b.user(t, "alice")
	b.earn(t, "alice", 1000)
	require.NoError(t, setupTx.Commit())
	mu.Lock()
	now = time.Date(2027, 3, 2, 0, 0, 0, 0, time.UTC)
	mu.Unlock()

	review := mustTx(t, db.Bun)
	_, changes, err := b.tiers.ReviewDueTx(ctx, review, clock(), 10)
	require.NoError(t, err)
	require.Len(t, changes, 1, "the review lowers alice, not yet committed")

	earned := make(chan error, 1)
	go func() {
		earned <- db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			p := int64(1000)
			_, err := b.earning.EarnTx(ctx, tx, b.partner, earning.EarnParams{ExternalUserID: "alice", Code: "buy", Points: &p})
			return err
		})
	}()
	// Wait until the earn waits for the review's row lock.
	require.Eventually(t, func() bool {
		select {
		case err := <-earned:
			t.Fatalf("the earn did not wait for the review: %v", err)
		default:
		}
		var n int
		err := db.Bun.NewRaw(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%tier_evaluate%'`).Scan(ctx, &n)
		return err == nil && n > 0
	}, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, review.Commit())
	require.NoError(t, <-earned)

	check := mustTx(t, db.Bun)
	rb := &bundle{ctx: ctx, tx: check, tiers: b.tiers, partner: b.partner}
	require.Equal(t, int64(1000), rb.qualifying(t, u))
	require.Equal(t, "gold", rb.code(t, u))
}
