package rest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/catalog"
	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/voucher"
)

func checkVouchers(t *testing.T, env *apptest.Env) {
	t.Helper()
	require.NoError(t, voucher.CheckInvariants(context.Background(), env.DB.Bun))
}

// TestGiftLifecycle: PUT creates then replaces, GET lists and reads, DELETE
// retires (hidden, not claimable, vouchers kept), PUT brings it back.
func TestGiftLifecycle(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	body := `{"title":"Cinema ticket","description":"Any 2D film.","imageUrl":"https://acme.example.test/cinema.png",
		"category":"fun","costPoints":400,"stock":10,"perUserLimit":2,"countries":["sg","MY"],
		"claimableFrom":"2020-01-01T00:00:00Z","codeSource":"generated","codePattern":"CINE-####-XXXX",
		"voucherLifetimeSeconds":86400,"refundOnExpiry":true,"merchants":["acme-store"],"position":5}`
	res := env.Partner("acme", http.MethodPut, "/integrations/gifts/cinema", []byte(body))
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	got := res.JSON(t)
	require.Equal(t, "cinema", got["sku"])
	require.EqualValues(t, 10, got["stock"])
	require.EqualValues(t, 10, got["remaining"])
	require.EqualValues(t, 0, got["claimed"])
	require.Equal(t, []any{"MY", "SG"}, got["countries"], "normalised and sorted")
	require.Equal(t, []any{"acme-store"}, got["merchants"])
	require.Nil(t, got["codesAvailable"], "only pool gifts count codes")
	id := got["id"].(string)

	again := env.Partner("acme", http.MethodPut, "/integrations/gifts/cinema", []byte(strings.Replace(body, `"stock":10`, `"stock":12`, 1)))
	require.Equal(t, http.StatusOK, again.StatusCode, "%s", again.Body)
	require.Equal(t, id, again.JSON(t)["id"], "replace keeps the id")
	require.EqualValues(t, 12, again.JSON(t)["stock"])

	// A claim, then the stock may not drop below what is claimed.
	env.FundedUser("acme", "movie-fan", "SG", 1000)
	tok := env.Token("acme", "movie-fan", nil)
	c := env.Claim(tok, uuid.MustParse(id), "m1")
	require.Empty(t, c.Errors, "%+v", c.Errors)
	low := env.Partner("acme", http.MethodPut, "/integrations/gifts/cinema", []byte(strings.Replace(body, `"stock":10`, `"stock":0`, 1)))
	require.Equal(t, http.StatusBadRequest, low.StatusCode)
	require.Equal(t, "stock", low.JSON(t)["field"])
	require.Contains(t, low.JSON(t)["detail"], "1 units are already claimed")

	one := env.Partner("acme", http.MethodGet, "/integrations/gifts/cinema", nil)
	require.Equal(t, http.StatusOK, one.StatusCode)
	require.EqualValues(t, 1, one.JSON(t)["claimed"])
	require.EqualValues(t, 11, one.JSON(t)["remaining"])

	list := env.Partner("acme", http.MethodGet, "/integrations/gifts", nil)
	require.Equal(t, http.StatusOK, list.StatusCode)
	var items struct{ Items []map[string]any }
	require.NoError(t, json.Unmarshal(list.Body, &items))
	require.Len(t, items.Items, 5)
	require.Equal(t, "cinema", items.Items[0]["sku"], "position 5 sorts first")
	require.EqualValues(t, 50, items.Items[1]["codesAvailable"], "the demo coffee pool")

	del := env.Partner("acme", http.MethodDelete, "/integrations/gifts/cinema", nil)
	require.Equal(t, http.StatusNoContent, del.StatusCode, "%s", del.Body)
	require.Equal(t, http.StatusNoContent, env.Partner("acme", http.MethodDelete, "/integrations/gifts/cinema", nil).StatusCode, "retiring twice succeeds")
	list = env.Partner("acme", http.MethodGet, "/integrations/gifts", nil)
	require.NotContains(t, string(list.Body), `"cinema"`)
	list = env.Partner("acme", http.MethodGet, "/integrations/gifts?includeRetired=true", nil)
	require.Contains(t, string(list.Body), `"retired":true`)
	require.Equal(t, "GIFT_UNAVAILABLE", env.Claim(tok, uuid.MustParse(id), "m2").ErrorCode())
	cat := env.GraphQL(tok, `{ catalog { edges { node { sku } } } }`, nil)
	require.NotContains(t, string(cat.Data), "cinema")
	require.Equal(t, 1, env.Count("vouchers", "gift_id = ? AND status = 'claimed'", id), "vouchers stay valid")

	back := env.Partner("acme", http.MethodPut, "/integrations/gifts/cinema", []byte(body))
	require.Equal(t, http.StatusOK, back.StatusCode, "%s", back.Body)
	require.Equal(t, false, back.JSON(t)["retired"])
	require.Empty(t, env.Claim(tok, uuid.MustParse(id), "m3").Errors)

	// Partners never see each other's gifts.
	require.Equal(t, "GIFT_NOT_FOUND", env.Partner("globex", http.MethodGet, "/integrations/gifts/cinema", nil).Code())
	require.Equal(t, "GIFT_NOT_FOUND", env.Partner("globex", http.MethodDelete, "/integrations/gifts/cinema", nil).Code())
	checkVouchers(t, env)
}

