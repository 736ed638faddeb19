package rest_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/partner"
)

// jwtClaims signs a request JWT with arbitrary claims for client c (its
// partner id, secret and back-end token are filled in when absent).
func (c *seed001Client) jwtClaims(t *testing.T, claims map[string]any) string {
	t.Helper()
	full := map[string]any{"iss": c.partnerID, "sub": c.token, "iat": c.env.Now().Unix()}
	for k, v := range claims {
		full[k] = v
	}
	return apptest.SignJWT(t, map[string]any{"alg": "HS256", "typ": "JWT"}, full, hs256([]byte(c.secret)))
}

// TestSafeRepeatsAreNotReplays: seed 000 step 6 reads two users in one
// second with the same v1 signature (it covers only t and the empty body),
// and a poller repeats the same GET; seed 001's body-less GETs carry the
// same request JWT. None of them is a replay.
func TestSafeRepeatsAreNotReplays(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	provision(t, env, "acme", "A")
	provision(t, env, "acme", "B")
	ts := strconv.FormatInt(env.Now().Unix(), 10)
	sig := "t=" + ts + ",v1=" + auth.SignV1([]byte(acmeSecret), ts, nil)
	for _, path := range []string{"/integrations/users/A", "/integrations/users/B", "/integrations/users/A", "/integrations/users/A"} {
		res := env.Do(hmacRequest(env, http.MethodGet, path, nil, sig))
		require.Equal(t, http.StatusOK, res.StatusCode, "%s: %s", path, res.Body)
	}

	// perks export, restarted within a second, resends the same v2 GET.
	v2 := "t=" + ts + ",v2=" + auth.SignV2([]byte(acmeSecret), ts, http.MethodGet, "/integrations/exports/users", nil)
	for range 2 {
		res := env.Do(hmacRequest(env, http.MethodGet, "/integrations/exports/users", nil, v2))
		require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	}
	// An Ed25519 poller repeats its signed GET.
	ed := newSeed004Client(t, env, "acme")
	for range 2 {
		res := env.Do(ed.request(http.MethodGet, "/integrations/users/A", nil, "", env.Now().Unix(), nil))
		require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	}

	c := newSeed001Client(t, env, "acme", acmeRequestSecret)
	c.login(t)
	tok := seed001JWT(t, c.partnerID, c.secret, c.token, env.Now().Unix(), nil, nil)
	for _, path := range []string{"/integrations/users/A", "/integrations/users/B", "/integrations/users/A"} {
		res := sendJWT(env, http.MethodGet, path, tok, nil, nil)
		require.Equal(t, http.StatusOK, res.StatusCode, "%s: %s", path, res.Body)
	}
}

// TestGETTokenReusedForDELETEIsRefused: a seed-001 token minted for a GET
// (no body, so data_body is empty) verified for a DELETE of the same user
// in the same second and erased them. A token without htm/htu is bound to
// the first request it is used for: reads may repeat it, a write never.
func TestGETTokenReusedForDELETEIsRefused(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	provision(t, env, "acme", "victim")
	provision(t, env, "acme", "other")
	c := newSeed001Client(t, env, "acme", acmeRequestSecret)
	c.login(t)
	tok := seed001JWT(t, c.partnerID, c.secret, c.token, env.Now().Unix(), nil, nil)
	res := sendJWT(env, http.MethodGet, "/integrations/users/victim", tok, nil, nil)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)

	before := dbtest.Snapshot(t, env.DB.Bun)
	res = sendJWT(env, http.MethodDelete, "/integrations/users/victim", tok, nil, nil)
	require.Equal(t, http.StatusUnauthorized, res.StatusCode, "%s", res.Body)
	require.Equal(t, "SIGNATURE_REUSED", res.Code())
	require.Equal(t, before, dbtest.Snapshot(t, env.DB.Bun))
	res = sendJWT(env, http.MethodGet, "/integrations/users/victim", tok, nil, nil)
	require.Equal(t, http.StatusOK, res.StatusCode, "the user is still there")

	// A write token is bound to its first request too: a DELETE token
	// (also body-less) cannot erase another user.
	env.Clock.Advance(time.Second)
	del := seed001JWT(t, c.partnerID, c.secret, c.token, env.Now().Unix(), nil, nil)
	res = sendJWT(env, http.MethodDelete, "/integrations/users/other", del, nil, nil)
	require.Equal(t, http.StatusNoContent, res.StatusCode, "%s", res.Body)
	res = sendJWT(env, http.MethodDelete, "/integrations/users/victim", del, nil, nil)
	require.Equal(t, "SIGNATURE_REUSED", res.Code(), "%s", res.Body)
	res = sendJWT(env, http.MethodGet, "/integrations/users/victim", tok, nil, nil)
	require.Equal(t, http.StatusOK, res.StatusCode, "the victim is still there")
}

