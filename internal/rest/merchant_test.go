package rest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/catalog"
	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/merchant"
)

type merchantFixture struct {
	env      *apptest.Env
	merchant *apptest.MerchantClient
	token    string
	// code and voucherID of a claimed in-store voucher of the demo merchant.
	code, voucherID string
}

// setupMerchant claims one voucher of the demo merchant's generated-code
// gift for a user with a display name and an email.
func setupMerchant(t *testing.T) *merchantFixture {
	t.Helper()
	env := apptest.New(t)
	env.FundedUser("acme", "shopper", "SG", 100_000)
	tok := env.Token("acme", "shopper", map[string]any{"email": "shopper@acme.example.test", "displayName": "Sam Shopper"})
	f := &merchantFixture{env: env, merchant: env.DemoMerchant(), token: tok}
	f.code, f.voucherID = f.claim(t, "store-10-off")
	return f
}

func (f *merchantFixture) claim(t *testing.T, sku string) (string, string) {
	t.Helper()
	g, err := f.env.App.Catalog.GiftBySKU(t.Context(), f.env.DB.Bun, f.env.Acme.Partner.ID, sku)
	require.NoError(t, err)
	c := f.env.Claim(f.token, g.ID, "claim-"+strconv.FormatInt(time.Now().UnixNano(), 10))
	require.Empty(t, c.Errors, "%+v", c.Errors)
	return *c.Code, c.VoucherID
}

// TestMerchantRedemption: the merchant checks the voucher (status, gift,
// the owner's display name and nothing else personal), redeems it with the
// user's one-time code, and a retry with the same Idempotency-Key replays.
func TestMerchantRedemption(t *testing.T) {
	t.Parallel()
	f := setupMerchant(t)
	env, m := f.env, f.merchant

	look := m.Lookup(f.code)
	require.Equal(t, http.StatusOK, look.StatusCode, "%s", look.Body)
	got := look.JSON(t)
	require.Equal(t, "claimed", got["status"])
	require.Equal(t, true, got["redeemable"])
	require.Equal(t, map[string]any{"sku": "store-10-off", "title": "10% off your next purchase"}, got["gift"])
	require.Equal(t, map[string]any{"displayName": "Sam Shopper"}, got["owner"])
	require.NotContains(t, string(look.Body), "shopper@acme")
	require.NotContains(t, string(look.Body), "userId")

	otp := env.RequestOTP(f.token, f.voucherID)
	body := []byte(fmt.Sprintf(`{"code":%q,"otp":%q}`, f.code, otp))
	res := m.Do(http.MethodPost, "/merchant/redemptions", body, "till-7-sale-1")
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	require.Equal(t, "redeemed", res.JSON(t)["status"])
	require.Equal(t, f.voucherID, res.JSON(t)["voucherId"])
	require.NotContains(t, res.JSON(t), "owner", "stored answers carry no personal data")
	replay := m.Do(http.MethodPost, "/merchant/redemptions", body, "till-7-sale-1")
	require.Equal(t, string(res.Body), string(replay.Body))
	require.Equal(t, "true", replay.Header.Get("Idempotent-Replayed"))
	again := m.Do(http.MethodPost, "/merchant/redemptions", body, "till-7-sale-2")
	require.Equal(t, http.StatusConflict, again.StatusCode)
	require.Equal(t, "VOUCHER_NOT_ACTIVE", again.Code())

	require.Equal(t, 1, env.Count("events", "type = 'voucher.redeemed' AND data->>'channel' = 'merchant' AND data->>'merchantId' = ?", m.Merchant.ID.String()))
	after := m.Lookup(f.code)
	require.Equal(t, "redeemed", after.JSON(t)["status"])
	require.Equal(t, false, after.JSON(t)["redeemable"])
	st := env.GraphQL(f.token, `query($id: ID!) { voucher(id: $id) { status redeemedAt } }`, map[string]any{"id": f.voucherID})
	require.Contains(t, string(st.Data), `"status":"REDEEMED"`)

	// The access log names no code, OTP or signature.
	logs := env.Logs.String()
	require.NotContains(t, logs, otp)
	require.NotContains(t, logs, m.APIKey)
	checkVouchers(t, env)
}

