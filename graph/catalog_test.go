package graph_test

import (
	"context"
	"encoding/json"
	"fmt"
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

type catalogFixture struct {
	env   *apptest.Env
	gifts map[string]uuid.UUID // the demo catalog by SKU
}

func setupCatalog(t *testing.T) *catalogFixture {
	t.Helper()
	env := apptest.New(t)
	all, err := env.App.Catalog.Gifts(context.Background(), env.DB.Bun, env.Acme.Partner.ID, false)
	require.NoError(t, err)
	gifts := map[string]uuid.UUID{}
	for _, g := range all {
		gifts[g.SKU] = g.ID
	}
	return &catalogFixture{env: env, gifts: gifts}
}

func (f *catalogFixture) invariants(t *testing.T) {
	t.Helper()
	require.NoError(t, voucher.CheckInvariants(context.Background(), f.env.DB.Bun))
}

// onlineGift is a gift without merchants or codes, unlimited unless stock.
func onlineGift(cost int64, stock *int) catalog.GiftInput {
	return catalog.GiftInput{Title: "Online", CostPoints: cost, Stock: stock, CodeSource: catalog.SourceNone}
}

// TestClaimGiftFlow: a claim burns the points, takes a code and creates a
// voucher the owner sees with its code; a retry with the same key returns
// the same voucher; history(kind: BURN) shows the claims.
func TestClaimGiftFlow(t *testing.T) {
	t.Parallel()
	f := setupCatalog(t)
	env := f.env
	uid := env.FundedUser("acme", "claimer", "SG", 1000)
	tok := env.Token("acme", "claimer", nil)
	require.Len(t, f.gifts, 4, "the demo catalog")

	first := env.Claim(tok, f.gifts["coffee"], "c1")
	require.Empty(t, first.Errors, "%+v", first.Errors)
	require.Equal(t, 900, first.Balance)
	require.NotNil(t, first.Code)
	require.Equal(t, "COFFEE-DEMO-0001", *first.Code, "pool codes go out in upload order")

	again := env.Claim(tok, f.gifts["coffee"], "c1")
	require.JSONEq(t, string(first.Data), string(again.Data), "a retry returns the same voucher")
	require.Equal(t, "IDEMPOTENCY_KEY_REUSED", env.Claim(tok, f.gifts["ebook"], "c1").ErrorCode())

	gen := env.Claim(tok, f.gifts["store-10-off"], "c2")
	require.Empty(t, gen.Errors, "%+v", gen.Errors)
	require.Regexp(t, `^ACME-[0-9]{4}-[A-HJ-NP-Z]{4}$`, *gen.Code)

	online := env.Claim(tok, f.gifts["ebook"], "c3")
	require.Empty(t, online.Errors, "%+v", online.Errors)
	require.Nil(t, online.Code, "online gifts have no code")
	require.Equal(t, 1000-100-250-50, online.Balance)
	require.Equal(t, int64(600), env.Balance("acme", uid))
	require.Equal(t, 3, env.Count("events", "type = 'voucher.claimed' AND user_id = ?", uid))

	h := env.GraphQL(tok, `{ history(kind: BURN) { edges { node { points reason voucher { id gift { sku } status } } } } }`, nil)
	require.Empty(t, h.Errors, "%+v", h.Errors)
	var hist struct {
		History struct {
			Edges []struct {
				Node struct {
					Points  int
					Reason  string
					Voucher struct {
						ID   string
						Gift struct{ SKU string }
					}
				}
			}
		}
	}
	require.NoError(t, json.Unmarshal(h.Data, &hist))
	require.Len(t, hist.History.Edges, 3)
	require.Equal(t, -50, hist.History.Edges[0].Node.Points)
	require.Equal(t, "Claimed: E-book: The Rewards Handbook", hist.History.Edges[0].Node.Reason)
	require.Equal(t, "ebook", hist.History.Edges[0].Node.Voucher.Gift.SKU)
	require.Equal(t, first.VoucherID, hist.History.Edges[2].Node.Voucher.ID)

	// The voucher list, newest first, in pages of 2.
	var ids []string
	var after any
	for page := 0; page < 5; page++ {
		v := env.GraphQL(tok, `query($after: String) { vouchers(first: 2, after: $after) { edges { node { id status gift { sku } } } pageInfo { hasNextPage endCursor } } }`, map[string]any{"after": after})
		require.Empty(t, v.Errors, "%+v", v.Errors)
		var conn struct {
			Vouchers struct {
				Edges []struct {
					Node struct{ ID, Status string }
				}
				PageInfo struct {
					HasNextPage bool
					EndCursor   string
				}
			}
		}
		require.NoError(t, json.Unmarshal(v.Data, &conn))
		for _, e := range conn.Vouchers.Edges {
			ids = append(ids, e.Node.ID)
			require.Equal(t, "CLAIMED", e.Node.Status)
		}
		if !conn.Vouchers.PageInfo.HasNextPage {
			break
		}
		after = conn.Vouchers.PageInfo.EndCursor
	}
	require.Equal(t, []string{online.VoucherID, gen.VoucherID, first.VoucherID}, ids)
	filtered := env.GraphQL(tok, `{ vouchers(status: REDEEMED) { edges { node { id } } } }`, nil)
	require.JSONEq(t, `{"vouchers":{"edges":[]}}`, string(filtered.Data))

	// Another user of the partner cannot see the voucher; the owner sees its code.
	other := env.Token("acme", "someone-else", nil)
	res := env.GraphQL(other, `query($id: ID!) { voucher(id: $id) { id code } }`, map[string]any{"id": first.VoucherID})
	require.Equal(t, "VOUCHER_NOT_FOUND", res.ErrorCode())
	mine := env.GraphQL(tok, `query($id: ID!) { voucher(id: $id) { code status gift { redemption } } }`, map[string]any{"id": first.VoucherID})
	require.JSONEq(t, `{"voucher":{"code":"COFFEE-DEMO-0001","status":"CLAIMED","gift":{"redemption":"MERCHANT"}}}`, string(mine.Data))
	f.invariants(t)
}

// TestClaimStockOfOneUnderLoad: 100 users claim a gift with stock 1 at once:
// exactly one voucher, 99 OUT_OF_STOCK, the losers' balances untouched.
func TestClaimStockOfOneUnderLoad(t *testing.T) {
	t.Parallel()
	f := setupCatalog(t)
	env := f.env
	g := env.PutGift("acme", "last-one", catalog.GiftInput{
		Title: "Last one", CostPoints: 70, Stock: ptr(1), CodeSource: catalog.SourceGenerated, CodePattern: "LAST-XXXX-####",
	})
	const users = 100
	tokens := make([]string, users)
	ids := make([]uuid.UUID, users)
	for i := range tokens {
		ext := fmt.Sprintf("racer-%03d", i)
		ids[i] = env.FundedUser("acme", ext, "", 100)
		tokens[i] = env.Token("acme", ext, nil)
	}
	var wg sync.WaitGroup
	codes := make([]string, users)
	start := make(chan struct{})
	for i := range tokens {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			codes[i] = env.Claim(tokens[i], g.ID, "k").ErrorCode()
		}(i)
	}
	close(start)
	wg.Wait()
	count := map[string]int{}
	for i, c := range codes {
		count[c]++
		want := int64(100)
		if c == "" {
			want = 30
		}
		require.Equal(t, want, env.Balance("acme", ids[i]), "user %d (%s)", i, c)
	}
	require.Equal(t, map[string]int{"": 1, "OUT_OF_STOCK": 99}, count)
	require.Equal(t, 1, env.Count("vouchers", "gift_id = ?", g.ID))
	left, err := env.App.Catalog.GiftByID(context.Background(), env.DB.Bun, env.Acme.Partner.ID, g.ID)
	require.NoError(t, err)
	require.Equal(t, 0, *left.Remaining())
	require.Equal(t, 1, env.Count("ledger_entries", "kind = 'burn' AND points = -70"))
	f.invariants(t)
}

