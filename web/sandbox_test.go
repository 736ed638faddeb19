package web_test

import (
	"context"
	"crypto/ed25519"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/account"
	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/audit"
	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/demo"
)

// TestSandboxInBrowser: acme's owner switches to the sandbox from the
// Sandbox page (no second sign-in), sees the banner on every page, creates
// an API access record there and signs a request that lands in the
// sandbox (not live), resets the sandbox after typing its slug, and
// switches back to live from the banner. axe-core runs on each state.
func TestSandboxInBrowser(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	env.App.Accounts.Argon2 = &account.Argon2Params{Memory: 64, Time: 1, Threads: 1}
	inv, err := env.App.Accounts.InviteTx(context.Background(), env.DB.Bun, account.InviteParams{Realm: account.RealmPartner,
		RealmID: env.PartnerID("acme"), Email: "owner@acme.example.test", Role: account.RoleOwner,
		Actor: audit.Actor{Kind: audit.ActorOperator, Label: "cli"}})
	require.NoError(t, err)

	steps := newSteps(t)
	owner := newPage(t, steps)
	activateInBrowser(t, env, owner, env.Server.URL+"/portal/activate?token="+url.QueryEscape(inv.Token), "owner@acme.example.test")
	require.Equal(t, "Live", owner.text("#environment"))

	owner.run("open the Sandbox page", chromedp.Navigate(env.Server.URL+"/portal/sandbox"), chromedp.WaitVisible("#switch-sandbox"))
	require.Equal(t, "live", owner.text("#acting-on"))
	owner.axe("sandbox page, live")
	owner.run("switch to the sandbox", chromedp.Click("#switch-sandbox"), chromedp.WaitVisible("#sandbox-banner"))
	require.Equal(t, "the sandbox", owner.text("#acting-on"))
	owner.shot("sandbox")
	owner.axe("sandbox page, in the sandbox")
	owner.run("the overview in the sandbox", chromedp.Navigate(env.Server.URL+"/portal"), chromedp.WaitVisible("#overview"), chromedp.WaitVisible("#sandbox-banner"))
	require.Contains(t, owner.text("#sandbox-banner"), "acme-sandbox")
	owner.axe("overview in the sandbox")

	owner.run("create API access in the sandbox", chromedp.Navigate(env.Server.URL+"/portal/api-access"), chromedp.WaitVisible("#sandbox-banner"),
		chromedp.SendKeys("#description", "sandbox server"),
		chromedp.Click(`#create-credential button[type=submit]`),
		chromedp.WaitVisible("#private-key"),
	)
	owner.axe("api access in the sandbox, keys shown once")
	apiKey := owner.text("#api-key")
	var pemText string
	owner.run("read the private key", chromedp.TextContent("#private-key", &pemText))
	k, err := demo.ParsePrivateKey([]byte(pemText))
	require.NoError(t, err)
	body := []byte(`{"externalUserId":"sandbox-browser-1"}`)
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
	require.Equal(t, "sandbox", res.Header.Get("Perks-Environment"))
	require.Equal(t, http.StatusOK, env.Partner("acme-sandbox", http.MethodGet, "/integrations/users/sandbox-browser-1", nil).StatusCode)
	require.Equal(t, "USER_NOT_FOUND", env.Partner("acme", http.MethodGet, "/integrations/users/sandbox-browser-1", nil).Code())

	owner.run("reset the sandbox", chromedp.Navigate(env.Server.URL+"/portal/sandbox"), chromedp.WaitVisible("#reset"),
		chromedp.SendKeys("#confirm", "acme-sandbox"),
		chromedp.Click("#reset"),
		chromedp.WaitVisible("#deleted"),
	)
	require.Contains(t, owner.text("#deleted"), "users: 1")
	owner.shot("sandbox-reset")
	owner.axe("sandbox reset")
	require.Equal(t, "USER_NOT_FOUND", env.Partner("acme-sandbox", http.MethodGet, "/integrations/users/sandbox-browser-1", nil).Code())

	owner.run("switch to live from the banner", chromedp.Click(`#sandbox-banner button[type=submit]`), chromedp.WaitVisible("#switch-sandbox"))
	var banners int
	owner.eval(`document.querySelectorAll("#sandbox-banner").length`, &banners)
	require.Zero(t, banners)
	require.Equal(t, "Live", owner.text("#environment"))
	steps.clean()
}
