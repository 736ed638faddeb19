package web_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/google/uuid"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/account"
	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/audit"
	"github.com/perkshq/perks/internal/merchantportal"
)

// docShot saves the viewport as docs/img/<name>.png when
// PERKS_DOC_SHOTS=1 (how the screenshots of docs/merchant.md are made).
func (p *page) docShot(name string) {
	p.t.Helper()
	if os.Getenv("PERKS_DOC_SHOTS") != "1" {
		return
	}
	var buf []byte
	p.run("doc screenshot "+name, chromedp.CaptureScreenshot(&buf))
	require.NoError(p.t, os.WriteFile(filepath.Join("..", "docs", "img", name+".png"), buf, 0o644))
}

// merchantActivate opens a merchant portal activation link, sets the
// password and the second factor from the key shown on the page, then
// signs in and lands on the till.
func merchantActivate(t *testing.T, env *apptest.Env, pg *page, link, email, shots string) {
	t.Helper()
	pg.run("open the activation link", chromedp.Navigate(link), chromedp.WaitVisible("#activate"))
	pg.axe(shots + "activate")
	secret := pg.text("#totp-secret")
	pg.run("set password and second factor",
		chromedp.SendKeys("#password", portalPassword),
		chromedp.SendKeys("#password2", portalPassword),
		chromedp.SendKeys("#code", totpNow(t, env, secret)),
		chromedp.Click(`#activate button[type=submit]`),
		chromedp.WaitVisible("#activated"),
	)
	pg.axe(shots + "activated")
	env.Clock.Advance(30 * time.Second) // a code is accepted once
	pg.run("sign in", chromedp.Navigate(env.Server.URL+"/merchant/sign-in"), chromedp.WaitVisible("#sign-in"))
	pg.axe(shots + "sign-in")
	pg.run("sign in",
		chromedp.SendKeys("#email", email),
		chromedp.SendKeys("#password", portalPassword),
		chromedp.SendKeys("#code", totpNow(t, env, secret)),
		chromedp.Click(`#sign-in button[type=submit]`),
		chromedp.WaitVisible("#lookup"),
	)
	env.Clock.Advance(30 * time.Second)
}

// tillOperator creates an operator of acme's demo merchant with the
// redemption permission through the services (on the wall clock: the
// activation takes the previous TOTP step, the sign-in the current one)
// and signs them in on pg.
func tillOperator(t *testing.T, env *apptest.Env, pg *page, email string) {
	t.Helper()
	ctx := context.Background()
	env.App.Accounts.Argon2 = &account.Argon2Params{Memory: 64, Time: 1, Threads: 1}
	var inv *account.Invitation
	require.NoError(t, env.DB.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		inv, err = env.App.Accounts.InviteTx(ctx, tx, account.InviteParams{Realm: account.RealmMerchant, RealmID: env.Acme.Merchant.Merchant.ID,
			Email: email, Name: "Till Operator", Role: account.RoleOperatorRedeem, Actor: audit.Actor{Kind: audit.ActorOperator, Label: "test"}})
		return err
	}))
	_, enr, err := env.App.Accounts.ActivationOffer(ctx, env.DB.Bun, inv.Token)
	require.NoError(t, err)
	code := func(at time.Time) string {
		c, err := totp.GenerateCodeCustom(enr.Secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		require.NoError(t, err)
		return c
	}
	_, err = env.App.Accounts.Activate(ctx, env.DB.Bun, inv.Token, portalPassword, code(env.Now().Add(-30*time.Second)))
	require.NoError(t, err)
	pg.run("sign in at the till", chromedp.Navigate(env.Server.URL+"/merchant/sign-in"), chromedp.WaitVisible("#sign-in"),
		chromedp.SendKeys("#email", email), chromedp.SendKeys("#password", portalPassword), chromedp.SendKeys("#code", code(env.Now())),
		chromedp.Click(`#sign-in button[type=submit]`), chromedp.WaitVisible("#lookup"))
}

// postStatus posts a form with fetch from the page (same origin, the
// page's own session) and returns the HTTP status.
func (p *page) postStatus(path string, form map[string]string) int {
	p.t.Helper()
	var b strings.Builder
	b.WriteString("{")
	for k, v := range form {
		b.WriteString(`"` + k + `":"` + v + `",`)
	}
	b.WriteString("}")
	var status int
	p.run("POST "+path, chromedp.Evaluate(`fetch(`+"'"+path+"'"+`, {method: 'POST', body: new URLSearchParams(`+b.String()+`)}).then(r => r.status)`, &status,
		func(e *runtime.EvaluateParams) *runtime.EvaluateParams { return e.WithAwaitPromise(true) }))
	return status
}

