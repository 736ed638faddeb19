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
)

// TestRankingTiesTopAndBottom: scores 50, 40, 40, 40, 30, 20, 10 and a user
// with no points. Ties share a rank; within a tie, earlier members first.
func TestRankingTiesTopAndBottom(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	scores := []int{50, 40, 40, 40, 30, 20, 10, 0}
	for i, s := range scores {
		res := env.Partner("acme", http.MethodPost, "/integrations/users", []byte(fmt.Sprintf(`{"externalUserId":"r%d","displayName":"R%d","email":"r%d@example.com"}`, i, i, i)))
		require.Equal(t, http.StatusCreated, res.StatusCode)
		env.Clock.Advance(time.Second) // distinct membership ages
		if s > 0 {
			res = env.Partner("acme", http.MethodPost, "/integrations/actions", []byte(fmt.Sprintf(`{"externalUserId":"r%d","action":"purchase","points":%d}`, i, s)))
			require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
		}
	}
	// A negative adjustment does not lower the lifetime score.
	require.Equal(t, http.StatusCreated, env.Partner("acme", http.MethodPost, "/integrations/users/r0/adjustments", []byte(`{"points":-45,"reason":"spent"}`)).StatusCode)
	require.NoError(t, env.App.Ranking.Refresh(context.Background(), env.DB.Bun))

	type line struct {
		Rank           int64
		DisplayName    string
		LifetimePoints int64
	}
	get := func(ext string, n int) (rank any, above, below []line) {
		res := env.Partner("acme", http.MethodGet, fmt.Sprintf("/integrations/users/%s/ranking?n=%d", ext, n), nil)
		require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
		require.NotContains(t, string(res.Body), "@example.com", "display names only")
		var v struct {
			Rank  any
			Above []line
			Below []line
		}
		require.NoError(t, json.Unmarshal(res.Body, &v))
		return v.Rank, v.Above, v.Below
	}
	rank, above, below := get("r0", 2)
	require.EqualValues(t, 1, rank, "top")
	require.Empty(t, above)
	require.Equal(t, []line{{2, "R1", 40}, {2, "R2", 40}}, below)

	rank, above, below = get("r2", 1)
	require.EqualValues(t, 2, rank, "ties share a rank")
	require.Equal(t, []line{{2, "R1", 40}}, above, "earlier member first")
	require.Equal(t, []line{{2, "R3", 40}}, below)

	rank, above, below = get("r6", 3)
	require.EqualValues(t, 7, rank, "competition ranking: 1, 2, 2, 2, 5, 6, 7")
	require.Equal(t, []line{{2, "R3", 40}, {5, "R4", 30}, {6, "R5", 20}}, above)
	require.Empty(t, below, "bottom")

	rank, above, below = get("r7", 3)
	require.Nil(t, rank, "no lifetime points, no rank")
	require.Empty(t, above)
	require.Empty(t, below)

	require.Equal(t, "INVALID_FIELD", env.Partner("acme", http.MethodGet, "/integrations/users/r0/ranking?n=51", nil).Code())
	require.Equal(t, "USER_NOT_FOUND", env.Partner("globex", http.MethodGet, "/integrations/users/r0/ranking", nil).Code())

	tok := env.Token("acme", "r4", nil)
	g := env.GraphQL(tok, `{ ranking(around: 1) { rank lifetimePoints above { rank displayName isMe } below { rank displayName } }
		leaderboard(first: 3) { rank displayName lifetimePoints isMe } }`, nil)
	require.Empty(t, g.Errors)
	require.JSONEq(t, `{"ranking":{"rank":5,"lifetimePoints":30,"above":[{"rank":2,"displayName":"R3","isMe":false}],"below":[{"rank":6,"displayName":"R5"}]},
		"leaderboard":[{"rank":1,"displayName":"R0","lifetimePoints":50,"isMe":false},{"rank":2,"displayName":"R1","lifetimePoints":40,"isMe":false},{"rank":2,"displayName":"R2","lifetimePoints":40,"isMe":false}]}`, string(g.Data))
}
