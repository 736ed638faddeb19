package web_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/ledger"
)

// browserEnv is an application for a browser test: the wall clock (the
// webview counts one-time codes down in the browser's time and the tokens
// are minted now) and helpers to provision and fund users.
type browserEnv struct {
	*apptest.Env
}

func newBrowserEnv(t *testing.T) *browserEnv {
	return &browserEnv{apptest.New(t, apptest.Options{WallClock: true})}
}

// provision creates an acme user the way seed 000 step 1 does and, when
// points > 0, awards them like a purchase (seed 001 buffer/store).
func (e *browserEnv) provision(ext, name string, points int) {
	e.T.Helper()
	res := e.PartnerJSON("acme", http.MethodPost, "/integrations/users", map[string]any{
		"externalUserId": ext, "email": ext + "@acme.example.test", "displayName": name, "countryCode": "SG",
	})
	require.Contains(e.T, []int{200, 201}, res.StatusCode, "%s", res.Body)
	if points > 0 {
		res = e.PartnerJSON("acme", http.MethodPost, "/integrations/actions", map[string]any{
			"externalUserId": ext, "action": "purchase", "points": points, "reference": "order-" + ext,
		})
		require.Equal(e.T, http.StatusCreated, res.StatusCode, "%s", res.Body)
	}
}

// noTokenInLogs asserts the server never logged the token or its signature.
func (e *browserEnv) noTokenInLogs(token string) {
	e.T.Helper()
	logs := e.Logs.String()
	require.NotEmpty(e.T, logs)
	sig := token[strings.LastIndex(token, ".")+1:]
	require.NotContains(e.T, logs, token, "the consumer token appears in the server log")
	require.NotContains(e.T, logs, sig, "the token's signature appears in the server log")
	require.NotContains(e.T, logs, "Bearer")
}

