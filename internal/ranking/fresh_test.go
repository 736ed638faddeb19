package ranking_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/ranking"
)

// TestRankingFollowsEarnsOnEveryReplica: no refresh job runs, yet an earn
// moves its user's rank, on this replica and on another one, once the
// boards are SyncEvery old; before that, each answers as of its
// refreshedAt. An erased user leaves the leaderboard.
func TestRankingFollowsEarnsOnEveryReplica(t *testing.T) {
	t.Parallel()
	setup := func(t *testing.T) (a, b *apptest.Env) {
		a = apptest.New(t)
		for i, pts := range []int{30, 20, 10} {
			ext := fmt.Sprintf("f%d", i)
			require.Equal(t, http.StatusCreated, a.Partner("acme", http.MethodPost, "/integrations/users", []byte(`{"externalUserId":"`+ext+`","displayName":"F`+ext+`"}`)).StatusCode)
			res := a.Partner("acme", http.MethodPost, "/integrations/actions", []byte(fmt.Sprintf(`{"externalUserId":"%s","action":"purchase","points":%d}`, ext, pts)))
			require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
			a.Clock.Advance(time.Second)
		}
		return a, a.Replica()
	}
	a, b := setup(t)
	rank := func(env *apptest.Env, ext string) (any, string) {
		res := env.Partner("acme", http.MethodGet, "/integrations/users/"+ext+"/ranking?n=1", nil)
		require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
		var v struct {
			Rank        any
			RefreshedAt string
		}
		require.NoError(t, json.Unmarshal(res.Body, &v))
		return v.Rank, v.RefreshedAt
	}
	for _, env := range []*apptest.Env{a, b} {
		r, _ := rank(env, "f2")
		require.EqualValues(t, 3, r, "loaded on first use")
	}

	res := a.Partner("acme", http.MethodPost, "/integrations/actions", []byte(`{"externalUserId":"f2","action":"purchase","points":25}`))
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	r, at := rank(b, "f2")
	require.EqualValues(t, 3, r, "within SyncEvery: as of refreshedAt")
	a.Clock.Advance(ranking.DefaultSyncEvery)
	for _, env := range []*apptest.Env{a, b} {
		r, at2 := rank(env, "f2")
		require.EqualValues(t, 1, r, "35 points: first, on both replicas")
		require.NotEqual(t, at, at2)
		r, _ = rank(env, "f0")
		require.EqualValues(t, 2, r)
	}

	require.Equal(t, http.StatusNoContent, a.Partner("acme", http.MethodDelete, "/integrations/users/f2?mode=erase", nil).StatusCode)
	a.Clock.Advance(ranking.DefaultSyncEvery)
	for _, env := range []*apptest.Env{a, b} {
		r, _ := rank(env, "f0")
		require.EqualValues(t, 1, r, "the erased user left the leaderboard")
	}
}
