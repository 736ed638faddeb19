package console_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/account"
	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/audit"
)

const password = "correct horse battery staple"

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// client is a browser without JavaScript: a cookie jar, no redirects.
type client struct {
	t    *testing.T
	env  *apptest.Env
	http *http.Client
}

func newClient(t *testing.T, env *apptest.Env) *client {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &client{t: t, env: env, http: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (c *client) do(method, path string, form url.Values) (int, string, http.Header) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.env.Server.URL+path, body)
	require.NoError(c.t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := c.http.Do(req)
	require.NoError(c.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(c.t, err)
	return res.StatusCode, string(b), res.Header
}

// csrf is the CSRF token of the forms of the page at path.
func (c *client) csrf(path string) string {
	c.t.Helper()
	_, html, _ := c.do(http.MethodGet, path, nil)
	m := csrfRE.FindStringSubmatch(html)
	require.NotNil(c.t, m, "no form at %s: %s", path, html)
	return m[1]
}

func code(t *testing.T, env *apptest.Env, secret string) string {
	c, err := totp.GenerateCodeCustom(secret, env.Clock.Now(), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	require.NoError(t, err)
	return c
}

// activate activates an invitation and signs in through the pages under
// prefix (/admin or /portal).
func (c *client) activate(prefix string, inv *account.Invitation) {
	c.t.Helper()
	_, e, err := c.env.App.Accounts.ActivationOffer(context.Background(), c.env.DB.Bun, inv.Token)
	require.NoError(c.t, err)
	tok := c.csrf(prefix + "/activate?token=" + url.QueryEscape(inv.Token))
	status, body, _ := c.do(http.MethodPost, prefix+"/activate", url.Values{"csrf": {tok}, "token": {inv.Token}, "password": {password}, "password2": {password}, "code": {code(c.t, c.env, e.Secret)}})
	require.Equal(c.t, http.StatusOK, status, body)
	c.env.Clock.Advance(30 * time.Second)
	tok = c.csrf(prefix + "/sign-in")
	status, body, _ = c.do(http.MethodPost, prefix+"/sign-in", url.Values{"csrf": {tok}, "email": {inv.Account.Email}, "password": {password}, "code": {code(c.t, c.env, e.Secret)}})
	require.Equal(c.t, http.StatusSeeOther, status, body)
	c.env.Clock.Advance(30 * time.Second)
}

type bundle struct {
	env   *apptest.Env
	admin *client
	owner *client
}

func setup(t *testing.T) *bundle {
	env := apptest.New(t)
	env.App.Accounts.Argon2 = &account.Argon2Params{Memory: 64, Time: 1, Threads: 1}
	ctx := context.Background()
	cli := audit.Actor{Kind: audit.ActorOperator, Label: "cli"}
	adminInv, err := env.App.Accounts.InviteTx(ctx, env.DB.Bun, account.InviteParams{Realm: account.RealmPlatform, Email: "ops@perks.example.test", Role: account.RolePlatformAdmin, Actor: cli})
	require.NoError(t, err)
	ownerInv, err := env.App.Accounts.InviteTx(ctx, env.DB.Bun, account.InviteParams{Realm: account.RealmPartner, RealmID: env.PartnerID("acme"), Email: "owner@acme.example.test", Role: account.RoleOwner, Actor: cli})
	require.NoError(t, err)
	b := &bundle{env: env, admin: newClient(t, env), owner: newClient(t, env)}
	b.admin.activate("/admin", adminInv)
	b.owner.activate("/portal", ownerInv)
	return b
}

// TestConsoleRefusesOthers: the console opens to platform admins only. A
// partner owner's portal session, even its token copied into the console's
// cookie, gets the sign-in page or 401, for pages, forms and River UI; a
// partner's activation link does not work at /admin; the admin's own form
// without its CSRF token is 403. Nothing changes.
func TestConsoleRefusesOthers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	u, _ := url.Parse(b.env.Server.URL)
	var portalToken string
	for _, c := range b.owner.http.Jar.Cookies(u) {
		if c.Name == "perks_portal" {
			portalToken = c.Value
		}
	}
	require.NotEmpty(t, portalToken)
	adminURL, _ := url.Parse(b.env.Server.URL + "/admin/")
	b.owner.http.Jar.SetCookies(adminURL, []*http.Cookie{{Name: "perks_admin", Value: portalToken, Path: "/admin"}})
	portalCSRF := b.owner.csrf("/portal/team")
	for _, path := range []string{"/admin", "/admin/partners", "/admin/partners/acme", "/admin/merchants", "/admin/health", "/admin/audit", "/admin/audit.csv", "/admin/riverui/"} {
		status, _, h := b.owner.do(http.MethodGet, path, nil)
		require.Equal(t, http.StatusSeeOther, status, path)
		require.Equal(t, "/admin/sign-in", h.Get("Location"), path)
	}
	status, _, _ := b.owner.do(http.MethodGet, "/admin/riverui/api/jobs?state=available", nil)
	require.Equal(t, http.StatusUnauthorized, status)
	before := b.env.Count("audit_log", "true")
	for path, form := range map[string]url.Values{
		"/admin/partners":             {"slug": {"sneaky"}, "name": {"Sneaky"}},
		"/admin/partners/acme/status": {"action": {"suspend"}},
		"/admin/partners/acme/invite": {"email": {"me@evil.example"}},
		"/admin/merchants":            {"partner": {"acme"}, "name": {"Sneaky"}},
	} {
		form.Set("csrf", portalCSRF)
		status, _, _ := b.owner.do(http.MethodPost, path, form)
		require.Equal(t, http.StatusUnauthorized, status, path)
	}
	require.Equal(t, before, b.env.Count("audit_log", "true"))
	require.Zero(t, b.env.Count("partners", "slug = 'sneaky' OR status <> 'active'"))

	// A partner portal invitation does not activate at /admin.
	inv, err := b.env.App.Accounts.InviteTx(context.Background(), b.env.DB.Bun, account.InviteParams{Realm: account.RealmPartner, RealmID: b.env.PartnerID("acme"),
		Email: "dev@acme.example.test", Role: account.RoleDeveloper, Actor: audit.Actor{Kind: audit.ActorOperator, Label: "cli"}})
	require.NoError(t, err)
	status, body, _ := b.admin.do(http.MethodGet, "/admin/activate?token="+url.QueryEscape(inv.Token), nil)
	require.Equal(t, http.StatusUnauthorized, status)
	require.Contains(t, body, "does not work any more")

	// The admin's form without its token.
	status, _, _ = b.admin.do(http.MethodPost, "/admin/partners/acme/status", url.Values{"action": {"suspend"}})
	require.Equal(t, http.StatusForbidden, status)
	require.Zero(t, b.env.Count("partners", "status <> 'active'"))
}

// TestConsoleBadInput: each form answers bad input with a 4xx and a clear
// message on the page, and changes nothing.
func TestConsoleBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tok := b.admin.csrf("/admin/partners")
	before := b.env.Count("audit_log", "true")
	for _, tc := range []struct {
		path   string
		form   url.Values
		status int
		msg    string
	}{
		{"/admin/partners", url.Values{"slug": {"Bad Slug"}, "name": {"X"}}, 400, "slug must be 1-63 lowercase letters"},
		{"/admin/partners", url.Values{"slug": {"fine"}}, 400, "name is required"},
		{"/admin/partners", url.Values{"slug": {"globex"}, "name": {"G"}}, 409, "already exists"},
		{"/admin/partners/acme/status", url.Values{"action": {"explode"}}, 400, "action must be approve, suspend or resume"},
		{"/admin/partners/nope/status", url.Values{"action": {"approve"}}, 404, "partner not found"},
		{"/admin/partners/acme/invite", url.Values{"email": {"two@a.example, b@b.example"}}, 400, "enter one email address"},
		{"/admin/merchants", url.Values{"partner": {"nope"}, "name": {"Shop"}}, 400, "choose the partner"},
		{"/admin/merchants", url.Values{"partner": {"acme"}, "name": {""}}, 400, "name must be 1 to 200 characters"},
		{"/admin/merchants/not-a-uuid/invite", url.Values{"email": {"a@b.example"}}, 404, "merchant not found"},
	} {
		tc.form.Set("csrf", tok)
		status, body, _ := b.admin.do(http.MethodPost, tc.path, tc.form)
		require.Equal(t, tc.status, status, "%s %v: %s", tc.path, tc.form, body)
		require.Contains(t, body, tc.msg, tc.path)
		require.Contains(t, body, `role="alert"`)
	}
	status, body, _ := b.admin.do(http.MethodGet, "/admin/audit?realm=galaxy", nil)
	require.Equal(t, http.StatusBadRequest, status)
	require.Contains(t, body, "Choose the realm")
	status, _, _ = b.admin.do(http.MethodGet, "/admin/partners/acme?from=2026-13-01", nil)
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, before, b.env.Count("audit_log", "true"), "nothing was audited: nothing changed")
	require.Zero(t, b.env.Count("partners", "slug IN ('fine', 'nope') OR status <> 'active'"))
}