// TestMerchantPortalInBrowser is issue 17's merchant scenario: a merchant
// admin invited by the CLI's service activates and invites two operators
// from the Team page; the operator with the redemption permission signs in
// on a 360 px phone, scans (types + Enter) the code of a voucher the
// shopper claimed and asked a one-time code for over GraphQL (as the
// webview does), gets a wrong code refused and redeems with the right one;
// they cannot reach API credentials. The look-up-only operator sees the
// voucher valid but has no redeem form, and a direct POST with their own
// session is refused. The admin's history names the operator; the admin
// creates an API credential (shown once). axe-core on every page.
func TestMerchantPortalInBrowser(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	env.App.Accounts.Argon2 = &account.Argon2Params{Memory: 64, Time: 1, Threads: 1}
	ctx := context.Background()
	merchantID := env.Acme.Merchant.Merchant.ID
	env.App.MerchantPortal.BaseURL = env.Server.URL // the links the Team page shows
	var inv *account.Invitation
	require.NoError(t, env.DB.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		inv, err = env.App.Accounts.InviteTx(ctx, tx, account.InviteParams{Realm: account.RealmMerchant, RealmID: merchantID,
			Email: "ada@acme-store.example", Name: "Ada Admin", Role: account.RoleMerchantAdmin, Actor: audit.Actor{Kind: audit.ActorOperator, Label: "cli"}})
		return err
	}))
	steps := newSteps(t)

	// The admin activates and invites the operators.
	admin := newPage(t, steps)
	merchantActivate(t, env, admin, merchantportal.ActivationLink(env.Server.URL, inv.Token), "ada@acme-store.example", "admin-")
	admin.axe("till")
	admin.run("team", chromedp.Navigate(env.Server.URL+"/merchant/team"), chromedp.WaitVisible("#invite"))
	admin.axe("team")
	invite := func(email, name, role string) string {
		admin.run("invite "+email,
			chromedp.Evaluate(`document.getElementById('activation-link')?.remove(); true`, nil), // wait for the new one
			chromedp.SendKeys("#invite-email", email, chromedp.ByID),
			chromedp.SendKeys("#invite-name", name, chromedp.ByID),
			chromedp.SetValue("#invite-role", role, chromedp.ByID),
			chromedp.Click(`#invite button[type=submit]`),
			chromedp.WaitVisible("#activation-link", chromedp.ByID))
		return admin.text("#activation-link")
	}
	olivia := invite("olivia@acme-store.example", "Olivia Operator", account.RoleOperatorRedeem)
	admin.axe("team-invited")
	admin.docShot("merchant-team")
	luke := invite("luke@acme-store.example", "Luke Lookup", account.RoleOperator)

	// The shopper claims a gift and asks for a one-time code, as the webview does.
	env.FundedUser("acme", "shopper", "SG", 10_000)
	token := env.Token("acme", "shopper", map[string]any{"displayName": "Sam Shopper"})
	g, err := env.App.Catalog.GiftBySKU(ctx, env.DB.Bun, env.Acme.Partner.ID, "store-10-off")
	require.NoError(t, err)
	claim := func() (string, string) {
		c := env.Claim(token, g.ID, uuid.NewString())
		require.Empty(t, c.Errors)
		return *c.Code, c.VoucherID
	}
	code, vid := claim()
	otp := env.RequestOTP(token, vid)

	// Olivia, on her phone, scans the code (keyboard input + Enter).
	op := newPage(t, steps)
	merchantActivate(t, env, op, olivia, "olivia@acme-store.example", "operator-")
	op.axe("till-empty")
	op.docShot("merchant-till")
	op.run("scan", chromedp.SendKeys("#code", code+kb.Enter, chromedp.ByID), chromedp.WaitVisible(`#voucher[data-state="valid"]`))
	op.waitText(`#voucher [data-testid="gift"]`, "10% off your next purchase")
	op.waitText(`#voucher [data-testid="owner"]`, "Sam Shopper")
	op.waitText(`#voucher [data-testid="status"]`, "Valid here")
	op.axe("voucher-valid")
	op.shot("voucher-valid")
	op.docShot("merchant-till-valid")
	var scrollWidth, innerWidth int
	op.eval(`document.documentElement.scrollWidth`, &scrollWidth)
	op.eval(`document.documentElement.clientWidth`, &innerWidth)
	require.Equal(t, 360, innerWidth)
	require.LessOrEqual(t, scrollWidth, innerWidth, "nothing overflows 360 px")
	wrong := "000000"
	if otp == wrong {
		wrong = "111111"
	}
	op.run("a wrong one-time code", chromedp.SendKeys("#otp", wrong+kb.Enter, chromedp.ByID),
		chromedp.WaitVisible(`#result[data-outcome="failure"]`))
	op.waitText(`#result[data-outcome="failure"]`, "Wrong one-time code")
	op.axe("wrong-otp")
	op.run("the right one-time code", chromedp.SendKeys("#otp", otp+kb.Enter, chromedp.ByID),
		chromedp.WaitVisible(`#result[data-outcome="success"]`))
	op.waitText(`#result[data-outcome="success"]`, "Redeemed")
	op.axe("redeemed")
	op.shot("redeemed")
	op.docShot("merchant-till-redeemed")
	op.run("the same code again", chromedp.Click("#next", chromedp.ByID), chromedp.WaitVisible("#lookup"),
		chromedp.SendKeys("#code", code+kb.Enter, chromedp.ByID), chromedp.WaitVisible(`#voucher[data-state="redeemed"]`))
	op.waitText(`#voucher [data-testid="status"]`, "Already redeemed here")
	op.axe("already-redeemed")
	// No credentials for an operator: no link, and the page is refused.
	var links int
	op.eval(`document.querySelectorAll('a[href="/merchant/credentials"]').length`, &links)
	require.Zero(t, links)
	op.run("credentials", chromedp.Navigate(env.Server.URL+"/merchant/credentials"), chromedp.WaitVisible("main .error"))
	op.waitText("main .error", "may not do this")
	op.axe("forbidden")
	var csrf string
	op.run("back to the till", chromedp.Navigate(env.Server.URL+"/merchant"), chromedp.WaitVisible("#lookup"))
	op.eval(`document.querySelector('input[name=csrf]').value`, &csrf)
	require.Equal(t, 403, op.postStatus("/merchant/credentials", map[string]string{"csrf": csrf, "partner": env.Acme.Partner.ID.String()}))

	// Luke may look up but not redeem, not even by a direct POST.
	code2, vid2 := claim()
	otp2 := env.RequestOTP(token, vid2)
	lk := newPage(t, steps)
	merchantActivate(t, env, lk, luke, "luke@acme-store.example", "lookup-")
	lk.run("scan", chromedp.SendKeys("#code", code2+kb.Enter, chromedp.ByID), chromedp.WaitVisible(`#voucher[data-state="valid"]`))
	lk.run("no redeem form", chromedp.WaitVisible("#no-redeem", chromedp.ByID))
	var forms int
	lk.eval(`document.querySelectorAll('form[action="/merchant/till/redeem"]').length`, &forms)
	require.Zero(t, forms)
	lk.axe("lookup-only")
	lk.eval(`document.querySelector('input[name=csrf]').value`, &csrf)
	require.Equal(t, 403, lk.postStatus("/merchant/till/redeem", map[string]string{"csrf": csrf, "code": code2, "otp": otp2, "partner": env.Acme.Partner.ID.String()}))
	require.Equal(t, 1, env.Count("vouchers", "id = ? AND status = 'claimed' AND otp_attempts = 0", vid2))

	// The admin's history names Olivia; the admin creates an API credential.
	admin.run("history", chromedp.Navigate(env.Server.URL+"/merchant/history"), chromedp.WaitVisible("#redemptions"))
	admin.waitText(`#redemptions [data-testid="operator"]`, "Olivia Operator")
	admin.waitText("#totals", "1")
	admin.axe("history")
	admin.docShot("merchant-history")
	admin.run("audit log", chromedp.Navigate(env.Server.URL+"/merchant/audit"), chromedp.WaitVisible("#audit"))
	admin.waitText("#audit", "voucher.redeem")
	admin.axe("audit")
	admin.run("credentials", chromedp.Navigate(env.Server.URL+"/merchant/credentials"), chromedp.WaitVisible("#create-credential"))
	admin.axe("credentials")
	admin.run("create a credential", chromedp.SendKeys("#cred-description", "checkout server", chromedp.ByID),
		chromedp.Click(`#create-credential button[type=submit]`), chromedp.WaitVisible("#api-key", chromedp.ByID))
	require.True(t, strings.HasPrefix(admin.text("#api-key"), "mk_"))
	require.Contains(t, admin.text("#private-key"), "BEGIN PRIVATE KEY")
	admin.axe("credential-created")
	admin.docShot("merchant-credentials")
	steps.clean()
}