// TestClaimsOfOneUserUnderLoad: one user with points for 3 claims sends 20
// at once and gets exactly 3; against a per-user limit of 2, exactly 2.
func TestClaimsOfOneUserUnderLoad(t *testing.T) {
	t.Parallel()
	f := setupCatalog(t)
	env := f.env
	unlimited := env.PutGift("acme", "unlimited", onlineGift(100, nil))
	limitedIn := onlineGift(10, nil)
	limitedIn.PerUserLimit = ptr(2)
	limited := env.PutGift("acme", "two-per-user", limitedIn)

	run := func(ext string, points int64, gift uuid.UUID) (map[string]int, uuid.UUID) {
		uid := env.FundedUser("acme", ext, "", points)
		tok := env.Token("acme", ext, nil)
		var mu sync.Mutex
		count := map[string]int{}
		var wg sync.WaitGroup
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				code := env.Claim(tok, gift, fmt.Sprintf("%s-%d", ext, i)).ErrorCode()
				mu.Lock()
				count[code]++
				mu.Unlock()
			}(i)
		}
		wg.Wait()
		return count, uid
	}

	count, uid := run("thrifty", 300, unlimited.ID)
	require.Equal(t, map[string]int{"": 3, "INSUFFICIENT_POINTS": 17}, count)
	require.Equal(t, int64(0), env.Balance("acme", uid))
	require.Equal(t, 3, env.Count("vouchers", "user_id = ?", uid))

	count, uid = run("collector", 10_000, limited.ID)
	require.Equal(t, map[string]int{"": 2, "LIMIT_REACHED": 18}, count)
	require.Equal(t, int64(10_000-20), env.Balance("acme", uid))
	f.invariants(t)
}

