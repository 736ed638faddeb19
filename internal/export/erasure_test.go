package export_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
)

// TestExportMarksErasures: a user erased since the cursor comes as one
// erasure line (NDJSON and CSV) with Perks' id and the time, and nothing
// personal, like an anonymised user's profile says "anonymised"; a user
// re-created under the same external id is a new user.
func TestExportMarksErasures(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	ext := "erase.me@example.com"
	res := env.Partner("acme", http.MethodPost, "/integrations/users", []byte(`{"externalUserId":"`+ext+`","email":"`+ext+`","displayName":"Erase Me"}`))
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	erasedID := res.JSON(t)["userId"].(string)
	res = env.Partner("acme", http.MethodPost, "/integrations/actions", []byte(`{"externalUserId":"`+ext+`","action":"purchase","points":10}`))
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	env.WaitExportable()
	_, before := fetch(t, env, "acme", "", 0, nil)
	cursor := before[len(before)-1].Cursor

	res = env.Partner("acme", http.MethodDelete, "/integrations/users/"+url.PathEscape(ext)+"?mode=erase", nil)
	require.Equal(t, http.StatusNoContent, res.StatusCode, "%s", res.Body)
	res = env.Partner("acme", http.MethodPost, "/integrations/users", []byte(`{"externalUserId":"`+ext+`","displayName":"Back"}`))
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	newID := res.JSON(t)["userId"].(string)
	require.NotEqual(t, erasedID, newID)
	env.WaitExportable()

	q := "/integrations/exports/users?cursor=" + url.QueryEscape(cursor)
	nd := env.Partner("acme", http.MethodGet, q, nil)
	require.Equal(t, http.StatusOK, nd.StatusCode, "%s", nd.Body)
	var marker map[string]any
	var sawNew bool
	for _, l := range bytes.Split(bytes.TrimSpace(nd.Body), []byte("\n")) {
		var m map[string]any
		require.NoError(t, json.Unmarshal(l, &m), "%s", l)
		switch m["userId"] {
		case erasedID:
			marker = m
			require.NotContains(t, string(l), ext)
			require.NotContains(t, string(l), "Erase Me")
		case newID:
			sawNew = true
			require.Nil(t, m["erased"])
		}
	}
	require.True(t, sawNew, "%s", nd.Body)
	require.NotNil(t, marker, "no erasure line in %s", nd.Body)
	require.Equal(t, true, marker["erased"])
	require.NotEmpty(t, marker["erasedAt"])
	require.Nil(t, marker["profile"])
	require.Equal(t, float64(0), marker["balance"])
	require.Empty(t, marker["actions"])

	c := env.Partner("acme", http.MethodGet, q, nil, map[string]string{"Accept": "text/csv"})
	require.Equal(t, http.StatusOK, c.StatusCode, "%s", c.Body)
	r := csv.NewReader(bytes.NewReader(c.Body))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	require.NoError(t, err)
	header := recs[0]
	require.Equal(t, "erasedAt", header[len(header)-1])
	var found bool
	for _, row := range recs[1 : len(recs)-1] {
		require.Len(t, row, len(header))
		switch row[0] {
		case erasedID:
			found = true
			filled := map[string]bool{"userId": true, "balance": true, "actions": true, "gifts": true,
				"pendingPoints": true, "lifetimePoints": true, "expiringPoints": true, "erasedAt": true}
			for i, v := range row {
				if !filled[header[i]] {
					require.Empty(t, v, "column %s of an erased user", header[i])
				}
			}
			require.Equal(t, marker["erasedAt"], row[len(row)-1])
			require.Equal(t, "0", row[13])
			require.Equal(t, []string{"0", "0", "[]"}, row[16:19], "an erased user's lifecycle columns")
		case newID:
			require.Empty(t, row[len(row)-1])
		}
	}
	require.True(t, found, "no erasure row in %s", c.Body)
}
