package rest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/webhook"
)

// TestWebhookAPIBadInput sends one bad request per row and checks the
// status, the code, the named field and that no table changed.
func TestWebhookAPIBadInput(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	ep := uuid.NewString()
	require.Equal(t, http.StatusCreated, env.Partner("acme", http.MethodPut, "/integrations/webhook-endpoints/"+ep, []byte(`{"url":"https://hooks.example.com/a"}`)).StatusCode)

	cases := []struct {
		name, method, path, body string
		status                   int
		code, field              string
	}{
		{"no url", "PUT", "/integrations/webhook-endpoints/" + uuid.NewString(), `{"eventTypes":["user.created"]}`, 400, "MISSING_FIELD", "url"},
		{"empty url", "POST", "/integrations/webhook-endpoints", `{"url":""}`, 400, "MISSING_FIELD", "url"},
		{"url not http", "POST", "/integrations/webhook-endpoints", `{"url":"ftp://hooks.example.com"}`, 400, "INVALID_FIELD", "url"},
		{"url relative", "POST", "/integrations/webhook-endpoints", `{"url":"/hooks"}`, 400, "INVALID_FIELD", "url"},
		{"url with credentials", "POST", "/integrations/webhook-endpoints", `{"url":"https://u:p@hooks.example.com"}`, 400, "INVALID_FIELD", "url"},
		{"url too long", "POST", "/integrations/webhook-endpoints", `{"url":"https://hooks.example.com/` + strings.Repeat("a", 2048) + `"}`, 400, "INVALID_FIELD", "url"},
		{"metadata url", "POST", "/integrations/webhook-endpoints", `{"url":"http://169.254.169.254/latest"}`, 400, "WEBHOOK_URL_FORBIDDEN", "url"},
		{"unknown event type", "POST", "/integrations/webhook-endpoints", `{"url":"https://hooks.example.com","eventTypes":["voucher.redeem"]}`, 400, "INVALID_FIELD", "eventTypes"},
		{"event types not a list", "POST", "/integrations/webhook-endpoints", `{"url":"https://hooks.example.com","eventTypes":"user.created"}`, 400, "INVALID_FIELD", "eventTypes"},
		{"description too long", "POST", "/integrations/webhook-endpoints", `{"url":"https://hooks.example.com","description":"` + strings.Repeat("d", 501) + `"}`, 400, "INVALID_FIELD", "description"},
		{"unknown field", "POST", "/integrations/webhook-endpoints", `{"url":"https://hooks.example.com","secret":"whsec_mine"}`, 400, "UNKNOWN_FIELD", "secret"},
		{"id not a uuid", "PUT", "/integrations/webhook-endpoints/abc", `{"url":"https://hooks.example.com"}`, 400, "INVALID_FIELD", "id"},
		{"unknown endpoint", "GET", "/integrations/webhook-endpoints/" + uuid.NewString(), ``, 404, "NOT_FOUND", ""},
		{"delete unknown endpoint", "DELETE", "/integrations/webhook-endpoints/" + uuid.NewString(), ``, 404, "NOT_FOUND", ""},
		{"grace too long", "POST", "/integrations/webhook-endpoints/" + ep + "/rotate-secret", `{"gracePeriodSeconds":604801}`, 400, "INVALID_FIELD", "gracePeriodSeconds"},
		{"grace negative", "POST", "/integrations/webhook-endpoints/" + ep + "/rotate-secret", `{"gracePeriodSeconds":-1}`, 400, "INVALID_FIELD", "gracePeriodSeconds"},
		{"rotate unknown endpoint", "POST", "/integrations/webhook-endpoints/" + uuid.NewString() + "/rotate-secret", ``, 404, "NOT_FOUND", ""},
		{"status filter", "GET", "/integrations/webhook-deliveries?status=lost", ``, 400, "INVALID_FIELD", "status"},
		{"eventId filter", "GET", "/integrations/webhook-deliveries?eventId=nope", ``, 400, "INVALID_FIELD", "eventId"},
		{"endpointId filter", "GET", "/integrations/webhook-deliveries?endpointId=nope", ``, 400, "INVALID_FIELD", "endpointId"},
		{"limit zero", "GET", "/integrations/webhook-deliveries?limit=0", ``, 400, "INVALID_FIELD", "limit"},
		{"limit too big", "GET", "/integrations/webhook-deliveries?limit=201", ``, 400, "INVALID_FIELD", "limit"},
		{"cursor forged", "GET", "/integrations/webhook-deliveries?cursor=bm9wZQ", ``, 400, "INVALID_FIELD", "cursor"},
		{"unknown delivery", "GET", "/integrations/webhook-deliveries/" + uuid.NewString(), ``, 404, "NOT_FOUND", ""},
		{"replay unknown event", "POST", "/integrations/events/" + uuid.NewString() + "/replay", ``, 404, "NOT_FOUND", ""},
		{"replay event id not a uuid", "POST", "/integrations/events/x/replay", ``, 400, "INVALID_FIELD", "id"},
		{"replay to a bad endpoint id", "POST", "/integrations/events/" + uuid.NewString() + "/replay", `{"endpointId":"x"}`, 400, "INVALID_FIELD", "endpointId"},
		{"window without from", "POST", "/integrations/events/replay", `{"to":"2026-01-02T00:00:00Z"}`, 400, "MISSING_FIELD", "from"},
		{"window with a bad time", "POST", "/integrations/events/replay", `{"from":"yesterday","to":"2026-01-02T00:00:00Z"}`, 400, "INVALID_FIELD", "from"},
		{"window backwards", "POST", "/integrations/events/replay", `{"from":"2026-01-02T00:00:00Z","to":"2026-01-01T00:00:00Z"}`, 400, "INVALID_FIELD", "to"},
		{"window too long", "POST", "/integrations/events/replay", `{"from":"2026-01-01T00:00:00Z","to":"2026-03-01T00:00:00Z"}`, 400, "INVALID_FIELD", "to"},
		{"window status", "POST", "/integrations/events/replay", `{"from":"2026-01-01T00:00:00Z","to":"2026-01-02T00:00:00Z","status":"lost"}`, 400, "INVALID_FIELD", "status"},
		{"window unknown endpoint", "POST", "/integrations/events/replay", `{"from":"2026-01-01T00:00:00Z","to":"2026-01-02T00:00:00Z","endpointId":"` + uuid.NewString() + `"}`, 404, "NOT_FOUND", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := dbtest.Snapshot(t, env.DB.Bun)
			res := env.Partner("acme", c.method, c.path, []byte(c.body))
			require.Equal(t, c.status, res.StatusCode, "%s", res.Body)
			require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))
			p := res.JSON(t)
			require.Equal(t, c.code, p["code"], "%s", res.Body)
			if c.field != "" {
				require.Equal(t, c.field, p["field"], "%s", res.Body)
			}
			require.Equal(t, before, dbtest.Snapshot(t, env.DB.Bun), "a rejected request changed the database")
		})
	}
}

