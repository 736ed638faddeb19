package portal_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/account"
)

// TestWebhooksPage: a developer creates an endpoint (secret shown once),
// edits, disables, enables, rotates and deletes it, filters the delivery
// log and replays an event; bad input is refused with a message and
// changes nothing; support and viewers may look but not change; another
// partner's endpoint or event is not found.
func TestWebhooksPage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	dev, _ := b.member(t, b.acme, "dev@acme.example", account.RoleDeveloper)
	support, _ := b.member(t, b.acme, "support@acme.example", account.RoleSupport)
	endpoints := func() int { return b.env.Count("webhook_endpoints", "partner_id = ?", b.acme.ID) }
	before := endpoints()

	// Bad input.
	for name, form := range map[string]url.Values{
		"no url":       {"description": {"x"}},
		"not a url":    {"url": {"hello"}},
		"unknown type": {"url": {"http://127.0.0.1:9/hook"}, "eventTypes": {"no.such.event"}},
	} {
		form.Set("csrf", dev.csrfOf(t))
		res := dev.post("/portal/webhooks", form)
		require.GreaterOrEqual(t, res.Status, 400, name)
		require.Less(t, res.Status, 500, name)
		require.Contains(t, res.Body, `role="alert"`, name)
	}
	require.Equal(t, before, endpoints())

	// Support may look but not change.
	pg := support.get("/portal/webhooks")
	require.Equal(t, http.StatusOK, pg.Status)
	require.NotContains(t, pg.Body, `id="create-endpoint"`)
	res := support.post("/portal/webhooks", url.Values{"csrf": {pg.csrf(t)}, "url": {"http://127.0.0.1:9/hook"}})
	require.Equal(t, http.StatusForbidden, res.Status)
	require.Equal(t, before, endpoints())

	res = dev.post("/portal/webhooks", url.Values{"csrf": {dev.csrfOf(t)}, "url": {"http://127.0.0.1:9/hook"}, "description": {"crm"},
		"eventTypes": {"user.created", "points.earned"}})
	require.Equal(t, http.StatusCreated, res.Status, res.Body)
	secret := res.find(t, `id="webhook-secret">([^<]+)<`)
	require.NotEmpty(t, secret)
	require.Equal(t, before+1, endpoints())
	var epID uuid.UUID
	require.NoError(t, b.env.DB.Bun.NewSelect().Table("webhook_endpoints").Column("id").Where("partner_id = ? AND description = 'crm'", b.acme.ID).Scan(b.ctx, &epID))
	ep := epID.String()
	require.NotContains(t, dev.get("/portal/webhooks").Body, secret, "shown once")

	for _, path := range []string{"/portal/webhooks/" + ep + "/disable", "/portal/webhooks/" + ep + "/rotate", "/portal/webhooks/" + ep + "/delete", "/portal/webhooks/" + ep} {
		require.Equal(t, http.StatusForbidden, support.post(path, url.Values{"csrf": {pg.csrf(t)}, "url": {"http://127.0.0.1:9/x"}}).Status, path)
	}

	// Edit: refused input keeps the endpoint; good input saves it.
	edit := dev.get("/portal/webhooks/" + ep)
	require.Equal(t, http.StatusOK, edit.Status)
	require.Contains(t, edit.Body, `value="user.created" checked`)
	res = dev.post("/portal/webhooks/"+ep, url.Values{"csrf": {edit.csrf(t)}, "url": {"ftp://example"}})
	require.Equal(t, http.StatusBadRequest, res.Status, res.Body)
	require.Equal(t, 1, b.env.Count("webhook_endpoints", "id = ? AND url = 'http://127.0.0.1:9/hook'", epID))
	res = dev.post("/portal/webhooks/"+ep, url.Values{"csrf": {edit.csrf(t)}, "url": {"http://127.0.0.1:9/hook2"}, "description": {"crm 2"}, "eventTypes": {"user.created"}})
	require.Equal(t, http.StatusOK, res.Status, res.Body)
	require.Equal(t, 1, b.env.Count("webhook_endpoints", "id = ? AND url = 'http://127.0.0.1:9/hook2' AND event_types = '{user.created}' AND enabled", epID))

	res = dev.post("/portal/webhooks/"+ep+"/disable", url.Values{"csrf": {dev.csrfOf(t)}})
	require.Equal(t, http.StatusOK, res.Status, res.Body)
	require.Equal(t, 1, b.env.Count("webhook_endpoints", "id = ? AND NOT enabled", epID))
	res = dev.post("/portal/webhooks/"+ep+"/enable", url.Values{"csrf": {dev.csrfOf(t)}})
	require.Equal(t, http.StatusOK, res.Status, res.Body)
	require.Equal(t, 1, b.env.Count("webhook_endpoints", "id = ? AND enabled", epID))
	res = dev.post("/portal/webhooks/"+ep+"/rotate", url.Values{"csrf": {dev.csrfOf(t)}})
	require.Equal(t, http.StatusOK, res.Status, res.Body)
	require.NotEqual(t, secret, res.find(t, `id="webhook-secret">([^<]+)<`))

	// An event: its delivery shows in the log, with filters.
	require.Equal(t, http.StatusCreated, b.env.Partner("acme", http.MethodPost, "/integrations/users", []byte(`{"externalUserId":"wh-1"}`)).StatusCode)
	var eventID uuid.UUID
	require.NoError(t, b.env.DB.Bun.NewSelect().Table("webhook_deliveries").Column("event_id").Where("endpoint_id = ?", epID).Scan(b.ctx, &eventID))
	log := dev.get("/portal/webhooks?status=pending&eventType=user.created&endpoint=" + ep)
	require.Equal(t, http.StatusOK, log.Status, log.Body)
	require.Contains(t, log.Body, eventID.String())
	for _, q := range []string{"status=pending&eventType=points.earned", "status=succeeded", "from=2999-01-01T00:00"} {
		pg := dev.get("/portal/webhooks?" + q)
		require.Equal(t, http.StatusOK, pg.Status, q)
		require.NotContains(t, pg.Body, eventID.String(), q)
	}
	for _, q := range []string{"status=lost", "eventType=nope", "endpoint=abc", "from=yesterday", "cursor=zzz", "from=2026-01-02T00:00&to=2026-01-01T00:00"} {
		pg := dev.get("/portal/webhooks?" + q)
		require.Equal(t, http.StatusBadRequest, pg.Status, q)
		require.Contains(t, pg.Body, `role="alert">Delivery log filter:`, q)
	}

	// Replay one event, and a window; bad windows are refused.
	deliveries := func() int { return b.env.Count("webhook_deliveries", "event_id = ?", eventID) }
	res = dev.post("/portal/webhooks/events/"+eventID.String()+"/replay", url.Values{"csrf": {dev.csrfOf(t)}, "endpoint": {ep}})
	require.Equal(t, http.StatusAccepted, res.Status, res.Body)
	require.Equal(t, 1, b.env.Count("webhook_deliveries", "event_id = ? AND generation = 1", eventID))
	require.Equal(t, http.StatusForbidden, support.post("/portal/webhooks/events/"+eventID.String()+"/replay", url.Values{"csrf": {pg.csrf(t)}}).Status)
	jobs := func() int { return b.env.Count("river_job", "kind = 'webhook_replay'") }
	jobsBefore := jobs()
	for name, form := range map[string]url.Values{
		"no window":    {},
		"reversed":     {"from": {"2026-11-02T00:00"}, "to": {"2026-11-01T00:00"}},
		"too long":     {"from": {"2026-01-01T00:00"}, "to": {"2026-11-01T00:00"}},
		"bad status":   {"from": {"2026-11-01T00:00"}, "to": {"2026-11-02T00:00"}, "status": {"lost"}},
		"bad type":     {"from": {"2026-11-01T00:00"}, "to": {"2026-11-02T00:00"}, "eventType": {"x"}},
		"bad date":     {"from": {"soon"}, "to": {"2026-11-02T00:00"}},
		"bad endpoint": {"from": {"2026-11-01T00:00"}, "to": {"2026-11-02T00:00"}, "endpoint": {"x"}},
	} {
		form.Set("csrf", dev.csrfOf(t))
		res := dev.post("/portal/webhooks/replay", form)
		require.Equal(t, http.StatusBadRequest, res.Status, "%s: %s", name, res.Body)
		require.Contains(t, res.Body, `role="alert"`, name)
	}
	require.Equal(t, jobsBefore, jobs())
	res = dev.post("/portal/webhooks/replay", url.Values{"csrf": {dev.csrfOf(t)}, "from": {b.env.Now().Add(-3600e9).Format("2006-01-02T15:04")},
		"to": {b.env.Now().Add(3600e9).Format("2006-01-02T15:04")}, "status": {"pending"}})
	require.Equal(t, http.StatusAccepted, res.Status, res.Body)
	require.Equal(t, jobsBefore+1, jobs())
	require.Equal(t, 1, b.env.Count("audit_log", "realm_id = ? AND action = 'webhook_event.replay_window'", b.acme.ID))

	// Another partner's developer: not found, nothing changes.
	gdev, _ := b.member(t, b.globe, "dev@globex.example", account.RoleDeveloper)
	n := deliveries()
	csrf := gdev.csrfOf(t)
	for _, path := range []string{"/portal/webhooks/" + ep + "/disable", "/portal/webhooks/" + ep + "/rotate", "/portal/webhooks/" + ep + "/delete",
		"/portal/webhooks/events/" + eventID.String() + "/replay"} {
		require.Equal(t, http.StatusNotFound, gdev.post(path, url.Values{"csrf": {csrf}}).Status, path)
	}
	require.Equal(t, http.StatusNotFound, gdev.get("/portal/webhooks/"+ep).Status)
	require.NotContains(t, gdev.get("/portal/webhooks").Body, eventID.String())
	require.Equal(t, n, deliveries())
	require.Equal(t, 1, b.env.Count("webhook_endpoints", "id = ? AND enabled", epID))

	res = dev.post("/portal/webhooks/"+ep+"/delete", url.Values{"csrf": {dev.csrfOf(t)}})
	require.Equal(t, http.StatusOK, res.Status, res.Body)
	require.Equal(t, before, endpoints())
	require.Equal(t, 6, b.env.Count("audit_log", "realm_id = ? AND action LIKE 'webhook_endpoint.%'", b.acme.ID))
}
