package ranking_test

import (
	"context"
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

// TestRankingSyncReadsOnlyUnseenChanges: a board brought up to date reads
// only the rows written by transactions its last snapshot did not see,
// even while a long transaction (anywhere on the server) holds the oldest
// running transaction back: reading from that transaction instead re-read
// every change since it began, on every sync. A change committed by a
// transaction that was running at the last read is still read.
func TestRankingSyncReadsOnlyUnseenChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := apptest.New(t)
	partner := env.PartnerID("acme")
	earn := func(ext string, pts int) {
		res := env.Partner("acme", http.MethodPost, "/integrations/actions", []byte(fmt.Sprintf(`{"externalUserId":"%s","action":"purchase","points":%d}`, ext, pts)))
		require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	}
	for i := range 3 {
		ext := fmt.Sprintf("s%d", i)
		require.Equal(t, http.StatusCreated, env.Partner("acme", http.MethodPost, "/integrations/users", []byte(`{"externalUserId":"`+ext+`"}`)).StatusCode)
	}
	require.NoError(t, env.App.Ranking.Load(ctx, env.DB.Bun, partner))

	// A long transaction with an xid holds every snapshot's xmin back.
	long, err := env.DB.Bun.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer func() { _ = long.Rollback() }()
	require.NoError(t, long.QueryRowContext(ctx, "SELECT pg_current_xact_id()").Scan(new(string)))

	for i := range 3 {
		earn(fmt.Sprintf("s%d", i), 10+i)
	}
	require.NoError(t, env.App.Ranking.Refresh(ctx, env.DB.Bun))
	require.Equal(t, 3, env.App.Ranking.LastSyncReadForTest(partner), "the three earns")
	require.NoError(t, env.App.Ranking.Refresh(ctx, env.DB.Bun))
	require.Zero(t, env.App.Ranking.LastSyncReadForTest(partner), "nothing new: nothing read again")

	// A balance written by a transaction running at the last read, committed
	// after it, is read next time.
	u, err := env.App.Users.Get(ctx, env.DB.Bun, partner, "s0")
	require.NoError(t, err)
	late, err := env.DB.Bun.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = late.ExecContext(ctx, "UPDATE balances SET lifetime_earned = 1000, points = points + 990 WHERE partner_id = ? AND user_id = ?", partner, u.ID)
	require.NoError(t, err)
	require.NoError(t, env.App.Ranking.Refresh(ctx, env.DB.Bun))
	require.Zero(t, env.App.Ranking.LastSyncReadForTest(partner))
	require.NoError(t, late.Commit())
	require.NoError(t, env.App.Ranking.Refresh(ctx, env.DB.Bun))
	require.Equal(t, 1, env.App.Ranking.LastSyncReadForTest(partner), "the late commit")
	around, err := env.App.Ranking.Around(ctx, env.DB.Bun, partner, u.ID, 0)
	require.NoError(t, err)
	require.EqualValues(t, 1, around.Me.Rank)
}
