package web_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
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
)

// sessionPost sends a form POST with the page's session cookies and CSRF
// token, as a script of that user would, bypassing the page's forms.
func sessionPost(t *testing.T, env *apptest.Env, p *page, path string, form url.Values) int {
	t.Helper()
	var html string
	p.run("read the page", chromedp.OuterHTML("html", &html))
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(html)
	require.NotNil(t, csrf)
	var cookies []*network.Cookie
	p.run("read cookies", chromedp.ActionFunc(func(ctx context.Context) error {
		var err error
		cookies, err = network.GetCookies().WithURLs([]string{env.Server.URL}).Do(ctx)
		return err
	}))
	form.Set("csrf", csrf[1])
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

// TestConsumerAuthInBrowser: acme's developer adds seed 002's public key in
// the Consumer authentication tab and a consumer signs in with a token it
// verifies (GraphQL me); the token tester shows which check a forged token
// fails; the API access page creates an HMAC secret shown once. A manager
// sees the tab without its forms and is refused a direct POST. axe-core
// runs on every state.
func TestConsumerAuthInBrowser(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	env.App.Accounts.Argon2 = &account.Argon2Params{Memory: 64, Time: 1, Threads: 1}
	ctx := context.Background()
	invite := func(email, role string) string {
		inv, err := env.App.Accounts.InviteTx(ctx, env.DB.Bun, account.InviteParams{Realm: account.RealmPartner, RealmID: env.PartnerID("acme"),
			Email: email, Role: role, Actor: audit.Actor{Kind: audit.ActorOperator, Label: "cli"}})
		require.NoError(t, err)
		return env.Server.URL + "/portal/activate?token=" + url.QueryEscape(inv.Token)
	}
	devLink, mgrLink := invite("dev@acme.example.test", account.RoleDeveloper), invite("manager@acme.example.test", account.RoleManager)

	steps := newSteps(t)
	dev := newPage(t, steps)
	activateInBrowser(t, env, dev, devLink, "dev@acme.example.test")
	dev.run("open Consumer authentication", chromedp.Click(`a[href="/portal/consumer-auth"]`), chromedp.WaitVisible("#add-key"))
	dev.axe("consumer authentication, no key yet")

	// Seed 002: an RS256 public key with a description, enabled.
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	require.NoError(t, err)
	pubPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	dev.run("add the widget key",
		chromedp.SendKeys("#kid", "widget-2026"),
		chromedp.SendKeys("#key-description", "web widget"),
		chromedp.SetValue("#key-pem", pubPEM),
		chromedp.Click(`#add-key button[type=submit]`),
		chromedp.WaitVisible(".notice"),
	)
	dev.waitText(".notice", "Key widget-2026 added (RS256)")
	dev.waitText("#consumer-keys", "web widget")
	dev.axe("key added")

	// A consumer signs in with a token the key verifies: seed 002's claims
	// (sub, exp) and kid only.
	claims := map[string]any{"sub": "seed-002-widget-user", "email": "widget@example.com", "exp": env.Now().Add(time.Hour).Unix()}
	token := apptest.MintRS256(t, key, map[string]any{"kid": "widget-2026"}, claims)
	me := env.GraphQL(token, `{ me { id email } }`, nil)
	require.Empty(t, me.Errors, "GraphQL me with the new key")
	require.Contains(t, string(me.Data), "widget@example.com")

	// The tester: a token signed by another key fails the signature check.
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	forged := apptest.MintRS256(t, other, map[string]any{"kid": "widget-2026"}, claims)
	dev.run("test a forged token",
		chromedp.SetValue("#token", forged),
		chromedp.Click(`#test-token button[type=submit]`),
		chromedp.WaitVisible("#token-report"),
	)
	dev.waitText("#token-verdict", "refused (TOKEN_INVALID, bad_signature)")
	var failed string
	dev.eval(`Array.from(document.querySelectorAll("#token-report tr.check-fail")).map(r => r.id).join(",")`, &failed)
	require.Equal(t, "check-signature", failed)
	var pasted string
	dev.eval(`document.querySelector("#token").value`, &pasted)
	require.Empty(t, pasted, "the page does not send the token back")
	dev.axe("token tested, signature fails")
	docShot(dev, "portal/consumer-auth.png", 0, "#token-report")
	dev.run("test the good token", chromedp.Navigate(env.Server.URL+"/portal/consumer-auth"), chromedp.WaitVisible("#test-token"), chromedp.SetValue("#token", token), chromedp.Click(`#test-token button[type=submit]`), chromedp.WaitVisible("#token-report"))
	dev.waitText("#token-verdict", "valid")
	dev.axe("token tested, valid")
	require.NotContains(t, env.Logs.String(), forged)

	// API access: an HMAC secret, shown once.
	dev.run("create an HMAC secret", chromedp.Navigate(env.Server.URL+"/portal/api-access"), chromedp.WaitVisible("#create-secret"),
		chromedp.SendKeys("#secret-description", "billing back end"),
		chromedp.Click(`#create-secret button[type=submit]`),
		chromedp.WaitVisible("#shared-secret"),
	)
	secret := dev.text("#shared-secret")
	dev.axe("api access, secret shown once")
	docShot(dev, "portal/api-access.png", 0, "#created")
	req, err := http.NewRequest(http.MethodGet, env.Server.URL+"/integrations/credentials", nil)
	require.NoError(t, err)
	req.Header.Set("X-Partner-Slug", "acme")
	req.Header.Set("X-Signature", env.SignV1(secret, nil))
	require.Equal(t, http.StatusOK, env.Do(req).StatusCode, "the secret shown once signs a request")

	// The manager reads the tab but changes nothing, not even by a direct POST.
	mgr := newPage(t, steps)
	activateInBrowser(t, env, mgr, mgrLink, "manager@acme.example.test")
	mgr.run("open Consumer authentication", chromedp.Navigate(env.Server.URL+"/portal/consumer-auth"), chromedp.WaitVisible("#consumer-keys"))
	var forms int
	mgr.eval(`document.querySelectorAll("#add-key, #rotate-key, #jwks, #test-token, form[action$='/disable']").length`, &forms)
	require.Zero(t, forms, "the manager sees no developer action")
	mgr.axe("consumer authentication, manager")
	require.Equal(t, http.StatusForbidden, sessionPost(t, env, mgr, "/portal/consumer-auth/keys/disable", url.Values{"kid": {"widget-2026"}}))
	require.Equal(t, http.StatusForbidden, sessionPost(t, env, mgr, "/portal/consumer-auth/keys", url.Values{"kid": {"sneaky"}, "material": {"generate"}}))
	require.Equal(t, 1, env.Count("consumer_keys", "kid = 'widget-2026' AND enabled"))
	require.Zero(t, env.Count("consumer_keys", "kid = 'sneaky'"))
	steps.clean()
}
