package web_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// graphqlGate holds, fails or passes the page's POST /graphql requests
// (the DevTools Fetch domain), so a test can look at the loading and
// error states as long as it likes.
type graphqlGate struct {
	mode atomic.Int32 // gatePass, gateHold or gateFail
	held chan fetch.RequestID
}

const (
	gatePass int32 = iota
	gateHold
	gateFail
)

func newGraphQLGate(p *page) *graphqlGate {
	g := &graphqlGate{held: make(chan fetch.RequestID, 100)}
	tab := chromedp.FromContext(p.ctx).Target
	chromedp.ListenTarget(p.ctx, func(ev any) {
		e, ok := ev.(*fetch.EventRequestPaused)
		if !ok {
			return
		}
		switch g.mode.Load() {
		case gateHold:
			g.held <- e.RequestID
		case gateFail:
			go func() {
				_ = fetch.FailRequest(e.RequestID, network.ErrorReasonInternetDisconnected).Do(cdp.WithExecutor(p.ctx, tab))
			}()
		default:
			go func() { _ = fetch.ContinueRequest(e.RequestID).Do(cdp.WithExecutor(p.ctx, tab)) }()
		}
	})
	p.run("intercept /graphql", fetch.Enable().WithPatterns([]*fetch.RequestPattern{{URLPattern: "*/graphql*"}}))
	return g
}

// release lets the held requests and every later one through.
func (g *graphqlGate) release(p *page) {
	g.mode.Store(gatePass)
	for {
		select {
		case id := <-g.held:
			p.run("continue a held request", fetch.ContinueRequest(id))
		default:
			return
		}
	}
}