// TestMerchantAuthAttacks: every signed component tampered, stale and
// future timestamps, unknown and disabled keys, replays, and vouchers the
// merchant may not see. Nothing changes and no request gets through.
func TestMerchantAuthAttacks(t *testing.T) {
	t.Parallel()
	f := setupMerchant(t)
	env, m := f.env, f.merchant
	other := env.NewMerchant("acme", "Other Shop")
	disabled := env.NewMerchant("acme", "Closed Shop")
	require.NoError(t, env.App.Merchants.SetEnabled(t.Context(), env.DB.Bun, env.Acme.Partner.ID, disabled.Merchant.Code, false))
	globex := env.NewMerchant("globex", "Globex Shop")
	// A voucher of a gift only the other merchant honours.
	env.PutGift("acme", "other-only", catalog.GiftInput{Title: "Other", CostPoints: 1, CodeSource: catalog.SourceGenerated,
		CodePattern: "OTH-XXXX-####", Merchants: []string{other.Merchant.Code}})
	otherCode, _ := f.claim(t, "other-only")
	otp := env.RequestOTP(f.token, f.voucherID)

	path := "/merchant/redemptions"
	body := []byte(fmt.Sprintf(`{"code":%q,"otp":%q}`, f.code, otp))
	now := env.Now().Unix()
	signed := func(mc *apptest.MerchantClient, ts int64, method, pathQuery string, b []byte, key string) map[string]string {
		s := strconv.FormatInt(ts, 10)
		h := map[string]string{
			merchant.HeaderAPIKey: mc.APIKey, merchant.HeaderTimestamp: s,
			merchant.HeaderSignature: merchant.Sign(mc.PrivateKey, merchant.Canonical(s, method, pathQuery, b, key)),
		}
		if key != "" {
			h[merchant.HeaderIdempotencyKey] = key
		}
		return h
	}
	tamper := func(h map[string]string, k, v string) map[string]string {
		out := map[string]string{}
		for kk, vv := range h {
			out[kk] = vv
		}
		if v == "" {
			delete(out, k)
		} else {
			out[k] = v
		}
		return out
	}
	var n int64
	fresh := func() int64 { n++; return now - n } // a distinct second per request

	type req struct {
		method, path string
		body         []byte
		headers      map[string]string
	}
	cases := []struct {
		name   string
		req    req
		status int
		code   string
	}{
		{"signed GET, sent as POST", req{"POST", path, body, signed(m, fresh(), "GET", path, body, "")}, 401, "INVALID_SIGNATURE"},
		{"signed for another path", req{"POST", path, body, signed(m, fresh(), "POST", "/merchant/vouchers/"+f.code, body, "")}, 401, "INVALID_SIGNATURE"},
		{"query added after signing", req{"POST", path + "?x=1", body, signed(m, fresh(), "POST", path, body, "")}, 401, "INVALID_SIGNATURE"},
		{"body changed after signing", req{"POST", path, []byte(strings.Replace(string(body), otp, "000000", 1)), signed(m, fresh(), "POST", path, body, "")}, 401, "INVALID_SIGNATURE"},
		{"timestamp changed after signing", req{"POST", path, body, func() map[string]string {
			h := signed(m, fresh(), "POST", path, body, "")
			return tamper(h, merchant.HeaderTimestamp, strconv.FormatInt(fresh(), 10))
		}()}, 401, "INVALID_SIGNATURE"},
		{"idempotency key changed after signing", req{"POST", path, body, tamper(signed(m, fresh(), "POST", path, body, "k1"), merchant.HeaderIdempotencyKey, "k2")}, 401, "INVALID_SIGNATURE"},
		{"idempotency key added after signing", req{"POST", path, body, tamper(signed(m, fresh(), "POST", path, body, ""), merchant.HeaderIdempotencyKey, "k3")}, 401, "INVALID_SIGNATURE"},
		{"another merchant's key", req{"POST", path, body, tamper(signed(m, fresh(), "POST", path, body, ""), merchant.HeaderAPIKey, other.APIKey)}, 401, "INVALID_SIGNATURE"},
		{"unknown key", req{"POST", path, body, tamper(signed(m, fresh(), "POST", path, body, ""), merchant.HeaderAPIKey, "mk_unknown")}, 401, "INVALID_SIGNATURE"},
		{"signed by another merchant's private key", req{"POST", path, body, tamper(signed(other, fresh(), "POST", path, body, ""), merchant.HeaderAPIKey, m.APIKey)}, 401, "INVALID_SIGNATURE"},
		{"disabled merchant", req{"POST", path, body, signed(disabled, fresh(), "POST", path, body, "")}, 401, "INVALID_SIGNATURE"},
		{"signature not base64", req{"POST", path, body, tamper(signed(m, fresh(), "POST", path, body, ""), merchant.HeaderSignature, "!!!")}, 401, "INVALID_SIGNATURE"},
		{"signature truncated", req{"POST", path, body, func() map[string]string {
			h := signed(m, fresh(), "POST", path, body, "")
			return tamper(h, merchant.HeaderSignature, h[merchant.HeaderSignature][:40])
		}()}, 401, "INVALID_SIGNATURE"},
		{"no signature", req{"POST", path, body, tamper(signed(m, fresh(), "POST", path, body, ""), merchant.HeaderSignature, "")}, 401, "INVALID_SIGNATURE"},
		{"no credentials at all", req{"POST", path, body, map[string]string{}}, 401, "UNAUTHENTICATED"},
		{"stale timestamp", req{"POST", path, body, signed(m, now-301, "POST", path, body, "")}, 401, "TIMESTAMP_OUT_OF_RANGE"},
		{"future timestamp", req{"POST", path, body, signed(m, now+301, "POST", path, body, "")}, 401, "TIMESTAMP_OUT_OF_RANGE"},
		{"timestamp in milliseconds", req{"POST", path, body, signed(m, now*1000, "POST", path, body, "")}, 401, "TIMESTAMP_OUT_OF_RANGE"},
		{"timestamp not a number", req{"POST", path, body, tamper(signed(m, fresh(), "POST", path, body, ""), merchant.HeaderTimestamp, "soon")}, 401, "INVALID_SIGNATURE"},
		{"another merchant's voucher: lookup", req{"GET", "/merchant/vouchers/" + otherCode, nil, signed(m, fresh(), "GET", "/merchant/vouchers/"+otherCode, nil, "")}, 404, "VOUCHER_NOT_FOUND"},
		{"another merchant's voucher: redeem", func() req {
			b := []byte(fmt.Sprintf(`{"code":%q,"otp":"123456"}`, otherCode))
			return req{"POST", path, b, signed(m, fresh(), "POST", path, b, "")}
		}(), 404, "VOUCHER_NOT_FOUND"},
		{"another partner's merchant", req{"GET", "/merchant/vouchers/" + f.code, nil, signed(globex, fresh(), "GET", "/merchant/vouchers/"+f.code, nil, "")}, 404, "VOUCHER_NOT_FOUND"},
		{"unknown code", req{"GET", "/merchant/vouchers/NOPE-0000-AAAA", nil, signed(m, fresh(), "GET", "/merchant/vouchers/NOPE-0000-AAAA", nil, "")}, 404, "VOUCHER_NOT_FOUND"},
		{"partner credentials on a merchant route", req{"GET", "/merchant/vouchers/" + f.code, nil, map[string]string{"X-Partner-Slug": "acme", "X-Signature": env.SignV1("dev_acme_secret_change_me", nil)}}, 401, "INVALID_SIGNATURE"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := dbtest.Snapshot(t, env.DB.Bun)
			res := m.Send(c.req.method, c.req.path, c.req.body, c.req.headers)
			require.Equal(t, c.status, res.StatusCode, "%s", res.Body)
			require.Equal(t, c.code, res.Code(), "%s", res.Body)
			require.Equal(t, before, dbtest.Snapshot(t, env.DB.Bun))
		})
	}

	// A captured write without an Idempotency-Key is accepted once (a
	// captured read is served again: reads are never replays, see
	// TestMerchantRepeatsAndRetries).
	nope := []byte(`{"code":"NOPE-0000-AAAA","otp":"123456"}`)
	h := signed(m, fresh(), "POST", path, nope, "")
	require.Equal(t, "VOUCHER_NOT_FOUND", m.Send("POST", path, nope, h).Code())
	replayed := m.Send("POST", path, nope, h)
	require.Equal(t, "SIGNATURE_REPLAYED", replayed.Code())
	// Re-encoding the signature (URL alphabet, no padding) does not make it new.
	sig := strings.TrimRight(strings.NewReplacer("+", "-", "/", "_").Replace(h[merchant.HeaderSignature]), "=")
	require.Equal(t, "SIGNATURE_REPLAYED", m.Send("POST", path, nope, tamper(h, merchant.HeaderSignature, sig)).Code())

	// None of it redeemed anything.
	require.Equal(t, 0, env.Count("vouchers", "status = 'redeemed'"))
	res := m.Redeem(f.code, otp)
	require.Equal(t, http.StatusCreated, res.StatusCode, "the genuine request still works: %s", res.Body)
}

