package webhook_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
)

// payload is a delivery body as a receiver decodes it.
type payload struct {
	ID        string         `json:"id"`
	Type      string         `json:"type"`
	CreatedAt time.Time      `json:"createdAt"`
	Partner   map[string]any `json:"partner"`
	Data      map[string]any `json:"data"`
}

func (r *receiver) next(t *testing.T) (received, payload) {
	t.Helper()
	select {
	case got := <-r.ch:
		var p payload
		require.NoError(t, json.Unmarshal(got.Body, &p), "%s", got.Body)
		return got, p
	case <-time.After(15 * time.Second):
		t.Fatal("no delivery arrived")
	}
	panic("unreachable")
}

// none asserts that nothing more arrives while the app's jobs settle.
func (r *receiver) none(t *testing.T, env *apptest.Env) {
	t.Helper()
	waitJobsIdle(t, env)
	select {
	case got := <-r.ch:
		t.Fatalf("unexpected delivery: %s", got.Body)
	default:
	}
}

// waitJobsIdle waits until no delivery or replay job is left to run.
func waitJobsIdle(t *testing.T, env *apptest.Env) {
	t.Helper()
	require.Eventually(t, func() bool {
		var n int
		err := env.DB.Bun.NewRaw(`SELECT count(*) FROM river_job WHERE kind LIKE 'webhook_%'
			AND state IN ('available', 'running', 'pending')`).Scan(t.Context(), &n)
		return err == nil && n == 0
	}, 15*time.Second, 20*time.Millisecond)
}