// TestWebviewClaimAndMerchantRedeem is seed 000 step 4 and seed 004 in a
// browser: a user with points opens the webview, claims a gift, asks for
// a one-time code; an operator redeems the voucher with it at the merchant
// portal's till; the webview shows the voucher redeemed.
func TestWebviewClaimAndMerchantRedeem(t *testing.T) {
	t.Parallel()
	env := newBrowserEnv(t)
	env.provision("usr_web_001", "Web Tester", 420)
	env.provision("usr_web_002", "Runner Up", 300)
	require.NoError(t, env.App.Ranking.Refresh(context.Background(), env.DB.Bun))
	token := env.Token("acme", "usr_web_001", map[string]any{"displayName": "Web Tester"})
	steps := newSteps(t)
	p := newPage(t, steps)

	// Open the webview as the partner's app does (naming the partner, as
	// a partner that frames the webview must).
	p.run("open the webview", chromedp.Navigate(env.Server.URL+"/consumer?partner=acme#token="+token),
		chromedp.WaitVisible(`body[data-ready="true"] #app`))
	p.waitText("#balance", "420")
	require.Equal(t, "Acme Rewards", p.text("#program-name"))
	require.Equal(t, "points", p.text("#currency"))
	require.Equal(t, "Hi, Web Tester", p.text("#greeting"))
	var href string
	var logoWidth, scrollWidth, innerWidth int
	p.eval(`location.href`, &href)
	require.Equal(t, env.Server.URL+"/consumer?partner=acme", href, "the token leaves the address bar")
	p.eval(`document.getElementById('logo').naturalWidth`, &logoWidth)
	require.Equal(t, 128, logoWidth, "the partner's logo is served")
	// The catalog with claim buttons and the reasons of the others; the ads.
	p.waitText(`[data-gift="coffee"] button[data-action="claim"]`, "Claim for 100 points")
	p.waitText(`[data-gift="limited-tote"] .reason`, "You need 80 more points")
	p.waitText(`[data-ad="bonus-video"]`, "Earn 5 points")
	p.shot("loaded")
	// 360 px wide: nothing overflows, every tab is in view.
	var tabsOverflow bool
	p.eval(`document.documentElement.scrollWidth`, &scrollWidth)
	p.eval(`document.documentElement.clientWidth`, &innerWidth)
	p.eval(`(() => { const l = document.querySelector('[role=tablist]'); return l.scrollWidth > l.clientWidth; })()`, &tabsOverflow)
	require.Equal(t, 360, innerWidth)
	require.LessOrEqual(t, scrollWidth, innerWidth, "nothing overflows 360 px")
	require.False(t, tabsOverflow, "every tab fits in 360 px")

	// Claim the coffee (with confirmation).
	p.run("claim", chromedp.Click(`[data-gift="coffee"] button[data-action="claim"]`))
	p.waitText(`[data-gift="coffee"] .card-msg`, "Spend 100 points")
	p.shot("confirm-claim")
	p.run("confirm", chromedp.Click(`[data-gift="coffee"] button[data-action="confirm-claim"]`))
	p.waitText("#balance", "320")
	p.waitText(`[data-gift="coffee"] .card-msg`, "Claimed! Your code is COFFEE-DEMO-")
	p.shot("claimed")

	// The voucher with its code, then a one-time code for the shop.
	p.run("see the voucher", chromedp.Click(`[data-gift="coffee"] button[data-action="see-voucher"]`))
	p.run("voucher tab", chromedp.WaitVisible(`#panel-vouchers [data-status="CLAIMED"] [data-testid="voucher-code"]`))
	code := p.text(`#panel-vouchers [data-status="CLAIMED"] [data-testid="voucher-code"]`)
	require.True(t, strings.HasPrefix(code, "COFFEE-DEMO-"), code)
	var voucherID string
	p.eval(`document.querySelector('#panel-vouchers [data-status="CLAIMED"]').dataset.voucherId`, &voucherID)
	card := `#panel-vouchers [data-voucher-id="` + voucherID + `"]`
	p.waitText(card+` [data-testid="voucher-status"]`, "Ready to use")
	p.shot("voucher")
	p.run("request the one-time code", chromedp.Click(card+` button[data-action="show-otp"]`),
		chromedp.WaitVisible(card+` [data-testid="otp-code"]`))
	var otp string
	p.eval(`document.querySelector('`+card+` [data-testid="otp-code"]').dataset.code`, &otp)
	require.Regexp(t, `^[0-9]{6}$`, otp)
	p.waitText(card+` .otp`, "Expires in 4:5")
	p.shot("one-time-code")

	// An operator redeems it at the till of the merchant portal.
	m := p.newTab("merchant")
	tillOperator(t, env.Env, m, "till@acme-store.example")
	m.run("scan the voucher", chromedp.SendKeys("#code", code+kb.Enter, chromedp.ByID), chromedp.WaitVisible(`#voucher[data-state="valid"]`))
	m.waitText(`#voucher [data-testid="gift"]`, "Free coffee")
	m.waitText(`#voucher`, "Web Tester")
	m.shot("voucher-found")
	wrong := "000000"
	if otp == wrong {
		wrong = "111111"
	}
	m.run("a wrong one-time code", chromedp.SendKeys("#otp", wrong+kb.Enter, chromedp.ByID), chromedp.WaitVisible(`#result[data-outcome="failure"]`))
	m.waitText(`#result[data-outcome="failure"]`, "Wrong one-time code")
	m.shot("wrong-otp")
	m.run("the right one-time code", chromedp.SendKeys("#otp", otp+kb.Enter, chromedp.ByID), chromedp.WaitVisible(`#result[data-outcome="success"]`))
	m.waitText(`#result[data-outcome="success"]`, "Redeemed")
	m.waitText(`#voucher`, code)
	m.shot("redeemed")

	// Back in the webview, the voucher shows redeemed without a reload.
	p.run("voucher redeemed", chromedp.WaitVisible(card+`[data-status="REDEEMED"]`))
	p.waitText(card+` [data-testid="voucher-status"]`, "Redeemed")
	p.shot("voucher-redeemed")

	// History (the claim and the purchase) and the leaderboard around the user.
	p.run("history", chromedp.Click("#tab-history", chromedp.ByID))
	p.waitText("#history", "Claimed: Free coffee")
	p.waitText("#history", "Purchase")
	p.shot("history")
	p.run("ranking", chromedp.Click("#tab-ranking", chromedp.ByID))
	p.waitText("#ranking .rank-row.me", "#1")
	p.waitText("#ranking .rank-row.me", "You")
	p.waitText("#ranking", "Runner Up")
	p.shot("ranking")

	steps.clean()
	env.noTokenInLogs(token)
}

