package bulk_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/ledger"
)

// TestMultistoreJobResolvesUsersWithItsItems: a job reads its items' users
// in the statement that loads the chunk (by the items' hashes); the answer
// is the one a lookup gives: a known user earns, an unknown one fails with
// USER_NOT_FOUND, an anonymised one with USER_ANONYMISED, a user anonymised
// after the call was stored but before the job ran too, and an invalid item
// keeps its own error.
func TestMultistoreJobResolvesUsersWithItsItems(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	provisionMany(t, env, "j", 3)
	require.Equal(t, http.StatusNoContent, env.Partner("acme", http.MethodDelete, "/integrations/users/j1?mode=anonymise", nil).StatusCode)
	items := []map[string]any{
		{"externalUserId": "j0", "action": "purchase", "points": 4},
		{"externalUserId": "j1", "action": "purchase", "points": 4},
		{"externalUserId": "ghost", "action": "purchase", "points": 4},
		{"externalUserId": "j2", "action": "purchase", "points": 4},
		{"externalUserId": "j0", "action": "nope"},
		{"externalUserId": "j0", "action": "purchase", "points": 6},
	}
	body, err := json.Marshal(map[string]any{"items": items})
	require.NoError(t, err)
	res := env.Partner("acme", http.MethodPost, "/integrations/actions/multistore?async=true", body)
	require.Equal(t, http.StatusAccepted, res.StatusCode, "%s", res.Body)
	// Stored; j2 is anonymised before the job runs.
	require.Equal(t, http.StatusNoContent, env.Partner("acme", http.MethodDelete, "/integrations/users/j2?mode=anonymise", nil).StatusCode)
	runJob(t, env, res.JSON(t)["jobId"].(string))

	got := make([]string, 0, len(items))
	for _, r := range allResults(t, env, res.JSON(t)["jobId"].(string)) {
		if r["status"] == "error" {
			got = append(got, r["code"].(string))
		} else {
			got = append(got, r["status"].(string))
		}
	}
	require.Equal(t, []string{"ok", "USER_ANONYMISED", "USER_NOT_FOUND", "USER_ANONYMISED", "ACTION_NOT_FOUND", "ok"}, got)
	require.Equal(t, 2, env.Count("ledger_entries", "kind = 'earn'"))
	require.NoError(t, ledger.CheckInvariants(context.Background(), env.DB.Bun))
}
