package merchantportal_test

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/account"
	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/audit"
	"github.com/perkshq/perks/internal/catalog"
	"github.com/perkshq/perks/internal/voucher"
)

const password = "correct horse battery staple"

// browser is a cookie-keeping client that does not follow redirects.
type browser struct {
	t    *testing.T
	base string
	http *http.Client
}

type page struct {
	Status int
	Body   string
	Header http.Header
}

func newBrowser(t *testing.T, env *apptest.Env) *browser {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &browser{t: t, base: env.Server.URL, http: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(method, path string, form url.Values) *page {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	require.NoError(b.t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := b.http.Do(req)
	require.NoError(b.t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(b.t, err)
	return &page{Status: res.StatusCode, Body: string(raw), Header: res.Header}
}

func (b *browser) get(path string) *page { b.t.Helper(); return b.do(http.MethodGet, path, nil) }
func (b *browser) post(path string, form url.Values) *page {
	b.t.Helper()
	return b.do(http.MethodPost, path, form)
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
	env *apptest.Env
	ctx context.Context
	// merchantID is acme's demo merchant; token a funded shopper's.
	merchantID uuid.UUID
	token      string
	users      int
}

func setup(t *testing.T) *bundle {
	t.Helper()
	env := apptest.New(t)
	env.App.Accounts.Argon2 = &account.Argon2Params{Memory: 64, Time: 1, Threads: 1}
	env.FundedUser("acme", "shopper", "SG", 100_000)
	tok := env.Token("acme", "shopper", map[string]any{"displayName": "Sam Shopper"})
	return &bundle{env: env, ctx: context.Background(), merchantID: env.Acme.Merchant.Merchant.ID, token: tok}
}

func (b *bundle) totp(t *testing.T, secret string) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, b.env.Clock.Now(), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	require.NoError(t, err)
	return c
}

// invite invites someone to the demo merchant as the CLI does.
func (b *bundle) invite(t *testing.T, email, name, role string) string {
	t.Helper()
	var inv *account.Invitation
	err := b.env.DB.Bun.RunInTx(b.ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		inv, err = b.env.App.Accounts.InviteTx(ctx, tx, account.InviteParams{Realm: account.RealmMerchant, RealmID: b.merchantID,
			Email: email, Name: name, Role: role, Actor: audit.Actor{Kind: audit.ActorOperator, Label: "test"}})
		return err
	})
	require.NoError(t, err)
	return inv.Token
}

// activate opens an activation link in br, activates with the key shown
// on the page, signs in and returns the signed-in till page.
func (b *bundle) activate(t *testing.T, br *browser, token, email string) *page {
	t.Helper()
	pg := br.get("/merchant/activate?token=" + url.QueryEscape(token))
	require.Equal(t, http.StatusOK, pg.Status, pg.Body)
	secret := pg.find(t, `id="totp-secret">([A-Z2-7]+)<`)
	done := br.post("/merchant/activate", url.Values{"csrf": {pg.csrf(t)}, "token": {token}, "password": {password}, "password2": {password}, "code": {b.totp(t, secret)}})
	require.Equal(t, http.StatusOK, done.Status, done.Body)
	require.Contains(t, done.Body, `id="activated"`)
	b.env.Clock.Advance(30 * time.Second)
	in := br.get("/merchant/sign-in")
	res := br.post("/merchant/sign-in", url.Values{"csrf": {in.csrf(t)}, "email": {email}, "password": {password}, "code": {b.totp(t, secret)}})
	require.Equal(t, http.StatusSeeOther, res.Status, res.Body)
	b.env.Clock.Advance(30 * time.Second)
	till := br.get("/merchant")
	require.Equal(t, http.StatusOK, till.Status, till.Body)
	return till
}

// member invites and signs in a new account of the demo merchant.
func (b *bundle) member(t *testing.T, role string) (*browser, *page, string) {
	t.Helper()
	b.users++
	email := role + strconv.Itoa(b.users) + "@shop.example"
	br := newBrowser(t, b.env)
	return br, b.activate(t, br, b.invite(t, email, "Op "+strconv.Itoa(b.users), role), email), email
}

// claim claims a gift for the shopper and returns its code and id.
func (b *bundle) claim(t *testing.T, sku string) (string, string) {
	t.Helper()
	g, err := b.env.App.Catalog.GiftBySKU(b.ctx, b.env.DB.Bun, b.env.Acme.Partner.ID, sku)
	require.NoError(t, err)
	c := b.env.Claim(b.token, g.ID, "claim-"+uuid.NewString())
	require.Empty(t, c.Errors, "%+v", c.Errors)
	return *c.Code, c.VoucherID
}

func (b *bundle) redeem(t *testing.T, br *browser, till *page, code, otp string) *page {
	t.Helper()
	return br.post("/merchant/till/redeem", url.Values{"csrf": {till.csrf(t)}, "code": {code}, "partner": {b.env.Acme.Partner.ID.String()}, "otp": {otp}})
}

func state(t *testing.T, pg *page) string {
	t.Helper()
	return pg.find(t, `<section class="voucher" id="voucher" data-state="([a-z-]+)"`)
}

// TestTillRedeemsWithOperator: an operator with the permission looks a
// voucher up (gift, owner, valid here), a wrong one-time code is refused
// and counted, the right one redeems and records the operator; the admin's
// history names the operator (page and CSV) and counts the day; the
// operator sees only their own redemptions and may not reach the team or
// credentials, not even by a direct POST.
func TestTillRedeemsWithOperator(t *testing.T) {
	t.Parallel()
	b := setup(t)
	env := b.env
	admin, _, _ := b.member(t, account.RoleMerchantAdmin)
	op, till, _ := b.member(t, account.RoleOperatorRedeem)
	code, vid := b.claim(t, "store-10-off")

	look := op.get("/merchant?code=" + url.QueryEscape(code))
	require.Equal(t, http.StatusOK, look.Status)
	require.Equal(t, "valid", state(t, look))
	require.Contains(t, look.Body, "10% off your next purchase")
	require.Contains(t, look.Body, "Sam Shopper")
	require.Contains(t, look.Body, `id="redeem"`)

	otp := env.RequestOTP(b.token, vid)
	wrong := "000000"
	if otp == wrong {
		wrong = "111111"
	}
	res := b.redeem(t, op, till, code, wrong)
	require.Equal(t, http.StatusUnprocessableEntity, res.Status, res.Body)
	require.Contains(t, res.Body, `data-outcome="failure"`)
	require.Contains(t, res.Body, "Wrong one-time code")
	require.Equal(t, 1, env.Count("vouchers", "id = ? AND otp_attempts = 1", vid), "the wrong code was counted (committed)")

	res = b.redeem(t, op, till, code, otp)
	require.Equal(t, http.StatusOK, res.Status, res.Body)
	require.Contains(t, res.Body, `data-outcome="success"`)
	opID := env.Count("vouchers", "id = ? AND status = 'redeemed' AND redeemed_by_merchant_id = ? AND redeemed_by_account_id = (SELECT id FROM accounts WHERE name = 'Op 2')", vid, b.merchantID)
	require.Equal(t, 1, opID, "the redemption records the operator")
	require.Equal(t, 1, env.Count("audit_log", "realm = 'merchant' AND realm_id = ? AND action = 'voucher.redeem'", b.merchantID))
	require.Equal(t, "redeemed", state(t, op.get("/merchant?code="+url.QueryEscape(code))))

	// A server-to-server redemption of another voucher: "API (server)".
	code2, vid2 := b.claim(t, "store-10-off")
	require.Equal(t, http.StatusCreated, env.DemoMerchant().Redeem(code2, env.RequestOTP(b.token, vid2)).StatusCode)

	hist := admin.get("/merchant/history")
	require.Equal(t, http.StatusOK, hist.Status)
	require.Contains(t, hist.Body, `<td data-testid="operator">Op 2</td>`)
	require.Contains(t, hist.Body, `<td data-testid="operator">API (server)</td>`)
	day := env.Clock.Now().In(mustLoc(t, env.Acme.Partner.Timezone)).Format("2006-01-02")
	require.Contains(t, hist.Body, "<tr><td>"+day+"</td><td>Acme Rewards</td><td class=\"nums\">2</td></tr>")
	csv := admin.get("/merchant/history.csv")
	require.Equal(t, "text/csv; charset=utf-8", csv.Header.Get("Content-Type"))
	require.Contains(t, csv.Body, ","+code+",store-10-off,10% off your next purchase,Op 2,")
	require.Equal(t, 3, strings.Count(csv.Body, "\n"), csv.Body)
	apiOnly := admin.get("/merchant/history.csv?operator=api")
	require.Equal(t, 2, strings.Count(apiOnly.Body, "\n"), apiOnly.Body)
	require.Contains(t, apiOnly.Body, code2)
	tomorrow := env.Clock.Now().AddDate(0, 0, 2).Format("2006-01-02")
	require.Equal(t, 1, strings.Count(admin.get("/merchant/history.csv?from="+tomorrow).Body, "\n"), "the date filter")
	bad := admin.get("/merchant/history?from=yesterday")
	require.Equal(t, http.StatusUnprocessableEntity, bad.Status)
	require.Contains(t, bad.Body, "from must be a date")

	// The operator's own history: only theirs, whatever the filter says.
	mine := op.get("/merchant/history.csv?operator=api")
	require.Contains(t, mine.Body, code)
	require.NotContains(t, mine.Body, code2)

	// Team and credentials are the admin's.
	logPage := admin.get("/merchant/audit")
	require.Equal(t, http.StatusOK, logPage.Status)
	require.Contains(t, logPage.Body, "voucher.redeem")
	require.Contains(t, admin.get("/merchant/audit.csv").Body, "voucher.redeem")
	for _, path := range []string{"/merchant/team", "/merchant/credentials", "/merchant/audit", "/merchant/audit.csv"} {
		require.Equal(t, http.StatusForbidden, op.get(path).Status, path)
	}
	require.NotContains(t, till.Body, `href="/merchant/credentials"`)
	creds := env.Count("merchant_credentials", "merchant_id = ?", b.merchantID)
	res = op.post("/merchant/credentials", url.Values{"csrf": {till.csrf(t)}, "partner": {env.Acme.Partner.ID.String()}})
	require.Equal(t, http.StatusForbidden, res.Status)
	res = op.post("/merchant/team/invite", url.Values{"csrf": {till.csrf(t)}, "email": {"x@shop.example"}, "role": {"admin"}})
	require.Equal(t, http.StatusForbidden, res.Status)
	require.Equal(t, creds, env.Count("merchant_credentials", "merchant_id = ?", b.merchantID), "no credential was created")
	require.Equal(t, 0, env.Count("accounts", "email = 'x@shop.example'"), "nobody was invited")
	require.NoError(t, voucher.CheckInvariants(b.ctx, env.DB.Bun))
}

func mustLoc(t *testing.T, tz string) *time.Location {
	t.Helper()
	if tz == "" {
		tz = "UTC"
	}
	l, err := time.LoadLocation(tz)
	require.NoError(t, err)
	return l
}

// TestOperatorWithoutRedeemPermission: a look-up-only operator sees the
// voucher is valid but gets no redeem form, and a direct POST with their
// own session and CSRF token is refused (403) and changes nothing: no
// redemption, no counted attempt.
func TestOperatorWithoutRedeemPermission(t *testing.T) {
	t.Parallel()
	b := setup(t)
	op, till, _ := b.member(t, account.RoleOperator)
	code, vid := b.claim(t, "store-10-off")
	look := op.get("/merchant?code=" + url.QueryEscape(code))
	require.Equal(t, "valid", state(t, look))
	require.NotContains(t, look.Body, `action="/merchant/till/redeem"`)
	require.Contains(t, look.Body, `id="no-redeem"`)

	otp := b.env.RequestOTP(b.token, vid)
	res := b.redeem(t, op, till, code, otp)
	require.Equal(t, http.StatusForbidden, res.Status, res.Body)
	require.Equal(t, 1, b.env.Count("vouchers", "id = ? AND status = 'claimed' AND otp_attempts = 0", vid))
	// Without a session or with a wrong CSRF token: refused too.
	require.Equal(t, http.StatusUnauthorized, newBrowser(t, b.env).post("/merchant/till/redeem", url.Values{"code": {code}, "otp": {otp}}).Status)
	redeemer, rtill, _ := b.member(t, account.RoleOperatorRedeem)
	res = redeemer.post("/merchant/till/redeem", url.Values{"csrf": {"forged"}, "code": {code}, "partner": {b.env.Acme.Partner.ID.String()}, "otp": {otp}})
	require.Equal(t, http.StatusForbidden, res.Status)
	require.Equal(t, 1, b.env.Count("vouchers", "id = ? AND status = 'claimed'", vid))
	// The operator with the permission still can.
	require.Equal(t, http.StatusOK, b.redeem(t, redeemer, rtill, code, otp).Status)
}

// TestTillStates: every state the till shows, each from real data: a wrong
// code, another merchant's voucher (same partner), a voucher locked by
// wrong one-time codes, an expired one, an already redeemed one; and a
// partner the merchant serves too (same merchant id attached to globex)
// whose vouchers appear only where globex's gifts list it.
func TestTillStates(t *testing.T) {
	t.Parallel()
	b := setup(t)
	env := b.env
	op, till, _ := b.member(t, account.RoleOperatorRedeem)
	lookup := func(code string) *page { return op.get("/merchant?code=" + url.QueryEscape(code)) }

	require.Equal(t, "not-found", state(t, lookup("NO-SUCH-CODE")))
	require.Contains(t, lookup("NO-SUCH-CODE").Body, "Wrong code")

	// Another merchant's voucher of the same partner.
	other := env.NewMerchant("acme", "Other Shop")
	env.PutGift("acme", "other-gift", catalog.GiftInput{Title: "Other shop's gift", CostPoints: 10, CodeSource: catalog.SourceGenerated,
		CodePattern: "OTHR-####-XXXX-####", Stock: ptr(10), Merchants: []string{other.Merchant.Code}})
	otherCode, otherID := b.claim(t, "other-gift")
	pg := lookup(otherCode)
	require.Equal(t, "other-merchant", state(t, pg))
	require.Contains(t, pg.Body, "Not valid here")
	require.NotContains(t, pg.Body, "Sam Shopper", "no personal data for a voucher not honoured here")
	res := b.redeem(t, op, till, otherCode, env.RequestOTP(b.token, otherID))
	require.Equal(t, http.StatusNotFound, res.Status)
	require.Equal(t, 1, env.Count("vouchers", "id = ? AND status = 'claimed'", otherID))

	// Locked by wrong one-time codes.
	code, vid := b.claim(t, "store-10-off")
	good := env.RequestOTP(b.token, vid)
	for i := 0; i < voucher.MaxOTPAttempts; i++ {
		wrong := strconv.Itoa(100000 + i)
		if wrong == good {
			wrong = "999999"
		}
		require.Equal(t, http.StatusUnprocessableEntity, b.redeem(t, op, till, code, wrong).Status)
	}
	require.Equal(t, "locked", state(t, lookup(code)))
	res = b.redeem(t, op, till, code, good)
	require.Equal(t, http.StatusLocked, res.Status)
	require.Contains(t, res.Body, "Locked: too many wrong one-time codes")
	// A new code from the app unlocks it.
	require.Equal(t, "valid", func() string { env.RequestOTP(b.token, vid); return state(t, lookup(code)) }())

	// Already redeemed.
	fresh := env.RequestOTP(b.token, vid)
	require.Equal(t, http.StatusOK, b.redeem(t, op, till, code, fresh).Status)
	pg = lookup(code)
	require.Equal(t, "redeemed", state(t, pg))
	require.Contains(t, pg.Body, "Already redeemed here")
	res = b.redeem(t, op, till, code, fresh)
	require.Equal(t, http.StatusConflict, res.Status)
	require.Contains(t, res.Body, "Not redeemed: the voucher is redeemed")

	// Expired (store-10-off lasts 14 days; the one-time code 5 minutes).
	code3, vid3 := b.claim(t, "store-10-off")
	otp3 := env.RequestOTP(b.token, vid3)
	env.Clock.Advance(4 * time.Minute)
	env.Clock.Advance(15 * 24 * time.Hour)
	op, till, _ = b.member(t, account.RoleOperatorRedeem) // the sessions ended meanwhile
	pg = lookup(code3)
	require.Equal(t, "expired", state(t, pg))
	require.Contains(t, pg.Body, "Expired")
	res = b.redeem(t, op, till, code3, otp3)
	require.Equal(t, http.StatusConflict, res.Status)

	// The same merchant serves globex too: globex's vouchers show where
	// globex's gifts list it, with the program's name.
	require.NoError(t, env.DB.Bun.RunInTx(b.ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		_, _, err := env.App.Merchants.AttachTx(ctx, tx, b.merchantID, env.Globex.Partner.ID, "acme-store-at-globex")
		return err
	}))
	env.PutGift("globex", "globex-treat", catalog.GiftInput{Title: "Globex treat", CostPoints: 10, CodeSource: catalog.SourceGenerated,
		CodePattern: "GLBX-####-XXXX-####", Stock: ptr(10), Merchants: []string{"acme-store-at-globex"}})
	env.FundedUser("globex", "gshopper", "", 1000)
	gtok := env.Token("globex", "gshopper", map[string]any{"displayName": "Gina Globex"})
	g, err := env.App.Catalog.GiftBySKU(b.ctx, env.DB.Bun, env.Globex.Partner.ID, "globex-treat")
	require.NoError(t, err)
	c := env.Claim(gtok, g.ID, "g-1")
	require.Empty(t, c.Errors)
	pg = lookup(*c.Code)
	require.Equal(t, "valid", state(t, pg))
	require.Contains(t, pg.Body, "Program: "+env.Globex.Partner.DisplayName)
	pg2 := op.get("/merchant")
	res = op.post("/merchant/till/redeem", url.Values{"csrf": {pg2.csrf(t)}, "code": {*c.Code}, "partner": {env.Globex.Partner.ID.String()}, "otp": {env.RequestOTP(gtok, c.VoucherID)}})
	require.Equal(t, http.StatusOK, res.Status, res.Body)
	// Sent as acme's, the globex code is not found.
	require.Equal(t, 1, env.Count("vouchers", "id = ? AND redeemed_by_merchant_id = ?", c.VoucherID, b.merchantID))
	require.NoError(t, voucher.CheckInvariants(b.ctx, env.DB.Bun))
}

// TestTwoTillsRedeemAtOnce: two operators at two tills redeem the same
// voucher with the same one-time code at the same moment, for several
// vouchers: exactly one of each pair succeeds, the voucher names the
// winner, one voucher.redeemed event each, and the invariants hold.
func TestTwoTillsRedeemAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	env := b.env
	op1, till1, _ := b.member(t, account.RoleOperatorRedeem)
	op2, till2, _ := b.member(t, account.RoleOperatorRedeem)
	const rounds = 6
	for i := 0; i < rounds; i++ {
		code, vid := b.claim(t, "store-10-off")
		otp := env.RequestOTP(b.token, vid)
		var wg sync.WaitGroup
		start := make(chan struct{})
		status := make([]int, 2)
		for j, pair := range []struct {
			br *browser
			pg *page
		}{{op1, till1}, {op2, till2}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				status[j] = b.redeem(t, pair.br, pair.pg, code, otp).Status
			}()
		}
		close(start)
		wg.Wait()
		require.ElementsMatch(t, []int{http.StatusOK, http.StatusConflict}, status, "round %d", i)
		require.Equal(t, 1, env.Count("vouchers", "id = ? AND status = 'redeemed' AND redeemed_by_account_id IS NOT NULL", vid))
	}
	require.Equal(t, rounds, env.Count("events", "type = 'voucher.redeemed'"))
	require.Equal(t, rounds, env.Count("audit_log", "action = 'voucher.redeem'"))
	require.NoError(t, voucher.CheckInvariants(b.ctx, env.DB.Bun))
}