// TestClaimErrors: every typed refusal, and that a refused claim changes
// nothing (points, stock, codes, counters, idempotency keys).
func TestClaimErrors(t *testing.T) {
	t.Parallel()
	f := setupCatalog(t)
	env := f.env
	now := env.Now()
	env.FundedUser("acme", "sg-user", "SG", 1_000)
	env.FundedUser("acme", "nowhere-user", "", 1_000)
	env.FundedUser("acme", "poor-user", "SG", 10)
	sg := env.Token("acme", "sg-user", nil)
	nowhere := env.Token("acme", "nowhere-user", nil)
	poor := env.Token("acme", "poor-user", nil)

	retired := env.PutGift("acme", "retired", onlineGift(10, nil))
	require.NoError(t, env.App.Catalog.Retire(context.Background(), env.DB.Bun, env.Acme.Partner.ID, "retired"))
	later := onlineGift(10, nil)
	later.ClaimableFrom = ptr(now.Add(time.Hour))
	notYet := env.PutGift("acme", "not-yet", later)
	over := onlineGift(10, nil)
	over.ClaimableUntil = ptr(now.Add(-time.Minute))
	closed := env.PutGift("acme", "closed", over)
	hiddenIn := onlineGift(10, nil)
	hiddenIn.VisibleFrom = ptr(now.Add(time.Hour))
	hidden := env.PutGift("acme", "hidden", hiddenIn)
	myIn := onlineGift(10, nil)
	myIn.Countries = []string{"MY"}
	malaysia := env.PutGift("acme", "malaysia-only", myIn)
	soldOut := env.PutGift("acme", "sold-out", onlineGift(10, ptr(0)))
	emptyPool := env.PutGift("acme", "empty-pool", catalog.GiftInput{Title: "Empty", CostPoints: 10, CodeSource: catalog.SourcePool})
	onceIn := onlineGift(10, nil)
	onceIn.PerUserLimit = ptr(1)
	once := env.PutGift("acme", "once", onceIn)
	require.Empty(t, env.Claim(sg, once.ID, "once-1").Errors)
	globexGift := env.PutGift("globex", "globex-gift", onlineGift(1, nil))

	cases := []struct {
		name  string
		token string
		gift  string
		key   string
		want  string
	}{
		{"unknown gift", sg, uuid.NewString(), "k1", "GIFT_NOT_FOUND"},
		{"another partner's gift", sg, globexGift.ID.String(), "k2", "GIFT_NOT_FOUND"},
		{"not an id", sg, "coffee", "k3", "INVALID_FIELD"},
		{"retired", sg, retired.ID.String(), "k4", "GIFT_UNAVAILABLE"},
		{"claim window not open", sg, notYet.ID.String(), "k5", "GIFT_UNAVAILABLE"},
		{"claim window closed", sg, closed.ID.String(), "k6", "GIFT_UNAVAILABLE"},
		{"not visible yet", sg, hidden.ID.String(), "k7", "GIFT_UNAVAILABLE"},
		{"other country", sg, malaysia.ID.String(), "k8", "NOT_IN_COUNTRY"},
		{"unknown country", nowhere, malaysia.ID.String(), "k9", "NOT_IN_COUNTRY"},
		{"out of stock", sg, soldOut.ID.String(), "k10", "OUT_OF_STOCK"},
		{"empty pool", sg, emptyPool.ID.String(), "k11", "CODES_EXHAUSTED"},
		{"per-user limit", sg, once.ID.String(), "k12", "LIMIT_REACHED"},
		{"balance too low", poor, f.gifts["coffee"].String(), "k13", "INSUFFICIENT_POINTS"},
		{"bad idempotency key", sg, f.gifts["coffee"].String(), "has space", "IDEMPOTENCY_KEY_INVALID"},
		{"empty idempotency key", sg, f.gifts["coffee"].String(), "", "IDEMPOTENCY_KEY_INVALID"},
		{"no token", "", f.gifts["coffee"].String(), "k14", "UNAUTHENTICATED"},
		{"bad token", "not-a-jwt", f.gifts["coffee"].String(), "k15", "TOKEN_INVALID"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := dbtest.Snapshot(t, env.DB.Bun)
			res := env.GraphQL(c.token, apptest.ClaimMutation, map[string]any{"gift": c.gift, "key": c.key})
			require.Equal(t, c.want, res.ErrorCode(), "%+v", res.Errors)
			require.Equal(t, before, dbtest.Snapshot(t, env.DB.Bun), "nothing changed")
		})
	}
	f.invariants(t)
}

