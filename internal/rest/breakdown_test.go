package rest_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/dbtest"
)

// TestEarnAmountBreakdownDryRun: the partner API's amount, pointsPerAmount,
// currency, breakdown (earn answer, history, multistore) and dry run.
func TestEarnAmountBreakdownDryRun(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	provision(t, env, "acme", "alice")
	res := env.Partner("acme", http.MethodPut, "/integrations/program", []byte(`{"currency":"SGD"}`))
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	require.Equal(t, "SGD", res.JSON(t)["currency"])
	res = env.Partner("acme", http.MethodPut, "/integrations/program", []byte(`{"currency":"SGX"}`))
	require.Equal(t, "INVALID_FIELD", res.Code(), "%s", res.Body)
	res = env.Partner("acme", http.MethodPut, "/integrations/earning-rules/spend", []byte(`{"name":"Spend","points":1,"pointsPerAmount":100,"maxPoints":500}`))
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	require.EqualValues(t, 100, res.JSON(t)["pointsPerAmount"])

	earn := func(query, body string) *apptest.Response {
		return env.Partner("acme", http.MethodPost, "/integrations/actions"+query, []byte(body))
	}

	t.Run("BadInput", func(t *testing.T) {
		before := dbtest.Snapshot(t, env.DB.Bun)
		for _, tt := range []struct {
			query, body, code, field string
			status                   int
		}{
			{"", `{"externalUserId":"alice","action":"spend"}`, "AMOUNT_REQUIRED", "amount", 400},
			{"", `{"externalUserId":"alice","action":"spend","amount":12.5}`, "INVALID_FIELD", "amount", 400},
			{"", `{"externalUserId":"alice","action":"spend","amount":"1250"}`, "INVALID_FIELD", "amount", 400},
			{"", `{"externalUserId":"alice","action":"spend","amount":-1}`, "INVALID_FIELD", "amount", 400},
			{"", `{"externalUserId":"alice","action":"spend","amount":99999999999999999999}`, "INVALID_FIELD", "amount", 400},
			{"", `{"externalUserId":"alice","action":"spend","amount":2000000001}`, "INVALID_FIELD", "amount", 400},
			{"", `{"externalUserId":"alice","action":"spend","amount":99}`, "NO_POINTS_EARNED", "", 422},
			{"", `{"externalUserId":"alice","action":"spend","amount":100,"points":3}`, "VARIABLE_POINTS_NOT_ALLOWED", "points", 400},
			{"?dryRun=yes", `{"externalUserId":"alice","action":"spend","amount":100}`, "INVALID_FIELD", "dryRun", 400},
			{"?dryRun=true&dryRun=true", `{"externalUserId":"alice","action":"spend","amount":100}`, "INVALID_FIELD", "dryRun", 400},
			{"?dryRun=true", `{"externalUserId":"alice","action":"spend"}`, "AMOUNT_REQUIRED", "amount", 400},
		} {
			res := earn(tt.query, tt.body)
			require.Equal(t, tt.status, res.StatusCode, "%s %s: %s", tt.query, tt.body, res.Body)
			require.Equal(t, tt.code, res.Code(), "%s", res.Body)
			if tt.field != "" {
				require.Contains(t, string(res.Body), `"field":"`+tt.field+`"`)
			}
		}
		require.Equal(t, before, dbtest.Snapshot(t, env.DB.Bun))
	})

	t.Run("DryRunChangesNothing", func(t *testing.T) {
		before := dbtest.Snapshot(t, env.DB.Bun)
		for range 2 {
			res := earn("?dryRun=true", `{"externalUserId":"alice","action":"spend","amount":1999,"reference":"order-9"}`)
			require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
			got := res.JSON(t)
			require.Equal(t, true, got["dryRun"])
			require.EqualValues(t, 19, got["points"])
			require.Nil(t, got["entryId"])
			bd := got["breakdown"].(map[string]any)
			require.EqualValues(t, 19, bd["total"])
			require.Equal(t, "perAmount", bd["base"].(map[string]any)["method"])
			require.Equal(t, "SGD", bd["base"].(map[string]any)["currency"])
		}
		// Even with an Idempotency-Key nothing is stored: the real earn
		// with the same key then runs.
		key := map[string]string{"Idempotency-Key": "dry-1"}
		res := env.Partner("acme", http.MethodPost, "/integrations/actions?dryRun=true", []byte(`{"externalUserId":"alice","action":"spend","amount":1999}`), key)
		require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
		require.Equal(t, before, dbtest.Snapshot(t, env.DB.Bun), "a dry run changes nothing")
	})

	t.Run("EarnAnswersAndKeepsTheBreakdown", func(t *testing.T) {
		res := earn("?dryRun=false", `{"externalUserId":"alice","action":"spend","amount":1999,"reference":"order-9"}`)
		require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
		got := res.JSON(t)
		require.EqualValues(t, 19, got["points"])
		require.EqualValues(t, 19, got["breakdown"].(map[string]any)["total"])
		res = env.Partner("acme", http.MethodGet, "/integrations/users/alice", nil)
		require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
		recent := res.JSON(t)["recentEntries"].([]any)
		require.EqualValues(t, 1999, recent[0].(map[string]any)["breakdown"].(map[string]any)["base"].(map[string]any)["amount"])
	})

	t.Run("MultistoreWithAmounts", func(t *testing.T) {
		res := env.Partner("acme", http.MethodPost, "/integrations/actions/multistore", []byte(`{"items":[
			{"externalUserId":"alice","action":"spend","amount":250},
			{"externalUserId":"alice","action":"spend"},
			{"externalUserId":"alice","action":"spend","amount":1.5},
			{"externalUserId":"alice","action":"spend","amount":100000}]}`))
		require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
		results := res.JSON(t)["results"].([]any)
		r0 := results[0].(map[string]any)
		require.Equal(t, "ok", r0["status"])
		require.EqualValues(t, 2, r0["breakdown"].(map[string]any)["total"])
		require.Equal(t, "AMOUNT_REQUIRED", results[1].(map[string]any)["code"])
		require.Equal(t, "INVALID_FIELD", results[2].(map[string]any)["code"])
		r3 := results[3].(map[string]any)["breakdown"].(map[string]any)
		require.EqualValues(t, 500, r3["total"], "maxPoints caps the total")
		require.Equal(t, "cap", r3["steps"].([]any)[0].(map[string]any)["kind"])
		var n int
		require.NoError(t, env.DB.Bun.NewRaw("SELECT count(*) FROM ledger_entries WHERE breakdown IS NOT NULL").Scan(context.Background(), &n))
		require.Equal(t, 3, n)
	})
}
