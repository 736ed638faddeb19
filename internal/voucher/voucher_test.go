package voucher_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/catalog"
	"github.com/perkshq/perks/internal/jobs"
	"github.com/perkshq/perks/internal/voucher"
)

// TestExpiry: the periodic job expires claimed vouchers past their
// lifetime, refunds them only when the gift says so, emits voucher.expired
// once, and leaves redeemed and unexpired vouchers alone.
func TestExpiry(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	ctx := context.Background()
	refunding := env.PutGift("acme", "refunding", catalog.GiftInput{Title: "R", CostPoints: 30, CodeSource: catalog.SourceNone,
		VoucherLifetimeSeconds: ptr(60), RefundOnExpiry: true})
	keeping := env.PutGift("acme", "keeping", catalog.GiftInput{Title: "K", CostPoints: 20, CodeSource: catalog.SourceNone,
		VoucherLifetimeSeconds: ptr(60)})
	longer := env.PutGift("acme", "longer", catalog.GiftInput{Title: "L", CostPoints: 10, CodeSource: catalog.SourceNone,
		VoucherLifetimeSeconds: ptr(3600)})
	forever := env.PutGift("acme", "forever", catalog.GiftInput{Title: "F", CostPoints: 10, CodeSource: catalog.SourceNone})
	uid := env.FundedUser("acme", "expirer", "", 1000)
	tok := env.Token("acme", "expirer", nil)
	claim := func(g *catalog.Gift, key string) string {
		c := env.Claim(tok, g.ID, key)
		require.Empty(t, c.Errors, "%+v", c.Errors)
		return c.VoucherID
	}
	r1, k1, l1, f1 := claim(refunding, "r1"), claim(keeping, "k1"), claim(longer, "l1"), claim(forever, "f1")
	used := claim(refunding, "r2")
	res := env.GraphQL(tok, `mutation($id: ID!) { redeemVoucher(id: $id) { status } }`, map[string]any{"id": used})
	require.Empty(t, res.Errors, "%+v", res.Errors)
	require.Equal(t, int64(1000-30-20-10-10-30), env.Balance("acme", uid))

	worker := &voucher.ExpireWorker{DB: env.DB.Bun, Vouchers: env.App.Vouchers}
	require.NoError(t, worker.Work(ctx, &river.Job[voucher.ExpireArgs]{}))
	require.Equal(t, 0, env.Count("vouchers", "status = 'expired'"), "nothing is due yet")

	env.Clock.Advance(61 * time.Second)
	n, err := voucher.DueBefore(ctx, env.DB.Bun, env.Now())
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.NoError(t, worker.Work(ctx, &river.Job[voucher.ExpireArgs]{}))
	status := func(id string) string {
		var s string
		require.NoError(t, env.DB.Bun.NewRaw("SELECT status FROM vouchers WHERE id = ?", id).Scan(ctx, &s))
		return s
	}
	require.Equal(t, "expired", status(r1))
	require.Equal(t, "expired", status(k1))
	require.Equal(t, "claimed", status(l1))
	require.Equal(t, "claimed", status(f1))
	require.Equal(t, "redeemed", status(used))
	require.Equal(t, int64(1000-20-10-10-30), env.Balance("acme", uid), "only the refunding gift refunds")
	require.Equal(t, 2, env.Count("events", "type = 'voucher.expired'"))
	require.Equal(t, 1, env.Count("events", "type = 'voucher.expired' AND (data->>'refunded')::bool"))

	// Running again changes nothing; a cancel after expiry is refused.
	require.NoError(t, worker.Work(ctx, &river.Job[voucher.ExpireArgs]{}))
	require.Equal(t, 2, env.Count("events", "type = 'voucher.expired'"))
	require.Equal(t, 1, env.Count("ledger_entries", "kind = 'refund'"))
	err = env.DB.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		_, err := env.App.Vouchers.CancelTx(ctx, tx, env.Acme.Partner.ID, mustUUID(t, r1), "")
		return err
	})
	require.ErrorContains(t, err, "VOUCHER_NOT_ACTIVE")
	require.NoError(t, voucher.CheckInvariants(ctx, env.DB.Bun))
}

