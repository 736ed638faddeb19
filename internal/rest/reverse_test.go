package rest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/ledger"
)

// earnRef earns points for ext with a reference through the API.
func earnRef(t *testing.T, env *apptest.Env, slug, ext, ref string, points int64) {
	t.Helper()
	res := env.Partner(slug, http.MethodPost, "/integrations/actions",
		[]byte(fmt.Sprintf(`{"externalUserId":%q,"action":"purchase","points":%d,"reference":%q,"createUser":true}`, ext, points, ref)))
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
}

// globexPurchase gives globex the variable purchase rule acme has.
func globexPurchase(t *testing.T, env *apptest.Env) {
	t.Helper()
	res := env.Partner("globex", http.MethodPut, "/integrations/earning-rules/purchase", []byte(`{"name":"Purchase","points":1,"variablePoints":true}`))
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
}

// nums picks numbers of a JSON answer.
func nums(got map[string]any, keys ...string) []float64 {
	out := make([]float64, len(keys))
	for i, k := range keys {
		out[i], _ = got[k].(float64)
	}
	return out
}

func reversePath(ref string) string { return "/integrations/actions/" + ref + "/reverse" }

// TestReverseAPI: a partial reversal answers what it took and writes
// points.reversed; 50 identical concurrent requests with one
// Idempotency-Key reverse once (49 replays of the same bytes); 50
// concurrent requests without a key reverse at most the earn.
func TestReverseAPI(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	ctx := context.Background()
	earnRef(t, env, "acme", "alice", "order-1", 100)
	earnRef(t, env, "acme", "alice", "order-2", 100)

	res := env.Partner("acme", http.MethodPost, reversePath("order-1"), []byte(`{"points":30,"reason":"partial refund"}`))
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	got := res.JSON(t)
	for k, v := range map[string]any{
		"reference": "order-1", "requestedPoints": 30, "reversedPoints": 30, "shortfallPoints": 0,
		"pending": false, "balance": 170, "pendingPoints": 0, "remainingPoints": 70,
	} {
		require.EqualValues(t, v, got[k], k)
	}
	require.NotNil(t, got["entryId"])
	require.NotContains(t, string(res.Body), "partial refund", "no free text in stored answers")
	require.Equal(t, 1, env.Count("events", "type = 'points.reversed'"))
	var raw string
	require.NoError(t, env.DB.Bun.NewRaw(`SELECT data::text FROM events WHERE type = 'points.reversed'`).Scan(ctx, &raw))
	var data map[string]any
	require.NoError(t, json.Unmarshal([]byte(raw), &data))
	require.Equal(t, map[string]any{
		"userId": got["userId"], "entryId": got["entryId"], "earnEntryId": got["earnEntryId"], "reference": "order-1",
		"points": float64(30), "shortfall": float64(0), "pending": false, "balance": float64(170), "pendingPoints": float64(0),
	}, data, "ids and amounts only: no reason, no personal data")

	t.Run("OneKey", func(t *testing.T) {
		key := map[string]string{"Idempotency-Key": "refund-1"}
		body := []byte(`{"points":10,"reason":"refund"}`)
		bodies, replays := make([]string, 50), make([]bool, 50)
		var wg sync.WaitGroup
		for i := range bodies {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := env.Partner("acme", http.MethodPost, reversePath("order-1"), body, key)
				bodies[i], replays[i] = fmt.Sprintf("%d %s", r.StatusCode, r.Body), r.Header.Get("Idempotent-Replayed") == "true"
			}()
		}
		wg.Wait()
		n := 0
		for i := range bodies {
			require.Equal(t, bodies[0], bodies[i], "every answer is the first one's bytes")
			if replays[i] {
				n++
			}
		}
		require.True(t, strings.HasPrefix(bodies[0], "201 "), bodies[0])
		require.Equal(t, 49, n, "49 replays")
		require.Equal(t, 2, env.Count("ledger_entries", "kind = 'reverse'"), "one reversal")
		require.NoError(t, ledger.CheckInvariants(ctx, env.DB.Bun))
	})

	t.Run("NoKey", func(t *testing.T) {
		statuses, bodies := make([]int, 50), make([]string, 50)
		var wg sync.WaitGroup
		for i := range statuses {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := env.Partner("acme", http.MethodPost, reversePath("order-2"), []byte(fmt.Sprintf(`{"points":7,"reason":"refund %d"}`, i)))
				statuses[i], bodies[i] = r.StatusCode, string(r.Body)
			}()
		}
		wg.Wait()
		ok := 0
		for i, s := range statuses {
			if s == http.StatusCreated {
				ok++
				continue
			}
			require.Equal(t, http.StatusConflict, s, bodies[i])
			require.Contains(t, bodies[i], "REVERSAL_EXCEEDS_EARN")
		}
		require.Equal(t, 14, ok, "14 × 7 = 98 of 100; the 15th would exceed the earn")
		var reversed int64
		require.NoError(t, env.DB.Bun.NewRaw(`SELECT coalesce(sum(-r.points), 0) FROM ledger_entries r JOIN ledger_entries e
			ON e.partner_id = r.partner_id AND e.id::text = r.source_id WHERE r.kind = 'reverse' AND e.reference = 'order-2'`).Scan(ctx, &reversed))
		require.Equal(t, int64(98), reversed)
		require.NoError(t, ledger.CheckInvariants(ctx, env.DB.Bun))

		r := env.Partner("acme", http.MethodPost, reversePath("order-2"), []byte(`{"reason":"the rest"}`))
		require.Equal(t, http.StatusCreated, r.StatusCode, "%s", r.Body)
		require.EqualValues(t, 2, r.JSON(t)["reversedPoints"])
		r = env.Partner("acme", http.MethodPost, reversePath("order-2"), []byte(`{"reason":"again"}`))
		require.Equal(t, http.StatusConflict, r.StatusCode, "%s", r.Body)
		require.Equal(t, "EARN_FULLY_REVERSED", r.Code())
	})
}

