package rest_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/partner"
)

// phpJSONEncode is PHP's json_encode with default flags: "/" is escaped as
// "\/" and every non-ASCII character as \uXXXX (UTF-16), while < > & are
// left alone (unlike Go's encoder).
func phpJSONEncode(t testing.TB, v any) string {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	require.NoError(t, enc.Encode(v))
	var out strings.Builder
	for _, r := range strings.TrimSuffix(buf.String(), "\n") {
		switch {
		case r == '/':
			out.WriteString(`\/`)
		case r > 0x7e:
			for _, u := range utf16.Encode([]rune{r}) {
				fmt.Fprintf(&out, `\u%04x`, u)
			}
		default:
			out.WriteRune(r)
		}
	}
	return out.String()
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// seed001JWT is seed 001's PHP pseudo-code, line for line:
//
//	$header = ["alg" => HS256, "typ" => JWT];
//	$payload = ["iss" => $partnerID, "sub" => $token, "iat" => $timestamp,
//	            "data_header" => json_encode($requestHeaders), "data_body" => json_encode($requestBody)];
//	$signature = HMACSHA256(base64UrlEncode($header) . "." . base64UrlEncode($payload), $partnerSecret);
//	$jwtToken = base64UrlEncode($header) . "." . base64UrlEncode($payload) . "." . $signature;
//
// $requestHeaders and $requestBody are PHP values (nil, arrays, maps),
// encoded with PHP's json_encode.
func seed001JWT(t testing.TB, partnerID, partnerSecret, token string, timestamp int64, requestHeaders, requestBody any) string {
	t.Helper()
	header := `{"alg":"HS256","typ":"JWT"}`
	payload := fmt.Sprintf(`{"iss":%s,"sub":%s,"iat":%d,"data_header":%s,"data_body":%s}`,
		phpJSONEncode(t, partnerID), phpJSONEncode(t, token), timestamp,
		phpJSONEncode(t, phpJSONEncode(t, requestHeaders)), phpJSONEncode(t, phpJSONEncode(t, requestBody)))
	input := b64url([]byte(header)) + "." + b64url([]byte(payload))
	m := hmac.New(sha256.New, []byte(partnerSecret))
	m.Write([]byte(input))
	return input + "." + b64url(m.Sum(nil))
}

type seed001Client struct {
	env       *apptest.Env
	partnerID string
	secret    string
	token     string
}

const acmeRequestSecret = "partnerSecret-acme-0123456789abcdef"

func newSeed001Client(t *testing.T, env *apptest.Env, slug, secret string) *seed001Client {
	t.Helper()
	p, err := env.App.Partners.BySlug(context.Background(), env.DB.Bun, slug)
	require.NoError(t, err)
	_, err = env.App.Partners.AddSharedSecret(context.Background(), env.DB.Bun, p.ID, partner.KindRequestJWT, "seed 001", []byte(secret))
	require.NoError(t, err)
	return &seed001Client{env: env, partnerID: p.ID.String(), secret: secret}
}

// send posts body (sent as bodyBytes, which may be encoded differently
// from the PHP value) with a request JWT built from requestBody.
func (c *seed001Client) send(method, path string, headers map[string]string, requestBody any, bodyBytes []byte) *apptest.Response {
	req, err := http.NewRequest(method, c.env.Server.URL+path, bytes.NewReader(bodyBytes))
	require.NoError(c.env.T, err)
	var phpHeaders any
	if len(headers) > 0 {
		phpHeaders = headers
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	jwt := seed001JWT(c.env.T, c.partnerID, c.secret, c.token, c.env.Now().Unix(), phpHeaders, requestBody)
	req.Header.Set("Authorization", "Bearer "+jwt)
	return c.env.Do(req)
}

func (c *seed001Client) login(t *testing.T) {
	t.Helper()
	res := c.send(http.MethodPost, "/auth/token", nil, []any{}, nil)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	got := res.JSON(t)
	require.Equal(t, float64(3600), got["expiresIn"])
	require.Equal(t, "no-store", res.Header.Get("Cache-Control"))
	c.token = got["token"].(string)
	require.True(t, strings.HasPrefix(c.token, partner.BackendTokenPrefix))
}

// TestSeed001RequestJWTClient runs seed 001's back-end flow with the PHP
// recipe: auth/token, then calls whose JWT binds the body (PHP-encoded,
// while the HTTP body is encoded by another library) and the headers.
func TestSeed001RequestJWTClient(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	c := newSeed001Client(t, env, "acme", acmeRequestSecret)
	c.login(t)

	user := map[string]any{"externalUserId": "usr_001", "displayName": "Zoë A/B", "email": "zoe@acme.example.test"}
	goBody, err := json.Marshal(user)
	require.NoError(t, err)
	require.NotEqual(t, phpJSONEncode(t, user), string(goBody), "the encodings differ, so the semantic comparison is exercised")
	res := c.send(http.MethodPost, "/integrations/users", map[string]string{"Content-Type": "application/json"}, user, goBody)
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)

	// Byte-identical data_body, as a client that sends json_encode's output.
	env.Clock.Advance(time.Second)
	php := []byte(phpJSONEncode(t, map[string]any{"externalUserId": "usr_001", "locale": "fr_FR"}))
	res = c.send(http.MethodPost, "/integrations/users", map[string]string{"Content-Type": "application/json"}, map[string]any{"externalUserId": "usr_001", "locale": "fr_FR"}, php)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)

	res = c.send(http.MethodGet, "/integrations/users/usr_001", nil, nil, nil)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	require.Equal(t, "Zoë A/B", res.JSON(t)["displayName"])

	res = c.send(http.MethodPost, "/integrations/users/usr_001/logout", nil, "", nil)
	require.Equal(t, http.StatusNoContent, res.StatusCode, "%s", res.Body)

	// iss may be the partner's slug too (documented convenience).
	bySlug := &seed001Client{env: env, partnerID: "acme", secret: acmeRequestSecret}
	env.Clock.Advance(time.Second)
	bySlug.login(t)
	// A token is the partner's, not the credential's caller: any live token works.
	res = bySlug.send(http.MethodGet, "/integrations/users/usr_001", nil, nil, nil)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)

	// Back-end tokens expire after the documented hour.
	env.Clock.Advance(time.Hour + time.Second)
	res = c.send(http.MethodGet, "/integrations/users/usr_001", nil, nil, nil)
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	require.Equal(t, "TOKEN_EXPIRED", res.Code())

	var stored []byte
	require.NoError(t, env.DB.Bun.NewRaw("SELECT token_hash FROM partner_backend_tokens LIMIT 1").Scan(t.Context(), &stored))
	require.NotContains(t, string(stored), c.token, "only a hash of the token is stored")
	require.NotContains(t, env.Logs.String(), c.token)
}

