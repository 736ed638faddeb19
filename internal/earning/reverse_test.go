package earning_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/earning"
	"github.com/perkshq/perks/internal/ledger"
	"github.com/perkshq/perks/internal/program"
)

// TestReverseParamsValidate: every field rule of a reversal request.
func TestReverseParamsValidate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		rp    earning.ReverseParams
		code  apperr.Code
		field string
	}{
		{"all that remains", earning.ReverseParams{Reference: "order-1", Reason: "refund"}, "", ""},
		{"some points", earning.ReverseParams{Reference: "order-1", Points: ptr(int64(5)), Reason: " refund "}, "", ""},
		{"points zero", earning.ReverseParams{Reference: "order-1", Points: ptr(int64(0)), Reason: "refund"}, apperr.CodePointsOutOfRange, "points"},
		{"points negative", earning.ReverseParams{Reference: "order-1", Points: ptr(int64(-5)), Reason: "refund"}, apperr.CodePointsOutOfRange, "points"},
		{"points too many", earning.ReverseParams{Reference: "order-1", Points: ptr(ledger.MaxPoints + 1), Reason: "refund"}, apperr.CodePointsOutOfRange, "points"},
		{"reason missing", earning.ReverseParams{Reference: "order-1"}, apperr.CodeMissingField, "reason"},
		{"reason blank", earning.ReverseParams{Reference: "order-1", Reason: "  "}, apperr.CodeMissingField, "reason"},
		{"reason too long", earning.ReverseParams{Reference: "order-1", Reason: strings.Repeat("r", earning.MaxReasonLen+1)}, apperr.CodeInvalidField, "reason"},
		{"reason control character", earning.ReverseParams{Reference: "order-1", Reason: "re\x00fund"}, apperr.CodeInvalidField, "reason"},
		{"reference empty", earning.ReverseParams{Reason: "refund"}, apperr.CodeInvalidField, "reference"},
		{"reference too long", earning.ReverseParams{Reference: strings.Repeat("o", 256), Reason: "refund"}, apperr.CodeInvalidField, "reference"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			rp := c.rp
			err := rp.Validate()
			if c.code == "" {
				require.NoError(t, err)
				require.Equal(t, strings.TrimSpace(c.rp.Reason), rp.Reason)
				return
			}
			requireCode(t, err, c.code, c.field)
		})
	}
}

// TestReverseFollowsPolicy: the partner's negativeBalance decides what a
// reversal of spent points does (the 500 on a 7-point user), and
// both earn paths pay a debt first.
func TestReverseFollowsPolicy(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name                         string
		negative                     string // "": no policy (forbid)
		reversed, shortfall, balance int64
		afterEarnOne, lotOne         int64 // after an earn of 300: balance, its lot's remaining
		afterEarnMany, lotMany       int64 // after a batch earn of 300
	}{
		{name: "no policy", reversed: 7, shortfall: 493, balance: 0, afterEarnOne: 300, lotOne: 300, afterEarnMany: 600, lotMany: 300},
		{name: "forbid", negative: program.NegativeForbid, reversed: 7, shortfall: 493, balance: 0, afterEarnOne: 300, lotOne: 300, afterEarnMany: 600, lotMany: 300},
		{name: "allow", negative: program.NegativeAllow, reversed: 500, balance: -493, afterEarnOne: -193, lotOne: 0, afterEarnMany: 107, lotMany: 107},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			if tc.negative != "" {
				_, err := (&program.Service{}).Put(b.ctx, b.tx, b.partner.ID, program.Input{ExpiryMode: program.ExpiryNone, NegativeBalance: tc.negative, ExpiryWarningDays: 30})
				require.NoError(t, err)
			}
			b.rule(t, "buy", earning.RuleInput{Points: 1, VariablePoints: true})
			u := b.user(t, "p")
			_, err := b.earn(earning.EarnParams{ExternalUserID: "p", Code: "buy", Points: ptr(int64(500)), Reference: ptr("order-1")})
			require.NoError(t, err)
			require.NoError(t, b.burn(t, u, 493))

			out, err := b.earning.ReverseTx(b.ctx, b.tx, b.partner, earning.ReverseParams{Reference: "order-1", Reason: " refunded "})
			require.NoError(t, err)
			require.Equal(t, [3]int64{tc.reversed, tc.shortfall, tc.balance}, [3]int64{out.Reversed, out.Shortfall, out.Balance})
			require.Equal(t, "refunded", out.Entry.Reason)
			require.NoError(t, ledger.CheckInvariants(b.ctx, b.tx))

			lotOf := func(entryID int64) int64 {
				lots, err := b.earning.Ledger.Lots(b.ctx, b.tx, b.partner.ID, u)
				require.NoError(t, err)
				for _, l := range lots {
					if *l.SourceEntryID == entryID {
						return l.Remaining
					}
				}
				t.Fatalf("no lot of entry %d", entryID)
				return 0
			}
			e, err := b.earn(earning.EarnParams{ExternalUserID: "p", Code: "buy", Points: ptr(int64(300))})
			require.NoError(t, err)
			require.Equal(t, [2]int64{tc.afterEarnOne, tc.lotOne}, [2]int64{e.BalanceAfter, lotOf(e.ID)})
			res, err := b.earning.EarnManyTx(b.ctx, b.tx, b.partner, []earning.ManyItem{
				{EarnParams: earning.EarnParams{ExternalUserID: "p", Code: "buy", Points: ptr(int64(300))}},
			})
			require.NoError(t, err)
			require.Nil(t, res[0].Err)
			require.Equal(t, [2]int64{tc.afterEarnMany, tc.lotMany}, [2]int64{*res[0].Balance, lotOf(*res[0].EntryID)})
			require.NoError(t, ledger.CheckInvariants(b.ctx, b.tx))
		})
	}
}