// TestCatalogAvailability: the catalog lists visible gifts in the
// partner's order with the user's availability, filters and pages.
func TestCatalogAvailability(t *testing.T) {
	t.Parallel()
	f := setupCatalog(t)
	env := f.env
	env.FundedUser("acme", "browser", "SG", 300)
	tok := env.Token("acme", "browser", nil)
	myIn := onlineGift(10, nil)
	myIn.Countries = []string{"MY"}
	myIn.Position = 50
	env.PutGift("acme", "malaysia-only", myIn)
	hiddenIn := onlineGift(10, nil)
	hiddenIn.VisibleUntil = ptr(env.Now().Add(-time.Second))
	env.PutGift("acme", "gone", hiddenIn)
	require.Empty(t, env.Claim(tok, f.gifts["ebook"], "e1").Errors)

	res := env.GraphQL(tok, `{ catalog { edges { node { sku stock claimedByMe canClaim reason redemption merchants { name } } } pageInfo { hasNextPage } } }`, nil)
	require.Empty(t, res.Errors, "%+v", res.Errors)
	require.JSONEq(t, `{"catalog":{"edges":[
		{"node":{"sku":"coffee","stock":null,"claimedByMe":0,"canClaim":true,"reason":null,"redemption":"MERCHANT","merchants":[{"name":"Acme Store"}]}},
		{"node":{"sku":"store-10-off","stock":null,"claimedByMe":0,"canClaim":true,"reason":null,"redemption":"MERCHANT","merchants":[{"name":"Acme Store"}]}},
		{"node":{"sku":"ebook","stock":null,"claimedByMe":1,"canClaim":false,"reason":"LIMIT_REACHED","redemption":"ONLINE","merchants":[]}},
		{"node":{"sku":"limited-tote","stock":3,"claimedByMe":0,"canClaim":false,"reason":"INSUFFICIENT_POINTS","redemption":"MERCHANT","merchants":[{"name":"Acme Store"}]}},
		{"node":{"sku":"malaysia-only","stock":null,"claimedByMe":0,"canClaim":false,"reason":"NOT_IN_COUNTRY","redemption":"ONLINE","merchants":[]}}
	],"pageInfo":{"hasNextPage":false}}}`, string(res.Data))

	skus := func(q string, vars map[string]any) []string {
		t.Helper()
		r := env.GraphQL(tok, q, vars)
		require.Empty(t, r.Errors, "%+v", r.Errors)
		var d struct {
			Catalog struct {
				Edges []struct{ Node struct{ SKU string } }
			}
		}
		require.NoError(t, json.Unmarshal(r.Data, &d))
		out := []string{}
		for _, e := range d.Catalog.Edges {
			out = append(out, e.Node.SKU)
		}
		return out
	}
	require.Equal(t, []string{"store-10-off", "limited-tote"}, skus(`{ catalog(category: "shopping") { edges { node { sku } } } }`, nil))
	require.Equal(t, []string{"coffee", "store-10-off", "ebook", "malaysia-only"}, skus(`{ catalog(affordable: true) { edges { node { sku } } } }`, nil))
	require.Equal(t, []string{"limited-tote"}, skus(`{ catalog(search: "TOTE") { edges { node { sku } } } }`, nil))
	require.Equal(t, []string{}, skus(`{ catalog(search: "100%_") { edges { node { sku } } } }`, nil), "LIKE wildcards match literally")

	// Pages of two cover the list once, in order.
	var all []string
	var after any
	for page := 0; page < 5; page++ {
		r := env.GraphQL(tok, `query($after: String) { catalog(first: 2, after: $after) { edges { cursor node { sku } } pageInfo { hasNextPage endCursor } } }`, map[string]any{"after": after})
		require.Empty(t, r.Errors)
		var d struct {
			Catalog struct {
				Edges    []struct{ Node struct{ SKU string } }
				PageInfo struct {
					HasNextPage bool
					EndCursor   string
				}
			}
		}
		require.NoError(t, json.Unmarshal(r.Data, &d))
		for _, e := range d.Catalog.Edges {
			all = append(all, e.Node.SKU)
		}
		if !d.Catalog.PageInfo.HasNextPage {
			break
		}
		after = d.Catalog.PageInfo.EndCursor
	}
	require.Equal(t, []string{"coffee", "store-10-off", "ebook", "limited-tote", "malaysia-only"}, all)

	one := env.GraphQL(tok, `query($id: ID!) { gift(id: $id) { sku canClaim reason } }`, map[string]any{"id": f.gifts["limited-tote"].String()})
	require.JSONEq(t, `{"gift":{"sku":"limited-tote","canClaim":false,"reason":"INSUFFICIENT_POINTS"}}`, string(one.Data))
	none := env.GraphQL(tok, `query($id: ID!) { gift(id: $id) { sku } }`, map[string]any{"id": uuid.NewString()})
	require.JSONEq(t, `{"gift":null}`, string(none.Data))

	bad := []struct{ name, query, code string }{
		{"page too big", `{ catalog(first: 101) { edges { cursor } } }`, "INVALID_FIELD"},
		{"page zero", `{ catalog(first: 0) { edges { cursor } } }`, "INVALID_FIELD"},
		{"bad cursor", `{ catalog(after: "nope") { edges { cursor } } }`, "INVALID_FIELD"},
		{"another list's cursor", `{ catalog(after: "djox") { edges { cursor } } }`, "INVALID_FIELD"},
		{"bad category", `{ catalog(category: "Not A Slug") { edges { cursor } } }`, "INVALID_FIELD"},
		{"search too long", `{ catalog(search: "` + strings.Repeat("x", 101) + `") { edges { cursor } } }`, "INVALID_FIELD"},
		{"gift bad id", `{ gift(id: "x") { sku } }`, "INVALID_FIELD"},
		{"vouchers bad cursor", `{ vouchers(after: "nope") { edges { cursor } } }`, "INVALID_FIELD"},
		{"vouchers page too big", `{ vouchers(first: 1000) { edges { cursor } } }`, "INVALID_FIELD"},
		{"voucher bad id", `{ voucher(id: "x") { id } }`, "INVALID_FIELD"},
		{"voucher unknown", `{ voucher(id: "` + uuid.NewString() + `") { id } }`, "VOUCHER_NOT_FOUND"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.code, env.GraphQL(tok, c.query, nil).ErrorCode())
		})
	}
	require.Equal(t, "UNAUTHENTICATED", env.GraphQL("", `{ catalog { edges { cursor } } }`, nil).ErrorCode())
}