// TestMerchantRepeatsAndRetries: the merchant scheme follows the replay
// rules of the partner schemes (docs/auth.md, "Replays, retries and request
// binding"). A cashier's page polling a voucher twice in one second with one
// signature is served both times; a redemption resent with the same
// signature and Idempotency-Key gets the stored answer byte for byte;
// without a key the resend is refused with a detail saying to add one; a
// failed redemption (a counted wrong code, or one refused and now able to
// succeed) stays refused when resent; a signature never serves another
// request.
func TestMerchantRepeatsAndRetries(t *testing.T) {
	t.Parallel()
	f := setupMerchant(t)
	env, m := f.env, f.merchant
	const path = "/merchant/redemptions"
	redemption := func(code, otp string) []byte { return []byte(fmt.Sprintf(`{"code":%q,"otp":%q}`, code, otp)) }

	// Polling: the same signed GET several times in one second.
	lookup := "/merchant/vouchers/" + f.code
	get := m.Headers(http.MethodGet, lookup, nil, "")
	for i := range 3 {
		res := m.Send(http.MethodGet, lookup, nil, get)
		require.Equal(t, http.StatusOK, res.StatusCode, "poll %d: %s", i, res.Body)
		require.Equal(t, "claimed", res.JSON(t)["status"])
	}
	// The read's signature serves no other request.
	code2, id2 := f.claim(t, "store-10-off")
	require.Equal(t, "INVALID_SIGNATURE", m.Send(http.MethodGet, "/merchant/vouchers/"+code2, nil, get).Code())
	require.Equal(t, "INVALID_SIGNATURE", m.Send(http.MethodPost, path, redemption(f.code, "123456"), get).Code())

	// A redemption resent with the same signature and Idempotency-Key.
	body := redemption(f.code, env.RequestOTP(f.token, f.voucherID))
	keyed := m.Headers(http.MethodPost, path, body, "till-1-sale-1")
	first := m.Send(http.MethodPost, path, body, keyed)
	require.Equal(t, http.StatusCreated, first.StatusCode, "%s", first.Body)
	require.Empty(t, first.Header.Get("Idempotent-Replayed"))
	again := m.Send(http.MethodPost, path, body, keyed)
	require.Equal(t, http.StatusCreated, again.StatusCode, "%s", again.Body)
	require.Equal(t, string(first.Body), string(again.Body))
	require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
	require.Equal(t, 1, env.Count("events", "type = 'voucher.redeemed'"))
	// Its signature on another body is no retry.
	require.Equal(t, "INVALID_SIGNATURE", m.Send(http.MethodPost, path, redemption(code2, "123456"), keyed).Code())

	// Without a key: served once, then refused with what to add.
	body2 := redemption(code2, env.RequestOTP(f.token, id2))
	bare := m.Headers(http.MethodPost, path, body2, "")
	require.Equal(t, http.StatusCreated, m.Send(http.MethodPost, path, body2, bare).StatusCode)
	res := m.Send(http.MethodPost, path, body2, bare)
	require.Equal(t, http.StatusUnauthorized, res.StatusCode, "%s", res.Body)
	require.Equal(t, "SIGNATURE_REPLAYED", res.Code())
	require.Contains(t, res.JSON(t)["detail"], "Idempotency-Key")
	require.Empty(t, res.Header.Get("Idempotent-Replayed"))
	require.Equal(t, 2, env.Count("events", "type = 'voucher.redeemed'"))

	// A counted wrong code, resent with its signature and key: refused as a
	// replay, counted once (a captured guess cannot lock the voucher).
	code3, id3 := f.claim(t, "store-10-off")
	right, _ := strconv.Atoi(env.RequestOTP(f.token, id3))
	wrong := redemption(code3, fmt.Sprintf("%06d", (right+1)%1_000_000))
	guess := m.Headers(http.MethodPost, path, wrong, "till-1-sale-3")
	require.Equal(t, "OTP_INVALID", m.Send(http.MethodPost, path, wrong, guess).Code())
	res = m.Send(http.MethodPost, path, wrong, guess)
	require.Equal(t, "SIGNATURE_REPLAYED", res.Code(), "%s", res.Body)
	require.NotContains(t, res.JSON(t)["detail"], "send an Idempotency-Key", "it has one: the detail says to sign afresh")
	require.Equal(t, 1, env.Count("vouchers", "id = ? AND otp_attempts = 1", id3))

	// A redemption refused (the gift is not honoured here), resent once it
	// could succeed: still refused; a freshly signed retry runs.
	other := env.NewMerchant("acme", "Other Shop")
	gift := catalog.GiftInput{Title: "Other", CostPoints: 1, CodeSource: catalog.SourceGenerated, CodePattern: "OTH-XXXX-####", Merchants: []string{other.Merchant.Code}}
	env.PutGift("acme", "other-only", gift)
	code4, id4 := f.claim(t, "other-only")
	body4 := redemption(code4, env.RequestOTP(f.token, id4))
	refused := m.Headers(http.MethodPost, path, body4, "till-1-sale-4")
	require.Equal(t, "VOUCHER_NOT_FOUND", m.Send(http.MethodPost, path, body4, refused).Code())
	gift.Merchants = append(gift.Merchants, m.Merchant.Code)
	env.PutGift("acme", "other-only", gift)
	require.Equal(t, "SIGNATURE_REPLAYED", m.Send(http.MethodPost, path, body4, refused).Code())
	require.Equal(t, 1, env.Count("vouchers", "id = ? AND status = 'claimed'", id4))
	res = m.Do(http.MethodPost, path, body4, "till-1-sale-4")
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	require.Empty(t, res.Header.Get("Idempotent-Replayed"), "the refusal was not stored")

	// Concurrent resends of one keyed redemption: one runs, the others get
	// its answer.
	code5, id5 := f.claim(t, "store-10-off")
	body5 := redemption(code5, env.RequestOTP(f.token, id5))
	h5 := m.Headers(http.MethodPost, path, body5, "till-1-sale-5")
	var wg sync.WaitGroup
	answers := make([]*apptest.Response, 5)
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = m.Send(http.MethodPost, path, body5, h5)
		}()
	}
	wg.Wait()
	replays := 0
	for _, a := range answers {
		require.Equal(t, http.StatusCreated, a.StatusCode, "%s", a.Body)
		require.Equal(t, string(answers[0].Body), string(a.Body))
		if a.Header.Get("Idempotent-Replayed") == "true" {
			replays++
		}
	}
	require.Equal(t, len(answers)-1, replays)
	require.Equal(t, 4, env.Count("events", "type = 'voucher.redeemed'"))
	checkVouchers(t, env)
}

