package ledger_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/event"
	"github.com/perkshq/perks/internal/keyring"
	"github.com/perkshq/perks/internal/ledger"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/user"
)

type bundle struct {
	db      *database.DB
	ledger  *ledger.Service
	users   *user.Service
	partner *partner.Partner
}

// setup gives the test its own database (the concurrency tests commit).
func setup(t testing.TB) *bundle {
	t.Helper()
	db := dbtest.NewDB(t)
	keys, err := keyring.New(make([]byte, keyring.KeySize))
	require.NoError(t, err)
	ev := event.NewRecorder()
	p, err := partner.NewService(keys).Upsert(context.Background(), db.Bun, partner.CreateParams{Slug: "acme", Name: "Acme"})
	require.NoError(t, err)
	return &bundle{db: db, ledger: ledger.NewService(ev), users: user.NewService(keys, ev), partner: p}
}

func (b *bundle) user(t testing.TB, ext string) uuid.UUID {
	t.Helper()
	var id uuid.UUID
	require.NoError(t, b.db.Bun.RunInTx(context.Background(), nil, func(ctx context.Context, tx bun.Tx) error {
		res, err := b.users.UpsertTx(ctx, tx, b.partner.ID, ext, user.Profile{})
		if err == nil {
			id = res.User.ID
		}
		return err
	}))
	return id
}

func (b *bundle) apply(ctx context.Context, c ledger.Change) (*ledger.Entry, error) {
	var e *ledger.Entry
	err := b.db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		e, err = b.ledger.ApplyTx(ctx, tx, b.partner.ID, c)
		return err
	})
	return e, err
}

func (b *bundle) balance(t *testing.T, u uuid.UUID) *ledger.Balance {
	t.Helper()
	bal, err := b.ledger.BalanceOf(context.Background(), b.db.Bun, b.partner.ID, u)
	require.NoError(t, err)
	return bal
}

// TestConcurrentBurnsNeverOverspend: 100 concurrent burns of 10 points
// against 100 points: exactly 10 succeed, the rest are refused, and the
// balance is the sum of the entries.
func TestConcurrentBurnsNeverOverspend(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	u := b.user(t, "spender")
	_, err := b.apply(ctx, ledger.Change{UserID: u, Kind: ledger.KindEarn, Points: 100, Reason: "seed"})
	require.NoError(t, err)

	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, refused := 0, 0
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := b.apply(ctx, ledger.Change{UserID: u, Kind: ledger.KindBurn, Points: 10, Reason: "claim"})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case apperr.Is(err, apperr.CodeInsufficientPoints):
				refused++
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}()
	}
	wg.Wait()
	require.Equal(t, 10, ok)
	require.Equal(t, 90, refused)
	require.Zero(t, b.balance(t, u).Points)
	require.NoError(t, ledger.CheckInvariants(ctx, b.db.Bun))
}

// TestRandomMixKeepsInvariants: earns, burns and adjustments over 20 users
// from 10 goroutines; afterwards every invariant holds.
func TestRandomMixKeepsInvariants(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	users := make([]uuid.UUID, 20)
	for i := range users {
		users[i] = b.user(t, fmt.Sprintf("u%02d", i))
	}
	var wg sync.WaitGroup
	for g := 0; g < 10; g++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(seed, seed))
			for i := 0; i < 60; i++ {
				c := ledger.Change{UserID: users[rnd.IntN(len(users))], Points: int64(1 + rnd.IntN(50)), Reason: "mix"}
				switch rnd.IntN(4) {
				case 0, 1:
					c.Kind = ledger.KindEarn
				case 2:
					c.Kind = ledger.KindBurn
				case 3:
					c.Kind = ledger.KindAdjust
					if rnd.IntN(2) == 0 {
						c.Points = -c.Points
					}
				}
				_, err := b.apply(ctx, c)
				if err != nil && !apperr.Is(err, apperr.CodeInsufficientPoints) {
					t.Errorf("apply %+v: %v", c, err)
				}
			}
		}(uint64(g + 1))
	}
	wg.Wait()
	require.NoError(t, ledger.CheckInvariants(ctx, b.db.Bun))
	var entries int
	require.NoError(t, b.db.Bun.NewRaw("SELECT count(*) FROM ledger_entries").Scan(ctx, &entries))
	require.Greater(t, entries, 300, "most operations applied")
}