// TestGiftBadInput: each bad request answers its status and code and
// changes nothing.
func TestGiftBadInput(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	globexMerchant := env.NewMerchant("globex", "Globex Mart")
	valid := map[string]any{"title": "T", "costPoints": 10, "codeSource": "none"}
	with := func(k string, v any) string {
		m := map[string]any{}
		for kk, vv := range valid {
			m[kk] = vv
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	cases := []struct {
		name, method, path, body string
		status                   int
		code, field              string
	}{
		{"missing title", "PUT", "/integrations/gifts/g1", with("title", nil), 400, "MISSING_FIELD", "title"},
		{"blank title", "PUT", "/integrations/gifts/g1", with("title", "  "), 400, "INVALID_FIELD", "title"},
		{"long title", "PUT", "/integrations/gifts/g1", with("title", strings.Repeat("x", 201)), 400, "INVALID_FIELD", "title"},
		{"missing cost", "PUT", "/integrations/gifts/g1", with("costPoints", nil), 400, "MISSING_FIELD", "costPoints"},
		{"zero cost", "PUT", "/integrations/gifts/g1", with("costPoints", 0), 400, "POINTS_OUT_OF_RANGE", "costPoints"},
		{"negative cost", "PUT", "/integrations/gifts/g1", with("costPoints", -5), 400, "POINTS_OUT_OF_RANGE", "costPoints"},
		{"fractional cost", "PUT", "/integrations/gifts/g1", with("costPoints", 1.5), 400, "INVALID_FIELD", "costPoints"},
		{"string cost", "PUT", "/integrations/gifts/g1", with("costPoints", "10"), 400, "INVALID_FIELD", "costPoints"},
		{"huge cost", "PUT", "/integrations/gifts/g1", with("costPoints", 1000000001), 400, "POINTS_OUT_OF_RANGE", "costPoints"},
		{"negative stock", "PUT", "/integrations/gifts/g1", with("stock", -1), 400, "INVALID_FIELD", "stock"},
		{"fractional stock", "PUT", "/integrations/gifts/g1", with("stock", 2.5), 400, "INVALID_FIELD", "stock"},
		{"zero per-user limit", "PUT", "/integrations/gifts/g1", with("perUserLimit", 0), 400, "INVALID_FIELD", "perUserLimit"},
		{"missing code source", "PUT", "/integrations/gifts/g1", with("codeSource", nil), 400, "MISSING_FIELD", "codeSource"},
		{"unknown code source", "PUT", "/integrations/gifts/g1", with("codeSource", "magic"), 400, "INVALID_FIELD", "codeSource"},
		{"generated without pattern", "PUT", "/integrations/gifts/g1", with("codeSource", "generated"), 400, "MISSING_FIELD", "codePattern"},
		{"pattern without generated", "PUT", "/integrations/gifts/g1", with("codePattern", "AB-####-XXXX"), 400, "INVALID_FIELD", "codePattern"},
		{"pattern too small", "PUT", "/integrations/gifts/g1", `{"title":"T","costPoints":1,"codeSource":"generated","codePattern":"AB-####"}`, 400, "INVALID_FIELD", "codePattern"},
		{"pattern too small for stock", "PUT", "/integrations/gifts/g1", `{"title":"T","costPoints":1,"stock":50000,"codeSource":"generated","codePattern":"AB-XXXX-##"}`, 400, "INVALID_FIELD", "codePattern"},
		{"pattern bad characters", "PUT", "/integrations/gifts/g1", `{"title":"T","costPoints":1,"codeSource":"generated","codePattern":"ab/####-XXXX"}`, 400, "INVALID_FIELD", "codePattern"},
		{"bad country", "PUT", "/integrations/gifts/g1", with("countries", []string{"XX"}), 400, "INVALID_FIELD", "countries"},
		{"country not a string", "PUT", "/integrations/gifts/g1", with("countries", []int{1}), 400, "INVALID_FIELD", "countries"},
		{"unknown merchant", "PUT", "/integrations/gifts/g1", `{"title":"T","costPoints":1,"codeSource":"pool","merchants":["nope"]}`, 400, "INVALID_FIELD", "merchants"},
		{"another partner's merchant", "PUT", "/integrations/gifts/g1", `{"title":"T","costPoints":1,"codeSource":"pool","merchants":["` + globexMerchant.Merchant.Code + `"]}`, 400, "INVALID_FIELD", "merchants"},
		{"merchants without codes", "PUT", "/integrations/gifts/g1", with("merchants", []string{"acme-store"}), 400, "INVALID_FIELD", "codeSource"},
		{"lifetime too short", "PUT", "/integrations/gifts/g1", with("voucherLifetimeSeconds", 59), 400, "INVALID_FIELD", "voucherLifetimeSeconds"},
		{"refund on expiry without lifetime", "PUT", "/integrations/gifts/g1", with("refundOnExpiry", true), 400, "INVALID_FIELD", "refundOnExpiry"},
		{"window reversed", "PUT", "/integrations/gifts/g1", `{"title":"T","costPoints":1,"codeSource":"none","claimableFrom":"2027-01-01T00:00:00Z","claimableUntil":"2026-01-01T00:00:00Z"}`, 400, "INVALID_FIELD", "claimableUntil"},
		{"visible window reversed", "PUT", "/integrations/gifts/g1", `{"title":"T","costPoints":1,"codeSource":"none","visibleFrom":"2027-01-01T00:00:00Z","visibleUntil":"2026-01-01T00:00:00Z"}`, 400, "INVALID_FIELD", "visibleUntil"},
		{"bad time", "PUT", "/integrations/gifts/g1", with("visibleFrom", "tomorrow"), 400, "INVALID_FIELD", "visibleFrom"},
		{"bad image url", "PUT", "/integrations/gifts/g1", with("imageUrl", "javascript:alert(1)"), 400, "INVALID_FIELD", "imageUrl"},
		{"bad category", "PUT", "/integrations/gifts/g1", with("category", "Not A Slug"), 400, "INVALID_FIELD", "category"},
		{"position out of range", "PUT", "/integrations/gifts/g1", with("position", 2000000), 400, "INVALID_FIELD", "position"},
		{"unknown field", "PUT", "/integrations/gifts/g1", with("price", 3), 400, "UNKNOWN_FIELD", "price"},
		{"malformed JSON", "PUT", "/integrations/gifts/g1", `{"title":`, 400, "MALFORMED_JSON", ""},
		{"bad sku", "PUT", "/integrations/gifts/bad%20sku", with("title", "T"), 400, "INVALID_FIELD", "sku"},
		{"retire unknown", "DELETE", "/integrations/gifts/nope", "", 404, "GIFT_NOT_FOUND", ""},
		{"retire bad sku", "DELETE", "/integrations/gifts/-x", "", 400, "INVALID_FIELD", "sku"},
		{"upload to unknown gift", "POST", "/integrations/gifts/nope/codes", `{"codes":["ABC-1"]}`, 404, "GIFT_NOT_FOUND", ""},
		{"upload to a generated gift", "POST", "/integrations/gifts/store-10-off/codes", `{"codes":["ABC-1"]}`, 409, "CODE_SOURCE_MISMATCH", ""},
		{"upload nothing", "POST", "/integrations/gifts/coffee/codes", `{"codes":[]}`, 400, "MISSING_FIELD", "codes"},
		{"upload no codes field", "POST", "/integrations/gifts/coffee/codes", `{}`, 400, "MISSING_FIELD", "codes"},
		{"upload a bad code", "POST", "/integrations/gifts/coffee/codes", `{"codes":["GOOD-1","bad code"]}`, 400, "INVALID_FIELD", "codes"},
		{"upload a short code", "POST", "/integrations/gifts/coffee/codes", `{"codes":["AB"]}`, 400, "INVALID_FIELD", "codes"},
		{"upload codes as numbers", "POST", "/integrations/gifts/coffee/codes", `{"codes":[123]}`, 400, "INVALID_FIELD", "codes"},
		{"upload unknown field", "POST", "/integrations/gifts/coffee/codes", `{"codes":["ABC-1"],"gift":"x"}`, 400, "UNKNOWN_FIELD", "gift"},
		{"cancel bad id", "POST", "/integrations/vouchers/nope/cancel", "", 400, "INVALID_FIELD", "id"},
		{"cancel unknown voucher", "POST", "/integrations/vouchers/" + uuid.NewString() + "/cancel", "", 404, "VOUCHER_NOT_FOUND", ""},
		{"cancel with a long reason", "POST", "/integrations/vouchers/" + uuid.NewString() + "/cancel", `{"reason":"` + strings.Repeat("x", 501) + `"}`, 400, "INVALID_FIELD", "reason"},
		{"cancel with unknown field", "POST", "/integrations/vouchers/" + uuid.NewString() + "/cancel", `{"why":"x"}`, 400, "UNKNOWN_FIELD", "why"},
		{"get bad voucher id", "GET", "/integrations/vouchers/nope", "", 400, "INVALID_FIELD", "id"},
		{"list with a bad flag", "GET", "/integrations/gifts?includeRetired=yes", "", 400, "INVALID_FIELD", "includeRetired"},
		{"get bad sku", "GET", "/integrations/gifts/-nope", "", 400, "INVALID_FIELD", "sku"},
		{"get unknown sku", "GET", "/integrations/gifts/nope", "", 404, "GIFT_NOT_FOUND", ""},
		{"get unknown voucher", "GET", "/integrations/vouchers/" + uuid.NewString(), "", 404, "VOUCHER_NOT_FOUND", ""},
		{"upload with a bad sku", "POST", "/integrations/gifts/-x/codes", `{"codes":["ABC-1"]}`, 400, "INVALID_FIELD", "sku"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := dbtest.Snapshot(t, env.DB.Bun)
			res := env.Partner("acme", c.method, c.path, []byte(c.body), map[string]string{"Idempotency-Key": "k-" + strings.ReplaceAll(c.name, " ", "-")})
			require.Equal(t, c.status, res.StatusCode, "%s", res.Body)
			require.Equal(t, c.code, res.Code(), "%s", res.Body)
			if c.field != "" {
				require.Equal(t, c.field, res.JSON(t)["field"], "%s", res.Body)
			}
			require.Equal(t, before, dbtest.Snapshot(t, env.DB.Bun), "nothing changed, idempotency key included")
		})
	}
}

func uploadCSV(env *apptest.Env, sku string, body []byte, headers ...map[string]string) *apptest.Response {
	h := map[string]string{"Content-Type": "text/csv"}
	for _, m := range headers {
		for k, v := range m {
			h[k] = v
		}
	}
	return env.Partner("acme", http.MethodPost, "/integrations/gifts/"+sku+"/codes", body, h)
}

// TestUploadCodes: JSON and CSV uploads, duplicates within the upload and
// already stored (for any gift of the partner) reported and not inserted,
// 100,000 codes in one call, the body limit of the route.
func TestUploadCodes(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	env.PutGift("acme", "voucher-pool", catalog.GiftInput{Title: "Pool", CostPoints: 10, CodeSource: catalog.SourcePool})

	res := env.Partner("acme", http.MethodPost, "/integrations/gifts/voucher-pool/codes",
		[]byte(`{"codes":["POOL-1","POOL-2","POOL-1","COFFEE-DEMO-0007","POOL-3"]}`), map[string]string{"Idempotency-Key": "up-1"})
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	require.JSONEq(t, `{"sku":"voucher-pool","received":5,"inserted":3,"available":3,"duplicates":[
		{"code":"POOL-1","position":3,"reason":"repeated_in_upload"},
		{"code":"COFFEE-DEMO-0007","position":4,"reason":"already_stored"}]}`, string(res.Body))
	replay := env.Partner("acme", http.MethodPost, "/integrations/gifts/voucher-pool/codes",
		[]byte(`{"codes":["POOL-1","POOL-2","POOL-1","COFFEE-DEMO-0007","POOL-3"]}`), map[string]string{"Idempotency-Key": "up-1"})
	require.Equal(t, string(res.Body), string(replay.Body))
	require.Equal(t, "true", replay.Header.Get("Idempotent-Replayed"))

	csvBody := []byte("code\r\nPOOL-3\n\n  POOL-4  \nPOOL-5\n")
	res = uploadCSV(env, "voucher-pool", csvBody)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	require.JSONEq(t, `{"sku":"voucher-pool","received":3,"inserted":2,"available":5,
		"duplicates":[{"code":"POOL-3","position":1,"reason":"already_stored"}]}`, string(res.Body))
	bad := uploadCSV(env, "voucher-pool", []byte("code,extra\nA-1,x\n"))
	require.Equal(t, "INVALID_FIELD", bad.Code(), "%s", bad.Body)
	other := env.Partner("acme", http.MethodPost, "/integrations/gifts/voucher-pool/codes", []byte("POOL-9"), map[string]string{"Content-Type": "text/plain"})
	require.Equal(t, http.StatusUnsupportedMediaType, other.StatusCode, "%s", other.Body)

	// The same code may exist for another partner.
	env.PutGift("globex", "globex-pool", catalog.GiftInput{Title: "Pool", CostPoints: 10, CodeSource: catalog.SourcePool})
	g := env.Partner("globex", http.MethodPost, "/integrations/gifts/globex-pool/codes", []byte(`{"codes":["POOL-1"]}`))
	require.Equal(t, http.StatusOK, g.StatusCode, "%s", g.Body)
	require.EqualValues(t, 1, g.JSON(t)["inserted"])

	// 100,000 codes in one call: two statements, within the 8 MiB limit.
	var big bytes.Buffer
	big.WriteString("code\n")
	for i := 0; i < catalog.MaxCodesPerUpload; i++ {
		fmt.Fprintf(&big, "BULK-%07d-%s\n", i, strings.Repeat("Z", 40))
	}
	require.Greater(t, big.Len(), 1<<20, "larger than the default body limit")
	t0 := time.Now()
	res = uploadCSV(env, "voucher-pool", big.Bytes())
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body[:min(len(res.Body), 300)])
	require.EqualValues(t, catalog.MaxCodesPerUpload, res.JSON(t)["inserted"])
	require.EqualValues(t, 5+catalog.MaxCodesPerUpload, res.JSON(t)["available"])
	t.Logf("100,000 codes uploaded in %s", time.Since(t0))

	// Once more: every code already stored, nothing inserted.
	res = uploadCSV(env, "voucher-pool", big.Bytes())
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.EqualValues(t, 0, res.JSON(t)["inserted"])
	require.Len(t, res.JSON(t)["duplicates"], catalog.MaxCodesPerUpload)

	tooMany := append(big.Bytes(), []byte("ONE-MORE-CODE\n")...)
	require.Equal(t, "INVALID_FIELD", uploadCSV(env, "voucher-pool", tooMany).Code())
	huge := bytes.Repeat([]byte("X"), 8<<20+1)
	res = uploadCSV(env, "voucher-pool", huge)
	require.Equal(t, http.StatusRequestEntityTooLarge, res.StatusCode)
	// Other routes keep the default limit.
	res = env.Partner("acme", http.MethodPut, "/integrations/gifts/x", bytes.Repeat([]byte(" "), 1<<20+1))
	require.Equal(t, http.StatusRequestEntityTooLarge, res.StatusCode)

	// Claims take pool codes first in, first out.
	env.FundedUser("acme", "pooler", "", 100)
	tok := env.Token("acme", "pooler", nil)
	all, err := env.App.Catalog.GiftBySKU(context.Background(), env.DB.Bun, env.Acme.Partner.ID, "voucher-pool")
	require.NoError(t, err)
	c := env.Claim(tok, all.ID, "p1")
	require.Empty(t, c.Errors, "%+v", c.Errors)
	require.Equal(t, "POOL-1", *c.Code)
	checkVouchers(t, env)
}

