package web_test

import (
	"net/http"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// TestWebviewTier: under the balance, the user's tier with its benefits
// and the progress to the next tier ("3,750 points to Gold" over a bar
// from Silver's threshold to Gold's); a top-tier user sees the top-tier
// line instead; a partner without tiers shows no tier block; a gift that
// needs a higher tier says "Gold members only." instead of a claim button.
func TestWebviewTier(t *testing.T) {
	t.Parallel()
	env := newBrowserEnv(t)
	res := env.Partner("acme", http.MethodPut, "/integrations/tiers", []byte(`{"tiers":[`+
		`{"code":"member","name":"Member"},`+
		`{"code":"silver","name":"Silver","threshold":1000,"multiplier":1.25,"benefits":"Free delivery"},`+
		`{"code":"gold","name":"Gold","threshold":5000,"multiplier":1.5,"benefits":"Free delivery\nAirport lounge"}]}`))
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	res = env.Partner("acme", http.MethodPut, "/integrations/gifts/lounge",
		[]byte(`{"title":"Lounge pass","costPoints":10,"codeSource":"none","minTier":"gold"}`))
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	env.provision("usr_web_silver", "Silver Sam", 1250) // one earn at x1: Silver, 3,750 to Gold
	env.provision("usr_web_gold", "Gold Gil", 6000)
	env.FundedUser("globex", "usr_web_plain", "SG", 100)

	steps := newSteps(t)
	type bar struct{ Value, Max float64 }
	var tokens []string
	open := func(p *page, slug, sub string) {
		t.Helper()
		tok := env.Token(slug, sub, nil)
		tokens = append(tokens, tok)
		p.run("open the webview as "+sub, chromedp.Navigate(env.Server.URL+"/consumer#token="+tok),
			chromedp.WaitVisible(`body[data-ready="true"] #app`))
	}

	// The middle tier: its name, its benefits, the points to go and the bar.
	p := newPage(t, steps)
	open(p, "acme", "usr_web_silver")
	p.waitText("#balance", "1,250")
	p.waitText("#tier-name", "Silver")
	require.Equal(t, "Free delivery", p.text("#tier-benefits"))
	require.Equal(t, "3,750 points to Gold", p.text("#tier-to-go"))
	var b bar
	p.eval(`(() => { const b = document.getElementById('tier-bar'); return { value: b.value, max: b.max }; })()`, &b)
	require.Equal(t, bar{Value: 250, Max: 4000}, b)
	var label string
	p.eval(`document.getElementById('tier-bar').labels[0].textContent`, &label)
	require.Equal(t, "3,750 points to Gold", label, "the bar is labelled with the points to go")
	var topHidden bool
	p.eval(`document.getElementById('tier-top').getClientRects().length === 0`, &topHidden)
	require.True(t, topHidden)
	p.waitText(`[data-gift="lounge"] .reason`, "Gold members only.")
	var lounge struct {
		Reason  string
		Buttons int
	}
	p.eval(`(() => { const c = document.querySelector('[data-gift="lounge"]');
		return { reason: c.querySelector('.reason').dataset.reason, buttons: c.querySelectorAll('button[data-action="claim"]').length }; })()`, &lounge)
	require.Equal(t, "TIER_TOO_LOW", lounge.Reason)
	require.Zero(t, lounge.Buttons)
	p.shot("silver")

	// The top tier: the top-tier line, no bar; the gift can be claimed.
	g := p.newTab("gold")
	open(g, "acme", "usr_web_gold")
	g.waitText("#tier-name", "Gold")
	g.waitText("#tier-top", "top tier")
	var progressHidden bool
	g.eval(`document.getElementById('tier-progress').getClientRects().length === 0`, &progressHidden)
	require.True(t, progressHidden)
	g.waitText(`[data-gift="lounge"] button[data-action="claim"]`, "Claim for 10 points")
	g.shot("gold")

	// A partner without tiers: no tier block at all.
	n := p.newTab("no tiers")
	open(n, "globex", "usr_web_plain")
	n.waitText("#balance", "100")
	var tierHidden bool
	n.eval(`document.getElementById('tier').hidden && document.getElementById('tier').getClientRects().length === 0`, &tierHidden)
	require.True(t, tierHidden)
	n.shot("no-tiers")

	steps.clean()
	for _, tok := range tokens {
		env.noTokenInLogs(tok)
	}
}