// TestCatalogQueriesDoNotGrowWithPageSize: thanks to the dataloaders, a
// page of gifts with their merchants, the user's claim counts and
// availability costs the same number of queries for 5 gifts as for 20.
func TestCatalogQueriesDoNotGrowWithPageSize(t *testing.T) {
	t.Parallel()
	f := setupCatalog(t)
	env := f.env
	m := env.NewMerchant("acme", "Second Shop")
	for i := 0; i < 30; i++ {
		in := catalog.GiftInput{Title: fmt.Sprintf("Gift %d", i), CostPoints: int64(10 + i), CodeSource: catalog.SourceGenerated,
			CodePattern: "G-XXXX-####", Merchants: []string{"acme-store", m.Merchant.Code}, Position: 100 + i}
		if i%3 == 0 {
			in.PerUserLimit = ptr(1)
		}
		env.PutGift("acme", fmt.Sprintf("bulk-%02d", i), in)
	}
	env.FundedUser("acme", "counter", "SG", 500)
	lateFunding := int64(12 * 250)
	tok := env.Token("acme", "counter", nil)
	const q = `query($n: Int!) { catalog(first: $n) { edges { node { id sku title stock costPoints claimedByMe canClaim reason redemption merchants { id name } } } } }`
	require.Empty(t, env.GraphQL(tok, q, map[string]any{"n": 1}).Errors, "warm up: the user exists, caches are full")

	// Every statement the pool sends (bun's, the prepared ones, BEGIN and
	// COMMIT), not only bun's; once the partner cache serves (after the
	// notifications of the fixture's writes).
	require.Eventually(t, env.App.Partners.Cache.Serving, 10*time.Second, time.Millisecond)
	require.Empty(t, env.GraphQL(tok, q, map[string]any{"n": 1}).Errors)
	statements := env.DB.Statements
	count := func(n int) int64 {
		return statements.Count(func() {
			res := env.GraphQL(tok, q, map[string]any{"n": n})
			require.Empty(t, res.Errors, "%+v", res.Errors)
			require.Equal(t, n, strings.Count(string(res.Data), `"sku"`))
		})
	}
	five, twenty := count(5), count(20)
	affordable := func(n int) int64 {
		return statements.Count(func() {
			res := env.GraphQL(tok, `query($n: Int!) { catalog(first: $n, affordable: true) { edges { node { sku canClaim merchants { name } } } } }`, map[string]any{"n": n})
			require.Empty(t, res.Errors, "%+v", res.Errors)
		})
	}
	require.Equal(t, twenty, affordable(5), "the balance filter reuses the loaded balance")
	require.Equal(t, twenty, affordable(20))
	require.Equal(t, five, twenty, "queries for 5 gifts vs 20")
	// Authentication (the partner and its key from the cache, the user
	// read without a transaction: 1 statement) plus the page, the
	// merchants, the claim counts and the balance: 4, one per loader.
	require.Equal(t, int64(5), twenty, "statements per catalog page")

	// The same holds for a page of vouchers with their gifts and for the
	// history with its vouchers.
	env.FundedUser("acme", "counter", "SG", lateFunding)
	for i := 0; i < 12; i++ {
		require.Empty(t, env.Claim(tok, f.gifts["store-10-off"], fmt.Sprintf("k%d", i)).Errors)
	}
	countQ := func(q string, n int) int64 {
		return statements.Count(func() {
			res := env.GraphQL(tok, q, map[string]any{"n": n})
			require.Empty(t, res.Errors, "%+v", res.Errors)
		})
	}
	const vouchers = `query($n: Int!) { vouchers(first: $n) { edges { node { id code gift { sku title } } } } }`
	require.Equal(t, countQ(vouchers, 2), countQ(vouchers, 10))
	const history = `query($n: Int!) { history(first: $n) { edges { node { points voucher { id status gift { title } } } } } }`
	require.Equal(t, countQ(history, 2), countQ(history, 10))
}

