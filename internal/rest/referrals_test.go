package rest_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/partner"
)

const referralsQuery = `{ me { referralCode referralLink referrals(first: 10) { status rewardPoints createdAt }
	referralStats { invited qualified pointsEarned } } }`

type referralsData struct {
	Me struct {
		ReferralCode string  `json:"referralCode"`
		ReferralLink *string `json:"referralLink"`
		Referrals    []struct {
			Status       string    `json:"status"`
			RewardPoints int       `json:"rewardPoints"`
			CreatedAt    time.Time `json:"createdAt"`
		} `json:"referrals"`
		ReferralStats struct {
			Invited      int `json:"invited"`
			Qualified    int `json:"qualified"`
			PointsEarned int `json:"pointsEarned"`
		} `json:"referralStats"`
	} `json:"me"`
}

// graphQLWith posts a GraphQL query with the token in header (seed 003's
// X-SaaSquatch-User-Token).
func graphQLWith(t *testing.T, env *apptest.Env, header, token, query string, vars map[string]any) *apptest.GraphQLResult {
	t.Helper()
	b, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	require.NoError(t, err)
	req, _ := http.NewRequest(http.MethodPost, env.Server.URL+"/graphql", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(header, token)
	res := env.Do(req)
	var out apptest.GraphQLResult
	require.NoError(t, json.Unmarshal(res.Body, &out), "%s", res.Body)
	out.Status = res.StatusCode
	return &out
}

// TestSeed003Referrals follows seed 003: the partner upserts a user with
// its referralCode, a friend is upserted referredBy that code, and the
// referrer's client, with an HS256 token whose claims hold a user object
// sent as X-SaaSquatch-User-Token, reads its code, link, referrals and
// stats; the friend's first purchase pays both, and the partner sees it
// all in GET /integrations/users/{id}.
func TestSeed003Referrals(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	const accountSid, authToken = "IRa1b2c3d4e5f6AcmeAccount", "Zx8kq3mV7pR2sT9wY4bN6cH1jL5dF0gA"
	addKey(t, env, "acme", partner.AddConsumerKeyParams{Kid: accountSid, Algorithm: "HS256", Secret: []byte(authToken)})

	// The demo's rule, replaced: 1 point per 100 minor units.
	res := env.Partner("acme", http.MethodPut, "/integrations/earning-rules/purchase", []byte(`{"name":"Purchase","points":1,"pointsPerAmount":100}`))
	require.Less(t, res.StatusCode, 300, "%s", res.Body)
	res = env.Partner("acme", http.MethodPut, "/integrations/referral-policy", []byte(`{"qualifyAction":"purchase","qualifyMinAmount":2000,
		"referrerPoints":500,"refereePoints":100,"linkTemplate":"https://acme.example.test/join?ref={code}"}`))
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)

	// Seed 003's upsert call, as Perks takes it.
	res = env.Partner("acme", http.MethodPost, "/integrations/users", []byte(`{"externalUserId":"joe@example.com",
		"email":"joe@example.com","firstName":"Joe","lastName":"Testerson","locale":"en_US","referralCode":"JOETESTERSON"}`))
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	res = env.Partner("acme", http.MethodPost, "/integrations/users", []byte(`{"externalUserId":"amy@example.com","email":"amy@example.com","referredBy":"joetesterson"}`))
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)

	tok := apptest.SignJWT(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": accountSid},
		map[string]any{"user": map[string]any{"id": "joe@example.com", "accountId": "joe@example.com", "email": "joe@example.com"},
			"exp": env.Now().Add(7 * 24 * time.Hour).Unix()}, hs256([]byte(authToken)))
	read := func() referralsData {
		t.Helper()
		g := graphQLWith(t, env, "X-SaaSquatch-User-Token", tok, referralsQuery, nil)
		require.Empty(t, g.Errors, "%s", g.Data)
		var d referralsData
		require.NoError(t, json.Unmarshal(g.Data, &d))
		return d
	}
	d := read()
	require.Equal(t, "JOETESTERSON", d.Me.ReferralCode)
	require.Equal(t, "https://acme.example.test/join?ref=JOETESTERSON", *d.Me.ReferralLink)
	require.Len(t, d.Me.Referrals, 1)
	require.Equal(t, "PENDING", d.Me.Referrals[0].Status)
	require.Equal(t, 1, d.Me.ReferralStats.Invited)

	res = env.Partner("acme", http.MethodPost, "/integrations/actions", []byte(`{"externalUserId":"amy@example.com","action":"purchase","amount":1999,"reference":"amy-1"}`))
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	require.Equal(t, "PENDING", read().Me.Referrals[0].Status, "below the policy's amount")
	res = env.Partner("acme", http.MethodPost, "/integrations/actions", []byte(`{"externalUserId":"amy@example.com","action":"purchase","amount":2500,"reference":"amy-2"}`))
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	d = read()
	require.Equal(t, "REWARDED", d.Me.Referrals[0].Status)
	require.Equal(t, 500, d.Me.Referrals[0].RewardPoints)
	require.Equal(t, [3]int{1, 1, 500}, [3]int{d.Me.ReferralStats.Invited, d.Me.ReferralStats.Qualified, d.Me.ReferralStats.PointsEarned})

	info := env.Partner("acme", http.MethodGet, "/integrations/users/joe@example.com", nil).JSON(t)
	require.EqualValues(t, 500, info["balance"])
	ref := info["referral"].(map[string]any)
	require.Equal(t, "JOETESTERSON", ref["code"])
	require.Len(t, ref["referrals"], 1)
	require.Equal(t, "rewarded", ref["referrals"].([]any)[0].(map[string]any)["status"])
	amy := env.Partner("acme", http.MethodGet, "/integrations/users/amy@example.com", nil).JSON(t)
	require.EqualValues(t, 19+25+100, amy["balance"])
	require.Equal(t, "JOETESTERSON", amy["referral"].(map[string]any)["referredBy"].(map[string]any)["code"])
	require.Len(t, amy["referral"].(map[string]any)["code"], 8, "a drawn code")
}

