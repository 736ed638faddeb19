package graph_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/catalog"
)

// giftFields selects every field of Gift, with a fragment and aliases, so
// a test pins how each of them is answered wherever a Gift is returned.
const giftFields = `fragment G on Gift { __typename id sku title description imageUrl category costPoints stock perUserLimit
  claimableFrom claimableUntil countries voucherLifetimeSeconds redemption merchants { id name } claimedByMe
  canClaim reason minTier { code name } ... on Gift { again: canClaim why: reason } }`

type pinFixture struct {
	env   *apptest.Env
	tok   string
	ids   map[string]uuid.UUID // gifts by SKU
	shops map[string]uuid.UUID // merchants by code
	now   time.Time
}

// setupPins builds a catalog (category "pin") where each gift answers one
// way: every reason a claim can fail with, a localized text, merchants
// enabled and disabled, a tier the user meets and one it does not.
func setupPins(t *testing.T) *pinFixture {
	t.Helper()
	env := apptest.New(t)
	f := &pinFixture{env: env, ids: map[string]uuid.UUID{}, shops: map[string]uuid.UUID{}, now: env.Now()}
	res := env.Partner("acme", http.MethodPut, "/integrations/tiers", []byte(`{"tiers":[{"code":"member","name":"Member"},`+
		`{"code":"silver","name":"Silver","threshold":1000},{"code":"gold","name":"Gold","threshold":5000}]}`))
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	for _, name := range []string{"Pin Open", "Pin Closed"} {
		m := env.NewMerchant("acme", name)
		f.shops[m.Merchant.Code] = m.Merchant.ID
	}
	require.NoError(t, env.App.Merchants.SetEnabled(context.Background(), env.DB.Bun, env.PartnerID("acme"), "pin-closed", false))

	at := func(d time.Duration) string { return f.now.Add(d).Format(time.RFC3339) }
	gifts := []struct{ sku, body string }{
		{"pin-fr", `{"title":"Coffee","description":"Any size.","imageUrl":"https://img.example/c.png","category":"pin","costPoints":20,
			"perUserLimit":2,"claimableUntil":"` + at(48*time.Hour) + `","countries":["SG","MY"],"codeSource":"generated","codePattern":"PIN-XXXX-####-XX",
			"voucherLifetimeSeconds":3600,"merchants":["pin-open","pin-closed"],"position":1,
			"translations":{"fr":{"title":"Café offert","description":"Toutes tailles."},"de":{"title":"Gratis Kaffee"}}}`},
		{"pin-soon", `{"title":"Soon","category":"pin","costPoints":10,"claimableFrom":"` + at(time.Hour) + `","codeSource":"none","position":2}`},
		{"pin-my", `{"title":"Malaysia","category":"pin","costPoints":10,"countries":["MY"],"codeSource":"none","position":3}`},
		{"pin-gold", `{"title":"Lounge","category":"pin","costPoints":10,"codeSource":"none","minTier":"gold","position":4}`},
		{"pin-silver", `{"title":"Club","category":"pin","costPoints":10,"codeSource":"none","minTier":"silver","position":5}`},
		{"pin-gone", `{"title":"Last one","category":"pin","costPoints":10,"stock":1,"codeSource":"none","position":6}`},
		{"pin-pool", `{"title":"Pool","category":"pin","costPoints":10,"codeSource":"pool","merchants":["pin-open"],"position":7}`},
		{"pin-once", `{"title":"Once","category":"pin","costPoints":10,"perUserLimit":1,"codeSource":"none","position":8}`},
		{"pin-dear", `{"title":"Dear","category":"pin","costPoints":100000,"stock":5,"codeSource":"none","position":9}`},
		{"pin-closed", `{"title":"Closed shop","category":"pin","costPoints":10,"codeSource":"generated","codePattern":"CL-XXXX-####-XX","merchants":["pin-closed"],"position":10}`},
	}
	for _, g := range gifts {
		res := env.Partner("acme", http.MethodPut, "/integrations/gifts/"+g.sku, []byte(g.body))
		require.Equal(t, http.StatusCreated, res.StatusCode, "%s: %s", g.sku, res.Body)
		f.ids[g.sku] = uuid.MustParse(res.JSON(t)["id"].(string))
	}
	// The user earns into silver; someone else takes the last unit.
	env.FundedUser("acme", "pin-user", "SG", 0)
	res = env.Partner("acme", http.MethodPost, "/integrations/actions", []byte(`{"externalUserId":"pin-user","action":"purchase","points":1250}`))
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	f.tok = env.Token("acme", "pin-user", map[string]any{"locale": "fr-CA"})
	require.Empty(t, env.Claim(f.tok, f.ids["pin-once"], "pin-once").Errors)
	env.FundedUser("acme", "pin-other", "SG", 100)
	require.Empty(t, env.Claim(env.Token("acme", "pin-other", nil), f.ids["pin-gone"], "pin-gone").Errors)
	return f
}