// TestReverseAPINegativeBalance: with negativeBalance allow the issue's
// 500 on a 7-point user leaves -493; with forbid it takes 7 and reports
// 493 short, and with nothing left to take answers 200 without an entry.
func TestReverseAPINegativeBalance(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	globexPurchase(t, env)
	require.Equal(t, http.StatusOK, env.Partner("globex", http.MethodPut, "/integrations/program", []byte(`{"negativeBalance":"allow"}`)).StatusCode)
	for _, slug := range []string{"acme", "globex"} {
		earnRef(t, env, slug, "bob", "order-9", 500)
		res := env.Partner(slug, http.MethodPost, "/integrations/users/bob/adjustments", []byte(`{"points":-493,"reason":"spent"}`))
		require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	}
	res := env.Partner("globex", http.MethodPost, reversePath("order-9"), []byte(`{"reason":"refund"}`))
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	got := res.JSON(t)
	require.Equal(t, []float64{500, 0, -493}, nums(got, "reversedPoints", "shortfallPoints", "balance"))

	res = env.Partner("acme", http.MethodPost, reversePath("order-9"), []byte(`{"reason":"refund"}`))
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	got = res.JSON(t)
	require.Equal(t, []float64{7, 493, 0, 493}, nums(got, "reversedPoints", "shortfallPoints", "balance", "remainingPoints"))
	res = env.Partner("acme", http.MethodPost, reversePath("order-9"), []byte(`{"reason":"refund"}`))
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	got = res.JSON(t)
	require.Nil(t, got["entryId"])
	require.Equal(t, []float64{0, 493, 0}, nums(got, "reversedPoints", "shortfallPoints", "balance"))
	require.Equal(t, 2, env.Count("events", "type = 'points.reversed'"))
	require.NoError(t, ledger.CheckInvariants(context.Background(), env.DB.Bun))
}

// TestReverseAPIBadInput: one bad request per row, each a 4xx with a stable
// code (naming the field when there is one), and none changes the database.
func TestReverseAPIBadInput(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	globexPurchase(t, env)
	earnRef(t, env, "acme", "carol", "order-1", 100)
	earnRef(t, env, "globex", "carol", "globex-order", 100)
	earnRef(t, env, "acme", "carol", "done", 5)
	res := env.Partner("acme", http.MethodPost, reversePath("done"), []byte(`{"reason":"refund"}`))
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)

	cases := []struct {
		name, ref, body string
		status          int
		code, field     string
	}{
		{"points zero", "order-1", `{"points":0,"reason":"r"}`, 400, "POINTS_OUT_OF_RANGE", "points"},
		{"points negative", "order-1", `{"points":-5,"reason":"r"}`, 400, "POINTS_OUT_OF_RANGE", "points"},
		{"points over the maximum", "order-1", `{"points":1000000001,"reason":"r"}`, 400, "POINTS_OUT_OF_RANGE", "points"},
		{"points fraction", "order-1", `{"points":1.5,"reason":"r"}`, 400, "INVALID_FIELD", "points"},
		{"points exponent", "order-1", `{"points":1e3,"reason":"r"}`, 400, "INVALID_FIELD", "points"},
		{"points string", "order-1", `{"points":"10","reason":"r"}`, 400, "INVALID_FIELD", "points"},
		{"reason missing", "order-1", `{"points":10}`, 400, "MISSING_FIELD", "reason"},
		{"reason blank", "order-1", `{"reason":"   "}`, 400, "MISSING_FIELD", "reason"},
		{"reason too long", "order-1", `{"reason":"` + strings.Repeat("r", 501) + `"}`, 400, "INVALID_FIELD", "reason"},
		{"reason control character", "order-1", `{"reason":"re\u0007fund"}`, 400, "INVALID_FIELD", "reason"},
		{"unknown field", "order-1", `{"reason":"r","amount":3}`, 400, "UNKNOWN_FIELD", "amount"},
		{"unknown reference", "order-404", `{"reason":"r"}`, 404, "EARN_NOT_FOUND", ""},
		{"another partner's reference", "globex-order", `{"reason":"r"}`, 404, "EARN_NOT_FOUND", ""},
		{"more than the earn", "order-1", `{"points":101,"reason":"r"}`, 409, "REVERSAL_EXCEEDS_EARN", "points"},
		{"fully reversed", "done", `{"reason":"r"}`, 409, "EARN_FULLY_REVERSED", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := dbtest.Snapshot(t, env.DB.Bun)
			res := env.Partner("acme", http.MethodPost, reversePath(c.ref), []byte(c.body), map[string]string{"Idempotency-Key": uuid.NewString()})
			require.Equal(t, c.status, res.StatusCode, "%s", res.Body)
			p := res.JSON(t)
			require.Equal(t, c.code, p["code"], "%s", res.Body)
			if c.field != "" {
				require.Equal(t, c.field, p["field"], "%s", res.Body)
			}
			require.Equal(t, before, dbtest.Snapshot(t, env.DB.Bun), "a rejected request changed the database")
		})
	}
}