// TestApplyReferralCode: the GraphQL mutation attributes within the
// window, refuses the fraud guards with their codes (changing nothing),
// and is rate-limited per user.
func TestApplyReferralCode(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	const apply = `mutation($c: String!) { applyReferralCode(code: $c) { status alreadyApplied } }`
	code := func(sub string) string {
		t.Helper()
		g := env.GraphQL(env.Token("acme", sub, nil), `{ me { referralCode } }`, nil)
		require.Empty(t, g.Errors)
		var d struct {
			Me struct{ ReferralCode string } `json:"me"`
		}
		require.NoError(t, json.Unmarshal(g.Data, &d))
		return d.Me.ReferralCode
	}
	alice, bob := code("alice"), code("bob")
	require.Regexp(t, `^[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{8}$`, alice)

	before := dbtest.Snapshot(t, env.DB.Bun)
	for _, c := range []struct{ sub, code, want string }{
		{"alice", alice, "SELF_REFERRAL"},
		{"alice", "NOSUCH", "REFERRAL_CODE_NOT_FOUND"},
		{"alice", "not a code", "INVALID_FIELD"},
	} {
		g := env.GraphQL(env.Token("acme", c.sub, nil), apply, map[string]any{"c": c.code})
		require.Equal(t, c.want, g.ErrorCode(), "%s", g.Data)
	}
	require.Equal(t, before, dbtest.Snapshot(t, env.DB.Bun), "refusals change nothing")

	g := env.GraphQL(env.Token("acme", "alice", nil), apply, map[string]any{"c": bob})
	require.Empty(t, g.Errors)
	require.JSONEq(t, `{"applyReferralCode":{"status":"PENDING","alreadyApplied":false}}`, string(g.Data))
	// The fifth attempt is the last of the burst; a loop is refused.
	g = env.GraphQL(env.Token("acme", "alice", nil), apply, map[string]any{"c": bob})
	require.JSONEq(t, `{"applyReferralCode":{"status":"PENDING","alreadyApplied":true}}`, string(g.Data))
	g = env.GraphQL(env.Token("acme", "alice", nil), apply, map[string]any{"c": bob})
	require.Equal(t, "RATE_LIMITED", g.ErrorCode())
	g = env.GraphQL(env.Token("acme", "bob", nil), apply, map[string]any{"c": alice})
	require.Equal(t, "REFERRAL_LOOP", g.ErrorCode())
}

// TestReferralAPIBadInput: a bad policy or referral field is a 4xx with
// its field, and changes nothing (the upsert is refused whole).
func TestReferralAPIBadInput(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	res := env.Partner("acme", http.MethodPost, "/integrations/users", []byte(`{"externalUserId":"owner","referralCode":"OWNER1"}`))
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	before := dbtest.Snapshot(t, env.DB.Bun)
	for _, c := range []struct {
		name, method, path, body string
		status                   int
		code, field              string
	}{
		{"policy without action", http.MethodPut, "/integrations/referral-policy", `{"referrerPoints":1,"refereePoints":1}`, 400, "MISSING_FIELD", "qualifyAction"},
		{"policy bad pattern", http.MethodPut, "/integrations/referral-policy", `{"qualifyAction":"buy","referrerPoints":1,"refereePoints":1,"codePattern":"AB"}`, 400, "INVALID_FIELD", "codePattern"},
		{"policy bad link", http.MethodPut, "/integrations/referral-policy", `{"qualifyAction":"buy","referrerPoints":1,"refereePoints":1,"linkTemplate":"ftp://x/{code}"}`, 400, "INVALID_FIELD", "linkTemplate"},
		{"code taken", http.MethodPost, "/integrations/users", `{"externalUserId":"new","referralCode":"owner1"}`, 409, "REFERRAL_CODE_TAKEN", "referralCode"},
		{"code malformed", http.MethodPost, "/integrations/users", `{"externalUserId":"new","referralCode":"a b"}`, 400, "INVALID_FIELD", "referralCode"},
		{"unknown referrer", http.MethodPost, "/integrations/users", `{"externalUserId":"new","referredBy":"NOSUCH"}`, 404, "REFERRAL_CODE_NOT_FOUND", "referredBy"},
		{"self", http.MethodPost, "/integrations/users", `{"externalUserId":"owner","referredBy":"OWNER1"}`, 422, "SELF_REFERRAL", "referredBy"},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := env.Partner("acme", c.method, c.path, []byte(c.body))
			require.Equal(t, c.status, res.StatusCode, "%s", res.Body)
			require.Equal(t, c.code, res.Code())
			require.Equal(t, c.field, res.JSON(t)["field"], "%s", res.Body)
		})
	}
	require.Equal(t, before, dbtest.Snapshot(t, env.DB.Bun))
	pol := env.Partner("acme", http.MethodGet, "/integrations/referral-policy", nil).JSON(t)
	require.Equal(t, false, pol["enabled"])
	require.Nil(t, pol["updatedAt"])
}
