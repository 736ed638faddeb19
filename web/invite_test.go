package web_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// TestWebviewInviteFriends: the Rewards tab shows the "Invite friends"
// panel with the user's code (the partner's own, seed 003's
// referralCode), the share link of the program's template and the
// friends who joined; Copy puts the link on the clipboard.
func TestWebviewInviteFriends(t *testing.T) {
	t.Parallel()
	env := newBrowserEnv(t)
	res := env.Partner("acme", http.MethodPut, "/integrations/referral-policy",
		[]byte(`{"qualifyAction":"purchase","referrerPoints":500,"refereePoints":100,"linkTemplate":"https://acme.example.test/join?ref={code}"}`))
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	res = env.PartnerJSON("acme", http.MethodPost, "/integrations/users", map[string]any{
		"externalUserId": "usr_web_joe", "displayName": "Joe", "referralCode": "JOETESTERSON"})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	res = env.PartnerJSON("acme", http.MethodPost, "/integrations/users", map[string]any{
		"externalUserId": "usr_web_amy", "displayName": "Amy", "referredBy": "joetesterson"})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)

	steps := newSteps(t)
	p := newPage(t, steps)
	tok := env.Token("acme", "usr_web_joe", nil)
	p.run("allow the clipboard", chromedp.ActionFunc(func(ctx context.Context) error {
		bx := cdp.WithExecutor(ctx, chromedp.FromContext(ctx).Browser)
		return browser.GrantPermissions([]browser.PermissionType{
			browser.PermissionTypeClipboardReadWrite, browser.PermissionTypeClipboardSanitizedWrite}).
			WithOrigin(env.Server.URL).WithBrowserContextID(p.browserID).Do(bx)
	}))
	p.run("open the webview", chromedp.Navigate(env.Server.URL+"/consumer#token="+tok),
		chromedp.WaitVisible(`body[data-ready="true"] #app`), chromedp.WaitVisible(`#invite`))
	var code string
	p.run("read the code", chromedp.Value("#invite-value", &code))
	require.Equal(t, "JOETESTERSON", code)
	require.Equal(t, "Invite friends", p.text("#invite-title"))
	require.Equal(t, "https://acme.example.test/join?ref=JOETESTERSON", p.text("#invite-link"))
	require.Equal(t, "1 joined, 0 qualified, 0 points earned.", p.text("#invite-stats"))

	p.run("copy", chromedp.Click("#invite-copy"), chromedp.WaitVisible(`#invite[data-copied]`))
	p.waitText("#status", "Link copied")
	var clip string
	p.run("read the clipboard", chromedp.Evaluate(`navigator.clipboard.readText()`, &clip,
		func(e *runtime.EvaluateParams) *runtime.EvaluateParams { return e.WithAwaitPromise(true) }))
	require.Equal(t, "https://acme.example.test/join?ref=JOETESTERSON", clip)
	p.shot("invite")
	steps.clean()
	env.noTokenInLogs(tok)
}