// TestEndToEnd: a partner registers an endpoint over the API, provisions a
// user, and its local receiver gets user.created signed per Standard
// Webhooks; after a rotation, user.anonymised arrives with two signatures
// that both verify and no personal data; the log and replay work over the
// API, the window replay as a River job.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, apptest.Options{Workers: true})
	rcv := newReceiver(t)

	epID := uuid.New()
	res := env.PartnerJSON("acme", http.MethodPut, "/integrations/webhook-endpoints/"+epID.String(), map[string]any{
		"url": rcv.URL + "/perks", "description": "e2e", "eventTypes": []string{"user.created", "user.anonymised"},
	})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	ep := res.JSON(t)
	secret, _ := ep["secret"].(string)
	require.True(t, strings.HasPrefix(secret, "whsec_"), "%s", res.Body)
	require.Equal(t, epID.String(), ep["id"])
	require.Equal(t, true, ep["enabled"])

	got := env.Partner("acme", http.MethodGet, "/integrations/webhook-endpoints/"+epID.String(), nil)
	require.Equal(t, http.StatusOK, got.StatusCode)
	require.NotContains(t, string(got.Body), "whsec_", "the secret is shown once")

	res = env.Partner("acme", http.MethodPost, "/integrations/users", []byte(`{"externalUserId":"usr_e2e","email":"e2e@acme.example.test","displayName":"E2E"}`))
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	userID := res.JSON(t)["userId"]

	r, p := rcv.next(t)
	require.NoError(t, verifyStandard(secret, r.Header, r.Body, env.Now()))
	require.Equal(t, "user.created", p.Type)
	require.Equal(t, p.ID, r.Header.Get("webhook-id"))
	require.Equal(t, map[string]any{"id": env.Acme.Partner.ID.String(), "slug": "acme"}, p.Partner)
	require.Equal(t, userID, p.Data["userId"])
	require.Equal(t, "usr_e2e", p.Data["externalUserId"])
	require.Equal(t, "e2e@acme.example.test", p.Data["email"])
	createdEvent := p.ID

	// user.updated is not subscribed: nothing is sent (or even queued).
	require.Equal(t, http.StatusOK, env.Partner("acme", http.MethodPost, "/integrations/users", []byte(`{"externalUserId":"usr_e2e","displayName":"E2E 2"}`)).StatusCode)

	res = env.Partner("acme", http.MethodPost, "/integrations/webhook-endpoints/"+epID.String()+"/rotate-secret", []byte(`{"gracePeriodSeconds":3600}`))
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	newSecret := res.JSON(t)["secret"].(string)
	require.NotEqual(t, secret, newSecret)

	require.Equal(t, http.StatusNoContent, env.Partner("acme", http.MethodDelete, "/integrations/users/usr_e2e", nil).StatusCode)
	r, p = rcv.next(t)
	require.Equal(t, "user.anonymised", p.Type)
	require.Len(t, strings.Fields(r.Header.Get("webhook-signature")), 2)
	require.NoError(t, verifyStandard(secret, r.Header, r.Body, env.Now()), "the old secret still verifies during the grace period")
	require.NoError(t, verifyStandard(newSecret, r.Header, r.Body, env.Now()), "the new secret verifies")
	require.NotContains(t, string(r.Body), "e2e@acme")
	require.NotContains(t, string(r.Body), "usr_e2e")
	require.Equal(t, map[string]any{"userId": userID, "externalUserId": nil, "anonymised": true}, p.Data)
	rcv.none(t, env)

	// The delivery log.
	res = env.Partner("acme", http.MethodGet, "/integrations/webhook-deliveries?eventId="+createdEvent, nil)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	var page struct {
		Data []struct {
			ID           string `json:"id"`
			EventType    string `json:"eventType"`
			Status       string `json:"status"`
			AttemptCount int    `json:"attemptCount"`
		} `json:"data"`
		NextCursor *string `json:"nextCursor"`
	}
	require.NoError(t, json.Unmarshal(res.Body, &page))
	require.Len(t, page.Data, 1)
	require.Equal(t, "succeeded", page.Data[0].Status)
	require.Equal(t, 1, page.Data[0].AttemptCount)
	require.Nil(t, page.NextCursor)
	detail := env.Partner("acme", http.MethodGet, "/integrations/webhook-deliveries/"+page.Data[0].ID, nil).JSON(t)
	attempts := detail["attempts"].([]any)
	require.Len(t, attempts, 1)
	require.Equal(t, float64(200), attempts[0].(map[string]any)["statusCode"])

	// Replay one event: same webhook-id, sent again.
	res = env.Partner("acme", http.MethodPost, "/integrations/events/"+createdEvent+"/replay", nil)
	require.Equal(t, http.StatusAccepted, res.StatusCode, "%s", res.Body)
	r, p = rcv.next(t)
	require.Equal(t, createdEvent, r.Header.Get("webhook-id"))
	require.Equal(t, "user.created", p.Type)
	require.Equal(t, map[string]any{"userId": userID, "externalUserId": nil, "anonymised": true}, p.Data, "rebuilt from current state")

	// Replay a window as a River job: both events of the endpoint. The
	// receiver has the replayed delivery before its attempt is recorded:
	// until then the delivery is pending, not succeeded, and the window
	// (of succeeded deliveries) would not take it.
	waitJobsIdle(t, env)
	from := env.Now().Add(-time.Hour).Format(time.RFC3339)
	to := env.Now().Add(time.Hour).Format(time.RFC3339)
	res = env.Partner("acme", http.MethodPost, "/integrations/events/replay", []byte(fmt.Sprintf(`{"from":%q,"to":%q,"status":"succeeded"}`, from, to)))
	require.Equal(t, http.StatusAccepted, res.StatusCode, "%s", res.Body)
	require.Positive(t, res.JSON(t)["jobId"])
	types := map[string]bool{}
	for i := 0; i < 2; i++ {
		_, p := rcv.next(t)
		types[p.Type] = true
	}
	require.Equal(t, map[string]bool{"user.created": true, "user.anonymised": true}, types)
	rcv.none(t, env)
}