// TestWebhookURLsInProduction: with PERKS_ENV=production and private
// addresses not allowed, the API refuses plain http and every non-public
// destination.
func TestWebhookURLsInProduction(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, apptest.Options{Env: map[string]string{"PERKS_ENV": "production", "PERKS_WEBHOOK_ALLOW_PRIVATE": "false"}})
	before := dbtest.Snapshot(t, env.DB.Bun)
	for _, u := range []string{
		"http://127.0.0.1/hook", "http://[::1]/hook", "http://169.254.169.254/latest/meta-data", "http://10.0.0.1/hook",
		"https://127.0.0.1/hook", "https://[::1]/hook", "https://10.0.0.1/hook", "https://localhost/hook",
		"http://hooks.example.com/plain-http",
	} {
		res := env.PartnerJSON("acme", http.MethodPost, "/integrations/webhook-endpoints", map[string]any{"url": u})
		require.Equal(t, http.StatusBadRequest, res.StatusCode, "%s: %s", u, res.Body)
		require.Equal(t, "WEBHOOK_URL_FORBIDDEN", res.Code(), u)
	}
	require.Equal(t, before, dbtest.Snapshot(t, env.DB.Bun))
}

// TestWebhookEndpointLifecycle: create (secret once), replace, disable,
// re-enable, list, limit, delete.
func TestWebhookEndpointLifecycle(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	res := env.PartnerJSON("acme", http.MethodPost, "/integrations/webhook-endpoints", map[string]any{
		"url": "https://hooks.example.com/a", "eventTypes": []string{"user.created", "user.created", "user.anonymised"},
	})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	created := res.JSON(t)
	id := created["id"].(string)
	require.Regexp(t, `^whsec_[A-Za-z0-9+/]{43}=$`, created["secret"])
	require.Equal(t, []any{"user.anonymised", "user.created"}, created["eventTypes"], "deduplicated and sorted")

	res = env.PartnerJSON("acme", http.MethodPut, "/integrations/webhook-endpoints/"+id, map[string]any{"url": "https://hooks.example.com/b", "enabled": false})
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	updated := res.JSON(t)
	require.NotContains(t, updated, "secret")
	require.Equal(t, false, updated["enabled"])
	require.Equal(t, []any{}, updated["eventTypes"], "no types: every type")
	require.Equal(t, "https://hooks.example.com/b", updated["url"])

	// A disabled endpoint cannot be the target of a replay.
	res = env.Partner("acme", http.MethodPost, "/integrations/users", []byte(`{"externalUserId":"u1"}`))
	require.Equal(t, http.StatusCreated, res.StatusCode)
	var eventID string
	require.NoError(t, env.DB.Bun.NewRaw("SELECT id::text FROM events WHERE type = 'user.created'").Scan(t.Context(), &eventID))
	res = env.Partner("acme", http.MethodPost, "/integrations/events/"+eventID+"/replay", []byte(`{"endpointId":"`+id+`"}`))
	require.Equal(t, http.StatusConflict, res.StatusCode)
	require.Equal(t, "WEBHOOK_ENDPOINT_DISABLED", res.Code())

	res = env.PartnerJSON("acme", http.MethodPut, "/integrations/webhook-endpoints/"+id, map[string]any{"url": "https://hooks.example.com/b"})
	require.Equal(t, true, res.JSON(t)["enabled"], "enabled by default")
	res = env.Partner("acme", http.MethodPost, "/integrations/events/"+eventID+"/replay", []byte(`{"endpointId":"`+id+`"}`))
	require.Equal(t, http.StatusAccepted, res.StatusCode, "%s", res.Body)

	for i := 1; i < webhook.MaxEndpoints; i++ {
		res = env.PartnerJSON("acme", http.MethodPost, "/integrations/webhook-endpoints", map[string]any{"url": fmt.Sprintf("https://hooks.example.com/%d", i)})
		require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	}
	res = env.PartnerJSON("acme", http.MethodPut, "/integrations/webhook-endpoints/"+uuid.NewString(), map[string]any{"url": "https://hooks.example.com/over"})
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.Equal(t, "WEBHOOK_ENDPOINT_LIMIT", res.Code())
	list := env.Partner("acme", http.MethodGet, "/integrations/webhook-endpoints", nil).JSON(t)["data"].([]any)
	require.Len(t, list, webhook.MaxEndpoints)

	require.Equal(t, http.StatusNoContent, env.Partner("acme", http.MethodDelete, "/integrations/webhook-endpoints/"+id, nil).StatusCode)
	require.Equal(t, http.StatusNotFound, env.Partner("acme", http.MethodGet, "/integrations/webhook-endpoints/"+id, nil).StatusCode)
	var deliveries int
	require.NoError(t, env.DB.Bun.NewRaw("SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = ?", id).Scan(t.Context(), &deliveries))
	require.Zero(t, deliveries, "the endpoint's log went with it")
}

