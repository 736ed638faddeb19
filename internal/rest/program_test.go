package rest_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/dbtest"
)

// TestProgramPolicyAPI: GET answers the defaults until a PUT replaces the
// policy, a PUT replaces all of it (omitted fields go back to defaults), and
// one partner's policy never shows in another's.
func TestProgramPolicyAPI(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)

	defaults := map[string]any{
		"expiryMode": "none", "expiryDays": nil, "expiryRoundToMonthEnd": false, "expiryDates": []any{},
		"pendingDays": float64(0), "negativeBalance": "forbid", "expiryWarningDays": float64(30), "updatedAt": nil,
		"currency":  nil,
		"tierBasis": "lifetime", "tierDowngrade": "never", "tierGraceDays": float64(0), "defaultLocale": nil,
	}
	res := env.Partner("acme", http.MethodGet, "/integrations/program", nil)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	require.Equal(t, defaults, res.JSON(t))

	res = env.Partner("acme", http.MethodPut, "/integrations/program",
		[]byte(`{"expiryMode":"fixed","expiryDates":["12-31","06-30"],"pendingDays":14,"negativeBalance":"allow","expiryWarningDays":7}`))
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	put := res.JSON(t)
	require.Equal(t, []any{"06-30", "12-31"}, put["expiryDates"])
	require.NotNil(t, put["updatedAt"])

	res = env.Partner("acme", http.MethodGet, "/integrations/program", nil)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	require.Equal(t, put, res.JSON(t))
	require.Equal(t, "allow", put["negativeBalance"])
	require.Equal(t, float64(14), put["pendingDays"])

	// Tenant isolation: globex still has the defaults.
	res = env.Partner("globex", http.MethodGet, "/integrations/program", nil)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	require.Equal(t, defaults, res.JSON(t))

	// Replace means replace.
	res = env.Partner("acme", http.MethodPut, "/integrations/program", []byte(`{"expiryMode":"rolling","expiryDays":365,"expiryRoundToMonthEnd":true}`))
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	got := res.JSON(t)
	require.Equal(t, float64(365), got["expiryDays"])
	require.Equal(t, true, got["expiryRoundToMonthEnd"])
	require.Equal(t, []any{}, got["expiryDates"])
	require.Equal(t, float64(0), got["pendingDays"])
	require.Equal(t, "forbid", got["negativeBalance"])
	require.Equal(t, float64(30), got["expiryWarningDays"])
}