// TestPartnersNeverSeeEachOthersEvents: acme's endpoint gets acme's events
// only and globex's gets globex's; neither partner can read, change, delete
// or replay through the other's endpoints, deliveries or events.
func TestPartnersNeverSeeEachOthersEvents(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, apptest.Options{Workers: true})
	acmeRcv, globexRcv := newReceiver(t), newReceiver(t)
	acmeEP := uuid.New()
	require.Equal(t, http.StatusCreated, env.PartnerJSON("acme", http.MethodPut, "/integrations/webhook-endpoints/"+acmeEP.String(), map[string]any{"url": acmeRcv.URL}).StatusCode)
	res := env.PartnerJSON("globex", http.MethodPost, "/integrations/webhook-endpoints", map[string]any{"url": globexRcv.URL})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)

	for _, slug := range []string{"acme", "globex"} {
		for i := 0; i < 3; i++ {
			body := fmt.Sprintf(`{"externalUserId":"%s-%d","email":"u%d@%s.example.test"}`, slug, i, i, slug)
			require.Equal(t, http.StatusCreated, env.Partner(slug, http.MethodPost, "/integrations/users", []byte(body)).StatusCode)
		}
	}
	waitJobsIdle(t, env)
	check := func(rcv *receiver, slug, other string) []string {
		var ids []string
		reqs := rcv.requests()
		require.Len(t, reqs, 3)
		for _, r := range reqs {
			var p payload
			require.NoError(t, json.Unmarshal(r.Body, &p))
			require.Equal(t, slug, p.Partner["slug"])
			require.NotContains(t, string(r.Body), other)
			ids = append(ids, p.ID)
		}
		return ids
	}
	acmeEvents := check(acmeRcv, "acme", "globex")
	check(globexRcv, "globex", "acme")

	before := env.Partner("acme", http.MethodGet, "/integrations/webhook-endpoints/"+acmeEP.String(), nil).JSON(t)
	for _, c := range []struct {
		method, path, body string
	}{
		{http.MethodGet, "/integrations/webhook-endpoints/" + acmeEP.String(), ""},
		{http.MethodDelete, "/integrations/webhook-endpoints/" + acmeEP.String(), ""},
		{http.MethodPost, "/integrations/webhook-endpoints/" + acmeEP.String() + "/rotate-secret", ""},
		{http.MethodPost, "/integrations/events/" + acmeEvents[0] + "/replay", ""},
		{http.MethodPost, "/integrations/events/" + acmeEvents[0] + "/replay", `{"endpointId":"` + acmeEP.String() + `"}`},
	} {
		r := env.Partner("globex", c.method, c.path, []byte(c.body))
		require.Equal(t, http.StatusNotFound, r.StatusCode, "%s %s: %s", c.method, c.path, r.Body)
	}
	list := env.Partner("globex", http.MethodGet, "/integrations/webhook-deliveries?eventId="+acmeEvents[0], nil).JSON(t)
	require.Empty(t, list["data"])
	eps := env.Partner("globex", http.MethodGet, "/integrations/webhook-endpoints", nil).JSON(t)["data"].([]any)
	require.Len(t, eps, 1)
	require.NotEqual(t, acmeEP.String(), eps[0].(map[string]any)["id"])

	// globex may use the same endpoint id for its own endpoint: ids are per
	// partner, and acme's endpoint is untouched.
	res = env.PartnerJSON("globex", http.MethodPut, "/integrations/webhook-endpoints/"+acmeEP.String(), map[string]any{"url": globexRcv.URL + "/second"})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	after := env.Partner("acme", http.MethodGet, "/integrations/webhook-endpoints/"+acmeEP.String(), nil).JSON(t)
	require.Equal(t, before, after)

	// A window replay by globex never reaches acme's receiver.
	from, to := env.Now().Add(-time.Hour).Format(time.RFC3339), env.Now().Add(time.Hour).Format(time.RFC3339)
	res = env.Partner("globex", http.MethodPost, "/integrations/events/replay", []byte(fmt.Sprintf(`{"from":%q,"to":%q}`, from, to)))
	require.Equal(t, http.StatusAccepted, res.StatusCode, "%s", res.Body)
	waitJobsIdle(t, env)
	require.Len(t, acmeRcv.requests(), 3)
	for _, r := range globexRcv.requests() {
		require.NotContains(t, string(r.Body), `"slug":"acme"`)
	}
}