// TestRedeemOnlineAndRequestCode: online vouchers are redeemed in the app,
// merchant vouchers get one-time codes; each refusal changes nothing.
func TestRedeemOnlineAndRequestCode(t *testing.T) {
	t.Parallel()
	f := setupCatalog(t)
	env := f.env
	uid := env.FundedUser("acme", "redeemer", "SG", 1000)
	tok := env.Token("acme", "redeemer", nil)
	online := env.Claim(tok, f.gifts["ebook"], "o1")
	store := env.Claim(tok, f.gifts["store-10-off"], "s1")
	require.Empty(t, online.Errors)
	require.Empty(t, store.Errors)
	other := env.Token("acme", "stranger", nil)
	globex := env.Token("globex", "redeemer", nil)
	for _, tk := range []string{other, globex} { // first sight creates the user
		require.Empty(t, env.GraphQL(tk, `{ me { id } }`, nil).Errors)
	}

	const redeem = `mutation($id: ID!) { redeemVoucher(id: $id) { id status redeemedAt } }`
	const request = `mutation($id: ID!) { requestRedemptionCode(voucherId: $id) { code expiresAt voucher { id status } } }`

	r := env.GraphQL(tok, redeem, map[string]any{"id": online.VoucherID})
	require.Empty(t, r.Errors, "%+v", r.Errors)
	require.Contains(t, string(r.Data), `"status":"REDEEMED"`)
	require.Equal(t, 1, env.Count("events", "type = 'voucher.redeemed' AND user_id = ? AND data->>'sku' = 'ebook' AND data->>'channel' = 'online'", uid))

	code := env.GraphQL(tok, request, map[string]any{"id": store.VoucherID})
	require.Empty(t, code.Errors, "%+v", code.Errors)
	var d struct {
		RequestRedemptionCode struct {
			Code      string
			ExpiresAt time.Time
		}
	}
	require.NoError(t, json.Unmarshal(code.Data, &d))
	require.Regexp(t, `^[0-9]{6}$`, d.RequestRedemptionCode.Code)
	require.WithinDuration(t, env.Now().Add(5*time.Minute), d.RequestRedemptionCode.ExpiresAt, time.Second)
	var mac []byte
	require.NoError(t, env.DB.Bun.NewRaw("SELECT otp_mac FROM vouchers WHERE id = ?", store.VoucherID).Scan(context.Background(), &mac))
	require.Len(t, mac, 32, "a MAC, not the digits")
	require.NotContains(t, string(mac), d.RequestRedemptionCode.Code)

	cases := []struct {
		name, token, query, id, want string
	}{
		{"redeem again", tok, redeem, online.VoucherID, "VOUCHER_NOT_ACTIVE"},
		{"redeem a merchant voucher online", tok, redeem, store.VoucherID, "REDEMPTION_CHANNEL_MISMATCH"},
		{"code for an online voucher", tok, request, online.VoucherID, "VOUCHER_NOT_ACTIVE"},
		{"redeem someone else's", other, redeem, store.VoucherID, "VOUCHER_NOT_FOUND"},
		{"code for someone else's", other, request, store.VoucherID, "VOUCHER_NOT_FOUND"},
		{"another partner's user", globex, request, store.VoucherID, "VOUCHER_NOT_FOUND"},
		{"redeem unknown", tok, redeem, uuid.NewString(), "VOUCHER_NOT_FOUND"},
		{"redeem bad id", tok, redeem, "nope", "INVALID_FIELD"},
		{"code bad id", tok, request, "nope", "INVALID_FIELD"},
		{"no token", "", request, store.VoucherID, "UNAUTHENTICATED"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := dbtest.Snapshot(t, env.DB.Bun)
			res := env.GraphQL(c.token, c.query, map[string]any{"id": c.id})
			require.Equal(t, c.want, res.ErrorCode(), "%+v", res.Errors)
			require.Equal(t, before, dbtest.Snapshot(t, env.DB.Bun))
		})
	}

	// A second online voucher: asking for a one-time code is the wrong channel.
	online2 := env.Claim(tok, f.gifts["coffee"], "c1")
	require.Empty(t, online2.Errors)
	unlimited := env.PutGift("acme", "online-2", onlineGift(5, nil))
	o3 := env.Claim(tok, unlimited.ID, "o3")
	require.Equal(t, "REDEMPTION_CHANNEL_MISMATCH", env.GraphQL(tok, request, map[string]any{"id": o3.VoucherID}).ErrorCode())

	// Past its lifetime a voucher is EXPIRED at once, before the job runs.
	env.Clock.Advance(15 * 24 * time.Hour)
	tok = env.Token("acme", "redeemer", nil)
	require.Equal(t, "VOUCHER_NOT_ACTIVE", env.GraphQL(tok, request, map[string]any{"id": store.VoucherID}).ErrorCode())
	st := env.GraphQL(tok, `query($id: ID!) { voucher(id: $id) { status } }`, map[string]any{"id": store.VoucherID})
	require.JSONEq(t, `{"voucher":{"status":"EXPIRED"}}`, string(st.Data))
	f.invariants(t)
}

