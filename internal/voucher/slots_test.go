package voucher_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/catalog"
	"github.com/perkshq/perks/internal/user"
	"github.com/perkshq/perks/internal/voucher"
)

// TestClaimSlotsUnderLoad: many claims of one gift at once, straight into
// ClaimTx (no gate), each in its own transaction. A gift's units are spread
// over its claim slots, and a stock smaller than the users leaves most
// slots empty, so claims go through every path of gift_take_unit (a free
// slot, every slot held, none left): the vouchers are exactly the stock,
// every other claim is OUT_OF_STOCK and changed nothing, and the counts
// the catalog shows are exact. A PUT in the middle of the storm folds the
// slots and re-spreads what is left, and raising the stock then hands out
// exactly the new units.
func TestClaimSlotsUnderLoad(t *testing.T) {
	t.Parallel()

	type bundle struct {
		env   *apptest.Env
		users []uuid.UUID
	}
	setup := func(t *testing.T, users int) *bundle {
		t.Helper()
		env := apptest.New(t)
		b := &bundle{env: env}
		for i := range users {
			b.users = append(b.users, env.FundedUser("acme", fmt.Sprintf("stormer-%03d", i), "", 1000))
		}
		return b
	}
	// storm runs one claim of gift per user, all at once, and answers
	// the outcome per user ("" for a voucher), while during runs too.
	storm := func(t *testing.T, b *bundle, gift uuid.UUID, users []uuid.UUID, during func()) []apperr.Code {
		t.Helper()
		ctx := context.Background()
		p := b.env.Acme.Partner
		out := make([]apperr.Code, len(users))
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, id := range users {
			u, err := b.env.App.Users.ByID(ctx, b.env.DB.Bun, p.ID, id)
			require.NoError(t, err)
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				err := b.env.DB.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
					_, err := b.env.App.Vouchers.ClaimTx(ctx, tx, p, u, gift)
					return err
				})
				var ae *apperr.Error
				switch {
				case err == nil:
				case errors.As(err, &ae):
					out[i] = ae.Code
				default:
					out[i] = apperr.Code("unexpected: " + err.Error())
				}
			}()
		}
		close(start)
		if during != nil {
			during()
		}
		wg.Wait()
		return out
	}
	counts := func(codes []apperr.Code) map[apperr.Code]int {
		m := map[apperr.Code]int{}
		for _, c := range codes {
			m[c]++
		}
		return m
	}
	// check asserts the gift's vouchers, counts and slots, each refused
	// user's balance untouched, and the invariants.
	check := func(t *testing.T, b *bundle, sku string, codes []apperr.Code, users []uuid.UUID, cost int64, vouchers int) {
		t.Helper()
		ctx := context.Background()
		g, err := b.env.App.Catalog.GiftBySKU(ctx, b.env.DB.Bun, b.env.Acme.Partner.ID, sku)
		require.NoError(t, err)
		require.Equal(t, vouchers, b.env.Count("vouchers", "gift_id = ?", g.ID))
		require.Equal(t, vouchers, g.ClaimedCount, "the catalog's claimed count")
		if g.StockTotal != nil {
			require.Equal(t, *g.StockTotal-vouchers, *g.Remaining())
		}
		for i, c := range codes {
			n := b.env.Count("vouchers", "gift_id = ? AND user_id = ?", g.ID, users[i])
			require.Equal(t, map[bool]int{true: 1, false: 0}[c == ""], n, "user %d (%s)", i, c)
		}
		require.NoError(t, voucher.CheckInvariants(ctx, b.env.DB.Bun))
	}

	t.Run("a small stock is handed out exactly", func(t *testing.T) {
		t.Parallel()
		b := setup(t, 60)
		// 13 units over the slots: some slots run out before others.
		b.env.PutGift("acme", "small", catalog.GiftInput{Title: "Small", CostPoints: 40, Stock: ptr(13), CodeSource: catalog.SourceNone})
		g, err := b.env.App.Catalog.GiftBySKU(context.Background(), b.env.DB.Bun, b.env.Acme.Partner.ID, "small")
		require.NoError(t, err)
		codes := storm(t, b, g.ID, b.users, nil)
		require.Equal(t, map[apperr.Code]int{"": 13, apperr.CodeOutOfStock: 47}, counts(codes))
		check(t, b, "small", codes, b.users, 40, 13)
		for i, c := range codes {
			want := int64(1000)
			if c == "" {
				want = 960
			}
			require.Equal(t, want, b.env.Balance("acme", b.users[i]), "user %d (%s)", i, c)
		}
		require.Equal(t, 0, b.env.Count("gift_claim_slots", "gift_id = ? AND room > 0", g.ID), "no unit left in any slot")
	})

	t.Run("a pool gift counts its codes", func(t *testing.T) {
		t.Parallel()
		b := setup(t, 40)
		b.env.PutGift("acme", "pooled", catalog.GiftInput{Title: "Pooled", CostPoints: 10, Stock: ptr(25), CodeSource: catalog.SourcePool})
		codes := make([]string, 30)
		for i := range codes {
			codes[i] = fmt.Sprintf("POOLED-%03d", i)
		}
		b.env.UploadCodes("acme", "pooled", codes...)
		g, err := b.env.App.Catalog.GiftBySKU(context.Background(), b.env.DB.Bun, b.env.Acme.Partner.ID, "pooled")
		require.NoError(t, err)
		out := storm(t, b, g.ID, b.users, nil)
		// A claim takes its code before its unit, so a claim that finds the
		// last codes held by claims still in flight (which will find no
		// unit) answers CODES_EXHAUSTED instead (insertTx).
		c := counts(out)
		require.Equal(t, 25, c[""])
		require.Equal(t, 15, c[apperr.CodeOutOfStock]+c[apperr.CodeCodesExhausted], "%v", c)
		check(t, b, "pooled", out, b.users, 10, 25)
		g, err = b.env.App.Catalog.GiftBySKU(context.Background(), b.env.DB.Bun, b.env.Acme.Partner.ID, "pooled")
		require.NoError(t, err)
		require.Equal(t, 5, g.CodesAvailable)
	})

	t.Run("a PUT during the storm, then a restock", func(t *testing.T) {
		t.Parallel()
		b := setup(t, 60)
		in := catalog.GiftInput{Title: "Restocked", CostPoints: 20, Stock: ptr(10), CodeSource: catalog.SourceGenerated, CodePattern: "RS-XXXX-####"}
		b.env.PutGift("acme", "restocked", in)
		g, err := b.env.App.Catalog.GiftBySKU(context.Background(), b.env.DB.Bun, b.env.Acme.Partner.ID, "restocked")
		require.NoError(t, err)
		renamed := in
		renamed.Title = "Restocked, renamed"
		first := storm(t, b, g.ID, b.users[:30], func() { b.env.PutGift("acme", "restocked", renamed) })
		require.Equal(t, map[apperr.Code]int{"": 10, apperr.CodeOutOfStock: 20}, counts(first))
		check(t, b, "restocked", first, b.users[:30], 20, 10)

		more := renamed
		more.Stock = ptr(17)
		b.env.PutGift("acme", "restocked", more)
		second := storm(t, b, g.ID, b.users[30:], nil)
		require.Equal(t, map[apperr.Code]int{"": 7, apperr.CodeOutOfStock: 23}, counts(second))
		check(t, b, "restocked", second, b.users[30:], 20, 17)

		// Lowering the stock below what was claimed is still refused.
		err = b.env.DB.Bun.RunInTx(context.Background(), nil, func(ctx context.Context, tx bun.Tx) error {
			less := more
			less.Stock = ptr(16)
			_, _, err := b.env.App.Catalog.PutGiftTx(ctx, tx, b.env.Acme.Partner.ID, "restocked", less)
			return err
		})
		require.ErrorContains(t, err, "17 units are already claimed")
	})

	t.Run("an unlimited gift counts every claim", func(t *testing.T) {
		t.Parallel()
		b := setup(t, 40)
		b.env.PutGift("acme", "endless", catalog.GiftInput{Title: "Endless", CostPoints: 5, CodeSource: catalog.SourceNone})
		g, err := b.env.App.Catalog.GiftBySKU(context.Background(), b.env.DB.Bun, b.env.Acme.Partner.ID, "endless")
		require.NoError(t, err)
		out := storm(t, b, g.ID, b.users, nil)
		require.Equal(t, map[apperr.Code]int{"": 40}, counts(out))
		check(t, b, "endless", out, b.users, 5, 40)
		require.Equal(t, 0, b.env.Count("gift_claim_slots", "gift_id = ? AND room IS NOT NULL", g.ID))
	})
}

