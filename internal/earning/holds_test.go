package earning_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/earning"
	"github.com/perkshq/perks/internal/ledger"
)

// TestEarnPendingValidate: pendingUntil and pending are checked before
// anything is read.
func TestEarnPendingValidate(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	base := earning.EarnParams{ExternalUserID: "u1", Code: "buy", Reference: ptr("order-1")}
	tests := []struct {
		name  string
		edit  func(*earning.EarnParams)
		code  apperr.Code
		field string
	}{
		{"pendingUntil tomorrow", func(ep *earning.EarnParams) { ep.PendingUntil = ptr(now.AddDate(0, 0, 1)) }, "", ""},
		{"pendingUntil at the bound", func(ep *earning.EarnParams) { ep.PendingUntil = ptr(now.AddDate(0, 0, earning.MaxPendingDays)) }, "", ""},
		{"held", func(ep *earning.EarnParams) { ep.Hold = true }, "", ""},
		{"pendingUntil now", func(ep *earning.EarnParams) { ep.PendingUntil = ptr(now) }, apperr.CodeInvalidField, "pendingUntil"},
		{"pendingUntil past", func(ep *earning.EarnParams) { ep.PendingUntil = ptr(now.Add(-time.Hour)) }, apperr.CodeInvalidField, "pendingUntil"},
		{"pendingUntil too far", func(ep *earning.EarnParams) {
			ep.PendingUntil = ptr(now.AddDate(0, 0, earning.MaxPendingDays).Add(time.Second))
		}, apperr.CodeInvalidField, "pendingUntil"},
		{"both", func(ep *earning.EarnParams) { ep.Hold, ep.PendingUntil = true, ptr(now.AddDate(0, 0, 1)) }, apperr.CodeInvalidField, "pending"},
		{"held without reference", func(ep *earning.EarnParams) { ep.Hold, ep.Reference = true, nil }, apperr.CodeMissingField, "reference"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ep := base
			tt.edit(&ep)
			err := ep.Validate(now)
			if tt.code == "" {
				require.NoError(t, err)
				return
			}
			requireCode(t, err, tt.code, tt.field)
		})
	}
}

// TestEarnPendingOverridesPolicy: pendingUntil and pending override the
// policy's pending days (7 here), for one earn and for batch items; a held
// earn's expiry is dated when it is confirmed, a dated one's from its date.
func TestEarnPendingOverridesPolicy(t *testing.T) {
	t.Parallel()
	b, job := policyBundle(t, 7, 30, 0)
	day := 24 * time.Hour
	u := b.user(t, "alice")
	b.user(t, "bob")
	until := b.now.Add(2 * day)

	dated, err := b.earn(earning.EarnParams{ExternalUserID: "alice", Code: "buy", Points: ptr(int64(10)), Reference: ptr("dated"), PendingUntil: &until})
	require.NoError(t, err)
	require.Equal(t, ledger.KindPending, dated.Kind)
	require.Equal(t, until, *dated.PendingUntil)
	held, err := b.earn(earning.EarnParams{ExternalUserID: "alice", Code: "buy", Points: ptr(int64(20)), Reference: ptr("held"), Hold: true})
	require.NoError(t, err)
	require.Equal(t, ledger.KindPending, held.Kind)
	require.Nil(t, held.PendingUntil)
	res, err := b.earning.EarnManyTx(b.ctx, b.tx, b.partner, []earning.ManyItem{
		{EarnParams: earning.EarnParams{ExternalUserID: "bob", Code: "buy", Points: ptr(int64(3)), Reference: ptr("m-held"), Hold: true}},
		{EarnParams: earning.EarnParams{ExternalUserID: "bob", Code: "buy", Points: ptr(int64(4)), Reference: ptr("m-dated"), PendingUntil: &until}},
	})
	require.NoError(t, err)
	for _, r := range res {
		require.Nil(t, r.Err)
	}

	lots, err := b.earning.Ledger.Lots(b.ctx, b.tx, b.partner.ID, u)
	require.NoError(t, err)
	require.Equal(t, until, lots[0].AvailableAt)
	require.Equal(t, until.AddDate(0, 0, 30), *lots[0].ExpiresAt, "expiry counts from pendingUntil")
	require.True(t, lots[1].AvailableAt.IsZero())
	require.Nil(t, lots[1].ExpiresAt, "a held lot is dated on confirm")

	var pendingEvents int
	require.NoError(t, b.tx.NewRaw("SELECT count(*) FROM events WHERE type = 'points.pending'").Scan(b.ctx, &pendingEvents))
	require.Equal(t, 4, pendingEvents, "EarnTx and EarnManyTx")

	b.advance(3 * day)
	a, _, err := job.Run(b.ctx)
	require.NoError(t, err)
	require.Equal(t, 2, a, "the dated lots, not the held ones")
	bal := b.balance(t, u)
	require.Equal(t, [2]int64{10, 20}, [2]int64{bal.Points, bal.PendingPoints})

	b.advance(100 * day)
	a, _, err = job.Run(b.ctx)
	require.NoError(t, err)
	require.Zero(t, a)
	h, err := b.earning.ConfirmTx(b.ctx, b.tx, b.partner, "held")
	require.NoError(t, err)
	require.Equal(t, b.now.AddDate(0, 0, 30), *h.Lot.ExpiresAt, "held points expire 30 days after the confirm")
	_, err = b.earning.ConfirmTx(b.ctx, b.tx, b.partner, "m-held")
	require.NoError(t, err)
	_, err = b.earning.CancelTx(b.ctx, b.tx, b.partner, "dated", "")
	requireCode(t, err, apperr.CodeEarnNotPending, "")
	_, err = b.earning.CancelTx(b.ctx, b.tx, b.partner, "bad ref", "")
	requireCode(t, err, apperr.CodeInvalidField, "reference")
	_, err = b.earning.CancelTx(b.ctx, b.tx, b.partner, "held", "line\nbreak")
	requireCode(t, err, apperr.CodeInvalidField, "reason")
	bal = b.balance(t, u)
	require.Equal(t, [3]int64{20, 0, 30}, [3]int64{bal.Points, bal.PendingPoints, bal.LifetimeEarned}, "the dated 10 expired on day 32")
	require.NoError(t, ledger.CheckInvariants(b.ctx, b.tx))
}