// TestV1GETSignatureReusedForDELETEIsRefused: a v1 HMAC signature covers
// only the timestamp and the body, so an observer of a body-less GET holds
// a valid signature for DELETE /integrations/users/{anyone} in that second.
// Reads may share it; a write may not.
func TestV1GETSignatureReusedForDELETEIsRefused(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	provision(t, env, "acme", "victim")
	provision(t, env, "acme", "other")
	ts := strconv.FormatInt(env.Now().Unix(), 10)
	sig := "t=" + ts + ",v1=" + auth.SignV1([]byte(acmeSecret), ts, nil)
	res := env.Do(hmacRequest(env, http.MethodGet, "/integrations/users/other", nil, sig))
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)

	before := dbtest.Snapshot(t, env.DB.Bun)
	res = env.Do(hmacRequest(env, http.MethodDelete, "/integrations/users/victim", nil, sig))
	require.Equal(t, http.StatusUnauthorized, res.StatusCode, "%s", res.Body)
	require.Equal(t, "SIGNATURE_REUSED", res.Code())
	require.Equal(t, before, dbtest.Snapshot(t, env.DB.Bun))

	// A v1 DELETE signature erases one user, never a second.
	env.Clock.Advance(time.Second)
	ts = strconv.FormatInt(env.Now().Unix(), 10)
	del := "t=" + ts + ",v1=" + auth.SignV1([]byte(acmeSecret), ts, nil)
	res = env.Do(hmacRequest(env, http.MethodDelete, "/integrations/users/other", nil, del))
	require.Equal(t, http.StatusNoContent, res.StatusCode, "%s", res.Body)
	res = env.Do(hmacRequest(env, http.MethodDelete, "/integrations/users/victim", nil, del))
	require.Equal(t, "SIGNATURE_REUSED", res.Code(), "%s", res.Body)
	// The DELETE signature cannot even read (it is bound to its write).
	require.Equal(t, "SIGNATURE_REUSED", env.Do(hmacRequest(env, http.MethodGet, "/integrations/users/victim", nil, del)).Code())
	env.Clock.Advance(time.Second)
	res = env.Partner("acme", http.MethodGet, "/integrations/users/victim", nil)
	require.Equal(t, http.StatusOK, res.StatusCode, "the victim is still there")
}