// TestWebviewAccessibleInEveryStateAndLanguage runs axe-core at 360 px in
// every state of the webview (loading, the rewards, claim and claimed,
// error with Try again, the one-time code, empty lists, expired token),
// in English and in French: the French user (the token's locale claim,
// or the browser's language when the token has none) sees the French
// interface, and the page says lang="fr" (axe checks html-has-lang and
// valid-lang).
func TestWebviewAccessibleInEveryStateAndLanguage(t *testing.T) {
	t.Parallel()
	type texts struct {
		tokenLocale string // the token's locale claim ("": none)
		browserLang string // the browser's Accept-Language for the expired-token tab ("": default)
		lang        string // the <html lang> expected
		// What the page says in each state.
		loading, tabVouchers, claim, confirm, claimed, otp string
		vouchersError, retry, noVouchers, expired          string
	}
	for _, tc := range []struct {
		name string
		want texts
	}{
		{"en", texts{
			lang: "en", loading: "Loading your rewards…", tabVouchers: "My vouchers", claim: "Claim for 100 points",
			confirm: "Spend 100 points on “Free coffee”?", claimed: "Claimed! Your code is COFFEE-DEMO-", otp: "Expires in 4:5",
			vouchersError: "Your vouchers could not be loaded. You seem to be offline.", retry: "Try again",
			noVouchers: "No vouchers yet.", expired: "Your session has expired",
		}},
		{"fr", texts{
			tokenLocale: "fr-FR", browserLang: "fr-FR,fr", lang: "fr", loading: "Chargement de vos récompenses…", tabVouchers: "Mes bons",
			claim: "Obtenir pour 100 points", confirm: "Dépenser 100 points pour « Free coffee » ?", claimed: "C’est à vous ! Votre code est COFFEE-DEMO-",
			otp: "Expire dans 4:5", vouchersError: "Impossible de charger vos bons. Vous semblez hors ligne.", retry: "Réessayer",
			noVouchers: "Pas encore de bon.", expired: "Votre session a expiré",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := tc.want
			env := newBrowserEnv(t)
			env.provision("usr_a11y", "Ann Access", 420)
			claims := map[string]any{"displayName": "Ann Access"}
			if w.tokenLocale != "" {
				claims["locale"] = w.tokenLocale
			}
			token := env.Token("acme", "usr_a11y", claims)
			steps := newSteps(t)
			p := newPage(t, steps)
			lang := func(pg *page) string {
				var l string
				pg.eval(`document.documentElement.lang`, &l)
				return l
			}

			// Loading: the first GraphQL answer is held back.
			gate := newGraphQLGate(p)
			gate.mode.Store(gateHold)
			p.run("open the webview", chromedp.Navigate(env.Server.URL+"/consumer?partner=acme#token="+token))
			p.waitText("#boot", w.loading)
			require.Equal(t, w.lang, lang(p))
			p.shot("loading")
			p.axe("loading")
			gate.release(p)

			// The rewards, a claim and its confirmation.
			p.run("ready", chromedp.WaitVisible(`body[data-ready="true"] #app`))
			p.waitText("#balance", "420")
			require.Equal(t, w.tabVouchers, p.text("#tab-vouchers"))
			// Every tab fits in 360 px, whatever the language.
			var tabsOverflow bool
			var scrollWidth int
			p.eval(`(() => { const l = document.querySelector('[role=tablist]'); return l.scrollWidth > l.clientWidth; })()`, &tabsOverflow)
			p.eval(`document.documentElement.scrollWidth`, &scrollWidth)
			require.False(t, tabsOverflow, "every tab fits in 360 px")
			// No label is cut inside a word: each is at most two lines of whole words.
			var brokenWords bool
			p.eval(`Array.from(document.querySelectorAll('[role=tab]')).some(b => { const r = document.createRange(); r.selectNodeContents(b); return r.getClientRects().length > b.textContent.trim().split(/\s+/).length; })`, &brokenWords)
			require.False(t, brokenWords, "tab labels wrap between words only")
			require.LessOrEqual(t, scrollWidth, 360, "nothing overflows 360 px")
			p.waitText(`[data-gift="coffee"] button[data-action="claim"]`, w.claim)
			p.run("invite friends", chromedp.WaitVisible("#invite", chromedp.ByID))
			p.shot("rewards")
			p.axe("rewards")
			p.run("claim", chromedp.Click(`[data-gift="coffee"] button[data-action="claim"]`))
			p.waitText(`[data-gift="coffee"] .card-msg`, w.confirm)
			p.axe("claim confirmation")
			p.run("confirm", chromedp.Click(`[data-gift="coffee"] button[data-action="confirm-claim"]`))
			p.waitText(`[data-gift="coffee"] .card-msg`, w.claimed)
			p.shot("claimed")
			p.axe("claimed")

			// Error: the vouchers cannot be loaded (offline), Try again.
			gate.mode.Store(gateFail)
			p.run("vouchers tab", chromedp.Click("#tab-vouchers", chromedp.ByID))
			p.waitText("#vouchers-state", w.vouchersError)
			p.waitText("#vouchers-state button", w.retry)
			p.shot("error")
			p.axe("error")
			gate.mode.Store(gatePass)
			p.run("try again", chromedp.Click("#vouchers-state button"),
				chromedp.WaitVisible(`#vouchers [data-status="CLAIMED"]`))

			// The one-time code for the shop.
			p.run("one-time code", chromedp.Click(`#vouchers [data-status="CLAIMED"] button[data-action="show-otp"]`),
				chromedp.WaitVisible(`#vouchers [data-testid="otp-code"]`))
			p.waitText("#vouchers .otp", w.otp)
			p.shot("otp")
			p.axe("one-time code")

			// Empty: a new user's vouchers, in a tab of their own.
			newcomer := env.Token("acme", "usr_a11y_new", claims)
			q := p.newTab("newcomer")
			q.run("open as a new user", chromedp.Navigate(env.Server.URL+"/consumer#token="+newcomer),
				chromedp.WaitVisible(`body[data-ready="true"] #app`))
			q.run("vouchers tab", chromedp.Click("#tab-vouchers", chromedp.ByID))
			q.waitText("#vouchers-state", w.noVouchers)
			require.Equal(t, w.lang, lang(q))
			q.shot("empty")
			q.axe("empty")

			// Expired token, with no locale claim: the browser's language.
			now := time.Now()
			expired := env.Token("acme", "usr_a11y", map[string]any{"iat": now.Add(-2 * time.Hour).Unix(), "exp": now.Add(-time.Hour).Unix()})
			r := p.newTab("expired")
			if w.browserLang != "" {
				r.run("browser language", emulation.SetUserAgentOverride("Mozilla/5.0 (Linux; Android 14) Chrome/140 Mobile").
					WithAcceptLanguage(w.browserLang))
			}
			r.run("open with an expired token", chromedp.Navigate(env.Server.URL+"/consumer#token="+expired),
				chromedp.WaitVisible(`body[data-session="TOKEN_EXPIRED"] #session`))
			require.Equal(t, w.expired, r.text("#session-title"))
			require.Equal(t, w.lang, lang(r))
			r.shot("expired")
			r.axe("expired token")

			steps.clean()
			env.noTokenInLogs(token)
			env.noTokenInLogs(expired)
		})
	}
}
