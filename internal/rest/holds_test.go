package rest_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/ledger"
)

// TestPendingEarnsAPI: earns held (pending: true) or pending until a date,
// then confirmed or cancelled by reference: answers, replays, refusals of
// bad input (which change nothing) and another partner's reference.
func TestPendingEarnsAPI(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	provision(t, env, "acme", "alice")
	provision(t, env, "globex", "alice")
	now := env.Clock.Now()
	until := now.Add(48 * time.Hour).UTC().Format(time.RFC3339)

	// send advances the clock first so no two requests share a signature
	// (a resent signature without a key is SIGNATURE_REPLAYED).
	send := func(slug, path, body string, headers ...map[string]string) *apptest.Response {
		t.Helper()
		env.Clock.Advance(time.Second)
		return env.Partner(slug, http.MethodPost, path, []byte(body), headers...)
	}
	earn := func(extra string) *apptest.Response {
		t.Helper()
		return send("acme", "/integrations/actions", `{"externalUserId":"alice","action":"purchase","points":50`+extra+`}`)
	}

	// The earn answers.
	held := earn(`,"reference":"held-1","pending":true`)
	require.Equal(t, http.StatusCreated, held.StatusCode, "%s", held.Body)
	got := held.JSON(t)
	require.Equal(t, true, got["pending"])
	require.Equal(t, true, got["held"])
	require.NotContains(t, got, "pendingUntil")
	require.EqualValues(t, 0, got["balance"])
	dated := earn(`,"reference":"dated-1","pendingUntil":"` + until + `"`)
	require.Equal(t, http.StatusCreated, dated.StatusCode, "%s", dated.Body)
	got = dated.JSON(t)
	require.Equal(t, true, got["pending"])
	require.Equal(t, until, got["pendingUntil"])
	require.NotContains(t, got, "held")
	plain := earn(`,"reference":"plain-1"`)
	require.Equal(t, http.StatusCreated, plain.StatusCode, "%s", plain.Body)
	require.Equal(t, false, plain.JSON(t)["pending"])
	require.Equal(t, http.StatusCreated, earn(`,"reference":"held-2","pending":true`).StatusCode)
	// Globex's own held earn with a reference acme also knows.
	_, _, err := env.App.Earning.PutRule(context.Background(), env.DB.Bun, env.Globex.Partner.ID, "purchase", acmePurchaseRule())
	require.NoError(t, err)
	g := send("globex", "/integrations/actions", `{"externalUserId":"alice","action":"purchase","points":5,"reference":"theirs","pending":true}`)
	require.Equal(t, http.StatusCreated, g.StatusCode, "%s", g.Body)
	before := entries(t, env)

	// Bad earns change nothing.
	for _, tc := range []struct{ extra, code, field string }{
		{`,"reference":"x1","pending":true,"pendingUntil":"` + until + `"`, "INVALID_FIELD", "pending"},
		{`,"reference":"x2","pendingUntil":"tomorrow"`, "INVALID_FIELD", "pendingUntil"},
		{`,"reference":"x3","pendingUntil":"` + now.Add(-time.Hour).Format(time.RFC3339) + `"`, "INVALID_FIELD", "pendingUntil"},
		{`,"reference":"x4","pendingUntil":"` + now.AddDate(11, 0, 0).Format(time.RFC3339) + `"`, "INVALID_FIELD", "pendingUntil"},
		{`,"reference":"x5","pendingUntil":12`, "INVALID_FIELD", "pendingUntil"},
		{`,"pending":true`, "MISSING_FIELD", "reference"},
		{`,"reference":"x6","pending":"yes"`, "", ""},
	} {
		res := earn(tc.extra)
		require.Equal(t, http.StatusBadRequest, res.StatusCode, "%s: %s", tc.extra, res.Body)
		if tc.code != "" {
			require.Equal(t, tc.code, res.Code(), "%s", tc.extra)
			require.Equal(t, tc.field, res.JSON(t)["field"], "%s", tc.extra)
		}
	}
	require.Equal(t, before, entries(t, env))

	// Bad confirms and cancels change nothing.
	for _, tc := range []struct {
		slug, path, body, ctype string
		status                  int
		code                    string
	}{
		{"acme", "/integrations/actions/nope/confirm", "{}", "", 404, "EARN_NOT_FOUND"},
		{"acme", "/integrations/actions/nope/cancel", "{}", "", 404, "EARN_NOT_FOUND"},
		{"globex", "/integrations/actions/held-1/confirm", "{}", "", 404, "EARN_NOT_FOUND"},
		{"globex", "/integrations/actions/held-1/cancel", "{}", "", 404, "EARN_NOT_FOUND"},
		{"acme", "/integrations/actions/theirs/confirm", "{}", "", 404, "EARN_NOT_FOUND"},
		{"acme", "/integrations/actions/plain-1/confirm", "{}", "", 409, "EARN_NOT_PENDING"},
		{"acme", "/integrations/actions/plain-1/cancel", "{}", "", 409, "EARN_NOT_PENDING"},
		{"acme", "/integrations/actions/bad%20ref/confirm", "{}", "", 400, "INVALID_FIELD"},
		{"acme", "/integrations/actions/held-1/confirm", `{"reason":"x"}`, "", 400, ""},
		{"acme", "/integrations/actions/held-1/confirm", `[1]`, "", 400, "MALFORMED_JSON"},
		{"acme", "/integrations/actions/held-1/confirm", "", "", 415, "UNSUPPORTED_MEDIA_TYPE"},
		{"acme", "/integrations/actions/held-1/cancel", " ", "", 400, "MALFORMED_JSON"},
		{"acme", "/integrations/actions/held-1/cancel", `{"reason":"` + strings.Repeat("r", 501) + `"}`, "", 400, "INVALID_FIELD"},
		{"acme", "/integrations/actions/held-1/cancel", `{"reason":"a\u0007b"}`, "", 400, "INVALID_FIELD"},
		{"acme", "/integrations/actions/held-1/cancel", `{"reason":5}`, "", 400, ""},
		{"acme", "/integrations/actions/held-1/cancel", `{"reason":"x"}`, "text/plain", 415, ""},
	} {
		var h []map[string]string
		if tc.ctype != "" {
			h = append(h, map[string]string{"Content-Type": tc.ctype})
		}
		res := send(tc.slug, tc.path, tc.body, h...)
		require.Equal(t, tc.status, res.StatusCode, "%s %s %s: %s", tc.slug, tc.path, tc.body, res.Body)
		if tc.code != "" {
			require.Equal(t, tc.code, res.Code(), "%s %s", tc.path, tc.body)
		}
	}
	require.Equal(t, before, entries(t, env))

	// Confirm, with a key: the retry is a replay; without a key, a second
	// confirm answers already.
	key := map[string]string{"Idempotency-Key": "confirm-held-1"}
	c1 := send("acme", "/integrations/actions/held-1/confirm", "{}", key)
	require.Equal(t, http.StatusOK, c1.StatusCode, "%s", c1.Body)
	got = c1.JSON(t)
	require.Equal(t, "confirmed", got["status"])
	require.Equal(t, false, got["already"])
	require.EqualValues(t, 100, got["balance"], "plain-1's 50 and held-1's 50")
	require.EqualValues(t, 100, got["pendingPoints"], "held-2 and dated-1")
	c2 := send("acme", "/integrations/actions/held-1/confirm", "{}", key)
	require.Equal(t, string(c1.Body), string(c2.Body))
	require.Equal(t, "true", c2.Header.Get("Idempotent-Replayed"))
	c3 := send("acme", "/integrations/actions/held-1/confirm", "{}")
	require.Equal(t, http.StatusOK, c3.StatusCode, "%s", c3.Body)
	require.Equal(t, true, c3.JSON(t)["already"])
	require.Equal(t, got["entryId"], c3.JSON(t)["entryId"])
	require.Equal(t, "EARN_NOT_PENDING", send("acme", "/integrations/actions/held-1/cancel", "{}").Code())

	// Cancel with a reason; then a confirm is refused, a second cancel is
	// already.
	x1 := send("acme", "/integrations/actions/held-2/cancel", `{"reason":"order returned"}`)
	require.Equal(t, http.StatusOK, x1.StatusCode, "%s", x1.Body)
	got = x1.JSON(t)
	require.Equal(t, "cancelled", got["status"])
	require.EqualValues(t, 100, got["balance"])
	require.Equal(t, "EARN_CANCELLED", send("acme", "/integrations/actions/held-2/confirm", "{}").Code())
	x2 := send("acme", "/integrations/actions/held-2/cancel", "{}")
	require.Equal(t, http.StatusOK, x2.StatusCode)
	require.Equal(t, true, x2.JSON(t)["already"])

	// Early confirm of an earn pending until a date.
	d := send("acme", "/integrations/actions/dated-1/confirm", "{}")
	require.Equal(t, http.StatusOK, d.StatusCode, "%s", d.Body)
	require.EqualValues(t, 150, d.JSON(t)["balance"])
	require.EqualValues(t, 0, d.JSON(t)["pendingPoints"])

	require.Equal(t, before+3, entries(t, env), "two activations and one cancel")
	require.NoError(t, ledger.CheckInvariants(context.Background(), env.DB.Bun))
	var n int
	require.NoError(t, env.DB.Bun.NewRaw("SELECT count(*) FROM events WHERE type IN ('points.pending', 'points.activated', 'points.cancelled')").Scan(context.Background(), &n))
	require.Equal(t, 4+2+1, n, "4 pending earns (3 acme, 1 globex), 2 activations, 1 cancel")
}