// TestMerchantRedeemBadInput: malformed redemption requests answer their
// code and change nothing (a wrong OTP is not bad input: it is counted).
func TestMerchantRedeemBadInput(t *testing.T) {
	t.Parallel()
	f := setupMerchant(t)
	env, m := f.env, f.merchant
	otp := env.RequestOTP(f.token, f.voucherID)
	cases := []struct {
		name, body  string
		status      int
		code, field string
	}{
		{"missing code", `{"otp":"123456"}`, 400, "MISSING_FIELD", "code"},
		{"missing otp", `{"code":"` + f.code + `"}`, 400, "MISSING_FIELD", "otp"},
		{"otp too short", `{"code":"` + f.code + `","otp":"12345"}`, 400, "INVALID_FIELD", "otp"},
		{"otp with letters", `{"code":"` + f.code + `","otp":"12345a"}`, 400, "INVALID_FIELD", "otp"},
		{"otp as a number", `{"code":"` + f.code + `","otp":123456}`, 400, "INVALID_FIELD", "otp"},
		{"code with spaces", `{"code":"A B C","otp":"123456"}`, 400, "INVALID_FIELD", "code"},
		{"unknown field", `{"code":"` + f.code + `","otp":"123456","amount":5}`, 400, "UNKNOWN_FIELD", "amount"},
		{"malformed JSON", `{"code":`, 400, "MALFORMED_JSON", ""},
		{"not an object", `["x"]`, 400, "MALFORMED_JSON", ""},
		{"empty body", ``, 415, "UNSUPPORTED_MEDIA_TYPE", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := dbtest.Snapshot(t, env.DB.Bun)
			res := m.Do(http.MethodPost, "/merchant/redemptions", []byte(c.body), "k-"+strings.ReplaceAll(c.name, " ", "-"))
			require.Equal(t, c.status, res.StatusCode, "%s", res.Body)
			require.Equal(t, c.code, res.Code(), "%s", res.Body)
			if c.field != "" {
				require.Equal(t, c.field, res.JSON(t)["field"])
			}
			require.Equal(t, before, dbtest.Snapshot(t, env.DB.Bun))
		})
	}
	bad := m.Do(http.MethodGet, "/merchant/vouchers/x%20y", nil, "")
	require.Equal(t, "INVALID_FIELD", bad.Code())

	// No code requested yet, and an expired code: refused, not counted.
	code2, _ := f.claim(t, "coffee")
	res := m.Redeem(code2, "123456")
	require.Equal(t, "OTP_INVALID", res.Code(), "%s", res.Body)
	require.Contains(t, res.JSON(t)["detail"], "no one-time code was requested")
	env.Clock.Advance(5*time.Minute + time.Second)
	res = m.Redeem(f.code, otp)
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.Equal(t, "OTP_EXPIRED", res.Code())
	require.Equal(t, 0, env.Count("vouchers", "otp_attempts > 0"))
}