// TestWebviewExpiredToken: an expired token gets a full-page message
// asking to reopen from the app (only the partner can mint a new token).
func TestWebviewExpiredToken(t *testing.T) {
	t.Parallel()
	env := newBrowserEnv(t)
	now := time.Now()
	token := env.Token("acme", "usr_web_expired", map[string]any{"iat": now.Add(-2 * time.Hour).Unix(), "exp": now.Add(-time.Hour).Unix()})
	steps := newSteps(t)
	p := newPage(t, steps)

	p.run("open the webview", chromedp.Navigate(env.Server.URL+"/consumer#token="+token),
		chromedp.WaitVisible(`body[data-session="TOKEN_EXPIRED"] #session`))
	p.shot("expired")
	require.Equal(t, "Your session has expired", p.text("#session-title"))
	require.Contains(t, p.text("#session-text"), "open Rewards again from the app")
	var hidden bool
	var href string
	p.eval(`document.getElementById('app').hidden`, &hidden)
	require.True(t, hidden)
	p.eval(`location.href`, &href)
	require.Equal(t, env.Server.URL+"/consumer#error=TOKEN_EXPIRED", href, "the token is gone; a native shell can read the outcome")

	// A page opened without a token says how to get one.
	q := p.newTab("no-token")
	q.run("open without a token", chromedp.Navigate(env.Server.URL+"/consumer"),
		chromedp.WaitVisible(`body[data-session="UNAUTHENTICATED"] #session`))
	require.Contains(t, q.text("#session-text"), "opened from the app")
	q.shot("no-token")

	// A token of one partner under another partner's page is refused.
	other := env.Token("acme", "usr_web_other", nil)
	r := p.newTab("wrong-partner")
	r.run("open under globex", chromedp.Navigate(env.Server.URL+"/consumer?partner=globex#token="+other),
		chromedp.WaitVisible(`body[data-session="PARTNER_MISMATCH"] #session`))
	require.Contains(t, r.text("#session-text"), "opened for another program")
	r.shot("wrong-partner")

	steps.clean()
	env.noTokenInLogs(token)
	env.noTokenInLogs(other)
}

// TestWebviewWithoutPoints: a user with no points sees why each gift
// cannot be claimed, and the empty states of their lists; the tabs work
// from the keyboard.
func TestWebviewWithoutPoints(t *testing.T) {
	t.Parallel()
	env := newBrowserEnv(t)
	// First sight: the token creates the user (seeds 001/002).
	token := env.Token("acme", "usr_web_new", map[string]any{"displayName": "New Member", "countryCode": "SG"})
	steps := newSteps(t)
	p := newPage(t, steps)

	p.run("open the webview", chromedp.Navigate(env.Server.URL+"/consumer#token="+token),
		chromedp.WaitVisible(`body[data-ready="true"] #app`))
	p.waitText("#balance", "0")
	p.waitText(`[data-gift="coffee"] .reason`, "You need 100 more points to claim this gift.")
	p.waitText(`[data-gift="ebook"] .reason`, "You need 50 more points")
	p.shot("no-points")
	var claimButtons int
	p.eval(`document.querySelectorAll('button[data-action="claim"]').length`, &claimButtons)
	require.Zero(t, claimButtons)
	var reasons []string
	p.eval(`Array.from(document.querySelectorAll('#catalog .reason')).map(n => n.dataset.reason)`, &reasons)
	require.Equal(t, []string{"INSUFFICIENT_POINTS", "INSUFFICIENT_POINTS", "INSUFFICIENT_POINTS", "INSUFFICIENT_POINTS"}, reasons)

	// Keyboard: arrows move between tabs, focus follows.
	p.run("keyboard to the vouchers tab", chromedp.Focus("#tab-rewards", chromedp.ByID), chromedp.KeyEvent(kb.ArrowRight))
	p.run("vouchers panel", chromedp.WaitVisible("#panel-vouchers", chromedp.ByID))
	var focused string
	p.eval(`document.activeElement.id`, &focused)
	require.Equal(t, "tab-vouchers", focused)
	p.waitText("#vouchers-state", "No vouchers yet")
	p.shot("no-vouchers")
	p.run("keyboard to history", chromedp.KeyEvent(kb.ArrowRight))
	p.waitText("#history-state", "Nothing earned or spent yet.")
	p.run("keyboard to ranking", chromedp.KeyEvent(kb.ArrowRight))
	p.waitText("#ranking-state", "not on the leaderboard yet")
	p.shot("not-ranked")

	steps.clean()
	env.noTokenInLogs(token)
}

