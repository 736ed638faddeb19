package rest_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
)

// TestListsShareOneEnvelope: every list answers {"items": [...]} (with
// "nextCursor" when it pages), so one client helper reads them all. The
// webhook lists, which answered {"data": [...]}, still carry data (the same
// array) for existing clients.
func TestListsShareOneEnvelope(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	ep := env.PartnerJSON("acme", http.MethodPost, "/integrations/webhook-endpoints",
		map[string]any{"url": "https://hooks.acme.example.test/perks", "eventTypes": []string{"points.earned"}},
		map[string]string{"Idempotency-Key": "envelope-ep"})
	require.Equal(t, http.StatusCreated, ep.StatusCode, "%s", ep.Body)

	for _, c := range []struct {
		path              string
		pages, legacyData bool
	}{
		{path: "/integrations/earning-rules"},
		{path: "/integrations/users", pages: true},
		{path: "/integrations/ads"},
		{path: "/integrations/campaigns"},
		{path: "/integrations/gifts"},
		{path: "/integrations/webhook-endpoints", legacyData: true},
		{path: "/integrations/webhook-deliveries", pages: true, legacyData: true},
	} {
		res := env.Partner("acme", http.MethodGet, c.path, nil)
		require.Equal(t, http.StatusOK, res.StatusCode, "%s: %s", c.path, res.Body)
		body := res.JSON(t)
		items, ok := body["items"].([]any)
		require.True(t, ok, "%s answers no items array: %s", c.path, res.Body)
		if c.pages {
			require.Contains(t, body, "nextCursor", c.path)
		}
		if c.legacyData {
			require.Equal(t, items, body["data"], "%s: data is items under its old name", c.path)
		} else {
			require.NotContains(t, body, "data", c.path)
		}
	}
}