// TestOTPBruteForce: 100 parallel guesses against one voucher are
// evaluated one at a time and at most 5 ever are; the rest answer
// OTP_LOCKED until the user asks for a new code.
func TestOTPBruteForce(t *testing.T) {
	t.Parallel()
	f := setupMerchant(t)
	env, m := f.env, f.merchant
	otp := env.RequestOTP(f.token, f.voucherID)
	wrong, _ := strconv.Atoi(otp)

	var mu sync.Mutex
	count := map[string]int{}
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			guess := fmt.Sprintf("%06d", (wrong+1+i)%1_000_000) // never the right one
			res := m.Redeem(f.code, guess)
			mu.Lock()
			count[res.Code()]++
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	require.Equal(t, map[string]int{"OTP_INVALID": 5, "OTP_LOCKED": 95}, count, "exactly 5 guesses evaluated")
	var attempts int
	require.NoError(t, env.DB.Bun.NewRaw("SELECT otp_attempts FROM vouchers WHERE id = ?", f.voucherID).Scan(t.Context(), &attempts))
	require.Equal(t, 5, attempts)

	// Locked: even the right code is refused now.
	require.Equal(t, "OTP_LOCKED", m.Redeem(f.code, otp).Code())

	// A new code unlocks; the right one redeems.
	otp = env.RequestOTP(f.token, f.voucherID)
	res := m.Redeem(f.code, otp)
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	checkVouchers(t, env)
}