// TestRequestJWTAttacks: every forged, stale, replayed or mismatched request
// JWT is refused with its code and changes nothing.
func TestRequestJWTAttacks(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	c := newSeed001Client(t, env, "acme", acmeRequestSecret)
	c.login(t)
	g := newSeed001Client(t, env, "globex", "partnerSecret-globex-0123456789abcd")
	g.login(t)
	now := env.Now().Unix()
	acme, err := env.App.Partners.BySlug(t.Context(), env.DB.Bun, "acme")
	require.NoError(t, err)

	// A second acme credential, disabled, and a token it obtained.
	dis, err := env.App.Partners.AddSharedSecret(t.Context(), env.DB.Bun, acme.ID, partner.KindRequestJWT, "old", []byte("partnerSecret-acme-disabled-000000"))
	require.NoError(t, err)
	disTok, _, err := env.App.Partners.IssueBackendToken(t.Context(), env.DB.Bun, acme.ID, dis.ID, time.Hour)
	require.NoError(t, err)
	require.NoError(t, env.App.Partners.SetCredentialEnabled(t.Context(), env.DB.Bun, acme.ID, dis.ID, false))
	creds, err := env.App.Partners.ListCredentials(t.Context(), env.DB.Bun, acme.ID)
	require.NoError(t, err)
	var live uuid.UUID
	for _, cr := range creds {
		if cr.Kind == partner.KindRequestJWT && cr.Enabled {
			live = cr.ID
		}
	}
	expiredTok, _, err := env.App.Partners.IssueBackendToken(t.Context(), env.DB.Bun, acme.ID, live, -time.Second)
	require.NoError(t, err)

	body := []byte(validBody)
	var bodyValue map[string]any
	require.NoError(t, json.Unmarshal(body, &bodyValue))
	jwt := func(iss, secret, sub string, iat int64, headers, reqBody any) string {
		return seed001JWT(t, iss, secret, sub, iat, headers, reqBody)
	}
	forge := func(header, claims map[string]any, sign func([]byte) []byte) string {
		return apptest.SignJWT(t, header, claims, sign)
	}
	claims := map[string]any{"iss": c.partnerID, "sub": c.token, "iat": now, "data_body": validBody}
	hs512 := func(input []byte) []byte {
		m := hmac.New(sha512.New, []byte(acmeRequestSecret))
		m.Write(input)
		return m.Sum(nil)
	}
	replayedJWT := jwt(c.partnerID, acmeRequestSecret, c.token, now-2, nil, bodyValue)
	res := sendJWT(env, http.MethodPost, "/integrations/users", replayedJWT, body, nil)
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)

	type tc struct {
		name, method, path, jwt string
		body                    []byte
		headers                 map[string]string
		status                  int
		code                    string
	}
	post := func(name, token string, b []byte, status int, code string) tc {
		return tc{name: name, method: http.MethodPost, path: "/integrations/users", jwt: token, body: b, status: status, code: code}
	}
	other := []byte(strings.Replace(validBody, "usr_1", "usr_2", 1))
	cases := []tc{
		post("data_body of another body", jwt(c.partnerID, acmeRequestSecret, c.token, now, nil, bodyValue), other, 401, "INVALID_SIGNATURE"),
		post("data_body absent", forge(map[string]any{"alg": "HS256", "typ": "JWT"}, map[string]any{"iss": c.partnerID, "sub": c.token, "iat": now}, hs256([]byte(acmeRequestSecret))), body, 401, "INVALID_SIGNATURE"),
		post("data_body empty for a body", jwt(c.partnerID, acmeRequestSecret, c.token, now, nil, nil), body, 401, "INVALID_SIGNATURE"),
		post("stale iat", jwt(c.partnerID, acmeRequestSecret, c.token, now-301, nil, bodyValue), body, 401, "TIMESTAMP_OUT_OF_RANGE"),
		post("future iat", jwt(c.partnerID, acmeRequestSecret, c.token, now+301, nil, bodyValue), body, 401, "TIMESTAMP_OUT_OF_RANGE"),
		post("no iat", forge(map[string]any{"alg": "HS256"}, map[string]any{"iss": c.partnerID, "sub": c.token, "data_body": validBody}, hs256([]byte(acmeRequestSecret))), body, 401, "INVALID_SIGNATURE"),
		post("alg none", forge(map[string]any{"alg": "none", "typ": "JWT"}, claims, nil), body, 401, "INVALID_SIGNATURE"),
		post("alg HS512 with the secret", forge(map[string]any{"alg": "HS512", "typ": "JWT"}, claims, hs512), body, 401, "INVALID_SIGNATURE"),
		post("wrong secret", jwt(c.partnerID, "not-the-partner-secret-at-all!!", c.token, now, nil, bodyValue), body, 401, "INVALID_SIGNATURE"),
		post("unknown iss", jwt(uuid.NewString(), acmeRequestSecret, c.token, now, nil, bodyValue), body, 401, "INVALID_SIGNATURE"),
		post("iss of another partner", jwt(g.partnerID, acmeRequestSecret, c.token, now, nil, bodyValue), body, 401, "INVALID_SIGNATURE"),
		post("signed with a disabled credential", jwt(c.partnerID, "partnerSecret-acme-disabled-000000", c.token, now, nil, bodyValue), body, 401, "INVALID_SIGNATURE"),
		post("sub is not a token", jwt(c.partnerID, acmeRequestSecret, "made-up-token", now, nil, bodyValue), body, 401, "TOKEN_INVALID"),
		post("sub is another partner's token", jwt(c.partnerID, acmeRequestSecret, g.token, now, nil, bodyValue), body, 401, "TOKEN_INVALID"),
		post("sub from a disabled credential", jwt(c.partnerID, acmeRequestSecret, disTok, now, nil, bodyValue), body, 401, "TOKEN_INVALID"),
		post("sub expired", jwt(c.partnerID, acmeRequestSecret, expiredTok, now, nil, bodyValue), body, 401, "TOKEN_EXPIRED"),
		post("empty sub on a call", jwt(c.partnerID, acmeRequestSecret, "", now, nil, bodyValue), body, 401, "UNAUTHENTICATED"),
		post("replayed", replayedJWT, body, 401, "SIGNATURE_REPLAYED"),
		post("signature segment swapped", strings.Join(append(strings.Split(jwt(c.partnerID, acmeRequestSecret, c.token, now, nil, bodyValue), ".")[:2], strings.Split(replayedJWT, ".")[2]), "."), body, 401, "INVALID_SIGNATURE"),
		{name: "data_header mismatch", method: http.MethodPost, path: "/integrations/users", body: body,
			jwt:     jwt(c.partnerID, acmeRequestSecret, c.token, now, map[string]string{"Content-Type": "application/json", "X-Request-Source": "batch"}, bodyValue),
			headers: map[string]string{"X-Request-Source": "web"}, status: 401, code: "INVALID_SIGNATURE"},
		{name: "token request with a sub", method: http.MethodPost, path: "/auth/token", jwt: jwt(c.partnerID, acmeRequestSecret, c.token, now, nil, nil), status: 401, code: "TOKEN_INVALID"},
		{name: "token request with a stale iat", method: http.MethodPost, path: "/auth/token", jwt: jwt(c.partnerID, acmeRequestSecret, "", now-400, nil, nil), status: 401, code: "TIMESTAMP_OUT_OF_RANGE"},
		{name: "token request with the wrong secret", method: http.MethodPost, path: "/auth/token", jwt: jwt(c.partnerID, "wrong-secret-wrong-secret-wrong!", "", now, nil, nil), status: 401, code: "INVALID_SIGNATURE"},
		{name: "token request data_body mismatch", method: http.MethodPost, path: "/auth/token", body: []byte(`{"scope":"all"}`), jwt: jwt(c.partnerID, acmeRequestSecret, "", now, nil, map[string]any{"scope": "none"}), status: 401, code: "INVALID_SIGNATURE"},
		{name: "token request without a JWT", method: http.MethodPost, path: "/auth/token", status: 401, code: "UNAUTHENTICATED"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := dbtest.Snapshot(t, env.DB.Bun)
			headers := map[string]string{"Content-Type": "application/json"}
			for k, v := range tc.headers {
				headers[k] = v
			}
			res := sendJWT(env, tc.method, tc.path, tc.jwt, tc.body, headers)
			require.Equal(t, tc.status, res.StatusCode, "%s", res.Body)
			require.Equal(t, tc.code, res.Code(), "%s", res.Body)
			require.Equal(t, before, dbtest.Snapshot(t, env.DB.Bun), "a rejected request changed the database")
		})
	}
}

func sendJWT(env *apptest.Env, method, path, jwt string, body []byte, headers map[string]string) *apptest.Response {
	req, _ := http.NewRequest(method, env.Server.URL+path, bytes.NewReader(body))
	if jwt != "" {
		req.Header.Set("Authorization", "Bearer "+jwt)
	}
	if _, ok := headers["Content-Type"]; !ok && len(body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return env.Do(req)
}