// post sends a GraphQL request and returns the whole response body.
func (f *pinFixture) post(t *testing.T, query string, vars map[string]any) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	require.NoError(t, err)
	res := f.env.Consumer(f.tok, http.MethodPost, "/graphql", b)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	return string(res.Body)
}

// expand replaces {sku} with the gift's id, {shop:code} with the
// merchant's id and {+48h} with that time from the clock's now.
func (f *pinFixture) expand(s string) string {
	for sku, id := range f.ids {
		s = strings.ReplaceAll(s, "{"+sku+"}", id.String())
	}
	for code, id := range f.shops {
		s = strings.ReplaceAll(s, "{shop:"+code+"}", id.String())
	}
	s = strings.ReplaceAll(s, "{+1h}", f.now.Add(time.Hour).UTC().Format(time.RFC3339))
	s = strings.ReplaceAll(s, "{+48h}", f.now.Add(48*time.Hour).UTC().Format(time.RFC3339))
	return newlines.ReplaceAllString(s, "")
}

var newlines = regexp.MustCompile(`\n\s*`)

// The answers for each gift of the fixture, as the user sees them.
var pinned = map[string]string{
	"pin-fr": `{"__typename":"Gift","id":"{pin-fr}","sku":"pin-fr","title":"Café offert","description":"Toutes tailles.",
		"imageUrl":"https://img.example/c.png","category":"pin","costPoints":20,"stock":null,"perUserLimit":2,"claimableFrom":null,
		"claimableUntil":"{+48h}","countries":["MY","SG"],"voucherLifetimeSeconds":3600,"redemption":"MERCHANT",
		"merchants":[{"id":"{shop:pin-open}","name":"Pin Open"}],"claimedByMe":%d,"canClaim":true,"reason":null,"minTier":null,
		"again":true,"why":null}`,
	"pin-soon": `{"__typename":"Gift","id":"{pin-soon}","sku":"pin-soon","title":"Soon","description":"","imageUrl":"","category":"pin",
		"costPoints":10,"stock":null,"perUserLimit":null,"claimableFrom":"{+1h}","claimableUntil":null,"countries":[],
		"voucherLifetimeSeconds":null,"redemption":"ONLINE","merchants":[],"claimedByMe":0,"canClaim":false,"reason":"GIFT_UNAVAILABLE",
		"minTier":null,"again":false,"why":"GIFT_UNAVAILABLE"}`,
	"pin-my": `{"__typename":"Gift","id":"{pin-my}","sku":"pin-my","title":"Malaysia","description":"","imageUrl":"","category":"pin",
		"costPoints":10,"stock":null,"perUserLimit":null,"claimableFrom":null,"claimableUntil":null,"countries":["MY"],
		"voucherLifetimeSeconds":null,"redemption":"ONLINE","merchants":[],"claimedByMe":0,"canClaim":false,"reason":"NOT_IN_COUNTRY",
		"minTier":null,"again":false,"why":"NOT_IN_COUNTRY"}`,
	"pin-gold": `{"__typename":"Gift","id":"{pin-gold}","sku":"pin-gold","title":"Lounge","description":"","imageUrl":"","category":"pin",
		"costPoints":10,"stock":null,"perUserLimit":null,"claimableFrom":null,"claimableUntil":null,"countries":[],
		"voucherLifetimeSeconds":null,"redemption":"ONLINE","merchants":[],"claimedByMe":0,"canClaim":false,"reason":"TIER_TOO_LOW",
		"minTier":{"code":"gold","name":"Gold"},"again":false,"why":"TIER_TOO_LOW"}`,
	"pin-silver": `{"__typename":"Gift","id":"{pin-silver}","sku":"pin-silver","title":"Club","description":"","imageUrl":"","category":"pin",
		"costPoints":10,"stock":null,"perUserLimit":null,"claimableFrom":null,"claimableUntil":null,"countries":[],
		"voucherLifetimeSeconds":null,"redemption":"ONLINE","merchants":[],"claimedByMe":0,"canClaim":true,"reason":null,
		"minTier":{"code":"silver","name":"Silver"},"again":true,"why":null}`,
	"pin-gone": `{"__typename":"Gift","id":"{pin-gone}","sku":"pin-gone","title":"Last one","description":"","imageUrl":"","category":"pin",
		"costPoints":10,"stock":0,"perUserLimit":null,"claimableFrom":null,"claimableUntil":null,"countries":[],
		"voucherLifetimeSeconds":null,"redemption":"ONLINE","merchants":[],"claimedByMe":0,"canClaim":false,"reason":"OUT_OF_STOCK",
		"minTier":null,"again":false,"why":"OUT_OF_STOCK"}`,
	"pin-pool": `{"__typename":"Gift","id":"{pin-pool}","sku":"pin-pool","title":"Pool","description":"","imageUrl":"","category":"pin",
		"costPoints":10,"stock":null,"perUserLimit":null,"claimableFrom":null,"claimableUntil":null,"countries":[],
		"voucherLifetimeSeconds":null,"redemption":"MERCHANT","merchants":[{"id":"{shop:pin-open}","name":"Pin Open"}],"claimedByMe":0,
		"canClaim":false,"reason":"CODES_EXHAUSTED","minTier":null,"again":false,"why":"CODES_EXHAUSTED"}`,
	"pin-once": `{"__typename":"Gift","id":"{pin-once}","sku":"pin-once","title":"Once","description":"","imageUrl":"","category":"pin",
		"costPoints":10,"stock":null,"perUserLimit":1,"claimableFrom":null,"claimableUntil":null,"countries":[],
		"voucherLifetimeSeconds":null,"redemption":"ONLINE","merchants":[],"claimedByMe":1,"canClaim":false,"reason":"LIMIT_REACHED",
		"minTier":null,"again":false,"why":"LIMIT_REACHED"}`,
	"pin-dear": `{"__typename":"Gift","id":"{pin-dear}","sku":"pin-dear","title":"Dear","description":"","imageUrl":"","category":"pin",
		"costPoints":100000,"stock":5,"perUserLimit":null,"claimableFrom":null,"claimableUntil":null,"countries":[],
		"voucherLifetimeSeconds":null,"redemption":"ONLINE","merchants":[],"claimedByMe":0,"canClaim":false,"reason":"INSUFFICIENT_POINTS",
		"minTier":null,"again":false,"why":"INSUFFICIENT_POINTS"}`,
	"pin-closed": `{"__typename":"Gift","id":"{pin-closed}","sku":"pin-closed","title":"Closed shop","description":"","imageUrl":"",
		"category":"pin","costPoints":10,"stock":null,"perUserLimit":null,"claimableFrom":null,"claimableUntil":null,"countries":[],
		"voucherLifetimeSeconds":null,"redemption":"MERCHANT","merchants":[],"claimedByMe":0,"canClaim":true,"reason":null,
		"minTier":null,"again":true,"why":null}`,
}