// TestClaimAnswersWhatAReplayAnswers: a claim answers with the voucher it
// inserted (no read after the commit), which must be exactly what a retry
// with the same key reads back, down to the microseconds of its times.
func TestClaimAnswersWhatAReplayAnswers(t *testing.T) {
	t.Parallel()
	f := setupCatalog(t)
	env := f.env
	// A clock with nanoseconds, which PostgreSQL does not keep.
	env.Clock.Set(env.Clock.Now().Truncate(time.Second).Add(123456789 * time.Nanosecond))
	lifetime := 3600
	in := onlineGift(10, nil)
	in.VoucherLifetimeSeconds = &lifetime
	g := env.PutGift("acme", "replayed", in)
	env.FundedUser("acme", "replayer", "SG", 100)
	tok := env.Token("acme", "replayer", nil)
	const q = `mutation($gift: ID!, $key: String!) { claimGift(giftId: $gift, idempotencyKey: $key) {
		balance voucher { id code status costPoints claimedAt expiresAt redeemedAt expiredAt cancelledAt gift { sku } } } }`
	vars := map[string]any{"gift": g.ID.String(), "key": "same"}
	first := env.GraphQL(tok, q, vars)
	require.Empty(t, first.Errors)
	again := env.GraphQL(tok, q, vars)
	require.Empty(t, again.Errors)
	require.JSONEq(t, string(first.Data), string(again.Data))
	require.Contains(t, string(first.Data), ".123456Z", "the claim's time at microseconds")
	f.invariants(t)
}