// TestWebviewEarnRedeemOnlineAndScrollHistory: a bonus ad's Earn button,
// an online gift redeemed in the app, and the history loading page after
// page as the user scrolls, with its filter.
func TestWebviewEarnRedeemOnlineAndScrollHistory(t *testing.T) {
	t.Parallel()
	env := newBrowserEnv(t)
	uid := env.FundedUser("acme", "usr_web_scroll", "SG", 0)
	err := env.DB.Bun.RunInTx(context.Background(), nil, func(ctx context.Context, tx bun.Tx) error {
		for i := 0; i < 44; i++ {
			if _, err := env.App.Ledger.ApplyTx(ctx, tx, env.PartnerID("acme"), ledger.Change{
				UserID: uid, Kind: ledger.KindEarn, Points: 2, Reason: "Store visit", OccurredAt: time.Now().Add(-time.Duration(44-i) * time.Hour),
			}); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, err)
	token := env.Token("acme", "usr_web_scroll", nil)
	steps := newSteps(t)
	p := newPage(t, steps)

	p.run("open the webview", chromedp.Navigate(env.Server.URL+"/consumer#token="+token),
		chromedp.WaitVisible(`body[data-ready="true"] #app`))
	p.waitText("#balance", "88")

	// A bonus ad's action earns points from the app.
	p.run("earn", chromedp.Click(`[data-ad="bonus-video"] button`))
	p.waitText("#balance", "93")
	p.waitText("#status", "You earned 5 points.")
	p.shot("earned")

	// An online gift: claim, then redeem in the app.
	// The confirmation is awaited before its button is clicked: a click
	// on a card still being drawn after the earn was once lost.
	p.run("claim the e-book", chromedp.Click(`[data-gift="ebook"] button[data-action="claim"]`))
	p.waitText(`[data-gift="ebook"] .card-msg`, "Spend 50 points")
	p.run("confirm the claim", chromedp.Click(`[data-gift="ebook"] button[data-action="confirm-claim"]`))
	p.waitText("#balance", "43")
	p.waitText(`[data-gift="ebook"] .reason`, "You already claimed this gift.")
	p.run("vouchers", chromedp.Click("#tab-vouchers", chromedp.ByID),
		chromedp.Click(`#vouchers [data-status="CLAIMED"] button[data-action="redeem-online"]`))
	p.waitText(`#vouchers [data-status="CLAIMED"] .card-msg`, "cannot be undone")
	p.run("confirm", chromedp.Click(`#vouchers button[data-action="confirm-redeem"]`),
		chromedp.WaitVisible(`#vouchers [data-status="REDEEMED"]`))
	p.waitText(`#vouchers [data-status="REDEEMED"]`, "E-book: The Rewards Handbook")
	p.shot("redeemed-online")

	// History: 20 entries a page; scrolling loads the rest (46 in all).
	p.run("history", chromedp.Click("#tab-history", chromedp.ByID), chromedp.WaitVisible(`#history li`))
	count := func() int {
		var n int
		p.eval(`document.querySelectorAll('#history li').length`, &n)
		return n
	}
	require.LessOrEqual(t, count(), 40, "history pages are loaded as needed")
	p.shot("history-first-page")
	// Scrolling to the end of the list loads the next page, until the end.
	scrollToEnd := func(want int) {
		for i := 0; i < 20 && count() < want; i++ {
			p.run("scroll", chromedp.ScrollIntoView("#history-sentinel", chromedp.ByID), chromedp.Sleep(100*time.Millisecond))
		}
		p.waitText("#history-state", "That’s everything.")
		require.Equal(t, want, count())
	}
	scrollToEnd(46)
	p.shot("history-end")
	p.run("spent only", chromedp.Click(`.filter [data-kind="BURN"]`))
	p.waitText("#history-state", "That’s everything.")
	require.Equal(t, 1, count())
	p.waitText("#history", "Claimed: E-book")
	p.run("keyboard: earned only", chromedp.Focus(`.filter [data-kind="EARN"]`), chromedp.KeyEvent(kb.Enter))
	p.waitText(`.filter [data-kind="EARN"][aria-pressed="true"]`, "Earned")
	p.run("first earned page", chromedp.WaitVisible(`#history li[data-kind="earn"]`))
	scrollToEnd(45)
	p.shot("history-earned")

	steps.clean()
	env.noTokenInLogs(token)
}
