package referral_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/earning"
	"github.com/perkshq/perks/internal/event"
	"github.com/perkshq/perks/internal/ledger"
	"github.com/perkshq/perks/internal/referral"
	"github.com/perkshq/perks/internal/user"
)

// referred makes a referrer "a" and a referee ext attributed to them.
func (b *bundle) referred(t *testing.T, tx bun.Tx, referrer *user.User, ext string) *user.User {
	t.Helper()
	c := b.user(t, tx, ext, "")
	_, err := b.ref.AttributeTx(b.ctx, tx, b.partner.ID, c, "code", b.code(t, tx, referrer), referral.SourceAPI)
	require.NoError(t, err)
	return c
}

// TestRewardQualifiesOnceThenHoldEnds: only the first earn of the policy's
// action with at least its amount qualifies; the rewards are pending for
// the hold, then available (lots job) and the referral rewarded (referral
// job); a reversal after the hold takes nothing back. Invariants after
// each step.
func TestRewardQualifiesOnceThenHoldEnds(t *testing.T) {
	t.Parallel()
	b, tx := setup(t)
	minAmount := int64(5000)
	b.policy(t, tx, referral.Policy{QualifyMinAmount: &minAmount, ReferrerPoints: 500, RefereePoints: 200, HoldDays: 14})
	a := b.user(t, tx, "a", "")
	c := b.referred(t, tx, a, "c")

	_, err := b.earning.EarnTx(b.ctx, tx, b.partner, earning.EarnParams{ExternalUserID: "c", Code: "visit"})
	require.NoError(t, err)
	_, err = b.buy(tx, "c", 4999, "o-1")
	require.NoError(t, err)
	require.Equal(t, referral.StatusPending, b.referralOf(t, tx, c.ID).Status, "another action, or a purchase below the amount, does not qualify")

	e, err := b.buy(tx, "c", 5000, "o-2")
	require.NoError(t, err)
	r := b.referralOf(t, tx, c.ID)
	require.Equal(t, referral.StatusQualified, r.Status)
	require.Equal(t, e.ID, *r.QualifyingEntryID)
	require.Equal(t, [2]int64{500, 200}, [2]int64{r.ReferrerPoints, r.RefereePoints})
	require.Equal(t, b.now.AddDate(0, 0, 14), r.HoldUntil.UTC())
	av, pend := b.balance(t, tx, a.ID)
	require.Equal(t, [2]int64{0, 500}, [2]int64{av, pend}, "the referrer's reward is pending")
	av, pend = b.balance(t, tx, c.ID)
	require.Equal(t, [2]int64{5 + 49 + 50, 200}, [2]int64{av, pend})
	require.NoError(t, ledger.CheckInvariants(b.ctx, tx))

	_, err = b.buy(tx, "c", 9000, "o-3")
	require.NoError(t, err)
	_, pend = b.balance(t, tx, a.ID)
	require.Equal(t, int64(500), pend, "a second qualifying earn pays nothing")
	require.Equal(t, 1, b.eventCount(t, tx, event.ReferralQualified))

	b.advance(14*24*time.Hour + time.Second)
	_, err = ledger.ActivateDueTx(b.ctx, tx, b.events, b.now, 100)
	require.NoError(t, err)
	n, err := b.ref.RewardDueTx(b.ctx, tx, b.now, 100)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	n, err = b.ref.RewardDueTx(b.ctx, tx, b.now, 100)
	require.NoError(t, err)
	require.Zero(t, n, "settled once")
	require.Equal(t, referral.StatusRewarded, b.referralOf(t, tx, c.ID).Status)
	require.Equal(t, 1, b.eventCount(t, tx, event.ReferralRewarded))
	av, pend = b.balance(t, tx, a.ID)
	require.Equal(t, [2]int64{500, 0}, [2]int64{av, pend})

	_, err = b.earning.ReverseTx(b.ctx, tx, b.partner, earning.ReverseParams{Reference: "o-2", Reason: "refund"})
	require.NoError(t, err)
	require.Equal(t, referral.StatusRewarded, b.referralOf(t, tx, c.ID).Status, "after the hold the reward is final")
	av, _ = b.balance(t, tx, a.ID)
	require.Equal(t, int64(500), av)

	st, err := b.ref.StatsOf(b.ctx, tx, b.partner.ID, a.ID)
	require.NoError(t, err)
	require.Equal(t, referral.Stats{Invited: 1, Qualified: 1, PointsEarned: 500}, st)
	require.NoError(t, ledger.CheckInvariants(b.ctx, tx))
}

