package portal_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/account"
	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/audit"
	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/demo"
	"github.com/perkshq/perks/internal/mailer"
	"github.com/perkshq/perks/internal/mailer/mailertest"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/portal"
)

const password = "correct horse battery staple"

// fastArgon keeps sign-ins quick in tests; production uses the default.
var fastArgon = &account.Argon2Params{Memory: 64, Time: 1, Threads: 1}

// browser is a cookie-keeping client that does not follow redirects.
type browser struct {
	t    *testing.T
	env  *apptest.Env
	http *http.Client
}

type page struct {
	Status int
	Body   string
	Header http.Header
	URL    *url.URL
}

func newBrowser(t *testing.T, env *apptest.Env) *browser {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &browser{t: t, env: env, http: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(req *http.Request) *page {
	b.t.Helper()
	res, err := b.http.Do(req)
	require.NoError(b.t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(b.t, err)
	return &page{Status: res.StatusCode, Body: string(body), Header: res.Header, URL: req.URL}
}

func (b *browser) get(path string) *page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.env.Server.URL+path, nil)
	require.NoError(b.t, err)
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) *page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.env.Server.URL+path, strings.NewReader(form.Encode()))
	require.NoError(b.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

func (b *browser) cookie(name string) string {
	u, _ := url.Parse(b.env.Server.URL)
	for _, c := range b.http.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

func (b *browser) setCookie(name, value string) {
	u, _ := url.Parse(b.env.Server.URL)
	b.http.Jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/"}})
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (p *page) csrf(t *testing.T) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(p.Body)
	require.NotNil(t, m, "no csrf field in %s", p.Body)
	return m[1]
}

func (p *page) find(t *testing.T, re string) string {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(p.Body)
	require.NotNil(t, m, "%s not in %s", re, p.Body)
	return html.UnescapeString(m[1])
}

type bundle struct {
	env   *apptest.Env
	ctx   context.Context
	acme  *partner.Partner
	globe *partner.Partner
}

func setup(t *testing.T) *bundle {
	t.Helper()
	env := apptest.New(t)
	env.App.Accounts.Argon2 = fastArgon
	ctx := context.Background()
	acme, err := env.App.Partners.BySlug(ctx, env.DB.Bun, "acme")
	require.NoError(t, err)
	globex, err := env.App.Partners.BySlug(ctx, env.DB.Bun, "globex")
	require.NoError(t, err)
	return &bundle{env: env, ctx: ctx, acme: acme, globe: globex}
}

func (b *bundle) code(t *testing.T, secret string) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, b.env.Clock.Now(), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	require.NoError(t, err)
	return c
}

func (b *bundle) invite(t *testing.T, p *partner.Partner, email, role string) string {
	t.Helper()
	inv, err := b.env.App.Accounts.InviteTx(b.ctx, b.env.DB.Bun, account.InviteParams{Realm: account.RealmPartner, RealmID: p.ID, Email: email, Role: role,
		Actor: audit.Actor{Kind: audit.ActorOperator, Label: "test"}})
	require.NoError(t, err)
	return inv.Token
}

// user is a person with an activated account.
type user struct {
	email, secret string
}

// activate goes through the activation page in br and returns the TOTP
// secret shown there; the clock moves to the next TOTP step.
func (b *bundle) activate(t *testing.T, br *browser, token string) string {
	t.Helper()
	pg := br.get("/portal/activate?token=" + url.QueryEscape(token))
	require.Equal(t, http.StatusOK, pg.Status, pg.Body)
	secret := pg.find(t, `id="totp-secret">([A-Z2-7]+)<`)
	require.Contains(t, pg.Body, `src="data:image/png;base64,`)
	res := br.post("/portal/activate", url.Values{"csrf": {pg.csrf(t)}, "token": {token}, "password": {password}, "password2": {password}, "code": {b.code(t, secret)}})
	require.Equal(t, http.StatusOK, res.Status, res.Body)
	require.Contains(t, res.Body, "is active")
	b.env.Clock.Advance(30 * time.Second)
	return secret
}

func (b *bundle) signIn(t *testing.T, br *browser, u user) *page {
	t.Helper()
	pg := br.get("/portal/sign-in")
	require.Equal(t, http.StatusOK, pg.Status)
	res := br.post("/portal/sign-in", url.Values{"csrf": {pg.csrf(t)}, "email": {u.email}, "password": {password}, "code": {b.code(t, u.secret)}})
	b.env.Clock.Advance(30 * time.Second)
	return res
}

// member invites, activates and signs in a user of p with role.
func (b *bundle) member(t *testing.T, p *partner.Partner, email, role string) (*browser, user) {
	t.Helper()
	br := newBrowser(t, b.env)
	u := user{email: email}
	u.secret = b.activate(t, br, b.invite(t, p, email, role))
	res := b.signIn(t, br, u)
	require.Equal(t, http.StatusSeeOther, res.Status, res.Body)
	return br, u
}

// csrfOf returns the CSRF token of br's session (from a page).
func (br *browser) csrfOf(t *testing.T) string {
	pg := br.get("/portal/api-access")
	require.Equal(t, http.StatusOK, pg.Status, pg.Body)
	return pg.csrf(t)
}

func TestActivationSignInSignOut(t *testing.T) {
	t.Parallel()
	b := setup(t)
	br := newBrowser(t, b.env)
	tok := b.invite(t, b.acme, "owner@acme.example", account.RoleOwner)

	// Not signed in: pages send to sign-in.
	res := br.get("/portal")
	require.Equal(t, http.StatusSeeOther, res.Status)
	require.Equal(t, "/portal/sign-in", res.Header.Get("Location"))

	u := user{email: "owner@acme.example", secret: b.activate(t, br, tok)}
	// The link worked once.
	require.Equal(t, http.StatusUnauthorized, br.get("/portal/activate?token="+url.QueryEscape(tok)).Status)

	res = b.signIn(t, br, u)
	require.Equal(t, http.StatusSeeOther, res.Status, res.Body)
	require.Equal(t, "/portal", res.Header.Get("Location"))
	home := br.get("/portal")
	require.Equal(t, http.StatusOK, home.Status)
	require.Contains(t, home.Body, "Acme")
	require.Contains(t, home.Body, `id="overview"`)
	for h, want := range map[string]string{
		"Content-Security-Policy": portal.CSP, "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
		"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
	} {
		require.Equal(t, want, home.Header.Get(h), h)
	}
	require.NotContains(t, home.Body, "<script", "no inline script")
	require.NotContains(t, home.Body, "style=", "no inline style")

	// Sign out ends this session only; sign out everywhere ends them all.
	other := newBrowser(t, b.env)
	require.Equal(t, http.StatusSeeOther, b.signIn(t, other, u).Status)
	res = br.post("/portal/sign-out", url.Values{"csrf": {br.csrfOf(t)}})
	require.Equal(t, http.StatusSeeOther, res.Status)
	require.Equal(t, http.StatusSeeOther, br.get("/portal").Status)
	require.Equal(t, http.StatusOK, other.get("/portal").Status)

	third := newBrowser(t, b.env)
	require.Equal(t, http.StatusSeeOther, b.signIn(t, third, u).Status)
	res = third.post("/portal/sign-out-everywhere", url.Values{"csrf": {third.csrfOf(t)}})
	require.Equal(t, http.StatusSeeOther, res.Status)
	require.Equal(t, http.StatusSeeOther, other.get("/portal").Status)
	require.Equal(t, http.StatusSeeOther, third.get("/portal").Status)
}

func TestCSRF(t *testing.T) {
	t.Parallel()
	b := setup(t)
	br, _ := b.member(t, b.acme, "dev@acme.example", account.RoleDeveloper)
	count := func() int { return b.env.Count("partner_credentials", "partner_id = ?", b.acme.ID) }
	before := count()

	for name, form := range map[string]url.Values{
		"missing": {"description": {"x"}},
		"wrong":   {"description": {"x"}, "csrf": {account.NewToken()}},
		"empty":   {"description": {"x"}, "csrf": {""}},
	} {
		res := br.post("/portal/api-access", form)
		require.Equal(t, http.StatusForbidden, res.Status, name)
	}
	require.Equal(t, before, count(), "refused forms change nothing")

	// Another browser's token is not this session's.
	other, _ := b.member(t, b.acme, "dev2@acme.example", account.RoleDeveloper)
	res := br.post("/portal/api-access", url.Values{"description": {"x"}, "csrf": {other.csrfOf(t)}})
	require.Equal(t, http.StatusForbidden, res.Status)

	// A cross-site POST (the browser says so) is refused before anything.
	req, err := http.NewRequest(http.MethodPost, b.env.Server.URL+"/portal/api-access", strings.NewReader(url.Values{"csrf": {br.csrfOf(t)}}.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	require.Equal(t, http.StatusForbidden, br.do(req).Status)
	require.Equal(t, before, count())

	res = br.post("/portal/api-access", url.Values{"description": {"x"}, "csrf": {br.csrfOf(t)}})
	require.Equal(t, http.StatusCreated, res.Status, res.Body)
	require.Equal(t, before+1, count())

	// The sign-in form: its token must match the browser's cookie.
	fresh := newBrowser(t, b.env)
	res = fresh.post("/portal/sign-in", url.Values{"email": {"dev@acme.example"}, "password": {password}, "code": {"000000"}})
	require.Equal(t, http.StatusForbidden, res.Status)
	fresh.get("/portal/sign-in")
	res = fresh.post("/portal/sign-in", url.Values{"csrf": {account.NewToken()}, "email": {"dev@acme.example"}, "password": {password}, "code": {"000000"}})
	require.Equal(t, http.StatusForbidden, res.Status)
}

func TestSessionFixation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	attacker, _ := b.member(t, b.acme, "mallory@acme.example", account.RoleViewer)
	planted := attacker.cookie("perks_portal")
	require.NotEmpty(t, planted)

	victim := newBrowser(t, b.env)
	vu := user{email: "victim@acme.example"}
	vu.secret = b.activate(t, victim, b.invite(t, b.acme, vu.email, account.RoleOwner))
	// The attacker's session token is planted in the victim's browser.
	victim.setCookie("perks_portal", planted)
	res := b.signIn(t, victim, vu)
	require.Equal(t, http.StatusSeeOther, res.Status)
	got := victim.cookie("perks_portal")
	require.NotEmpty(t, got)
	require.NotEqual(t, planted, got, "a new session at sign-in")
	// The planted token is dead: the attacker holds nothing of the victim's.
	require.Equal(t, http.StatusSeeOther, attacker.get("/portal").Status)
	// And a made-up token is never adopted.
	victim.setCookie("perks_portal", "made-up-token")
	require.Equal(t, http.StatusSeeOther, victim.get("/portal").Status)
}

func TestBruteForceLockout(t *testing.T) {
	t.Parallel()
	b := setup(t)
	br, u := b.member(t, b.acme, "target@acme.example", account.RoleViewer)
	_ = br
	attacker := newBrowser(t, b.env)
	pg := attacker.get("/portal/sign-in")
	var messages []string
	for i := range 5 {
		res := attacker.post("/portal/sign-in", url.Values{"csrf": {pg.csrf(t)}, "email": {u.email}, "password": {"guess number " + strconv.Itoa(i)}, "code": {b.code(t, u.secret)}})
		require.Equal(t, http.StatusUnauthorized, res.Status)
		messages = append(messages, res.find(t, `role="alert">([^<]+)<`))
	}
	// Locked: the right password and code fail too, with the same words
	// as an unknown address.
	res := attacker.post("/portal/sign-in", url.Values{"csrf": {pg.csrf(t)}, "email": {u.email}, "password": {password}, "code": {b.code(t, u.secret)}})
	require.Equal(t, http.StatusUnauthorized, res.Status)
	unknown := attacker.post("/portal/sign-in", url.Values{"csrf": {pg.csrf(t)}, "email": {"nobody@acme.example"}, "password": {password}, "code": {"123456"}})
	require.Equal(t, http.StatusUnauthorized, unknown.Status)
	require.Equal(t, messages[0], res.find(t, `role="alert">([^<]+)<`))
	require.Equal(t, messages[0], unknown.find(t, `role="alert">([^<]+)<`))

	// Past the lock, the owner of the account gets in.
	b.env.Clock.Advance(15 * time.Minute)
	require.Equal(t, http.StatusSeeOther, b.signIn(t, newBrowser(t, b.env), u).Status)

	// Per address: the 11th attempt within a minute is refused outright.
	limited := 0
	for range 12 {
		if attacker.post("/portal/sign-in", url.Values{"csrf": {pg.csrf(t)}, "email": {"nobody@acme.example"}, "password": {"x"}, "code": {"1"}}).Status == http.StatusTooManyRequests {
			limited++
		}
	}
	require.Positive(t, limited)
}

func TestRolesEnforcedServerSide(t *testing.T) {
	t.Parallel()
	b := setup(t)
	viewer, _ := b.member(t, b.acme, "viewer@acme.example", account.RoleViewer)
	dev, _ := b.member(t, b.acme, "dev@acme.example", account.RoleDeveloper)
	cred, err := b.env.App.Partners.CreateEd25519Credential(b.ctx, b.env.DB.Bun, b.acme.ID, "existing", nil)
	require.NoError(t, err)
	id := cred.Credential.ID.String()

	// The viewer sees API access, without the buttons, and every developer
	// action posted directly is refused.
	pg := viewer.get("/portal/api-access")
	require.Equal(t, http.StatusOK, pg.Status)
	require.NotContains(t, pg.Body, `id="create-credential"`)
	csrf := pg.csrf(t)
	for _, path := range []string{"/portal/api-access", "/portal/api-access/" + id + "/disable", "/portal/api-access/" + id + "/rotate"} {
		res := viewer.post(path, url.Values{"csrf": {csrf}, "description": {"v"}})
		require.Equal(t, http.StatusForbidden, res.Status, path)
	}
	require.Equal(t, 1, b.env.Count("partner_credentials", "id = ? AND enabled", cred.Credential.ID))
	for _, path := range []string{"/portal/team", "/portal/audit", "/portal/audit.csv"} {
		require.Equal(t, http.StatusForbidden, viewer.get(path).Status, path)
		require.Equal(t, http.StatusForbidden, dev.get(path).Status, path)
	}
	res := dev.post("/portal/team/invite", url.Values{"csrf": {dev.csrfOf(t)}, "email": {"x@acme.example"}, "role": {"owner"}})
	require.Equal(t, http.StatusForbidden, res.Status)
	require.Zero(t, b.env.Count("accounts", "email = 'x@acme.example'"))

	// The developer may.
	res = dev.post("/portal/api-access/"+id+"/disable", url.Values{"csrf": {dev.csrfOf(t)}})
	require.Equal(t, http.StatusOK, res.Status, res.Body)
	require.Equal(t, 1, b.env.Count("partner_credentials", "id = ? AND NOT enabled", cred.Credential.ID))
}

func TestPartnerIsolation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	acmeOwner, _ := b.member(t, b.acme, "owner@acme.example", account.RoleOwner)
	_, gu := b.member(t, b.globe, "owner@globex.example", account.RoleOwner)
	globexCred, err := b.env.App.Partners.CreateEd25519Credential(b.ctx, b.env.DB.Bun, b.globe.ID, "globex secret thing", nil)
	require.NoError(t, err)
	var globexAccount uuid.UUID
	require.NoError(t, b.env.DB.Bun.NewSelect().Table("accounts").Column("id").Where("email = ?", gu.email).Scan(b.ctx, &globexAccount))

	csrf := acmeOwner.csrfOf(t)
	for _, path := range []string{
		"/portal/api-access/" + globexCred.Credential.ID.String() + "/disable",
		"/portal/api-access/" + globexCred.Credential.ID.String() + "/rotate",
	} {
		res := acmeOwner.post(path, url.Values{"csrf": {csrf}})
		require.Equal(t, http.StatusNotFound, res.Status, path)
	}
	require.Equal(t, 1, b.env.Count("partner_credentials", "id = ? AND enabled", globexCred.Credential.ID))
	for _, path := range []string{"/portal/team/" + globexAccount.String() + "/role", "/portal/team/" + globexAccount.String() + "/remove"} {
		res := acmeOwner.post(path, url.Values{"csrf": {csrf}, "role": {"viewer"}})
		require.Equal(t, http.StatusNotFound, res.Status, path)
	}
	require.Equal(t, 1, b.env.Count("accounts", "id = ? AND role = 'owner' AND status = 'active'", globexAccount))

	// Acme's pages never show Globex's things.
	for _, path := range []string{"/portal/api-access", "/portal/team", "/portal/audit", "/portal/audit.csv"} {
		pg := acmeOwner.get(path)
		require.Equal(t, http.StatusOK, pg.Status, path)
		require.NotContains(t, pg.Body, "globex", path)
		require.NotContains(t, pg.Body, "Globex", path)
	}
	// Signing in at the portal with a Globex address only ever opens Globex.
	gb := newBrowser(t, b.env)
	require.Equal(t, http.StatusSeeOther, b.signIn(t, gb, gu).Status)
	require.Contains(t, gb.get("/portal").Body, "Globex")
}

func TestAPIAccessSignsRealRequest(t *testing.T) {
	t.Parallel()
	b := setup(t)
	dev, _ := b.member(t, b.acme, "dev@acme.example", account.RoleDeveloper)
	res := dev.post("/portal/api-access", url.Values{"csrf": {dev.csrfOf(t)}, "description": {"checkout server"}})
	require.Equal(t, http.StatusCreated, res.Status, res.Body)
	apiKey := res.find(t, `<pre id="api-key">([^<]+)</pre>`)
	pemText := res.find(t, `(?s)<pre id="private-key">(.+?)</pre>`)
	k, err := demo.ParsePrivateKey([]byte(pemText))
	require.NoError(t, err)
	priv := k.(ed25519.PrivateKey)

	signed := func(key string) int {
		body := []byte(`{"externalUserId":"portal-user-1","email":"p1@example.com"}`)
		ts := strconv.FormatInt(b.env.Now().Unix(), 10)
		idem := uuid.NewString()
		req, err := http.NewRequest(http.MethodPost, b.env.Server.URL+"/integrations/users", strings.NewReader(string(body)))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(auth.HeaderAPIKey, key)
		req.Header.Set("X-Timestamp", ts)
		req.Header.Set("X-Signature", auth.SignEd25519(priv, ts, http.MethodPost, "/integrations/users", body, idem))
		req.Header.Set("Idempotency-Key", idem)
		return b.env.Do(req).StatusCode
	}
	require.Equal(t, http.StatusCreated, signed(apiKey))

	// The key is shown once: the page never shows it again.
	again := dev.get("/portal/api-access")
	require.NotContains(t, again.Body, apiKey)
	require.NotContains(t, again.Body, "PRIVATE KEY")

	// Rotating disables the old record and the old key stops working.
	id := res.find(t, `<code id="credential-id">([^<]+)</code>`)
	rot := dev.post("/portal/api-access/"+id+"/rotate", url.Values{"csrf": {dev.csrfOf(t)}})
	require.Equal(t, http.StatusCreated, rot.Status, rot.Body)
	require.Equal(t, http.StatusUnauthorized, signed(apiKey))

	// Uploading one's own public key shows no private key.
	pub, _, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	up := dev.post("/portal/api-access", url.Values{"csrf": {dev.csrfOf(t)}, "description": {"own"}, "publicKey": {encodeB64(pub)}})
	require.Equal(t, http.StatusCreated, up.Status, up.Body)
	require.NotContains(t, up.Body, "private-key")
}

func TestAuditLog(t *testing.T) {
	t.Parallel()
	b := setup(t)
	owner, ou := b.member(t, b.acme, "owner@acme.example", account.RoleOwner)
	res := owner.post("/portal/api-access", url.Values{"csrf": {owner.csrfOf(t)}, "description": {"=HYPERLINK(\"x\")"}})
	require.Equal(t, http.StatusCreated, res.Status)
	apiKey := res.find(t, `<pre id="api-key">([^<]+)</pre>`)
	res = owner.post("/portal/team/invite", url.Values{"csrf": {owner.csrfOf(t)}, "email": {"new@acme.example"}, "role": {"support"}})
	require.Equal(t, http.StatusOK, res.Status, res.Body)
	link := res.find(t, `<code id="activation-link" class="secret">([^<]+)</code>`)
	require.Contains(t, link, "/portal/activate?token=")

	// A partner API write is audited with the credential as actor.
	ar := b.env.Partner("acme", http.MethodPut, "/integrations/earning-rules/portal-audit", []byte(`{"name":"Audit rule","points":5}`))
	require.Less(t, ar.StatusCode, 300, "%s", ar.Body)
	b.env.FundedUser("acme", "ext-person-42", "SG", 10)
	ar = b.env.Partner("acme", http.MethodPost, "/integrations/users/ext-person-42/adjustments", []byte(`{"points":5,"reason":"goodwill"}`))
	require.Less(t, ar.StatusCode, 300, "%s", ar.Body)

	pg := owner.get("/portal/audit")
	require.Equal(t, http.StatusOK, pg.Status)
	for _, want := range []string{"credential.create", "account.invite", "account.activate", ou.email, "PUT /integrations/earning-rules/{code}", "hmac credential"} {
		require.Contains(t, html.UnescapeString(pg.Body), want)
	}
	require.NotContains(t, pg.Body, apiKey, "secrets never reach the log")

	csv := owner.get("/portal/audit.csv")
	require.Equal(t, http.StatusOK, csv.Status)
	require.Equal(t, "text/csv; charset=utf-8", csv.Header.Get("Content-Type"))
	require.True(t, strings.HasPrefix(csv.Body, strings.Join(audit.CSVHeader, ",")+"\n"))
	require.Contains(t, csv.Body, "credential.create")
	require.NotContains(t, csv.Body, apiKey)
	require.Contains(t, csv.Body, `""fields"": [""name"", ""points""]`, "the body summary names the fields")
	require.NotContains(t, csv.Body, "Audit rule", "never the values")
	require.Contains(t, csv.Body, "/integrations/users/{externalUserId}/adjustments")
	require.NotContains(t, csv.Body, "ext-person-42", "no end user's external id: erasure must not miss it")
}

func encodeB64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// TestExpiredLinkIsReRequested: an expired link offers to mail a new one
// (with SMTP configured); the answer never says whether the address is
// invited, only an invited address gets mail, and the new link works.
func TestExpiredLinkIsReRequested(t *testing.T) {
	t.Parallel()
	b := setup(t)
	smtp := mailertest.Start(t)
	m, err := mailer.New(smtp.URL(), "perks@example.test")
	require.NoError(t, err)
	b.env.App.Portal.Mailer = m
	old := b.invite(t, b.acme, "late@acme.example", account.RoleSupport)
	b.env.Clock.Advance(73 * time.Hour)

	br := newBrowser(t, b.env)
	pg := br.get("/portal/activate?token=" + url.QueryEscape(old))
	require.Equal(t, http.StatusUnauthorized, pg.Status)
	require.Contains(t, pg.Body, `id="resend"`)
	csrf := pg.csrf(t)
	for _, email := range []string{"nobody@acme.example", "LATE@acme.example"} {
		res := br.post("/portal/activate/resend", url.Values{"csrf": {csrf}, "email": {email}})
		require.Equal(t, http.StatusUnauthorized, res.Status)
		require.Contains(t, res.Body, "If an invitation is waiting for this address")
	}
	require.Equal(t, http.StatusForbidden, br.post("/portal/activate/resend", url.Values{"email": {"late@acme.example"}}).Status)
	msgs := smtp.Messages()
	require.Len(t, msgs, 1)
	require.Equal(t, "<late@acme.example>", msgs[0].To)
	tok := regexp.MustCompile(`/portal/activate\?token=(\S+)`).FindStringSubmatch(msgs[0].Body)
	require.NotNil(t, tok)
	b.activate(t, br, tok[1])
}

// TestOverviewCharts: the Overview shows the partner's own figures as SVG
// charts over the period asked (the last 30 days by default), and refuses
// a bad period with the report's code, in the page.
func TestOverviewCharts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	viewer, _ := b.member(t, b.acme, "viewer@acme.example", account.RoleViewer)
	b.env.FundedUser("acme", "chart-user", "SG", 4321)
	b.env.FundedUser("globex", "other-user", "SG", 98765)

	pg := viewer.get("/portal")
	require.Equal(t, http.StatusOK, pg.Status)
	require.Equal(t, 5, strings.Count(pg.Body, "<svg"), "points, liability, active users, top gifts, webhooks")
	require.Contains(t, pg.Body, `role="img"`)
	require.Contains(t, pg.Body, "4,321", "acme's issued points are described in words")
	require.NotContains(t, pg.Body, "98,765", "never another partner's")
	today := b.env.Now().UTC().Format("2006-01-02")
	require.Contains(t, pg.Body, `name="to" value="`+today+`"`)

	pg = viewer.get("/portal?from=" + today + "&to=" + today)
	require.Equal(t, http.StatusOK, pg.Status)
	require.Equal(t, 5, strings.Count(pg.Body, "<svg"))

	pg = viewer.get("/portal?from=2020-01-01&to=" + today)
	require.Equal(t, http.StatusBadRequest, pg.Status)
	require.Contains(t, pg.Body, "366")
	pg = viewer.get("/portal?from=yesterday")
	require.Equal(t, http.StatusBadRequest, pg.Status)
}
