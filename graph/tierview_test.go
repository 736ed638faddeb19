package graph_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
)

// TestMeTierProgress: what the webview needs to draw the tier block in the
// operation it already sends for me: both thresholds (the bar runs from
// the current tier's to the next one's), the points to go, and a gift's
// minTier with its name (its "Gold members only" state). A partner without
// tiers answers null for all of them.
func TestMeTierProgress(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	tiers := `{"tiers":[{"code":"member","name":"Member"},` +
		`{"code":"silver","name":"Silver","threshold":1000,"multiplier":1.25,"benefits":"Free delivery"},` +
		`{"code":"gold","name":"Gold","threshold":5000,"multiplier":1.5,"benefits":"Lounge"}]}`
	res := env.Partner("acme", http.MethodPut, "/integrations/tiers", []byte(tiers))
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	for sku, g := range map[string]string{
		"tv-lounge": `{"title":"Lounge","costPoints":10,"codeSource":"none","minTier":"gold"}`,
		"tv-mug":    `{"title":"Mug","costPoints":10,"codeSource":"none"}`,
	} {
		res := env.Partner("acme", http.MethodPut, "/integrations/gifts/"+sku, []byte(g))
		require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	}
	env.FundedUser("acme", "tv-ann", "SG", 0)
	earn := func(ext string, points int) {
		res := env.Partner("acme", http.MethodPost, "/integrations/actions",
			[]byte(fmt.Sprintf(`{"externalUserId":%q,"action":"purchase","points":%d}`, ext, points)))
		require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	}
	earn("tv-ann", 1250) // silver, 3,750 to gold
	const q = `{ me { tier { code name benefits threshold } nextTier { code name pointsToGo threshold } }
	  catalog(first: 20) { edges { node { sku reason minTier { code name } } } } }`
	type answer struct {
		Me struct {
			Tier *struct {
				Code, Name, Benefits string
				Threshold            int
			}
			NextTier *struct {
				Code, Name            string
				PointsToGo, Threshold int
			}
		}
		Catalog struct {
			Edges []struct {
				Node struct {
					SKU     string
					Reason  *string
					MinTier *struct{ Code, Name string }
				}
			}
		}
	}
	ask := func(tok string) answer {
		t.Helper()
		res := env.GraphQL(tok, q, nil)
		require.Empty(t, res.Errors)
		var a answer
		require.NoError(t, json.Unmarshal(res.Data, &a))
		return a
	}

	a := ask(env.Token("acme", "tv-ann", nil))
	require.NotNil(t, a.Me.Tier)
	require.Equal(t, "silver", a.Me.Tier.Code)
	require.Equal(t, "Free delivery", a.Me.Tier.Benefits)
	require.Equal(t, 1000, a.Me.Tier.Threshold)
	require.NotNil(t, a.Me.NextTier)
	require.Equal(t, "Gold", a.Me.NextTier.Name)
	require.Equal(t, 3750, a.Me.NextTier.PointsToGo)
	require.Equal(t, 5000, a.Me.NextTier.Threshold)
	seen := map[string]bool{}
	for _, e := range a.Catalog.Edges {
		switch e.Node.SKU {
		case "tv-lounge":
			require.NotNil(t, e.Node.MinTier)
			require.Equal(t, "gold", e.Node.MinTier.Code)
			require.Equal(t, "Gold", e.Node.MinTier.Name)
			require.NotNil(t, e.Node.Reason)
			require.Equal(t, "TIER_TOO_LOW", *e.Node.Reason)
		case "tv-mug":
			require.Nil(t, e.Node.MinTier)
		}
		seen[e.Node.SKU] = true
	}
	require.True(t, seen["tv-lounge"] && seen["tv-mug"], "both gifts listed")

	// Another partner, without tiers: no tier, no next tier.
	env.FundedUser("globex", "tv-bob", "SG", 0)
	a = ask(env.Token("globex", "tv-bob", nil))
	require.Nil(t, a.Me.Tier)
	require.Nil(t, a.Me.NextTier)
}

// TestTierFieldsShareReads: me's tier and nextTier cost one progress read
// together (the webview asks for both in every balance refresh), and a
// page of gifts reads the tier list for their minTier once, whatever the
// page size.
func TestTierFieldsShareReads(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	res := env.Partner("acme", http.MethodPut, "/integrations/tiers", []byte(`{"tiers":[{"code":"member","name":"Member"},`+
		`{"code":"silver","name":"Silver","threshold":1000},{"code":"gold","name":"Gold","threshold":5000}]}`))
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	for i := range 6 {
		min := []string{"silver", "gold"}[i%2]
		res := env.Partner("acme", http.MethodPut, fmt.Sprintf("/integrations/gifts/tv-club-%d", i),
			[]byte(fmt.Sprintf(`{"title":"Club %d","costPoints":10,"codeSource":"none","minTier":%q}`, i, min)))
		require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	}
	env.FundedUser("acme", "tv-reads", "SG", 100)
	tok := env.Token("acme", "tv-reads", nil)
	require.Empty(t, env.GraphQL(tok, `{ me { id } }`, nil).Errors, "warm up: the user exists")

	// Every statement the pool sends, prepared or not, once the partner
	// cache serves again after the fixture's writes.
	require.Eventually(t, env.App.Partners.Cache.Serving, 10*time.Second, time.Millisecond)
	count := func(q string, vars map[string]any) int64 {
		t.Helper()
		return env.DB.Statements.Count(func() {
			res := env.GraphQL(tok, q, vars)
			require.Empty(t, res.Errors, "%+v", res.Errors)
		})
	}
	tierOnly := count(`{ me { tier { code } } }`, nil)
	both := count(`{ me { tier { code threshold } nextTier { code pointsToGo threshold } } }`, nil)
	require.Equal(t, tierOnly, both, "nextTier reuses tier's read")

	const gifts = `query($n: Int!) { catalog(first: $n) { edges { node { sku minTier { name } } } } }`
	one, six := count(gifts, map[string]any{"n": 1}), count(gifts, map[string]any{"n": 6})
	require.Equal(t, one, six, "minTier reads the tier list once per operation")
}