// TestCancelVoucher: the partner cancels a voucher and the points come back
// once, however many cancellations race; a cancelled voucher cannot be
// redeemed; other partners cannot touch it.
func TestCancelVoucher(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	g := env.PutGift("acme", "cancellable", catalog.GiftInput{Title: "C", CostPoints: 40, CodeSource: catalog.SourceNone})
	uid := env.FundedUser("acme", "canceller", "", 100)
	tok := env.Token("acme", "canceller", nil)
	c := env.Claim(tok, g.ID, "c1")
	require.Empty(t, c.Errors)
	require.Equal(t, int64(60), env.Balance("acme", uid))

	require.Equal(t, "VOUCHER_NOT_FOUND", env.Partner("globex", http.MethodPost, "/integrations/vouchers/"+c.VoucherID+"/cancel", nil).Code())

	var wg sync.WaitGroup
	statuses := make([]int, 20)
	bodies := make([]string, 20)
	for i := range statuses {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			res := env.Partner("acme", http.MethodPost, "/integrations/vouchers/"+c.VoucherID+"/cancel", []byte(fmt.Sprintf(`{"reason":"support ticket %d"}`, i)))
			statuses[i], bodies[i] = res.StatusCode, string(res.Body)
		}(i)
	}
	wg.Wait()
	ok := 0
	for i, s := range statuses {
		if s == http.StatusOK {
			ok++
			var got map[string]any
			require.NoError(t, json.Unmarshal([]byte(bodies[i]), &got))
			require.Equal(t, "cancelled", got["status"])
			require.EqualValues(t, 40, got["refundedPoints"])
			require.EqualValues(t, 100, got["balance"])
			require.Nil(t, got["cancelReason"], "no free text in stored responses")
			continue
		}
		require.Equal(t, http.StatusConflict, s, bodies[i])
		require.Contains(t, bodies[i], "VOUCHER_NOT_ACTIVE")
	}
	require.Equal(t, 1, ok)
	require.Equal(t, int64(100), env.Balance("acme", uid))
	require.Equal(t, 1, env.Count("ledger_entries", "kind = 'refund' AND source_id = ?", c.VoucherID))
	require.Equal(t, 1, env.Count("events", "type = 'voucher.cancelled'"))

	view := env.Partner("acme", http.MethodGet, "/integrations/vouchers/"+c.VoucherID, nil)
	require.Equal(t, http.StatusOK, view.StatusCode)
	require.Equal(t, "cancelled", view.JSON(t)["status"])
	require.Equal(t, true, view.JSON(t)["refunded"])
	require.Contains(t, view.JSON(t)["cancelReason"], "support ticket")
	require.NotContains(t, string(view.Body), `"code"`, "the partner view carries no code")
	require.Equal(t, "VOUCHER_NOT_ACTIVE", env.GraphQL(tok, `mutation($id: ID!) { redeemVoucher(id: $id) { id } }`, map[string]any{"id": c.VoucherID}).ErrorCode())
	checkVouchers(t, env)
}