var pinOrder = []string{"pin-fr", "pin-soon", "pin-my", "pin-gold", "pin-silver", "pin-gone", "pin-pool", "pin-once", "pin-dear", "pin-closed"}

// TestGiftAnswersPinned pins, byte for byte, every field of Gift wherever
// the API returns one: a catalog page (with its cursors and page info),
// gift(id), a voucher's gift and claimGift's voucher's gift. Each gift of
// the fixture answers one way (every reason, localized text, merchants
// enabled or not, tiers met and not).
func TestGiftAnswersPinned(t *testing.T) {
	t.Parallel()
	f := setupPins(t)
	gift := func(sku string, claimed int) string {
		s := pinned[sku]
		if sku == "pin-fr" {
			s = fmt.Sprintf(s, claimed)
		}
		return s
	}
	cursor := func(pos int, sku string) string {
		return catalog.Cursor{Position: pos, SKU: sku}.Encode()
	}

	// A page of the catalog, then the next one.
	var page []string
	for i, sku := range pinOrder[:6] {
		page = append(page, `{"cursor":"`+cursor(i+1, sku)+`","node":`+gift(sku, 0)+`}`)
	}
	want := f.expand(`{"data":{"catalog":{"edges":[` + strings.Join(page, ",") + `],"pageInfo":{"hasNextPage":true,"endCursor":"` +
		cursor(6, "pin-gone") + `"}}}}`)
	const pageQuery = `query($after: String) { catalog(first: 6, category: "pin", after: $after) { edges { cursor node { ...G } } pageInfo { hasNextPage endCursor } } } ` + giftFields
	require.Equal(t, want, f.post(t, pageQuery, nil))
	page = nil
	for i, sku := range pinOrder[6:] {
		page = append(page, `{"cursor":"`+cursor(i+7, sku)+`","node":`+gift(sku, 0)+`}`)
	}
	want = f.expand(`{"data":{"catalog":{"edges":[` + strings.Join(page, ",") + `],"pageInfo":{"hasNextPage":false,"endCursor":"` +
		cursor(10, "pin-closed") + `"}}}}`)
	require.Equal(t, want, f.post(t, pageQuery, map[string]any{"after": cursor(6, "pin-gone")}))

	// Each gift by id.
	for _, sku := range pinOrder {
		got := f.post(t, `query($id: ID!) { gift(id: $id) { ...G } } `+giftFields, map[string]any{"id": f.ids[sku].String()})
		require.Equal(t, f.expand(`{"data":{"gift":`+gift(sku, 0)+`}}`), got, sku)
	}

	// A claim answers its voucher's gift as the claim left it; the list of
	// vouchers answers each voucher's gift.
	claim := f.post(t, `mutation { claimGift(giftId: "`+f.ids["pin-fr"].String()+`", idempotencyKey: "pin-fr") { voucher { gift { ...G } } balance } } `+giftFields, nil)
	require.Equal(t, f.expand(`{"data":{"claimGift":{"voucher":{"gift":`+gift("pin-fr", 1)+`},"balance":1220}}}`), claim)
	replay := f.post(t, `mutation { claimGift(giftId: "`+f.ids["pin-fr"].String()+`", idempotencyKey: "pin-fr") { voucher { gift { ...G } } balance } } `+giftFields, nil)
	require.Equal(t, claim, replay, "a replay answers the same")
	vouchers := f.post(t, `{ vouchers { edges { node { gift { ...G } } } } } `+giftFields, nil)
	require.Equal(t, f.expand(`{"data":{"vouchers":{"edges":[{"node":{"gift":`+gift("pin-fr", 1)+`}},{"node":{"gift":`+gift("pin-once", 0)+`}}]}}}`), vouchers)
}

// TestCatalogReadsTierRanksOnce: a page whose gifts require tiers reads
// the user's tier ranks once, whatever its size and however many of its
// fields depend on them.
func TestCatalogReadsTierRanksOnce(t *testing.T) {
	t.Parallel()
	f := setupPins(t)
	require.Eventually(t, f.env.App.Partners.Cache.Serving, 10*time.Second, time.Millisecond)
	const q = `query($n: Int!) { catalog(first: $n, category: "pin") { edges { node { sku canClaim reason minTier { code } } } } }`
	count := func(n int) int64 {
		return f.env.DB.Statements.Count(func() {
			res := f.env.GraphQL(f.tok, q, map[string]any{"n": n})
			require.Empty(t, res.Errors, "%+v", res.Errors)
			require.Equal(t, n, strings.Count(string(res.Data), `"sku"`))
		})
	}
	count(1) // warm up
	// pin-gold and pin-silver are the 4th and 5th gifts.
	require.Equal(t, count(3)+2, count(10), "the tier list (minTier) and the ranks (canClaim, reason): one read each")
}
