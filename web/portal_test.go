package web_test

import (
	"context"
	"crypto/ed25519"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/account"
	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/audit"
	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/demo"
)

// portalPassword is every test account's password.
const portalPassword = "correct horse battery staple"

// totpNow is the code an authenticator app shows for secret at the app's
// (fake) clock.
func totpNow(t *testing.T, env *apptest.Env, secret string) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, env.Clock.Now(), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	require.NoError(t, err)
	return c
}

// activateInBrowser opens an activation link, reads the TOTP key shown for
// people who cannot scan, and sets the password and second factor; then it
// signs in with password and a fresh code. It returns the TOTP secret.
func activateInBrowser(t *testing.T, env *apptest.Env, pg *page, link, email string) string {
	t.Helper()
	pg.run("open the activation link", chromedp.Navigate(link), chromedp.WaitVisible("#activate"))
	var qr string
	pg.run("the QR code is shown", chromedp.AttributeValue(`#activate img`, "src", &qr, nil))
	require.True(t, strings.HasPrefix(qr, "data:image/png;base64,"))
	secret := pg.text("#totp-secret")
	pg.shot("activation")
	pg.axe("activation")
	pg.run("set password and second factor",
		chromedp.SendKeys("#password", portalPassword),
		chromedp.SendKeys("#password2", portalPassword),
		chromedp.SendKeys("#code", totpNow(t, env, secret)),
		chromedp.Click(`#activate button[type=submit]`),
		chromedp.WaitVisible("#activated"),
	)
	pg.axe("activated")
	env.Clock.Advance(30 * time.Second) // a code is accepted once
	pg.run("open sign-in", chromedp.Navigate(env.Server.URL+"/portal/sign-in"), chromedp.WaitVisible("#sign-in"))
	pg.axe("sign-in")
	pg.run("sign in",
		chromedp.SendKeys("#email", email),
		chromedp.SendKeys("#password", portalPassword),
		chromedp.SendKeys("#code", totpNow(t, env, secret)),
		chromedp.Click(`#sign-in button[type=submit]`),
		chromedp.WaitVisible("#overview"),
	)
	env.Clock.Advance(30 * time.Second)
	return secret
}

// TestPortalInBrowser: acme's owner activates from the link (password and
// TOTP read from the page), signs in with TOTP, creates API access and
// signs a real request with the private key shown once; invites a viewer
// from the Team page, who activates in another browser and is refused the
// developer action: no form on the page, and 403 on a direct POST with
// the viewer's own session and CSRF token.
func TestPortalInBrowser(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	env.App.Accounts.Argon2 = &account.Argon2Params{Memory: 64, Time: 1, Threads: 1}
	ctx := context.Background()
	acme := env.PartnerID("acme")
	inv, err := env.App.Accounts.InviteTx(ctx, env.DB.Bun, account.InviteParams{Realm: account.RealmPartner, RealmID: acme,
		Email: "owner@acme.example.test", Role: account.RoleOwner, Actor: audit.Actor{Kind: audit.ActorOperator, Label: "cli"}})
	require.NoError(t, err)

	steps := newSteps(t)
	owner := newPage(t, steps)
	activateInBrowser(t, env, owner, env.Server.URL+"/portal/activate?token="+url.QueryEscape(inv.Token), "owner@acme.example.test")
	owner.shot("overview")
	owner.axe("overview")

	// API access: create a record, read the keys shown once.
	owner.run("create API access", chromedp.Navigate(env.Server.URL+"/portal/api-access"), chromedp.WaitVisible("#create-credential"),
		chromedp.SendKeys("#description", "checkout server"),
		chromedp.Click(`#create-credential button[type=submit]`),
		chromedp.WaitVisible("#private-key"),
	)
	owner.shot("api-access-created")
	owner.axe("api access, keys shown once")
	apiKey := owner.text("#api-key")
	var pemText string
	owner.run("read the private key", chromedp.TextContent("#private-key", &pemText))
	k, err := demo.ParsePrivateKey([]byte(pemText))
	require.NoError(t, err)
	body := []byte(`{"externalUserId":"portal-browser-1","email":"pb1@example.com"}`)
	ts := strconv.FormatInt(env.Now().Unix(), 10)
	idem := uuid.NewString()
	req, err := http.NewRequest(http.MethodPost, env.Server.URL+"/integrations/users", strings.NewReader(string(body)))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(auth.HeaderAPIKey, apiKey)
	req.Header.Set("X-Timestamp", ts)
	req.Header.Set("X-Signature", auth.SignEd25519(k.(ed25519.PrivateKey), ts, http.MethodPost, "/integrations/users", body, idem))
	req.Header.Set("Idempotency-Key", idem)
	res := env.Do(req)
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)

	// Team: invite a viewer; the page shows the link once.
	owner.run("invite a viewer", chromedp.Navigate(env.Server.URL+"/portal/team"), chromedp.WaitVisible("#invite"),
		chromedp.SendKeys("#invite-email", "viewer@acme.example.test"),
		chromedp.SetValue("#invite-role", "viewer"),
		chromedp.Click(`#invite button[type=submit]`),
		chromedp.WaitVisible("#activation-link"),
	)
	owner.shot("team-invited")
	owner.axe("team, link shown")
	link := owner.text("#activation-link")
	owner.run("open the audit log", chromedp.Navigate(env.Server.URL+"/portal/audit"), chromedp.WaitVisible("table"))
	owner.axe("audit log")
	u, err := url.Parse(link)
	require.NoError(t, err)

	viewer := newPage(t, steps)
	activateInBrowser(t, env, viewer, env.Server.URL+u.RequestURI(), "viewer@acme.example.test")
	viewer.run("open API access", chromedp.Navigate(env.Server.URL+"/portal/api-access"), chromedp.WaitVisible("table"))
	var forms int
	viewer.eval(`document.querySelectorAll("#create-credential, form[action$='/disable'], form[action$='/rotate']").length`, &forms)
	require.Zero(t, forms, "the viewer sees no developer action")
	var html string
	viewer.run("read the page", chromedp.OuterHTML("html", &html))
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(html)
	require.NotNil(t, csrf)
	var cookies []*network.Cookie
	viewer.run("read cookies", chromedp.ActionFunc(func(ctx context.Context) error {
		var err error
		cookies, err = network.GetCookies().WithURLs([]string{env.Server.URL}).Do(ctx)
		return err
	}))
	post, err := http.NewRequest(http.MethodPost, env.Server.URL+"/portal/api-access", strings.NewReader(url.Values{"csrf": {csrf[1]}, "description": {"sneaky"}}.Encode()))
	require.NoError(t, err)
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range cookies {
		post.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	direct, err := http.DefaultClient.Do(post)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, direct.Body)
	direct.Body.Close()
	require.Equal(t, http.StatusForbidden, direct.StatusCode, "the viewer's direct POST is refused")
	require.Zero(t, env.Count("partner_credentials", "description = 'sneaky'"))
	steps.clean()
}
