package rest_test

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/auth"
)

// TestWebhookPutResentWithSameSignature: an HTTP client retrying a timed-out
// PUT of a webhook endpoint resends the same signed bytes. With an
// Idempotency-Key it gets the stored answer (the endpoint created once, its
// secret shown once and never stored); without one, a refusal whose advice
// (add an Idempotency-Key) this route now honours.
func TestWebhookPutResentWithSameSignature(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	ts := strconv.FormatInt(env.Now().Unix(), 10)
	put := func(id string, body []byte, key string) func() *apptest.Response {
		path := "/integrations/webhook-endpoints/" + id
		sig := "t=" + ts + ",v2=" + auth.SignV2([]byte(acmeSecret), ts, http.MethodPut, path, body)
		return func() *apptest.Response {
			req := hmacRequest(env, http.MethodPut, path, body, sig)
			if key != "" {
				req.Header.Set("Idempotency-Key", key)
			}
			return env.Do(req)
		}
	}
	endpoints := func() int { return env.Count("webhook_endpoints", "true") }
	before := endpoints()

	id := uuid.NewString()
	create := put(id, []byte(`{"url":"https://hooks.example.com/put"}`), "put-hook-1")
	first := create()
	require.Equal(t, http.StatusCreated, first.StatusCode, "%s", first.Body)
	secret, _ := first.JSON(t)["secret"].(string)
	require.NotEmpty(t, secret)
	again := create()
	require.Equal(t, http.StatusCreated, again.StatusCode, "%s", again.Body)
	require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
	replayed := again.JSON(t)
	require.Equal(t, id, replayed["id"])
	require.Nil(t, replayed["secret"], "the secret is shown once")
	require.Contains(t, replayed["secretNote"], "shown once")
	require.Equal(t, before+1, endpoints())

	// A replacement (no secret in its answer) is replayed as it was.
	replace := put(id, []byte(`{"url":"https://hooks.example.com/put2","enabled":false}`), "put-hook-2")
	first = replace()
	require.Equal(t, http.StatusOK, first.StatusCode, "%s", first.Body)
	again = replace()
	require.Equal(t, http.StatusOK, again.StatusCode, "%s", again.Body)
	require.Equal(t, string(first.Body), string(again.Body))
	require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))

	// Without a key: refused, saying to add one.
	bare := put(id, []byte(`{"url":"https://hooks.example.com/put3"}`), "")
	require.Equal(t, http.StatusOK, bare().StatusCode)
	res := bare()
	require.Equal(t, http.StatusUnauthorized, res.StatusCode, "%s", res.Body)
	require.Equal(t, "SIGNATURE_REPLAYED", res.Code())
	require.Contains(t, res.JSON(t)["detail"], "Idempotency-Key")

	// No secret at rest with the stored answers.
	var stored string
	require.NoError(t, env.DB.Bun.NewRaw("SELECT coalesce(string_agg(convert_from(response_body, 'UTF8'), ''), '') FROM idempotency_keys").Scan(t.Context(), &stored))
	require.Contains(t, stored, id)
	require.NotContains(t, stored, secret)
}

// TestTokenRequestResent: a request JWT for POST /auth/token buys one
// back-end token. Resending it (an HTTP client's retry, or someone who saw
// it) never buys a second: the refusal says to sign a new request JWT and
// does not suggest an Idempotency-Key, which this route does not honour (a
// token is never stored to be shown again).
func TestTokenRequestResent(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	c := newSeed001Client(t, env, "acme", acmeRequestSecret)
	tokens := func() int { return env.Count("partner_backend_tokens", "true") }
	before := tokens()
	url := env.Server.URL + "/auth/token"
	for _, claims := range []map[string]any{
		{"sub": ""},
		{"sub": "", "jti": "login-1", "htm": "POST", "htu": url},
	} {
		tok := c.jwtClaims(t, claims)
		res := sendJWT(env, http.MethodPost, "/auth/token", tok, nil, nil)
		require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
		for _, h := range []map[string]string{nil, {"Idempotency-Key": "login"}} {
			res = sendJWT(env, http.MethodPost, "/auth/token", tok, nil, h)
			require.Equal(t, http.StatusUnauthorized, res.StatusCode, "%s", res.Body)
			require.Equal(t, "SIGNATURE_REPLAYED", res.Code())
			detail, _ := res.JSON(t)["detail"].(string)
			require.Contains(t, detail, "new request JWT")
			require.NotContains(t, detail, "send an Idempotency-Key")
			require.NotContains(t, string(res.Body), "perks_bt_")
		}
	}
	require.Equal(t, before+2, tokens())
}