// TestExpiryInBatches: more vouchers than one batch are all expired by one
// run, each refunded once.
func TestExpiryInBatches(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	ctx := context.Background()
	g := env.PutGift("acme", "batchy", catalog.GiftInput{Title: "B", CostPoints: 1, CodeSource: catalog.SourceGenerated,
		CodePattern: "BAT-XXXX-####", VoucherLifetimeSeconds: ptr(60), RefundOnExpiry: true})
	uid := env.FundedUser("acme", "batcher", "", 100)
	err := env.DB.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		u, err := env.App.Users.ByID(ctx, tx, env.Acme.Partner.ID, uid)
		if err != nil {
			return err
		}
		for i := 0; i < 25; i++ {
			if _, err := env.App.Vouchers.ClaimTx(ctx, tx, env.Acme.Partner, u, g.ID); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, int64(75), env.Balance("acme", uid))
	env.Clock.Advance(2 * time.Minute)
	n, err := env.App.Vouchers.ExpireDue(ctx, env.DB.Bun, 10)
	require.NoError(t, err)
	require.Equal(t, 25, n)
	require.Equal(t, int64(100), env.Balance("acme", uid))
	require.NoError(t, voucher.CheckInvariants(ctx, env.DB.Bun))
}

// TestPeriodicJobRegistered: the expiry job is one of the app's periodic
// jobs and its args are unique per period.
func TestPeriodicJobRegistered(t *testing.T) {
	t.Parallel()
	require.Len(t, voucher.Periodic(), 1)
	opts := voucher.ExpireArgs{}.InsertOpts()
	require.Equal(t, jobs.QueueMaintenance, opts.Queue)
	require.Equal(t, voucher.ExpiryInterval, opts.UniqueOpts.ByPeriod)
}

func ptr[T any](v T) *T { return &v }

func mustUUID(t *testing.T, s string) uuid.UUID {
	t.Helper()
	id, err := uuid.Parse(s)
	require.NoError(t, err)
	return id
}

// TestEraseKeepsStockAccounting: erasing a user removes their vouchers and
// history, but the units and codes they took stay taken; the invariants
// still hold and another user gets the last unit with a fresh code.
func TestEraseKeepsStockAccounting(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	ctx := context.Background()
	g := env.PutGift("acme", "erasable", catalog.GiftInput{Title: "E", CostPoints: 10, Stock: ptr(3), CodeSource: catalog.SourceGenerated,
		CodePattern: "ERA-XXXX-####"})
	uid := env.FundedUser("acme", "leaver", "", 100)
	tok := env.Token("acme", "leaver", nil)
	first, second := env.Claim(tok, g.ID, "e1"), env.Claim(tok, g.ID, "e2")
	require.Empty(t, first.Errors)
	require.Empty(t, second.Errors)
	res := env.Partner("acme", http.MethodPost, "/integrations/vouchers/"+second.VoucherID+"/cancel", nil)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)

	res = env.Partner("acme", http.MethodDelete, "/integrations/users/leaver?mode=erase", nil)
	require.Equal(t, http.StatusNoContent, res.StatusCode, "%s", res.Body)
	require.Equal(t, 0, env.Count("vouchers", "user_id = ?", uid))
	require.Equal(t, 0, env.Count("gift_claim_counters", "user_id = ?", uid))
	require.Equal(t, 0, env.Count("ledger_entries", "user_id = ?", uid))
	require.Equal(t, 2, env.Count("gift_codes", "gift_id = ? AND assigned_at IS NOT NULL", g.ID), "codes are never handed out again")
	left, err := env.App.Catalog.GiftByID(ctx, env.DB.Bun, env.Acme.Partner.ID, g.ID)
	require.NoError(t, err)
	require.Equal(t, 1, *left.Remaining())
	require.Equal(t, 2, left.ErasedClaims)
	require.NoError(t, voucher.CheckInvariants(ctx, env.DB.Bun))

	env.FundedUser("acme", "stayer", "", 100)
	other := env.Token("acme", "stayer", nil)
	last := env.Claim(other, g.ID, "s1")
	require.Empty(t, last.Errors)
	require.NotEqual(t, *first.Code, *last.Code)
	require.Equal(t, "OUT_OF_STOCK", env.Claim(other, g.ID, "s2").ErrorCode())
	require.NoError(t, voucher.CheckInvariants(ctx, env.DB.Bun))
}