// TestRequestJWTBinding: htm/htu bind a token to its method and path; a jti
// is a nonce; a partner may require the binding.
func TestRequestJWTBinding(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	provision(t, env, "acme", "A")
	provision(t, env, "acme", "B")
	c := newSeed001Client(t, env, "acme", acmeRequestSecret)
	c.login(t)
	url := func(p string) string { return env.Server.URL + p }

	get := func(tok, path string) *apptest.Response { return sendJWT(env, http.MethodGet, path, tok, nil, nil) }
	bound := c.jwtClaims(t, map[string]any{"htm": "GET", "htu": url("/integrations/users/A")})
	require.Equal(t, http.StatusOK, get(bound, "/integrations/users/A").StatusCode)
	require.Equal(t, http.StatusOK, get(bound, "/integrations/users/A").StatusCode, "the same read again")
	require.Equal(t, "REQUEST_BINDING_MISMATCH", get(bound, "/integrations/users/B").Code())
	res := sendJWT(env, http.MethodDelete, "/integrations/users/A", bound, nil, nil)
	require.Equal(t, "REQUEST_BINDING_MISMATCH", res.Code())

	// htu is compared on its path (and its query when it has one): the
	// scheme and host a proxy rewrote do not matter.
	proxied := c.jwtClaims(t, map[string]any{"htm": "GET", "htu": "https://api.partner-facing.example/integrations/users/B"})
	require.Equal(t, http.StatusOK, get(proxied, "/integrations/users/B").StatusCode)
	withQuery := c.jwtClaims(t, map[string]any{"htm": "GET", "htu": url("/integrations/users?limit=1")})
	require.Equal(t, http.StatusOK, get(withQuery, "/integrations/users?limit=1").StatusCode)
	require.Equal(t, "REQUEST_BINDING_MISMATCH", get(withQuery, "/integrations/users?limit=2").Code())

	// A jti is a nonce: the same jti on another request is refused, even
	// in a token that is otherwise different.
	j1 := c.jwtClaims(t, map[string]any{"jti": "n-1"})
	require.Equal(t, http.StatusOK, get(j1, "/integrations/users/A").StatusCode)
	j1b := c.jwtClaims(t, map[string]any{"jti": "n-1", "htm": "GET", "htu": url("/integrations/users/B")})
	require.Equal(t, "SIGNATURE_REUSED", get(j1b, "/integrations/users/B").Code())

	// The partner switch: unbound tokens are refused.
	setControls(t, env, "acme", partner.Controls{RequireRequestBinding: ptr(true)})
	env.Clock.Advance(time.Second)
	plain := seed001JWT(t, c.partnerID, c.secret, c.token, env.Now().Unix(), nil, nil)
	require.Equal(t, "REQUEST_BINDING_REQUIRED", get(plain, "/integrations/users/A").Code())
	ok := c.jwtClaims(t, map[string]any{"htm": "GET", "htu": url("/integrations/users/A")})
	require.Equal(t, http.StatusOK, get(ok, "/integrations/users/A").StatusCode)
	// POST /auth/token is bound like any other request.
	tokReq := c.jwtClaims(t, map[string]any{"sub": "", "htm": "POST", "htu": url("/auth/token")})
	require.Equal(t, http.StatusOK, sendJWT(env, http.MethodPost, "/auth/token", tokReq, nil, nil).StatusCode)
}

