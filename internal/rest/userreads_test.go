package rest_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
)

// TestUserEntriesAndVouchersPages: a user's whole history in keyset pages,
// their vouchers, and refusals (bad paging, unknown or foreign users).
func TestUserEntriesAndVouchersPages(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	env.FundedUser("acme", "pages-1", "FR", 100)
	env.FundedUser("globex", "pages-g", "FR", 100)
	for i := 1; i <= 4; i++ {
		res := env.Partner("acme", http.MethodPost, "/integrations/users/pages-1/adjustments", []byte(fmt.Sprintf(`{"points":%d,"reason":"r%d"}`, i, i)))
		require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	}
	var seen []string
	path := "/integrations/users/pages-1/entries?limit=2"
	for range 3 {
		body := env.Partner("acme", http.MethodGet, path, nil).JSON(t)
		for _, it := range body["items"].([]any) {
			seen = append(seen, it.(map[string]any)["reason"].(string))
		}
		if body["nextBefore"] == nil {
			break
		}
		path = fmt.Sprintf("/integrations/users/pages-1/entries?limit=2&before=%d", int64(body["nextBefore"].(float64)))
	}
	require.Len(t, seen, 5, "four adjustments and the funding, newest first: %v", seen)
	require.Equal(t, []string{"r4", "r3", "r2", "r1"}, seen[:4])

	vs := env.Partner("acme", http.MethodGet, "/integrations/users/pages-1/vouchers", nil)
	require.Equal(t, http.StatusOK, vs.StatusCode, "%s", vs.Body)
	require.Equal(t, map[string]any{"items": []any{}, "nextBefore": nil}, vs.JSON(t))

	for _, c := range []struct {
		path, code string
		status     int
	}{
		{"/integrations/users/pages-1/entries?before=0", "INVALID_FIELD", 400},
		{"/integrations/users/pages-1/entries?before=x", "INVALID_FIELD", 400},
		{"/integrations/users/pages-1/entries?limit=501", "INVALID_FIELD", 400},
		{"/integrations/users/pages-1/vouchers?limit=0", "INVALID_FIELD", 400},
		{"/integrations/users/nobody/entries", "USER_NOT_FOUND", 404},
		{"/integrations/users/pages-g/entries", "USER_NOT_FOUND", 404},
		{"/integrations/users/pages-g/vouchers", "USER_NOT_FOUND", 404},
	} {
		res := env.Partner("acme", http.MethodGet, c.path, nil)
		require.Equal(t, c.status, res.StatusCode, "%s: %s", c.path, res.Body)
		require.Equal(t, c.code, res.Code(), c.path)
	}
}

// TestListJobs: the partner's recent bulk jobs, never another partner's.
func TestListJobs(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	res := env.Partner("acme", http.MethodPost, "/integrations/users/multidelete", []byte(`{"externalUserIds":["a","b"]}`))
	require.Equal(t, http.StatusAccepted, res.StatusCode, "%s", res.Body)
	id := res.JSON(t)["jobId"]
	items := env.Partner("acme", http.MethodGet, "/integrations/jobs", nil).JSON(t)["items"].([]any)
	require.Len(t, items, 1)
	job := items[0].(map[string]any)
	require.Equal(t, id, job["id"])
	require.Equal(t, "multidelete", job["kind"])
	require.EqualValues(t, 2, job["total"])
	require.Empty(t, env.Partner("globex", http.MethodGet, "/integrations/jobs", nil).JSON(t)["items"])
	require.Equal(t, http.StatusBadRequest, env.Partner("acme", http.MethodGet, "/integrations/jobs?limit=0", nil).StatusCode)
}

// TestDeliveryLogFilters: the delivery log filters by event type and
// creation time; bad values are refused.
func TestDeliveryLogFilters(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	res := env.PartnerJSON("acme", http.MethodPost, "/integrations/webhook-endpoints", map[string]any{"url": "http://127.0.0.1:9/filters"})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	require.Equal(t, http.StatusCreated, env.Partner("acme", http.MethodPost, "/integrations/users", []byte(`{"externalUserId":"filters-1"}`)).StatusCode)
	count := func(q string) int {
		res := env.Partner("acme", http.MethodGet, "/integrations/webhook-deliveries?"+q, nil)
		require.Equal(t, http.StatusOK, res.StatusCode, "%s: %s", q, res.Body)
		return len(res.JSON(t)["items"].([]any))
	}
	hour := func(d time.Duration) string { return env.Now().Add(d).UTC().Format(time.RFC3339) }
	require.Equal(t, 1, count("eventType=user.created"))
	require.Zero(t, count("eventType=points.earned"))
	require.Equal(t, 1, count("from="+hour(-time.Hour)+"&to="+hour(time.Hour)))
	require.Zero(t, count("from="+hour(time.Hour)))
	require.Zero(t, count("to="+hour(-time.Hour)))
	for _, q := range []string{"eventType=nope", "from=yesterday", "to=2026-13-01T00:00:00Z", "from=" + hour(time.Hour) + "&to=" + hour(-time.Hour)} {
		res := env.Partner("acme", http.MethodGet, "/integrations/webhook-deliveries?"+q, nil)
		require.Equal(t, http.StatusBadRequest, res.StatusCode, q)
		require.Equal(t, "INVALID_FIELD", res.Code(), q)
	}
}