// TestClaimsOfOneGiftDoNotWait: a claim of a gift does not wait for another
// claim of it still in its transaction (each holds one of the gift's claim
// slots, not the gift's row), while a retire waits for it, and a claim after
// the retire is refused.
func TestClaimsOfOneGiftDoNotWait(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	ctx := context.Background()
	p := env.Acme.Partner
	g := env.PutGift("acme", "shared", catalog.GiftInput{Title: "Shared", CostPoints: 10, Stock: ptr(100), CodeSource: catalog.SourceNone})
	user := func(ext string) *userT {
		u, err := env.App.Users.ByID(ctx, env.DB.Bun, p.ID, env.FundedUser("acme", ext, "", 100))
		require.NoError(t, err)
		return u
	}
	first, second, late := user("first"), user("second"), user("late")

	held, err := env.DB.Bun.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer held.Rollback() //nolint:errcheck
	_, err = env.App.Vouchers.ClaimTx(ctx, held, p, first, g.ID)
	require.NoError(t, err)

	// The second claim commits while the first still holds its unit.
	quick, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err = env.DB.Bun.RunInTx(quick, nil, func(ctx context.Context, tx bun.Tx) error {
		_, err := env.App.Vouchers.ClaimTx(ctx, tx, p, second, g.ID)
		return err
	})
	require.NoError(t, err)

	retired := make(chan error, 1)
	go func() { retired <- env.App.Catalog.Retire(ctx, env.DB.Bun, p.ID, "shared") }()
	select {
	case err := <-retired:
		t.Fatalf("the retire returned (%v) while a claim held a unit", err)
	case <-time.After(200 * time.Millisecond):
	}
	require.NoError(t, held.Commit())
	require.NoError(t, <-retired)
	err = env.DB.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		_, err := env.App.Vouchers.ClaimTx(ctx, tx, p, late, g.ID)
		return err
	})
	require.ErrorContains(t, err, string(apperr.CodeGiftUnavailable))
	require.Equal(t, 2, env.Count("vouchers", "gift_id = ?", g.ID))
	require.NoError(t, voucher.CheckInvariants(ctx, env.DB.Bun))
}

type userT = user.User
