package web_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/account"
	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/audit"
	"github.com/perkshq/perks/internal/catalog"
)

// inviteAndActivate invites an acme account with role and activates it in
// its own browser.
func inviteAndActivate(t *testing.T, env *apptest.Env, steps *steps, role string) *page {
	t.Helper()
	email := role + "@acme.example.test"
	inv, err := env.App.Accounts.InviteTx(context.Background(), env.DB.Bun, account.InviteParams{Realm: account.RealmPartner,
		RealmID: env.PartnerID("acme"), Email: email, Role: role, Actor: audit.Actor{Kind: audit.ActorOperator, Label: "cli"}})
	require.NoError(t, err)
	pg := newPage(t, steps)
	pg.name = role
	activateInBrowser(t, env, pg, env.Server.URL+"/portal/activate?token="+url.QueryEscape(inv.Token), email)
	return pg
}

// directPost sends a form POST with pg's session cookies and the CSRF
// token of the page it shows (what a user of that role could forge), and
// returns the status.
func directPost(t *testing.T, env *apptest.Env, pg *page, path string, form url.Values) int {
	t.Helper()
	var html string
	pg.run("read the page", chromedp.OuterHTML("html", &html))
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(html)
	require.NotNil(t, csrf, "the page has the session's CSRF token")
	form.Set("csrf", csrf[1])
	var cookies []*network.Cookie
	pg.run("read cookies", chromedp.ActionFunc(func(ctx context.Context) error {
		var err error
		cookies, err = network.GetCookies().WithURLs([]string{env.Server.URL}).Do(ctx)
		return err
	}))
	req, err := http.NewRequest(http.MethodPost, env.Server.URL+path, strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// submit clicks the form's submit button and waits for the page that
// answers (a new document, not the one the form was on).
func submit(pg *page, form string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		if err := chromedp.Evaluate(`window.__before = 1`, nil).Do(ctx); err != nil {
			return err
		}
		if err := chromedp.Click(form + ` button[type=submit]`).Do(ctx); err != nil {
			return err
		}
		// The old document goes away under the evaluation: retry until the
		// new one answers.
		for {
			var done bool
			err := chromedp.Evaluate(`window.__before === undefined && document.readyState === "complete"`, &done).Do(ctx)
			if err == nil && done {
				return nil
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
}

// webviewTitle opens the webview as ext (with the token's locale claim,
// when given) and returns the title shown for sku.
func webviewTitle(t *testing.T, env *apptest.Env, steps *steps, ext, loc, sku string) string {
	t.Helper()
	extra := map[string]any{}
	if loc != "" {
		extra["locale"] = loc
	}
	tok := env.Token("acme", ext, extra)
	wv := newPage(t, steps)
	wv.name = "webview-" + ext
	wv.run("open the webview", chromedp.Navigate(env.Server.URL+"/consumer?partner=acme#token="+tok),
		chromedp.WaitVisible(`body[data-ready="true"] #app`))
	return wv.text(`[data-gift="` + sku + `"] h3`)
}

// TestPortalCatalogInBrowser: a manager creates a gift in the portal (stock,
// claim window, a French title), edits it, and users see it in the
// webview, in French when their locale is fr; bad input (negative stock, a
// window ending before it starts, a bad CSV row, a bad CEL condition) gets
// a clear message next to its field and changes nothing; a CSV upload runs
// as a codes job with a progress page; a viewer and a developer see no
// form and are refused direct POSTs; another partner's gift is not found.
// axe-core checks every page and state.
func TestPortalCatalogInBrowser(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	env.App.Accounts.Argon2 = &account.Argon2Params{Memory: 64, Time: 1, Threads: 1}
	env.FundedUser("acme", "cms-en", "SG", 500)
	env.FundedUser("acme", "cms-fr", "SG", 500)
	env.PutGift("globex", "globex-only", catalog.GiftInput{Title: "Globex mug", CostPoints: 10, CodeSource: catalog.SourceNone})
	env.PutGift("acme", "cms-pool", catalog.GiftInput{Title: "Pool gift", CostPoints: 10, CodeSource: catalog.SourcePool})
	steps := newSteps(t)
	m := inviteAndActivate(t, env, steps, account.RoleManager)

	// The list, then a new gift with stock, a claim window and French text.
	m.run("open the catalog", chromedp.Navigate(env.Server.URL+"/portal/gifts"), chromedp.WaitVisible("#gifts"))
	m.axe("gifts list")
	docShot(m, "img/portal-gifts.png", 1024, "")
	m.run("new gift", chromedp.Click("#new-gift"), chromedp.WaitVisible("#gift-form"))
	m.axe("new gift form")
	m.run("fill the gift",
		chromedp.SendKeys("#f-sku", "cms-tea"),
		chromedp.SendKeys("#f-title", "Tea"),
		chromedp.SendKeys("#f-description", "A pot of tea."),
		chromedp.SendKeys("#f-costPoints", "40"),
		chromedp.SendKeys("#f-stock", "5"),
		chromedp.SetValue("#f-claimableFrom", "2020-01-01T00:00"),
		chromedp.SetValue("#f-claimableUntil", "2099-01-01T00:00"),
		chromedp.SendKeys(`[name="tr.0.locale"]`, "fr"),
		chromedp.SendKeys(`[name="tr.0.title"]`, "Thé offert"),
		submit(m, "#gift-form"),
		chromedp.WaitVisible(".notice"),
	)
	require.Equal(t, "Gift saved.", m.text(".notice"))
	g, err := env.App.Catalog.GiftBySKU(context.Background(), env.DB.Bun, env.PartnerID("acme"), "cms-tea")
	require.NoError(t, err)
	require.Equal(t, 5, *g.StockTotal)
	require.Equal(t, "2099-01-01T00:00:00Z", g.ClaimableUntil.UTC().Format("2006-01-02T15:04:05Z"), "acme's time zone is UTC")
	require.Equal(t, "Thé offert", g.Translations["fr"]["title"])
	m.axe("gift saved")

	// Edit: title, stock and window.
	m.run("edit the gift",
		chromedp.SetValue("#f-title", "Green tea"),
		chromedp.SetValue("#f-stock", "3"),
		chromedp.SetValue("#f-claimableUntil", "2098-06-30T12:00"),
		submit(m, "#gift-form"),
		chromedp.WaitVisible(".notice"),
	)
	docShot(m, "img/portal-gift.png", 1024, "")
	g, err = env.App.Catalog.GiftBySKU(context.Background(), env.DB.Bun, env.PartnerID("acme"), "cms-tea")
	require.NoError(t, err)
	require.Equal(t, "Green tea", g.Title)
	require.Equal(t, 3, *g.StockTotal)
	require.Equal(t, "2098-06-30 12:00", g.ClaimableUntil.UTC().Format("2006-01-02 15:04"))

	// The webview shows the edit, in French to a French user.
	require.Equal(t, "Green tea", webviewTitle(t, env, steps, "cms-en", "en", "cms-tea"))
	require.Equal(t, "Thé offert", webviewTitle(t, env, steps, "cms-fr", "fr", "cms-tea"))

	// Bad input: a clear message next to the field, nothing changes.
	for _, c := range []struct{ name, sel, value, errID, want string }{
		{"negative stock", "#f-stock", "-1", "#err-stock", "stock must be a whole number from 0"},
		{"window ending before it starts", "#f-claimableUntil", "2019-01-01T00:00", "#err-claimableUntil", "claimableUntil must be after claimableFrom"},
	} {
		m.run(c.name, chromedp.Navigate(env.Server.URL+"/portal/gifts/cms-tea"), chromedp.WaitVisible("#gift-form"),
			chromedp.SetValue(c.sel, c.value),
			submit(m, "#gift-form"),
			chromedp.WaitVisible(c.errID),
		)
		require.Contains(t, m.text(c.errID), c.want, c.name)
		require.Contains(t, m.text(".error"), "The gift was not saved", c.name)
		var invalid string
		m.eval(`document.querySelector("`+c.sel+`").getAttribute("aria-invalid")`, &invalid)
		require.Equal(t, "true", invalid, c.name)
		m.axe("gift refused: " + c.name)
	}
	docShot(m, "img/portal-gift-refused.png", 1024, "#err-claimableUntil")
	g, err = env.App.Catalog.GiftBySKU(context.Background(), env.DB.Bun, env.PartnerID("acme"), "cms-tea")
	require.NoError(t, err)
	require.Equal(t, 3, *g.StockTotal, "nothing changed")
	require.Equal(t, "2098-06-30 12:00", g.ClaimableUntil.UTC().Format("2006-01-02 15:04"), "nothing changed")

	// Code upload: a bad row refuses the file; a good one runs as a job.
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.csv")
	good := filepath.Join(dir, "good.csv")
	require.NoError(t, os.WriteFile(bad, []byte("code\nTEA-0001\nno\n"), 0o600))
	require.NoError(t, os.WriteFile(good, []byte("code\nPOOL-0001\nPOOL-0002\nPOOL-0003\nPOOL-0002\n"), 0o600))
	m.run("upload a bad CSV", chromedp.Navigate(env.Server.URL+"/portal/gifts/cms-pool"), chromedp.WaitVisible("#upload-codes"),
		chromedp.SetUploadFiles("#f-file", []string{bad}),
		submit(m, "#upload-codes"),
		chromedp.WaitVisible("#err-file"),
	)
	require.Contains(t, m.text("#err-file"), "line 3 is not a valid code")
	m.axe("code upload refused")
	require.Zero(t, env.Count("bulk_jobs", "kind = 'codes'"))
	require.Zero(t, env.Count("gift_codes", "code LIKE 'TEA-%'"))
	m.run("upload a good CSV",
		chromedp.SetUploadFiles("#f-file", []string{good}),
		submit(m, "#upload-codes"),
		chromedp.WaitVisible("#upload-progress"),
	)
	m.axe("code upload progress")
	var jobID string
	require.NoError(t, env.DB.Bun.NewRaw("SELECT id::text FROM bulk_jobs WHERE kind = 'codes'").Scan(context.Background(), &jobID))
	for {
		done, err := env.App.Bulk.ProcessChunk(context.Background(), env.DB.Bun, env.PartnerID("acme"), uuidOf(t, jobID))
		require.NoError(t, err)
		if done {
			break
		}
	}
	// The page reloads itself (progress.js) until the job is finished.
	m.run("wait for the upload to finish", chromedp.ActionFunc(func(ctx context.Context) error {
		for {
			var s string
			err := chromedp.Evaluate(`(document.getElementById("upload-state") || {}).textContent || ""`, &s).Do(ctx)
			if err == nil && strings.Contains(s, "Finished: 3 codes added, 1 refused.") {
				return nil
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}))
	docShot(m, "img/portal-upload.png", 1024, "")
	m.axe("code upload finished")
	require.Equal(t, 3, env.Count("gift_codes", "code LIKE 'POOL-%'"))

	// Campaigns: a bad CEL condition is shown next to the field.
	m.run("a campaign with a bad condition", chromedp.Navigate(env.Server.URL+"/portal/campaigns"), chromedp.WaitVisible("#campaign-form"),
		chromedp.SendKeys("#f-code", "cms-double"),
		chromedp.SendKeys("#f-name", "Double"),
		chromedp.SendKeys("#f-multiplier", "2"),
		chromedp.SendKeys("#f-condition", "earn.amout > 5"),
		submit(m, "#campaign-form"),
		chromedp.WaitVisible("#err-condition"),
	)
	require.Contains(t, m.text("#err-condition"), "amout")
	m.axe("campaign refused")
	docShot(m, "img/portal-campaigns.png", 1024, "#err-condition")
	require.Zero(t, env.Count("campaigns", "code = 'cms-double'"))
	m.run("fix the condition", chromedp.SetValue("#f-condition", "earn.points > 5"),
		submit(m, "#campaign-form"), chromedp.WaitVisible("#campaign-cms-double"))
	require.Equal(t, 1, env.Count("campaigns", "code = 'cms-double'"))

	// Rules, ads and settings open, pass axe, and save.
	m.run("earning rules", chromedp.Navigate(env.Server.URL+"/portal/rules"), chromedp.WaitVisible("#rule-form"))
	m.axe("earning rules")
	docShot(m, "img/portal-rules.png", 1024, "")
	m.run("new rule", chromedp.SendKeys("#f-code", "cms-review"), chromedp.SendKeys("#f-name", "Write a review"),
		chromedp.SendKeys("#f-points", "15"), submit(m, "#rule-form"), chromedp.WaitVisible("#rule-cms-review"))
	m.run("ads", chromedp.Navigate(env.Server.URL+"/portal/ads"), chromedp.WaitVisible("#ad-form"))
	m.axe("ads")
	m.run("new ad", chromedp.SendKeys("#f-id", "cms-news"), chromedp.SendKeys("#f-title", "New teas"),
		chromedp.SendKeys(`[name="tr.0.locale"]`, "fr"), chromedp.SendKeys(`[name="tr.0.title"]`, "Nouveaux thés"),
		submit(m, "#ad-form"), chromedp.WaitVisible("#ad-cms-news"))
	docShot(m, "img/portal-ads.png", 1024, "")
	m.run("settings", chromedp.Navigate(env.Server.URL+"/portal/settings"), chromedp.WaitVisible("#program-form"))
	m.axe("program settings")
	m.run("default locale", chromedp.SendKeys("#f-defaultLocale", "fr"),
		submit(m, "#program-form"), chromedp.WaitVisible(".notice"))
	docShot(m, "img/portal-settings.png", 1024, "")
	require.Equal(t, 1, env.Count("partners", "slug = 'acme' AND default_locale = 'fr'"))
	require.Equal(t, "Thé offert", webviewTitle(t, env, steps, "cms-en", "es", "cms-tea"), "the partner's default locale")

	// Partner isolation: globex's gift is not found for acme's manager.
	require.Equal(t, http.StatusNotFound, directPost(t, env, m, "/portal/gifts/globex-only/retire", url.Values{}))
	require.Zero(t, env.Count("gifts", "sku = 'globex-only' AND retired_at IS NOT NULL"))
	m.run("another partner's gift", chromedp.Navigate(env.Server.URL+"/portal/gifts/globex-only"), chromedp.WaitVisible(".error"))
	require.Contains(t, m.text(".error"), "gift not found")

	// A viewer and a developer look but cannot change.
	for _, role := range []string{account.RoleViewer, account.RoleDeveloper} {
		pg := inviteAndActivate(t, env, steps, role)
		pg.run("open a gift", chromedp.Navigate(env.Server.URL+"/portal/gifts/cms-tea"), chromedp.WaitVisible("main"))
		var forms int
		pg.eval(`document.querySelectorAll("#gift-form, #retire-gift, #upload-codes, #new-gift").length`, &forms)
		require.Zero(t, forms, "%s sees no form", role)
		pg.axe(role + ": gift, read only")
		for _, post := range []struct {
			path string
			form url.Values
		}{
			{"/portal/gifts", url.Values{"sku": {"cms-tea"}, "existing": {"true"}, "title": {"Hacked"}, "costPoints": {"1"}, "codeSource": {"none"}}},
			{"/portal/gifts/cms-tea/retire", url.Values{}},
			{"/portal/campaigns/cms-double/delete", url.Values{}},
			{"/portal/settings/program", url.Values{"expiryMode": {"none"}}},
		} {
			require.Equal(t, http.StatusForbidden, directPost(t, env, pg, post.path, post.form), "%s: %s", role, post.path)
		}
	}
	g, err = env.App.Catalog.GiftBySKU(context.Background(), env.DB.Bun, env.PartnerID("acme"), "cms-tea")
	require.NoError(t, err)
	require.Equal(t, "Green tea", g.Title, "the refused POSTs changed nothing")
	require.Nil(t, g.RetiredAt)
	require.Equal(t, 1, env.Count("campaigns", "code = 'cms-double'"))

	// Every change is in the audit log, by the manager.
	require.Positive(t, env.Count("audit_log", "action = 'gift.put' AND actor_label LIKE 'manager@%'"))
	steps.clean()
}

func uuidOf(t *testing.T, s string) uuid.UUID {
	t.Helper()
	id, err := uuid.Parse(s)
	require.NoError(t, err)
	return id
}
