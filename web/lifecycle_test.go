package web_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/ledger"
)

// TestWebviewPointsLifecycle: the webview shows the held points and the
// next expiry ("120 points expire on 31 Dec" in the user's locale and time
// zone, the last day the points can be spent), and history rows of the
// lifecycle kinds with their labels and why they happened.
func TestWebviewPointsLifecycle(t *testing.T) {
	t.Parallel()
	env := newBrowserEnv(t)
	uid := env.FundedUser("acme", "usr_web_lots", "SG", 0)
	sgt := time.FixedZone("SGT", 8*3600)
	now := time.Now()
	// The end of a day 20 days ahead in Singapore (midnight after it), a
	// month that prints the same in every ICU version (no "Sept").
	day := now.In(sgt).AddDate(0, 0, 20)
	if day.Month() == time.September {
		day = day.AddDate(0, 0, 30)
	}
	end := time.Date(day.Year(), day.Month(), day.Day()+1, 0, 0, 0, 0, sgt)
	later := end.AddDate(0, 0, 9)
	wantDay := fmt.Sprintf("%d %s", day.Day(), day.Format("Jan"))
	if day.Year() != now.In(sgt).Year() {
		wantDay += fmt.Sprintf(" %d", day.Year())
	}
	p := env.PartnerID("acme")
	var earnID int64
	require.NoError(t, env.DB.Bun.RunInTx(context.Background(), nil, func(ctx context.Context, tx bun.Tx) error {
		for _, c := range []ledger.Change{
			{Kind: ledger.KindEarn, Points: 100, Reason: "Purchase", Reference: "order-77", ExpiresAt: &end},
			{Kind: ledger.KindEarn, Points: 20, Reason: "Store visit", ExpiresAt: &end},
			{Kind: ledger.KindEarn, Points: 50, Reason: "Store visit", ExpiresAt: &later},
			{Kind: ledger.KindEarn, Points: 70, Reason: "Big order", AvailableAt: now.Add(14 * 24 * time.Hour)},
			{Kind: ledger.KindEarn, Points: 8, Reason: "Quiz", ExpiresAt: ptr(now.Add(2 * time.Second))},
		} {
			c.UserID = uid
			e, err := env.App.Ledger.ApplyTx(ctx, tx, p, c)
			if err != nil {
				return err
			}
			if c.Reference == "order-77" {
				earnID = e.ID
			}
		}
		return nil
	}))
	require.NoError(t, env.DB.Bun.RunInTx(context.Background(), nil, func(ctx context.Context, tx bun.Tx) error {
		// The quiz's 8 expire (the job's call, a moment ahead), and order
		// 77 is refunded: 30 points reversed, written as the reversal
		// service writes it (source: the earn).
		if n, err := ledger.ExpireDueTx(ctx, tx, nil, now.Add(time.Minute), 10); err != nil || n != 1 {
			return fmt.Errorf("expired %d: %v", n, err)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO ledger_entries (partner_id, user_id, kind, points, balance_after, reason, source_type, source_id, occurred_at, created_at)
			VALUES (?, ?, 'reverse', -30, 140, 'Order refunded', 'earn', ?, now(), now())`, p, uid, fmt.Sprint(earnID))
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE balances SET points = points - 30 WHERE partner_id = ? AND user_id = ?`, p, uid)
		return err
	}))

	token := env.Token("acme", "usr_web_lots", nil)
	steps := newSteps(t)
	pg := newPage(t, steps)
	pg.run("locale and time zone", emulation.SetLocaleOverride().WithLocale("en-GB"), emulation.SetTimezoneOverride("Asia/Singapore"))
	pg.run("open the webview", chromedp.Navigate(env.Server.URL+"/consumer#token="+token),
		chromedp.WaitVisible(`body[data-ready="true"] #app`))
	pg.waitText("#balance", "140")
	require.Equal(t, "70 points pending", pg.text("#pending"))
	require.Equal(t, "120 points expire on "+wantDay, pg.text("#next-expiry"))
	pg.shot("lifecycle")

	pg.run("history", chromedp.Click("#tab-history", chromedp.ByID), chromedp.WaitVisible(`#history li[data-kind="reverse"]`))
	pg.waitText(`#history li[data-kind="reverse"]`, "Reversed")
	pg.waitText(`#history li[data-kind="reverse"]`, "Taken back: Purchase (order-77)")
	pg.waitText(`#history li[data-kind="reverse"] .minus`, "30")
	pg.waitText(`#history li[data-kind="expire"]`, "Expired")
	pg.waitText(`#history li[data-kind="expire"]`, "Unspent points of: Quiz")
	pg.waitText(`#history li[data-kind="pending"]`, "Pending")
	pg.waitText(`#history li[data-kind="pending"]`, "Available from")
	pg.waitText(`#history li[data-entry="`+fmt.Sprint(earnID)+`"]`, "Expire on "+wantDay)
	pg.shot("history")
	steps.clean()
	env.noTokenInLogs(token)
}

func ptr[T any](v T) *T { return &v }