// TestUndoingTheQualifyingEarnCancelsTheReward: a reversal (whole or
// partial) or a cancel of the qualifying earn during the hold cancels both
// pending rewards and the referral, once; invariants hold.
func TestUndoingTheQualifyingEarnCancelsTheReward(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		held bool
		left int64 // the referee's balance after: what the undo left of the earn
		undo func(b *bundle, tx bun.Tx) error
	}{
		{"full reversal", false, 0, func(b *bundle, tx bun.Tx) error {
			_, err := b.earning.ReverseTx(b.ctx, tx, b.partner, earning.ReverseParams{Reference: "o-1", Reason: "refund"})
			return err
		}},
		{"partial reversal", false, 90, func(b *bundle, tx bun.Tx) error {
			p := int64(10)
			_, err := b.earning.ReverseTx(b.ctx, tx, b.partner, earning.ReverseParams{Reference: "o-1", Points: &p, Reason: "refund"})
			return err
		}},
		{"cancel of a held earn", true, 0, func(b *bundle, tx bun.Tx) error {
			_, err := b.earning.CancelTx(b.ctx, tx, b.partner, "o-1", "order cancelled")
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, tx := setup(t)
			b.policy(t, tx, referral.Policy{ReferrerPoints: 500, RefereePoints: 200, HoldDays: 30})
			a := b.user(t, tx, "a", "")
			c := b.referred(t, tx, a, "c")
			amount := int64(10000)
			_, err := b.earning.EarnTx(b.ctx, tx, b.partner, earning.EarnParams{ExternalUserID: "c", Code: "buy", Amount: &amount, Reference: ptr("o-1"), Hold: tc.held})
			require.NoError(t, err)
			require.Equal(t, referral.StatusQualified, b.referralOf(t, tx, c.ID).Status)

			b.advance(24 * time.Hour)
			require.NoError(t, tc.undo(b, tx))
			r := b.referralOf(t, tx, c.ID)
			require.Equal(t, referral.StatusCancelled, r.Status)
			_, pend := b.balance(t, tx, a.ID)
			require.Zero(t, pend, "the referrer's pending reward is gone")
			av, pend := b.balance(t, tx, c.ID)
			require.Equal(t, [2]int64{tc.left, 0}, [2]int64{av, pend}, "the referee's pending reward is gone too")
			require.Equal(t, 1, b.eventCount(t, tx, event.ReferralCancelled))
			require.NoError(t, ledger.CheckInvariants(b.ctx, tx))

			// The lots job and the referral job find nothing to pay later.
			b.advance(60 * 24 * time.Hour)
			_, err = ledger.ActivateDueTx(b.ctx, tx, b.events, b.now, 100)
			require.NoError(t, err)
			n, err := b.ref.RewardDueTx(b.ctx, tx, b.now, 100)
			require.NoError(t, err)
			require.Zero(t, n)
			av, _ = b.balance(t, tx, a.ID)
			require.Zero(t, av)
			require.NoError(t, ledger.CheckInvariants(b.ctx, tx))
		})
	}
}

// TestCaps: the referrer's monthly and lifetime caps count paid referrals;
// a capped referral still qualifies and pays the referee, not the
// referrer; a cancelled one frees its slot.
func TestCaps(t *testing.T) {
	t.Parallel()
	b, tx := setup(t)
	monthly, lifetime := 2, 3
	b.policy(t, tx, referral.Policy{ReferrerPoints: 100, RefereePoints: 10, MonthlyCap: &monthly, LifetimeCap: &lifetime})
	a := b.user(t, tx, "a", "")
	qualify := func(ext string) *referral.Referral {
		t.Helper()
		c := b.referred(t, tx, a, ext)
		_, err := b.buy(tx, ext, 100, "order-"+ext)
		require.NoError(t, err)
		return b.referralOf(t, tx, c.ID)
	}
	paid := func(r *referral.Referral) [2]any { return [2]any{r.ReferrerPoints, r.Capped} }
	require.Equal(t, [2]any{int64(100), false}, paid(qualify("c1")))
	require.Equal(t, [2]any{int64(100), false}, paid(qualify("c2")))
	r3 := qualify("c3")
	require.Equal(t, [2]any{int64(0), true}, paid(r3), "monthly cap")
	require.Equal(t, referral.StatusRewarded, r3.Status)
	require.Equal(t, int64(10), r3.RefereePoints, "the referee is paid all the same")

	b.advance(15 * 24 * time.Hour) // 6 December: a new month
	require.Equal(t, [2]any{int64(100), false}, paid(qualify("c4")))
	require.Equal(t, [2]any{int64(0), true}, paid(qualify("c5")), "lifetime cap")
	av, _ := b.balance(t, tx, a.ID)
	require.Equal(t, int64(300), av)
	require.NoError(t, ledger.CheckInvariants(b.ctx, tx))
}