func ptr[T any](v T) *T { return &v }

// TestCredentials: the admin creates an API credential (secrets shown
// once) that signs real merchant requests; rotating with a one-hour
// overlap keeps the old key working for that hour only; disabling stops
// a key at once; another merchant's credential cannot be touched.
func TestCredentials(t *testing.T) {
	t.Parallel()
	b := setup(t)
	env := b.env
	admin, till, _ := b.member(t, account.RoleMerchantAdmin)
	code, _ := b.claim(t, "store-10-off")

	res := admin.post("/merchant/credentials", url.Values{"csrf": {till.csrf(t)}, "partner": {env.Acme.Partner.ID.String()}, "description": {"till server"}})
	require.Equal(t, http.StatusCreated, res.Status, res.Body)
	client := func(pg *page) *apptest.MerchantClient {
		key := pg.find(t, `id="api-key" class="secret">([^<]+)<`)
		pemText := pg.find(t, `(?s)id="private-key" class="secret">([^<]+)<`)
		blk, _ := pem.Decode([]byte(pemText))
		require.NotNil(t, blk)
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		require.NoError(t, err)
		return &apptest.MerchantClient{Env: env, Merchant: env.Acme.Merchant.Merchant, APIKey: key, PrivateKey: k.(ed25519.PrivateKey)}
	}
	first := client(res)
	require.Equal(t, http.StatusOK, first.Lookup(code).StatusCode)
	require.NotContains(t, admin.get("/merchant/credentials").Body, first.APIKey, "the API key is shown once")
	id := env.Count("audit_log", "realm_id = ? AND action = 'merchant_credential.create' AND after::text NOT ILIKE '%PRIVATE%'", b.merchantID)
	require.Equal(t, 1, id)

	var credID string
	require.NoError(t, env.DB.Bun.NewRaw("SELECT id::text FROM merchant_credentials WHERE description = 'till server'").Scan(b.ctx, &credID))
	res = admin.post("/merchant/credentials/"+credID+"/rotate", url.Values{"csrf": {till.csrf(t)}, "overlap": {"1h"}})
	require.Equal(t, http.StatusCreated, res.Status, res.Body)
	second := client(res)
	require.Equal(t, http.StatusOK, first.Lookup(code).StatusCode, "the old key works during the overlap")
	require.Equal(t, http.StatusOK, second.Lookup(code).StatusCode)
	env.Clock.Advance(61 * time.Minute)
	require.Equal(t, "INVALID_SIGNATURE", first.Lookup(code).Code(), "the overlap is over")
	require.Equal(t, http.StatusOK, second.Lookup(code).StatusCode)

	// The session idled out meanwhile: sign in a new admin to disable.
	admin, till, _ = b.member(t, account.RoleMerchantAdmin)
	var secondID string
	require.NoError(t, env.DB.Bun.NewRaw("SELECT id::text FROM merchant_credentials WHERE description LIKE 'rotated from %'").Scan(b.ctx, &secondID))
	res = admin.post("/merchant/credentials/"+secondID+"/disable", url.Values{"csrf": {till.csrf(t)}})
	require.Equal(t, http.StatusOK, res.Status, res.Body)
	require.Equal(t, "INVALID_SIGNATURE", second.Lookup(code).Code())
	// Bad input and another merchant's credential change nothing.
	res = admin.post("/merchant/credentials/"+secondID+"/rotate", url.Values{"csrf": {till.csrf(t)}, "overlap": {"forever"}})
	require.Equal(t, http.StatusBadRequest, res.Status)
	other := env.NewMerchant("acme", "Other Shop")
	var otherCred string
	require.NoError(t, env.DB.Bun.NewRaw("SELECT id::text FROM merchant_credentials WHERE merchant_id = ?", other.Merchant.ID).Scan(b.ctx, &otherCred))
	res = admin.post("/merchant/credentials/"+otherCred+"/disable", url.Values{"csrf": {till.csrf(t)}})
	require.Equal(t, http.StatusNotFound, res.Status)
	require.Equal(t, "VOUCHER_NOT_FOUND", other.Lookup("NOPE").Code(), "the other merchant's key still authenticates")
	res = admin.post("/merchant/credentials", url.Values{"csrf": {till.csrf(t)}, "partner": {env.Acme.Partner.ID.String()}, "description": {"bad\x00name"}})
	require.Equal(t, http.StatusBadRequest, res.Status, "a control character in the description")
	res = admin.post("/merchant/credentials", url.Values{"csrf": {till.csrf(t)}, "partner": {env.Globex.Partner.ID.String()}})
	require.Equal(t, http.StatusBadRequest, res.Status, "a partner the merchant does not serve")
}