// TestWebhookDeliveriesPagination walks the log page by page: every
// delivery once, newest event first.
func TestWebhookDeliveriesPagination(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	require.Equal(t, http.StatusCreated, env.PartnerJSON("acme", http.MethodPost, "/integrations/webhook-endpoints", map[string]any{"url": "https://hooks.example.com/a"}).StatusCode)
	for i := 0; i < 5; i++ {
		env.Clock.Advance(1e9)
		require.Equal(t, http.StatusCreated, env.Partner("acme", http.MethodPost, "/integrations/users", []byte(fmt.Sprintf(`{"externalUserId":"p%d"}`, i))).StatusCode)
	}
	var seen []string
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 5)
		path := "/integrations/webhook-deliveries?limit=2&status=pending"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		res := env.Partner("acme", http.MethodGet, path, nil)
		require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
		var page struct {
			Data []struct {
				ID        string `json:"id"`
				CreatedAt string `json:"createdAt"`
			} `json:"data"`
			NextCursor *string `json:"nextCursor"`
		}
		require.NoError(t, json.Unmarshal(res.Body, &page))
		for _, d := range page.Data {
			seen = append(seen, d.CreatedAt+" "+d.ID)
		}
		if page.NextCursor == nil {
			break
		}
		cursor = *page.NextCursor
	}
	require.Len(t, seen, 5)
	for i := 1; i < len(seen); i++ {
		require.Greater(t, seen[i-1], seen[i], "newest first, no repeats")
	}
	empty := env.Partner("globex", http.MethodGet, "/integrations/webhook-deliveries", nil).JSON(t)
	require.Empty(t, empty["data"])
}