// TestRetriedWriteGetsStoredAnswer: an HTTP client that retries a timed-out
// write sends the same signed bytes again. With an Idempotency-Key (or an
// earn reference) it gets the stored answer; without, a refusal that says
// what to add. A failed write stays refused.
func TestRetriedWriteGetsStoredAnswer(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	provision(t, env, "acme", "alice")
	ts := strconv.FormatInt(env.Now().Unix(), 10)
	signed := func(body []byte, headers map[string]string) func() *apptest.Response {
		sig := "t=" + ts + ",v1=" + auth.SignV1([]byte(acmeSecret), ts, body)
		return func() *apptest.Response {
			req := hmacRequest(env, http.MethodPost, "/integrations/actions", body, sig)
			for k, v := range headers {
				req.Header.Set(k, v)
			}
			return env.Do(req)
		}
	}
	withKey := signed([]byte(`{"externalUserId":"alice","action":"purchase","points":10}`), map[string]string{"Idempotency-Key": "k-1"})
	first := withKey()
	require.Equal(t, http.StatusCreated, first.StatusCode, "%s", first.Body)
	again := withKey()
	require.Equal(t, http.StatusCreated, again.StatusCode, "%s", again.Body)
	require.Equal(t, string(first.Body), string(again.Body))
	require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))

	withRef := signed([]byte(`{"externalUserId":"alice","action":"purchase","points":11,"reference":"o-1"}`), nil)
	first = withRef()
	require.Equal(t, http.StatusCreated, first.StatusCode, "%s", first.Body)
	again = withRef()
	require.Equal(t, string(first.Body), string(again.Body))
	require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))

	// A captured keyed write resent with another key is still a replay:
	// HMAC does not sign the Idempotency-Key header.
	stolen := signed([]byte(`{"externalUserId":"alice","action":"purchase","points":10}`), map[string]string{"Idempotency-Key": "k-2"})
	res := stolen()
	require.Equal(t, "SIGNATURE_REPLAYED", res.Code(), "%s", res.Body)

	bare := signed([]byte(`{"externalUserId":"alice","action":"purchase","points":12}`), nil)
	require.Equal(t, http.StatusCreated, bare().StatusCode)
	res = bare()
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	require.Equal(t, "SIGNATURE_REPLAYED", res.Code())
	require.Contains(t, string(res.Body), "Idempotency-Key")
	require.Equal(t, 3, entries(t, env))

	// A failed keyed write is not stored and stays refused when resent.
	failing := signed([]byte(`{"externalUserId":"nobody","action":"purchase","points":1}`), map[string]string{"Idempotency-Key": "k-3"})
	require.Equal(t, "USER_NOT_FOUND", failing().Code())
	provision(t, env, "acme", "nobody")
	require.Equal(t, "SIGNATURE_REPLAYED", failing().Code())
	require.Equal(t, 3, entries(t, env))
}

// TestBulkBodiesWithRequestJWT: a 10,000-item multistore and a 100,000-id
// multidelete fit once the token carries data_body_sha256 instead of the
// body; repeating the body in the token answers 431 as problem+json.
func TestBulkBodiesWithRequestJWT(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	c := newSeed001Client(t, env, "acme", acmeRequestSecret)
	c.login(t)

	items := make([]map[string]any, 10_000)
	for i := range items {
		items[i] = map[string]any{"externalUserId": fmt.Sprintf("bulk-%05d", i), "action": "purchase", "points": 1, "reference": fmt.Sprintf("r-%05d", i)}
	}
	body, err := json.Marshal(map[string]any{"items": items})
	require.NoError(t, err)

	inline := c.jwtClaims(t, map[string]any{"data_body": string(body)})
	res := sendJWT(env, http.MethodPost, "/integrations/actions/multistore", inline, body, nil)
	require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, res.StatusCode)
	require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))
	require.Equal(t, "REQUEST_HEADERS_TOO_LARGE", res.Code())
	require.Contains(t, string(res.Body), "data_body_sha256")
	t.Logf("10,000-item multistore: body %d bytes, token with data_body %d bytes", len(body), len(inline))

	sum := sha256.Sum256(body)
	digest := c.jwtClaims(t, map[string]any{"data_body_sha256": hex.EncodeToString(sum[:])})
	res = sendJWT(env, http.MethodPost, "/integrations/actions/multistore", digest, body, nil)
	require.Equal(t, http.StatusAccepted, res.StatusCode, "%s", res.Body)

	// The digest binds the body: another body is refused, and base64url is
	// accepted too.
	other := bytes.Replace(body, []byte("bulk-00000"), []byte("bulk-99999"), 1)
	env.Clock.Advance(time.Second)
	res = sendJWT(env, http.MethodPost, "/integrations/actions/multistore", c.jwtClaims(t, map[string]any{"data_body_sha256": hex.EncodeToString(sum[:])}), other, nil)
	require.Equal(t, "INVALID_SIGNATURE", res.Code())

	ids := make([]string, 100_000)
	for i := range ids {
		ids[i] = fmt.Sprintf("gone-%06d", i)
	}
	body, err = json.Marshal(map[string]any{"externalUserIds": ids})
	require.NoError(t, err)
	sum = sha256.Sum256(body)
	tok := c.jwtClaims(t, map[string]any{"data_body_sha256": strings.TrimRight(b64url(sum[:]), "=")})
	start := time.Now()
	res = sendJWT(env, http.MethodPost, "/integrations/users/multidelete", tok, body, nil)
	require.Equal(t, http.StatusAccepted, res.StatusCode, "%s", res.Body)
	t.Logf("100,000-id multidelete: body %d bytes, token with data_body_sha256 %d bytes, answered in %v", len(body), len(tok), time.Since(start))
}