func TestApplyRules(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	u := b.user(t, "rules")

	cases := []struct {
		name   string
		change ledger.Change
		code   apperr.Code
	}{
		{"zero earn", ledger.Change{Kind: ledger.KindEarn, Points: 0}, apperr.CodePointsOutOfRange},
		{"negative earn", ledger.Change{Kind: ledger.KindEarn, Points: -5}, apperr.CodePointsOutOfRange},
		{"earn over maximum", ledger.Change{Kind: ledger.KindEarn, Points: ledger.MaxPoints + 1}, apperr.CodePointsOutOfRange},
		{"zero adjust", ledger.Change{Kind: ledger.KindAdjust, Points: 0}, apperr.CodePointsOutOfRange},
		{"burn more than the balance", ledger.Change{Kind: ledger.KindBurn, Points: 1}, apperr.CodeInsufficientPoints},
		{"negative adjust below zero", ledger.Change{Kind: ledger.KindAdjust, Points: -1}, apperr.CodeInsufficientPoints},
		{"unknown user", ledger.Change{Kind: ledger.KindEarn, Points: 1, UserID: uuid.New()}, apperr.CodeUserNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.change.UserID == uuid.Nil {
				c.change.UserID = u
			}
			_, err := b.apply(ctx, c.change)
			require.Equal(t, c.code, apperr.CodeOf(err), "%v", err)
		})
	}

	// Overflow is refused, never wrapped.
	for i := 0; i < 1000; i++ {
		if _, err := b.apply(ctx, ledger.Change{UserID: u, Kind: ledger.KindEarn, Points: ledger.MaxPoints}); err != nil {
			require.Equal(t, apperr.CodePointsOutOfRange, apperr.CodeOf(err))
			break
		}
	}
	require.Equal(t, ledger.MaxBalance, b.balance(t, u).Points)
	_, err := b.apply(ctx, ledger.Change{UserID: u, Kind: ledger.KindEarn, Points: 1})
	require.Equal(t, apperr.CodePointsOutOfRange, apperr.CodeOf(err))

	// A reference is used once.
	u2 := b.user(t, "refs")
	_, err = b.apply(ctx, ledger.Change{UserID: u2, Kind: ledger.KindEarn, Points: 5, Reference: "order-1"})
	require.NoError(t, err)
	_, err = b.apply(ctx, ledger.Change{UserID: u2, Kind: ledger.KindEarn, Points: 5, Reference: "order-1"})
	require.Equal(t, apperr.CodeConflict, apperr.CodeOf(err))
	require.NoError(t, ledger.CheckInvariants(ctx, b.db.Bun))
}

// TestEntriesAreAppendOnly: the database refuses to change or delete entries.
func TestEntriesAreAppendOnly(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	u := b.user(t, "ao")
	e, err := b.apply(ctx, ledger.Change{UserID: u, Kind: ledger.KindEarn, Points: 5})
	require.NoError(t, err)
	_, err = b.db.Bun.NewRaw("UPDATE ledger_entries SET points = 500 WHERE id = ?", e.ID).Exec(ctx)
	require.ErrorContains(t, err, "append-only")
	_, err = b.db.Bun.NewRaw("DELETE FROM ledger_entries WHERE id = ?", e.ID).Exec(ctx)
	require.ErrorContains(t, err, "append-only")
	// A balance may be a debt (a reversal under negativeBalance allow),
	// within the same bound as above zero.
	_, err = b.db.Bun.NewRaw("UPDATE balances SET points = -1000000000001").Exec(ctx)
	require.ErrorContains(t, err, "balances_points_min")
}

// TestHistoryPagesAreStable: pages keyed by entry id do not shift when new
// entries arrive between page reads.
func TestHistoryPagesAreStable(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	u := b.user(t, "hist")
	for i := 1; i <= 7; i++ {
		_, err := b.apply(ctx, ledger.Change{UserID: u, Kind: ledger.KindEarn, Points: int64(i), OccurredAt: time.Now()})
		require.NoError(t, err)
	}
	page1, err := b.ledger.History(ctx, b.db.Bun, b.partner.ID, u, ledger.DirectionAll, 0, 3)
	require.NoError(t, err)
	require.Equal(t, []int64{7, 6, 5}, points(page1))
	_, err = b.apply(ctx, ledger.Change{UserID: u, Kind: ledger.KindEarn, Points: 100})
	require.NoError(t, err)
	page2, err := b.ledger.History(ctx, b.db.Bun, b.partner.ID, u, ledger.DirectionAll, page1[2].ID, 3)
	require.NoError(t, err)
	require.Equal(t, []int64{4, 3, 2}, points(page2))

	_, err = b.apply(ctx, ledger.Change{UserID: u, Kind: ledger.KindBurn, Points: 10})
	require.NoError(t, err)
	debits, err := b.ledger.History(ctx, b.db.Bun, b.partner.ID, u, ledger.DirectionDebit, 0, 10)
	require.NoError(t, err)
	require.Equal(t, []int64{-10}, points(debits))
}

func points(es []ledger.Entry) []int64 {
	out := make([]int64, len(es))
	for i, e := range es {
		out[i] = e.Points
	}
	return out
}