// TestConcurrentMerchantRedemptions: 20 redemptions of one voucher with the
// right code at once: exactly one succeeds.
func TestConcurrentMerchantRedemptions(t *testing.T) {
	t.Parallel()
	f := setupMerchant(t)
	env, m := f.env, f.merchant
	otp := env.RequestOTP(f.token, f.voucherID)
	var mu sync.Mutex
	count := map[int]int{}
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := m.Redeem(f.code, otp)
			mu.Lock()
			count[res.StatusCode]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	require.Equal(t, map[int]int{http.StatusCreated: 1, http.StatusConflict: 19}, count)
	require.Equal(t, 1, env.Count("events", "type = 'voucher.redeemed'"))
	checkVouchers(t, env)
}

// TestRedemptionRacesCancellation: for each of 15 vouchers, a merchant
// redemption and a partner cancellation race. Each voucher ends in exactly
// one final state; only cancelled ones are refunded, once.
func TestRedemptionRacesCancellation(t *testing.T) {
	t.Parallel()
	f := setupMerchant(t)
	env, m := f.env, f.merchant
	type pair struct{ code, id, otp string }
	var pairs []pair
	for i := 0; i < 15; i++ {
		code, id := f.claim(t, "store-10-off")
		pairs = append(pairs, pair{code, id, env.RequestOTP(f.token, id)})
	}
	balanceBefore := env.Balance("acme", env.FundedUser("acme", "shopper", "SG", 0))
	type outcome struct{ redeem, cancel int }
	outcomes := make([]outcome, len(pairs))
	var wg sync.WaitGroup
	for i, p := range pairs {
		wg.Add(2)
		go func() {
			defer wg.Done()
			outcomes[i].redeem = m.Redeem(p.code, p.otp).StatusCode
		}()
		go func() {
			defer wg.Done()
			outcomes[i].cancel = env.Partner("acme", http.MethodPost, "/integrations/vouchers/"+p.id+"/cancel", nil).StatusCode
		}()
	}
	wg.Wait()
	refunds := 0
	for i, p := range pairs {
		o := outcomes[i]
		var status string
		require.NoError(t, env.DB.Bun.NewRaw("SELECT status FROM vouchers WHERE id = ?", p.id).Scan(t.Context(), &status))
		switch {
		case o.redeem == http.StatusCreated:
			require.Equal(t, http.StatusConflict, o.cancel, "voucher %d", i)
			require.Equal(t, "redeemed", status)
			require.Equal(t, 0, env.Count("ledger_entries", "kind = 'refund' AND source_id = ?", p.id))
		case o.cancel == http.StatusOK:
			require.Equal(t, http.StatusConflict, o.redeem, "voucher %d", i)
			require.Equal(t, "cancelled", status)
			require.Equal(t, 1, env.Count("ledger_entries", "kind = 'refund' AND source_id = ?", p.id))
			refunds++
		default:
			t.Fatalf("voucher %d: neither won (%+v)", i, o)
		}
	}
	after := env.Balance("acme", env.FundedUser("acme", "shopper", "SG", 0))
	require.Equal(t, balanceBefore+int64(refunds*250), after)
	t.Logf("%d cancellations and %d redemptions won", refunds, len(pairs)-refunds)
	checkVouchers(t, env)
}