// TestProgramPolicyAPIBadInput: one bad request per row, each a 4xx naming
// the field, and none changes the database.
func TestProgramPolicyAPIBadInput(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	require.Equal(t, http.StatusOK, env.Partner("acme", http.MethodPut, "/integrations/program", []byte(`{"pendingDays":3}`)).StatusCode)
	require.Equal(t, http.StatusCreated, env.Partner("acme", http.MethodPut, "/integrations/earning-rules/refund_window",
		[]byte(`{"name":"Window","points":5,"pendingDays":30,"expiryDays":90}`)).StatusCode)

	cases := []struct {
		name, path, body string
		code, field      string
	}{
		{"unknown mode", "/integrations/program", `{"expiryMode":"monthly"}`, "INVALID_FIELD", "expiryMode"},
		{"rolling without days", "/integrations/program", `{"expiryMode":"rolling"}`, "MISSING_FIELD", "expiryDays"},
		{"rolling zero days", "/integrations/program", `{"expiryMode":"rolling","expiryDays":0}`, "INVALID_FIELD", "expiryDays"},
		{"rolling 3651 days", "/integrations/program", `{"expiryMode":"rolling","expiryDays":3651}`, "INVALID_FIELD", "expiryDays"},
		{"days without rolling", "/integrations/program", `{"expiryDays":30}`, "INVALID_FIELD", "expiryDays"},
		{"rounding without rolling", "/integrations/program", `{"expiryRoundToMonthEnd":true}`, "INVALID_FIELD", "expiryRoundToMonthEnd"},
		{"fixed without dates", "/integrations/program", `{"expiryMode":"fixed"}`, "MISSING_FIELD", "expiryDates"},
		{"invalid date", "/integrations/program", `{"expiryMode":"fixed","expiryDates":["02-30"]}`, "INVALID_FIELD", "expiryDates"},
		{"duplicate date", "/integrations/program", `{"expiryMode":"fixed","expiryDates":["12-31","12-31"]}`, "INVALID_FIELD", "expiryDates"},
		{"thirteen dates", "/integrations/program", `{"expiryMode":"fixed","expiryDates":["01-31","02-28","03-31","04-30","05-31","06-30","07-31","08-31","09-30","10-31","11-30","12-31","12-30"]}`, "INVALID_FIELD", "expiryDates"},
		{"dates not strings", "/integrations/program", `{"expiryMode":"fixed","expiryDates":[1231]}`, "INVALID_FIELD", "expiryDates"},
		{"pending negative", "/integrations/program", `{"pendingDays":-1}`, "INVALID_FIELD", "pendingDays"},
		{"pending too long", "/integrations/program", `{"pendingDays":3651}`, "INVALID_FIELD", "pendingDays"},
		{"pending fraction", "/integrations/program", `{"pendingDays":1.5}`, "INVALID_FIELD", "pendingDays"},
		{"negative balance", "/integrations/program", `{"negativeBalance":"sometimes"}`, "INVALID_FIELD", "negativeBalance"},
		{"warning too long", "/integrations/program", `{"expiryWarningDays":366}`, "INVALID_FIELD", "expiryWarningDays"},
		{"unknown field", "/integrations/program", `{"expiry":"none"}`, "UNKNOWN_FIELD", "expiry"},
		{"tier basis", "/integrations/program", `{"tierBasis":"monthly"}`, "INVALID_FIELD", "tierBasis"},
		{"tier downgrade", "/integrations/program", `{"tierDowngrade":"sometimes"}`, "INVALID_FIELD", "tierDowngrade"},
		{"grace without periodEnd", "/integrations/program", `{"tierGraceDays":5}`, "INVALID_FIELD", "tierGraceDays"},
		{"grace too long", "/integrations/program", `{"tierDowngrade":"periodEnd","tierGraceDays":366}`, "INVALID_FIELD", "tierGraceDays"},
		{"rule pending negative", "/integrations/earning-rules/refund_window", `{"name":"W","points":5,"pendingDays":-1}`, "INVALID_FIELD", "pendingDays"},
		{"rule pending too long", "/integrations/earning-rules/refund_window", `{"name":"W","points":5,"pendingDays":3651}`, "INVALID_FIELD", "pendingDays"},
		{"rule expiry zero", "/integrations/earning-rules/refund_window", `{"name":"W","points":5,"expiryDays":0}`, "INVALID_FIELD", "expiryDays"},
		{"rule expiry too long", "/integrations/earning-rules/refund_window", `{"name":"W","points":5,"expiryDays":3651}`, "INVALID_FIELD", "expiryDays"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := dbtest.Snapshot(t, env.DB.Bun)
			res := env.Partner("acme", http.MethodPut, c.path, []byte(c.body))
			require.Equal(t, http.StatusBadRequest, res.StatusCode, "%s", res.Body)
			p := res.JSON(t)
			require.Equal(t, c.code, p["code"], "%s", res.Body)
			require.Equal(t, c.field, p["field"], "%s", res.Body)
			require.Equal(t, before, dbtest.Snapshot(t, env.DB.Bun), "a rejected request changed the database")
		})
	}
}

// TestRuleOverridesAPI: a rule's pendingDays and expiryDays round-trip, and
// a replace without them unsets them.
func TestRuleOverridesAPI(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	res := env.Partner("acme", http.MethodPut, "/integrations/earning-rules/refund_window", []byte(`{"name":"Window","points":5,"pendingDays":0,"expiryDays":90}`))
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	got := res.JSON(t)
	require.Equal(t, float64(0), got["pendingDays"])
	require.Equal(t, float64(90), got["expiryDays"])

	res = env.Partner("acme", http.MethodGet, "/integrations/earning-rules", nil)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	var found map[string]any
	for _, it := range res.JSON(t)["items"].([]any) {
		if r := it.(map[string]any); r["code"] == "refund_window" {
			found = r
		}
	}
	require.NotNil(t, found)
	require.Equal(t, float64(0), found["pendingDays"])
	require.Equal(t, float64(90), found["expiryDays"])

	res = env.Partner("acme", http.MethodPut, "/integrations/earning-rules/refund_window", []byte(`{"name":"Window","points":5}`))
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	got = res.JSON(t)
	require.Nil(t, got["pendingDays"])
	require.Nil(t, got["expiryDays"])
}
