package web_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/account"
	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/audit"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/report"
)

// browserCookies are the page's cookies for u, for a direct request made
// with the page's session (what a forged or scripted POST would carry).
func browserCookies(p *page, u string) []*http.Cookie {
	p.t.Helper()
	var cookies []*network.Cookie
	p.run("read cookies", chromedp.ActionFunc(func(ctx context.Context) error {
		var err error
		cookies, err = network.GetCookies().WithURLs([]string{u}).Do(ctx)
		return err
	}))
	out := make([]*http.Cookie, 0, len(cookies))
	for _, c := range cookies {
		out = append(out, &http.Cookie{Name: c.Name, Value: c.Value})
	}
	return out
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// pageCSRF is the CSRF token of the page's forms.
func pageCSRF(p *page) string {
	p.t.Helper()
	var html string
	p.run("read the page", chromedp.OuterHTML("html", &html))
	m := csrfRE.FindStringSubmatch(html)
	require.NotNil(p.t, m, "no form on the page")
	return m[1]
}

// direct sends a request with cookies, never following redirects.
func direct(t *testing.T, method, u string, form url.Values, cookies []*http.Cookie) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	require.NoError(t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, c := range cookies {
		req.AddCookie(c)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, string(b)
}

// TestAdminConsoleInBrowser is issue 17's console scenario: a platform
// admin (created as `perks admin create` does) activates and signs in with
// TOTP; creates a partner, which is pending and whose signed requests are
// refused with PARTNER_PENDING; approves it (the same request now works);
// invites its first owner, who activates in the partner portal; suspends
// it (PARTNER_SUSPENDED); sees its usage, creates, attaches and invites a
// merchant, reads the health page, River's UI and the audit log across
// partners (filtered, CSV). Bad input gets clear messages, and the
// partner owner's session reaches nothing under /admin (pages, a direct
// POST, River UI). axe-core runs on every console page and state.
func TestAdminConsoleInBrowser(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	env.App.Accounts.Argon2 = &account.Argon2Params{Memory: 64, Time: 1, Threads: 1}
	ctx := context.Background()
	inv, err := env.App.Accounts.InviteTx(ctx, env.DB.Bun, account.InviteParams{Realm: account.RealmPlatform,
		Email: "ops@perks.example.test", Role: account.RolePlatformAdmin, Actor: audit.Actor{Kind: audit.ActorOperator, Label: "cli"}})
	require.NoError(t, err)
	base := env.Server.URL + "/admin"

	steps := newSteps(t)
	admin := newPage(t, steps)
	admin.run("desktop window", chromedp.EmulateViewport(1024, 800))

	// Activation and sign-in, as in the partner portal.
	admin.run("open the activation link", chromedp.Navigate(base+"/activate?token="+url.QueryEscape(inv.Token)), chromedp.WaitVisible("#activate"))
	admin.axe("activation")
	secret := admin.text("#totp-secret")
	admin.run("activate", chromedp.SendKeys("#password", portalPassword), chromedp.SendKeys("#password2", portalPassword),
		chromedp.SendKeys("#code", totpNow(t, env, secret)), chromedp.Click(`#activate button[type=submit]`), chromedp.WaitVisible("#activated"))
	env.Clock.Advance(30 * time.Second)
	admin.run("open sign-in", chromedp.Navigate(base+"/sign-in"), chromedp.WaitVisible("#sign-in"))
	admin.axe("sign-in")
	docShot(admin, "img/admin-sign-in.png", 0, "")
	admin.run("sign in with a wrong code", chromedp.SendKeys("#email", "ops@perks.example.test"), chromedp.SendKeys("#password", portalPassword),
		chromedp.SendKeys("#code", "000000"), chromedp.Click(`#sign-in button[type=submit]`), chromedp.WaitVisible(".error"))
	admin.axe("sign-in refused")
	admin.run("sign in", chromedp.SetValue("#password", portalPassword), chromedp.SetValue("#code", totpNow(t, env, secret)),
		chromedp.Click(`#sign-in button[type=submit]`), chromedp.WaitVisible("#partners"))
	env.Clock.Advance(30 * time.Second)
	admin.axe("partners")

	// Bad input: an existing slug is refused next to the form, which keeps
	// what was typed.
	admin.run("create a partner with a taken slug", chromedp.SendKeys("#slug", "acme"), chromedp.SendKeys("#name", "Acme again"),
		chromedp.Click(`#create-partner button[type=submit]`), chromedp.WaitVisible(".error"))
	admin.waitText(".error", `a partner with the slug "acme" already exists`)
	require.Equal(t, "Acme again", admin.value("#name"))
	admin.axe("partners, refused")

	admin.run("create a partner", chromedp.SetValue("#slug", "newco"), chromedp.SetValue("#name", "NewCo"), chromedp.SendKeys("#currency", "miles"),
		chromedp.Click(`#create-partner button[type=submit]`), chromedp.WaitVisible("#onboarding"))
	admin.waitText("#partner-status", "pending")
	admin.axe("partner, pending")
	docShot(admin, "img/admin-partner-pending.png", 0, "")

	// A pending partner's signed request is refused.
	np, err := env.App.Partners.BySlug(ctx, env.DB.Bun, "newco")
	require.NoError(t, err)
	newco := np.ID
	const secretText = "newco-hmac-secret-0123456789"
	_, err = env.App.Partners.AddSharedSecret(ctx, env.DB.Bun, newco, partner.KindHMAC, "test", []byte(secretText))
	require.NoError(t, err)
	signed := func(user string) *apptest.Response {
		body := []byte(`{"externalUserId":"` + user + `"}`)
		req, err := http.NewRequest(http.MethodPost, env.Server.URL+"/integrations/users", bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("x-partner-slug", "newco")
		req.Header.Set("x-signature", env.SignV1(secretText, body))
		return env.Do(req)
	}
	res := signed("u1")
	require.Equal(t, http.StatusForbidden, res.StatusCode)
	require.Equal(t, "PARTNER_PENDING", res.Code())

	admin.run("approve", chromedp.Click(`#status-actions button[value=approve]`), chromedp.WaitVisible("#partner-status.status-active"))
	admin.axe("partner, approved")
	res = signed("u2")
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)

	// Invite the first owner, with a bad address first.
	admin.run("invite with a bad address", chromedp.SetAttributeValue("#owner-email", "type", "text"), chromedp.SendKeys("#owner-email", "not an address"),
		chromedp.Click(`#invite-owner button[type=submit]`), chromedp.WaitVisible(".error"))
	admin.waitText(".error", "enter one email address")
	admin.axe("partner, invitation refused")
	admin.run("invite the owner", chromedp.SetValue("#owner-email", "owner@newco.example.test"),
		chromedp.Click(`#invite-owner button[type=submit]`), chromedp.WaitVisible("#activation-link"))
	admin.axe("partner, owner invited")
	link, err := url.Parse(admin.text("#activation-link"))
	require.NoError(t, err)
	require.Equal(t, "/portal/activate", link.Path)

	owner := newPage(t, steps)
	activateInBrowser(t, env, owner, env.Server.URL+link.RequestURI(), "owner@newco.example.test")
	owner.waitText(".brand", "NewCo")

	// Usage: the request that was served counts (refused ones never
	// authenticated); the charts show it after a flush.
	_, err = env.App.Usage.Flush(ctx, env.DB.Bun, env.Now())
	require.NoError(t, err)
	today := report.Today(env.Now(), "UTC")
	days, err := report.Usage(ctx, env.DB.Bun, newco, report.Range{From: today, To: today})
	require.NoError(t, err)
	require.Equal(t, int64(1), days[0].Requests)
	admin.run("usage", chromedp.Navigate(base+"/partners/newco"), chromedp.WaitVisible("#usage svg"), chromedp.WaitReady("#chart-requests-title"))
	admin.axe("partner, usage")
	docShot(admin, "img/admin-partner.png", 0, "")

	admin.run("suspend", chromedp.Click(`#status-actions button[value=suspend]`), chromedp.WaitVisible("#partner-status.status-suspended"))
	res = signed("u3")
	require.Equal(t, http.StatusForbidden, res.StatusCode)
	require.Equal(t, "PARTNER_SUSPENDED", res.Code())

	// The partner owner's session reaches nothing under /admin: pages go
	// to sign-in, a direct POST (with the owner's cookies and a valid
	// portal CSRF token) is refused and changes nothing, River UI too.
	owner.run("open the console as the owner", chromedp.Navigate(base+"/partners"), chromedp.WaitVisible("#sign-in"))
	ownerCookies := browserCookies(owner, base+"/")
	owner.run("back to the portal", chromedp.Navigate(env.Server.URL+"/portal/team"), chromedp.WaitVisible("#invite"))
	portalCSRF := pageCSRF(owner)
	r, _ := direct(t, http.MethodPost, base+"/partners/newco/status", url.Values{"csrf": {portalCSRF}, "action": {"resume"}}, ownerCookies)
	require.Equal(t, http.StatusUnauthorized, r.StatusCode)
	r, _ = direct(t, http.MethodGet, base+"/riverui/", nil, ownerCookies)
	require.Equal(t, http.StatusSeeOther, r.StatusCode)
	require.Equal(t, "/admin/sign-in", r.Header.Get("Location"))
	r, _ = direct(t, http.MethodGet, base+"/riverui/api/jobs?state=available", nil, ownerCookies)
	require.Equal(t, http.StatusUnauthorized, r.StatusCode)
	p, err := env.App.Partners.BySlug(ctx, env.DB.Bun, "newco")
	require.NoError(t, err)
	require.Equal(t, partner.StatusSuspended, p.Status, "the owner's POST changed nothing")

	// The admin's own session: a POST without the CSRF token is refused;
	// River UI opens.
	adminCookies := browserCookies(admin, base+"/")
	r, _ = direct(t, http.MethodPost, base+"/partners/newco/status", url.Values{"action": {"resume"}}, adminCookies)
	require.Equal(t, http.StatusForbidden, r.StatusCode)
	r, html := direct(t, http.MethodGet, base+"/riverui/", nil, adminCookies)
	require.Equal(t, http.StatusOK, r.StatusCode)
	require.Contains(t, html, "River")
	r, _ = direct(t, http.MethodGet, base+"/riverui/api/jobs?state=available", nil, adminCookies)
	require.Equal(t, http.StatusOK, r.StatusCode)
	admin.run("resume", chromedp.Click(`#status-actions button[value=resume]`), chromedp.WaitVisible("#partner-status.status-active"))

	// Merchants: create one for newco (its credential shown once), attach
	// it to acme, invite its admin; a bad name is refused.
	admin.run("merchants", chromedp.Navigate(base+"/merchants"), chromedp.WaitVisible("#create-merchant"))
	admin.axe("merchants")
	admin.run("create a merchant with a bad code", chromedp.SetValue("#merchant-partner", "newco"), chromedp.SendKeys("#merchant-name", "Corner Shop"),
		chromedp.SendKeys("#merchant-code", "Corner Shop!"), chromedp.Click(`#create-merchant button[type=submit]`), chromedp.WaitVisible(".error"))
	admin.waitText(".error", "code must be 1-63 lowercase letters")
	admin.axe("merchants, refused")
	admin.run("create a merchant", chromedp.Evaluate(`document.querySelector("#merchant-code").value = ""`, nil), chromedp.Click(`#create-merchant button[type=submit]`), chromedp.WaitVisible("#merchant-api-key"))
	admin.axe("merchants, created")
	require.True(t, strings.HasPrefix(admin.text("#merchant-api-key"), "mk_"))
	var mid string
	require.NoError(t, env.DB.Bun.NewRaw("SELECT id::text FROM merchants WHERE partner_id = ? AND code = 'corner-shop'", newco).Scan(ctx, &mid))
	admin.run("attach to acme", chromedp.SetValue("#attach-"+mid, "acme"), chromedp.Click(`form[action$="`+mid+`/attach"] button`), chromedp.WaitVisible("#created-acme"))
	require.Equal(t, 1, env.Count("merchants", "partner_id = ? AND code = 'corner-shop'", env.PartnerID("acme")))
	admin.run("invite the merchant admin", chromedp.SendKeys("#admin-"+mid, "boss@corner.example.test"), chromedp.Click(`form[action$="`+mid+`/invite"] button`),
		chromedp.WaitVisible("#activation-link"))
	require.Contains(t, admin.text("#activation-link"), "/merchant/activate?token=")
	admin.axe("merchants, admin invited")
	docShot(admin, "img/admin-merchants.png", 0, "")
	require.Equal(t, 1, env.Count("accounts", "realm = 'merchant' AND role = 'admin' AND realm_id = ?::uuid", mid))

	admin.run("health", chromedp.Navigate(base+"/health"), chromedp.WaitVisible("#webhook-failures"))
	admin.axe("health")
	docShot(admin, "img/admin-health.png", 0, "")

	// The audit log across partners, filtered, and its CSV.
	admin.run("audit", chromedp.Navigate(base+"/audit?action=partner.&realm=platform"), chromedp.WaitVisible("#audit"))
	admin.axe("audit")
	docShot(admin, "img/admin-audit.png", 0, "")
	var actions []string
	admin.run("read actions", chromedp.Evaluate(`[...document.querySelectorAll("#audit tbody tr td:nth-child(4)")].map(td => td.textContent)`, &actions))
	require.Equal(t, []string{"partner.resume", "partner.suspend", "partner.invite_owner", "partner.approve", "partner.create"}, actions)
	r, csv := direct(t, http.MethodGet, base+"/audit.csv?action=merchant.", nil, adminCookies)
	require.Equal(t, http.StatusOK, r.StatusCode)
	require.Equal(t, "text/csv; charset=utf-8", r.Header.Get("Content-Type"))
	require.Contains(t, csv, "merchant.create")
	require.Contains(t, csv, "merchant.attach")
	require.Contains(t, csv, "ops@perks.example.test")
	require.NotContains(t, csv, "mk_", "no secret in the audit log")
	admin.run("audit with a bad date", chromedp.Navigate(base+"/audit?from=yesterday"), chromedp.WaitVisible(".error"))
	admin.waitText(".error", "YYYY-MM-DD")
	admin.axe("audit, refused")
	steps.clean()
}

// value is the current value of an input.
func (p *page) value(sel string) string {
	p.t.Helper()
	var v string
	p.run("read the value of "+sel, chromedp.Value(sel, &v))
	return v
}
