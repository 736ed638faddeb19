package content_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/dbtest"
)

func TestAdsForUsers(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	put := func(id, body string) *apptest.Response {
		return env.Partner("acme", http.MethodPut, "/integrations/ads/"+id, []byte(body))
	}
	now := env.Now()
	require.Equal(t, http.StatusCreated, put("sg-only", `{"kind":"special","title":"Singapore deal","priority":50,"countries":["sg"]}`).StatusCode)
	require.Equal(t, http.StatusCreated, put("expired", `{"kind":"news","title":"Old","visibleUntil":"`+now.Add(-time.Hour).Format(time.RFC3339)+`"}`).StatusCode)
	require.Equal(t, http.StatusCreated, put("future", `{"kind":"news","title":"Soon","visibleFrom":"`+now.Add(time.Hour).Format(time.RFC3339)+`"}`).StatusCode)
	res := put("news-welcome", `{"kind":"news","title":"Welcome back","priority":2}`)
	require.Equal(t, http.StatusOK, res.StatusCode, "replacing a seeded ad")

	sg := env.Partner("acme", http.MethodPost, "/integrations/users", []byte(`{"externalUserId":"sg-user","countryCode":"SG"}`))
	require.Equal(t, http.StatusCreated, sg.StatusCode)
	titles := func(tok string, kind string) []string {
		q := `{ ads { title kind action { code points remainingToday } } }`
		if kind != "" {
			q = `{ ads(kind: ` + kind + `) { title kind action { code points remainingToday } } }`
		}
		g := env.GraphQL(tok, q, nil)
		require.Empty(t, g.Errors)
		var out struct{ Ads []struct{ Title string } }
		require.NoError(t, json.Unmarshal(g.Data, &out))
		var ts []string
		for _, a := range out.Ads {
			ts = append(ts, a.Title)
		}
		return ts
	}
	sgTok := env.Token("acme", "sg-user", nil)
	require.Equal(t, []string{"Singapore deal", "Earn 5 points per video", "Double points weekend", "Welcome back"}, titles(sgTok, ""))
	require.Equal(t, []string{"Earn 5 points per video", "Double points weekend", "Welcome back"}, titles(env.Token("acme", "nowhere-user", nil), ""), "no country: untargeted ads only")
	require.Equal(t, []string{"Welcome back"}, titles(sgTok, "NEWS"))

	g := env.GraphQL(sgTok, `{ ads(kind: BONUS) { kind action { code points remainingToday } } }`, nil)
	require.JSONEq(t, `{"ads":[{"kind":"BONUS","action":{"code":"watch_video","points":5,"remainingToday":5}}]}`, string(g.Data))
	require.Equal(t, "UNAUTHENTICATED", env.GraphQL("", `{ ads { title } }`, nil).ErrorCode())

	// Globex sees none of acme's ads; acme's ad ids are not globex's.
	require.Empty(t, titles(env.Token("globex", "g", nil), ""))
	require.Equal(t, "NOT_FOUND", env.Partner("globex", http.MethodGet, "/integrations/ads/sg-only", nil).Code())
	require.Equal(t, "NOT_FOUND", env.Partner("globex", http.MethodDelete, "/integrations/ads/sg-only", nil).Code())

	list := env.Partner("acme", http.MethodGet, "/integrations/ads", nil).JSON(t)
	require.Len(t, list["items"], 6)
	require.Equal(t, http.StatusNoContent, env.Partner("acme", http.MethodDelete, "/integrations/ads/expired", nil).StatusCode)
	require.Equal(t, "NOT_FOUND", env.Partner("acme", http.MethodGet, "/integrations/ads/expired", nil).Code())
}

func TestAdBadInput(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	cases := []struct{ name, id, body, code, field string }{
		{"no kind", "a1", `{"title":"x"}`, "MISSING_FIELD", "kind"},
		{"bad kind", "a1", `{"kind":"promo","title":"x"}`, "INVALID_FIELD", "kind"},
		{"no title", "a1", `{"kind":"news"}`, "MISSING_FIELD", "title"},
		{"blank title", "a1", `{"kind":"news","title":"  "}`, "INVALID_FIELD", "title"},
		{"bad link", "a1", `{"kind":"news","title":"x","link":"javascript:alert(1)"}`, "INVALID_FIELD", "link"},
		{"bad image", "a1", `{"kind":"news","title":"x","imageUrl":"/relative.png"}`, "INVALID_FIELD", "imageUrl"},
		{"bad country", "a1", `{"kind":"news","title":"x","countries":["XX"]}`, "INVALID_FIELD", "countries"},
		{"window reversed", "a1", `{"kind":"news","title":"x","visibleFrom":"2027-01-01T00:00:00Z","visibleUntil":"2026-01-01T00:00:00Z"}`, "INVALID_FIELD", "visibleUntil"},
		{"unknown action", "a1", `{"kind":"bonus","title":"x","action":"nope"}`, "ACTION_NOT_FOUND", "action"},
		{"server-only action", "a1", `{"kind":"bonus","title":"x","action":"purchase"}`, "ACTION_NOT_ALLOWED", "action"},
		{"priority not a number", "a1", `{"kind":"news","title":"x","priority":"high"}`, "INVALID_FIELD", "priority"},
		{"bad id", "bad%20id", `{"kind":"news","title":"x"}`, "INVALID_FIELD", "id"},
		{"too long id", strings.Repeat("a", 65), `{"kind":"news","title":"x"}`, "INVALID_FIELD", "id"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := dbtest.Snapshot(t, env.DB.Bun)
			res := env.Partner("acme", http.MethodPut, "/integrations/ads/"+c.id, []byte(c.body))
			require.Equal(t, c.code, res.Code(), "%s", res.Body)
			require.Equal(t, c.field, res.JSON(t)["field"])
			require.Equal(t, before, dbtest.Snapshot(t, env.DB.Bun))
		})
	}
}