// TestMerchantSeesExpiry: past its lifetime a voucher shows as expired and
// cannot be redeemed, even before the expiry job records it.
func TestMerchantSeesExpiry(t *testing.T) {
	t.Parallel()
	f := setupMerchant(t)
	env, m := f.env, f.merchant
	otp := env.RequestOTP(f.token, f.voucherID)
	env.Clock.Advance(14*24*time.Hour + time.Second)
	look := m.Lookup(f.code)
	require.Equal(t, "expired", look.JSON(t)["status"])
	res := m.Redeem(f.code, otp)
	require.Equal(t, "VOUCHER_NOT_ACTIVE", res.Code())
	var body map[string]any
	require.NoError(t, json.Unmarshal(res.Body, &body))
	require.Contains(t, body["detail"], "expired")
}

// TestMerchantRedemptionHistory: the merchant's server reads its
// redemptions of the credential's partner, newest first, in pages; bad
// filters are refused; another partner's merchant sees none of them.
func TestMerchantRedemptionHistory(t *testing.T) {
	t.Parallel()
	f := setupMerchant(t)
	env, m := f.env, f.merchant
	second, secondID := f.claim(t, "store-10-off")
	for i, v := range []struct{ code, id string }{{f.code, f.voucherID}, {second, secondID}} {
		body := []byte(fmt.Sprintf(`{"code":%q,"otp":%q}`, v.code, env.RequestOTP(f.token, v.id)))
		res := m.Do(http.MethodPost, "/merchant/redemptions", body, "history-"+strconv.Itoa(i))
		require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
		env.Clock.Advance(time.Second)
	}

	page := m.Do(http.MethodGet, "/merchant/redemptions?limit=1", nil, "")
	require.Equal(t, http.StatusOK, page.StatusCode, "%s", page.Body)
	var got struct {
		Items []struct {
			VoucherID string            `json:"voucherId"`
			Gift      map[string]string `json:"gift"`
			Operator  *string           `json:"operator"`
		} `json:"items"`
		NextCursor *string `json:"nextCursor"`
	}
	require.NoError(t, json.Unmarshal(page.Body, &got))
	require.Len(t, got.Items, 1)
	require.Equal(t, secondID, got.Items[0].VoucherID, "newest first")
	require.Equal(t, "store-10-off", got.Items[0].Gift["sku"])
	require.Nil(t, got.Items[0].Operator, "a server-to-server redemption has no till operator")
	require.NotNil(t, got.NextCursor)
	require.NotContains(t, string(page.Body), second, "no voucher code in the history")
	next := m.Do(http.MethodGet, "/merchant/redemptions?limit=1&cursor="+*got.NextCursor, nil, "")
	require.Equal(t, http.StatusOK, next.StatusCode, "%s", next.Body)
	require.Contains(t, string(next.Body), f.voucherID)
	require.NotContains(t, string(next.Body), secondID)

	for _, q := range []string{"limit=0", "limit=201", "limit=x", "from=yesterday", "from=2026-11-25T00:00:00Z&to=2026-11-24T00:00:00Z", "cursor=bm9wZQ"} {
		res := m.Do(http.MethodGet, "/merchant/redemptions?"+q, nil, "")
		require.Equal(t, http.StatusBadRequest, res.StatusCode, "%s: %s", q, res.Body)
		require.Equal(t, "INVALID_FIELD", res.Code(), q)
	}

	other := env.NewMerchant("globex", "Globex Shop")
	res := other.Do(http.MethodGet, "/merchant/redemptions", nil, "")
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	require.JSONEq(t, `{"items":[],"nextCursor":null}`, string(res.Body))
}
