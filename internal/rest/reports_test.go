package rest_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/report"
)

type reportBody struct {
	Report   string           `json:"report"`
	From     string           `json:"from"`
	To       string           `json:"to"`
	Timezone string           `json:"timezone"`
	Rows     []map[string]any `json:"rows"`
}

func getReport(t *testing.T, env *apptest.Env, slug, pathQuery string, headers ...map[string]string) (*apptest.Response, reportBody) {
	t.Helper()
	res := env.Partner(slug, http.MethodGet, "/integrations/reports/"+pathQuery, nil, headers...)
	var body reportBody
	if res.StatusCode == http.StatusOK && res.Header.Get("Content-Type") == "application/json" {
		require.NoError(t, json.Unmarshal(res.Body, &body))
	}
	return res, body
}

// TestReportsAPI: every report answers JSON and CSV for the partner that
// asks, and only with its own figures; erasing a user takes their points out
// of the liability on the day of the erasure.
func TestReportsAPI(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	env.FundedUser("acme", "rep-a1", "", 700)
	env.FundedUser("acme", "rep-a2", "", 77)
	env.FundedUser("globex", "rep-g1", "", 5)
	today := env.Now().UTC().Format("2006-01-02")
	q := "?from=" + today + "&to=" + today

	for _, name := range report.Names {
		res, body := getReport(t, env, "acme", name+q)
		require.Equal(t, http.StatusOK, res.StatusCode, "%s: %s", name, res.Body)
		require.Equal(t, name, body.Report)
		require.Equal(t, "no-store", res.Header.Get("Cache-Control"))
	}

	_, acme := getReport(t, env, "acme", "points"+q)
	_, globex := getReport(t, env, "globex", "points"+q)
	require.Equal(t, []map[string]any{{"day": today, "issued": 777.0, "pending": 0.0, "spent": 0.0, "refunded": 0.0, "expired": 0.0,
		"reversed": 0.0, "cancelled": 0.0, "adjusted": 0.0, "erased": 0.0, "net": 777.0}}, acme.Rows)
	require.Equal(t, 5.0, globex.Rows[0]["issued"], "globex sees only its own points")
	_, active := getReport(t, env, "globex", "active-users"+q)
	require.Equal(t, 1.0, active.Rows[0]["users"])

	// The default period: the last 30 days, today included.
	_, def := getReport(t, env, "acme", "liability")
	require.Len(t, def.Rows, report.DefaultDays)
	require.Equal(t, today, def.To)
	require.Equal(t, 777.0, def.Rows[len(def.Rows)-1]["outstanding"])

	// CSV, by Accept or by format.
	for _, c := range []struct {
		query   string
		headers map[string]string
	}{{"?format=csv&from=" + today + "&to=" + today, nil}, {q, map[string]string{"Accept": "text/csv"}}} {
		res, _ := getReport(t, env, "acme", "liability"+c.query, c.headers)
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.Equal(t, "text/csv; charset=utf-8", res.Header.Get("Content-Type"))
		recs, err := csv.NewReader(bytes.NewReader(res.Body)).ReadAll()
		require.NoError(t, err)
		require.Equal(t, [][]string{{"day", "outstanding", "pending"}, {today, "777", "0"}}, recs)
	}

	// Erasing a user: their 77 points leave the liability.
	res := env.Partner("acme", http.MethodDelete, "/integrations/users/rep-a2?mode=erase", nil, map[string]string{"Idempotency-Key": "erase-rep-a2"})
	require.Less(t, res.StatusCode, 300, "%s", res.Body)
	_, after := getReport(t, env, "acme", "points"+q)
	require.Equal(t, 77.0, after.Rows[0]["erased"])
	require.Equal(t, 700.0, after.Rows[0]["net"])
	_, liab := getReport(t, env, "acme", "liability"+q)
	require.Equal(t, 700.0, liab.Rows[0]["outstanding"])
	require.NoError(t, report.CheckInvariants(context.Background(), env.DB.Bun))
	var left int
	require.NoError(t, env.DB.Bun.NewRaw("SELECT count(*) FROM report_user_days d JOIN user_erasures e ON e.user_id = d.user_id").Scan(context.Background(), &left))
	require.Zero(t, left, "nothing of the erased user is left in the report tables")
}

// TestReportsBadInput: bad names, dates, periods and formats are refused
// with stable codes and change nothing; without credentials nothing is read.
func TestReportsBadInput(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	env.FundedUser("acme", "rep-b1", "", 10)
	before := dbtest.Snapshot(t, env.DB.Bun)
	for _, tc := range []struct {
		pathQuery string
		status    int
		code      string
		field     string
	}{
		{"sales", 404, "REPORT_NOT_FOUND", ""},
		{"points?from=2026-13-01", 400, "INVALID_FIELD", "from"},
		{"points?to=tomorrow", 400, "INVALID_FIELD", "to"},
		{"points?from=2026-01-01T00:00:00Z", 400, "INVALID_FIELD", "from"},
		{"points?from=2024-01-01&to=2025-01-01", 400, "INVALID_DATE_RANGE", "from"},
		{"points?from=2026-02-02&to=2026-02-01", 400, "INVALID_DATE_RANGE", "from"},
		{"points?format=xml", 400, "INVALID_FIELD", "format"},
	} {
		res := env.Partner("acme", http.MethodGet, "/integrations/reports/"+tc.pathQuery, nil)
		require.Equal(t, tc.status, res.StatusCode, "%s: %s", tc.pathQuery, res.Body)
		require.Equal(t, tc.code, res.Code(), tc.pathQuery)
		if tc.field != "" {
			require.Equal(t, tc.field, res.JSON(t)["field"], tc.pathQuery)
		}
	}
	req, err := http.NewRequest(http.MethodGet, env.Server.URL+"/integrations/reports/points", nil)
	require.NoError(t, err)
	res := env.Do(req)
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	require.Equal(t, before, dbtest.Snapshot(t, env.DB.Bun))
}