// TestWebhookCreateAndRotateAreIdempotent: a retried create (same
// Idempotency-Key) never makes a second endpoint and a retried rotation
// never rotates twice; the secret is shown once, in the first answer, and
// is not stored with the idempotency record.
func TestWebhookCreateAndRotateAreIdempotent(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	count := func() int {
		var n int
		require.NoError(t, env.DB.Bun.NewRaw("SELECT count(*) FROM webhook_endpoints").Scan(t.Context(), &n))
		return n
	}
	before := count()
	key := map[string]string{"Idempotency-Key": "create-hook-1"}
	body := []byte(`{"url":"https://hooks.example.com/idem"}`)
	first := env.Partner("acme", http.MethodPost, "/integrations/webhook-endpoints", body, key)
	require.Equal(t, http.StatusCreated, first.StatusCode, "%s", first.Body)
	created := first.JSON(t)
	secret := created["secret"].(string)
	require.NotEmpty(t, secret)

	env.Clock.Advance(time.Second)
	again := env.Partner("acme", http.MethodPost, "/integrations/webhook-endpoints", body, key)
	require.Equal(t, http.StatusCreated, again.StatusCode, "%s", again.Body)
	require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
	replayed := again.JSON(t)
	require.Equal(t, created["id"], replayed["id"], "the same endpoint")
	require.Nil(t, replayed["secret"], "the secret is shown once")
	require.Contains(t, replayed["secretNote"], "shown once")
	require.Equal(t, before+1, count())

	id := created["id"].(string)
	rkey := map[string]string{"Idempotency-Key": "rotate-1"}
	rot := env.Partner("acme", http.MethodPost, "/integrations/webhook-endpoints/"+id+"/rotate-secret", nil, rkey)
	require.Equal(t, http.StatusOK, rot.StatusCode, "%s", rot.Body)
	newSecret := rot.JSON(t)["secret"].(string)
	require.NotEqual(t, secret, newSecret)
	var sealed []byte
	require.NoError(t, env.DB.Bun.NewRaw("SELECT secret_sealed FROM webhook_endpoints WHERE id = ?", id).Scan(t.Context(), &sealed))
	env.Clock.Advance(time.Second)
	rot2 := env.Partner("acme", http.MethodPost, "/integrations/webhook-endpoints/"+id+"/rotate-secret", nil, rkey)
	require.Equal(t, http.StatusOK, rot2.StatusCode, "%s", rot2.Body)
	require.Equal(t, "true", rot2.Header.Get("Idempotent-Replayed"))
	require.Nil(t, rot2.JSON(t)["secret"])
	var sealed2 []byte
	require.NoError(t, env.DB.Bun.NewRaw("SELECT secret_sealed FROM webhook_endpoints WHERE id = ?", id).Scan(t.Context(), &sealed2))
	require.Equal(t, sealed, sealed2, "not rotated twice")

	var stored string
	require.NoError(t, env.DB.Bun.NewRaw("SELECT string_agg(convert_from(response_body, 'UTF8'), '') FROM idempotency_keys").Scan(t.Context(), &stored))
	require.NotContains(t, stored, secret)
	require.NotContains(t, stored, newSecret)
}