// TestClaimRoundTrips bounds what one claim sends PostgreSQL (every
// statement the pool sends, BEGIN and COMMIT included): the user (read
// without a transaction), BEGIN, the idempotency key, the gift with the
// user's claim counted (one statement), the burn (balance, entry and lots in
// one statement), the voucher with its code (one statement), the event, the
// unit of stock (a claim slot, answering the gift), the stored answer,
// COMMIT; the partner and its key come from the cache and the voucher is
// answered as inserted. 12 before the gift read carried the counter and the
// voucher its code.
func TestClaimRoundTrips(t *testing.T) {
	t.Parallel()
	f := setupCatalog(t)
	env := f.env
	env.FundedUser("acme", "rounds", "SG", 1000)
	tok := env.Token("acme", "rounds", nil)
	require.Empty(t, env.Claim(tok, f.gifts["store-10-off"], "warm-up").Errors)
	require.Eventually(t, env.App.Partners.Cache.Serving, 10*time.Second, time.Millisecond)
	require.Empty(t, env.Claim(tok, f.gifts["store-10-off"], "warm-up-2").Errors)
	n := env.DB.Statements.Count(func() {
		require.Empty(t, env.Claim(tok, f.gifts["store-10-off"], "counted").Errors)
	})
	require.Equal(t, int64(10), n, "statements per claim:\n%s", env.DB.Statements.Texts())
	f.invariants(t)
}