// TestPolicyValidate: bad policies are refused with the field named.
func TestPolicyValidate(t *testing.T) {
	t.Parallel()
	neg, zero := int64(-1), 0
	cases := []struct {
		name  string
		edit  func(p *referral.Policy)
		field string
	}{
		{"ok", func(*referral.Policy) {}, ""},
		{"pattern with ambiguous use", func(p *referral.Policy) { p.CodePattern = "ab##" }, "codePattern"},
		{"pattern too few #", func(p *referral.Policy) { p.CodePattern = "ABC###" }, "codePattern"},
		{"link without code", func(p *referral.Policy) { p.LinkTemplate = "https://x.example/join" }, "linkTemplate"},
		{"link not http", func(p *referral.Policy) { p.LinkTemplate = "javascript:alert({code})" }, "linkTemplate"},
		{"action", func(p *referral.Policy) { p.QualifyAction = "Buy Now" }, "qualifyAction"},
		{"amount", func(p *referral.Policy) { p.QualifyMinAmount = &neg }, "qualifyMinAmount"},
		{"points", func(p *referral.Policy) { p.ReferrerPoints = -5 }, "referrerPoints"},
		{"hold", func(p *referral.Policy) { p.HoldDays = 400 }, "holdDays"},
		{"cap", func(p *referral.Policy) { p.MonthlyCap = &zero }, "monthlyCap"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := referral.DefaultPolicy([16]byte{})
			p.QualifyAction, p.LinkTemplate = "buy", "https://x.example/join?ref={code}"
			tc.edit(&p)
			err := p.Validate()
			if tc.field == "" {
				require.NoError(t, err)
				require.Equal(t, "https://x.example/join?ref=AB%2BC", p.Link("AB+C"))
				return
			}
			require.Equal(t, tc.field, apperr.As(err).Field, "%v", err)
		})
	}
}

// concurrent is a bundle on an own database whose setup is committed, for
// the races.
func concurrent(t *testing.T) (*bundle, *bun.DB) {
	t.Helper()
	b := newBundle(t)
	db := dbtest.NewDB(t).Bun
	b.init(t, db)
	return b, db
}

func (b *bundle) inTx(t *testing.T, db *bun.DB, fn func(tx bun.Tx) error) error {
	t.Helper()
	return db.RunInTx(b.ctx, nil, func(ctx context.Context, tx bun.Tx) error { return fn(tx) })
}

// TestAttributionRace: two codes applied at once for one user, twenty
// rounds: exactly one wins, the other is REFERRAL_ALREADY_ATTRIBUTED; two
// users applying each other's code at once never make a loop.
func TestAttributionRace(t *testing.T) {
	t.Parallel()
	b, db := concurrent(t)
	for round := range 20 {
		var x, y, c *user.User
		var cx, cy string
		require.NoError(t, b.inTx(t, db, func(tx bun.Tx) error {
			x, y, c = b.user(t, tx, fmt.Sprintf("x%d", round), ""), b.user(t, tx, fmt.Sprintf("y%d", round), ""), b.user(t, tx, fmt.Sprintf("c%d", round), "")
			cx, cy = b.code(t, tx, x), b.code(t, tx, y)
			return nil
		}))
		var wins, lost atomic.Int32
		var wg sync.WaitGroup
		for _, pair := range [][2]any{{c, cx}, {c, cy}, {x, cy}, {y, cx}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := b.inTx(t, db, func(tx bun.Tx) error {
					_, err := b.ref.AttributeTx(b.ctx, tx, b.partner.ID, pair[0].(*user.User), "code", pair[1].(string), referral.SourceApp)
					return err
				})
				switch {
				case err == nil:
					wins.Add(1)
				case apperr.Is(err, apperr.CodeReferralAlreadyAttributed), apperr.Is(err, apperr.CodeReferralLoop):
					lost.Add(1)
				default:
					t.Errorf("round %d: %v", round, err)
				}
			}()
		}
		wg.Wait()
		require.Equal(t, int32(2), wins.Load(), "round %d: one referrer for c, one of x↔y", round)
		require.Equal(t, int32(2), lost.Load())
	}
}

// TestQualifyRace: ten qualifying earns of one referee at once reward the
// referral exactly once; ledger invariants hold.
func TestQualifyRace(t *testing.T) {
	t.Parallel()
	b, db := concurrent(t)
	var a, c *user.User
	require.NoError(t, b.inTx(t, db, func(tx bun.Tx) error {
		b.policy(t, tx, referral.Policy{ReferrerPoints: 500, RefereePoints: 200, HoldDays: 7})
		a = b.user(t, tx, "a", "")
		c = b.referred(t, tx, a, "c")
		return nil
	}))
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			require.NoError(t, b.inTx(t, db, func(tx bun.Tx) error {
				_, err := b.buy(tx, "c", 1000, fmt.Sprintf("o-%d", i))
				return err
			}))
		}()
	}
	wg.Wait()
	_, pend := b.balance(t, db, a.ID)
	require.Equal(t, int64(500), pend)
	_, pend = b.balance(t, db, c.ID)
	require.Equal(t, int64(200), pend)
	require.Equal(t, 1, b.eventCount(t, db, event.ReferralQualified))
	require.NoError(t, ledger.CheckInvariants(b.ctx, db))
}

// TestEarnWithoutReferralPolicyCostsNoQuery: the referral hook wired, an
// earn of a partner without an enabled referral policy runs as many
// statements as one without the hook (the program-parts probe rides in
// the rule query); with a policy, the user's earn asks.
func TestEarnWithoutReferralPolicyCostsNoQuery(t *testing.T) {
	t.Parallel()
	counter := &statementCounter{}
	hooked := bun.NewDB(dbtest.Shared(t).Bun.DB, pgdialect.New(), bun.WithDiscardUnknownColumns()).WithQueryHook(counter)
	tx, err := hooked.BeginTx(context.Background(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback() })
	b := newBundle(t)
	b.init(t, tx)
	b.user(t, tx, "u", "")
	earn := func(svc *earning.Service) int64 {
		t.Helper()
		before := counter.n.Load()
		_, err := svc.EarnTx(b.ctx, tx, b.partner, earning.EarnParams{ExternalUserID: "u", Code: "visit"})
		require.NoError(t, err)
		return counter.n.Load() - before
	}
	plain := &earning.Service{Ledger: b.earning.Ledger, Users: b.users, Now: b.earning.Now}
	without := earn(plain)
	require.Equal(t, without, earn(b.earning), "no policy: no referral statement")
	b.policy(t, tx, referral.Policy{ReferrerPoints: 1, QualifyAction: "visit"})
	require.Greater(t, earn(b.earning), without)
}

type statementCounter struct{ n atomic.Int64 }

func (c *statementCounter) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context {
	c.n.Add(1)
	return ctx
}
func (c *statementCounter) AfterQuery(context.Context, *bun.QueryEvent) {}

func ptr[T any](v T) *T { return &v }

// TestBatchEarnQualifies: earns through EarnManyTx (multistore, bulk)
// qualify referrals like single earns: two qualifying items of one
// referee in a batch reward once; a user without a referral is untouched.
func TestBatchEarnQualifies(t *testing.T) {
	t.Parallel()
	b, tx := setup(t)
	b.policy(t, tx, referral.Policy{ReferrerPoints: 500, RefereePoints: 200})
	a := b.user(t, tx, "a", "")
	c := b.referred(t, tx, a, "c")
	b.user(t, tx, "z", "")
	item := func(ext, ref string, amount int64) earning.ManyItem {
		return earning.ManyItem{EarnParams: earning.EarnParams{ExternalUserID: ext, Code: "buy", Amount: &amount, Reference: &ref}}
	}
	res, err := b.earning.EarnManyTx(b.ctx, tx, b.partner, []earning.ManyItem{item("z", "m-0", 1000), item("c", "m-1", 1000), item("c", "m-2", 3000)})
	require.NoError(t, err)
	for _, r := range res {
		require.Nil(t, r.Err)
	}
	r := b.referralOf(t, tx, c.ID)
	require.Equal(t, referral.StatusRewarded, r.Status)
	require.Equal(t, *res[1].EntryID, *r.QualifyingEntryID, "the first qualifying item in input order")
	av, _ := b.balance(t, tx, a.ID)
	require.Equal(t, int64(500), av)
	av, _ = b.balance(t, tx, c.ID)
	require.Equal(t, int64(10+30+200), av)
	require.Equal(t, 1, b.eventCount(t, tx, event.ReferralRewarded))
	require.NoError(t, ledger.CheckInvariants(b.ctx, tx))
}
