package app_test

import (
	"bytes"
	"context"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/demo"
)

// opensslSign runs seed 000's own pipeline:
//
//	printf '%s' "${T}.${BODY}" | openssl dgst -sha256 -hmac "$SECRET" -binary | xxd -p -c 256
func opensslSign(t *testing.T, secret, ts, body string) string {
	t.Helper()
	cmd := exec.Command("bash", "-c", `printf '%s' "${T}.${BODY}" | openssl dgst -sha256 -hmac "$SECRET" -binary | xxd -p -c 256`)
	cmd.Env = []string{"T=" + ts, "BODY=" + body, "SECRET=" + secret, "PATH=/usr/bin:/bin:/usr/local/bin"}
	out, err := cmd.Output()
	require.NoError(t, err, "openssl pipeline (install openssl and xxd)")
	return strings.TrimSpace(string(out))
}

// TestSeed000Walkthrough follows seed 000 step by step over real HTTP:
// provision with an openssl-signed POST, mint an RS256 token like the jose
// script, bootstrap /me (REST and GraphQL), anonymise, check that the token
// no longer works and the profile is gone, then revive with the same userId
// (the old token stays refused; a new one works).
func TestSeed000Walkthrough(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, apptest.Options{WallClock: true})
	const secret = "dev_acme_secret_change_me"
	body := `{"externalUserId":"usr_demo_001","email":"demo@acme.example.test","displayName":"Demo User","countryCode":"SG"}`

	send := func(method, path, body string, ts int64) *apptest.Response {
		t.Helper()
		T := strconv.FormatInt(ts, 10)
		req, err := http.NewRequest(method, env.Server.URL+path, strings.NewReader(body))
		require.NoError(t, err)
		if body != "" {
			req.Header.Set("content-type", "application/json")
		}
		req.Header.Set("x-partner-slug", "acme")
		req.Header.Set("x-signature", "t="+T+",v1="+opensslSign(t, secret, T, body))
		return env.Do(req)
	}
	now := time.Now().Unix()

	// Step 1: provision.
	res := send(http.MethodPost, "/integrations/users", body, now)
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	require.Equal(t, "application/json", res.Header.Get("Content-Type"))
	created := res.JSON(t)
	require.Len(t, created, 2, "exactly userId and created: %s", res.Body)
	require.Equal(t, true, created["created"])
	userID, _ := created["userId"].(string)
	require.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, userID)

	// Step 2: mint like mint-jwt.mjs (header {"alg":"RS256"}, iss, sub, iat, exp 1h, email, displayName).
	iat := time.Now().Unix()
	jwt := apptest.MintRS256(t, env.PrivateKey("acme"), nil, map[string]any{
		"email": "demo@acme.example.test", "displayName": "Demo User",
		"iss": "https://acme.example.test", "sub": "usr_demo_001", "iat": iat, "exp": iat + 3600,
	})

	// Step 3: /me.
	me := env.Consumer(jwt, http.MethodGet, "/me", nil)
	require.Equal(t, http.StatusOK, me.StatusCode, "%s", me.Body)
	got := me.JSON(t)
	partner := got["partner"].(map[string]any)
	require.Equal(t, map[string]any{
		"id": userID, "email": "demo@acme.example.test", "displayName": "Demo User",
		"partner": map[string]any{
			"id": env.Acme.Partner.ID.String(), "name": "Acme", "slug": "acme",
			"displayName": "Acme Rewards", "logoPath": "uploads/partners/acme-logo.png",
		},
	}, got)
	require.Equal(t, env.Acme.Partner.ID.String(), partner["id"])

	gql := env.GraphQL(jwt, `query { me { id email displayName partner { id name slug displayName logoPath } } }`, nil)
	require.Empty(t, gql.Errors)
	require.JSONEq(t, `{"me":`+strings.TrimSpace(string(me.Body))+`}`, string(gql.Data))

	// Step 6: anonymise with an empty signed body.
	res = send(http.MethodDelete, "/integrations/users/usr_demo_001", "", now+1)
	require.Equal(t, http.StatusNoContent, res.StatusCode, "%s", res.Body)
	require.Empty(t, res.Body)

	var pii int
	require.NoError(t, env.DB.Bun.NewRaw(`SELECT count(*) FROM users WHERE id = ? AND (email IS NOT NULL OR display_name IS NOT NULL
		OR external_id IS NOT NULL OR country_code IS NOT NULL) `, userID).Scan(context.Background(), &pii))
	require.Zero(t, pii, "PII cleared")
	var rows int
	require.NoError(t, env.DB.Bun.NewRaw(`SELECT count(*) FROM users WHERE id = ?`, userID).Scan(context.Background(), &rows))
	require.Equal(t, 1, rows, "row kept")

	me = env.Consumer(jwt, http.MethodGet, "/me", nil)
	require.Equal(t, http.StatusForbidden, me.StatusCode)
	require.Equal(t, "USER_ANONYMISED", me.Code())

	res = send(http.MethodGet, "/integrations/users/usr_demo_001", "", now+2)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	view := res.JSON(t)
	require.Equal(t, true, view["anonymised"])
	for _, f := range []string{"externalUserId", "email", "displayName", "firstName", "lastName", "locale", "countryCode"} {
		require.Nil(t, view[f], f)
	}
	require.NotContains(t, string(res.Body), "demo@acme")

	// Revive with another POST: same userId, created=false, 200.
	res = send(http.MethodPost, "/integrations/users", body, now+3)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	require.Equal(t, map[string]any{"userId": userID, "created": false}, res.JSON(t))
	// The token issued before the anonymisation never works again; one
	// minted after it (iat a second past it at the latest) does.
	me = env.Consumer(jwt, http.MethodGet, "/me", nil)
	require.Equal(t, http.StatusUnauthorized, me.StatusCode, "%s", me.Body)
	require.Equal(t, "TOKEN_REVOKED", me.Code())
	iat = time.Now().Unix() + 1
	fresh := apptest.MintRS256(t, env.PrivateKey("acme"), nil, map[string]any{
		"iss": "https://acme.example.test", "sub": "usr_demo_001", "iat": iat, "exp": iat + 3600,
	})
	me = env.Consumer(fresh, http.MethodGet, "/me", nil)
	require.Equal(t, http.StatusOK, me.StatusCode, "%s", me.Body)
	require.Equal(t, "demo@acme.example.test", me.JSON(t)["email"])

	// The access log never carries the token or the secret.
	logs := env.Logs.String()
	require.NotContains(t, logs, jwt)
	require.NotContains(t, logs, strings.Split(jwt, ".")[2])
	require.NotContains(t, logs, secret)
	require.NotContains(t, logs, "demo@acme.example.test")
}

// TestSeedIsIdempotent runs the demo seed a second time: nothing new.
func TestSeedIsIdempotent(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	ctx := context.Background()
	count := func(table string) int {
		n, err := env.DB.Bun.NewSelect().TableExpr(table).Count(ctx)
		require.NoError(t, err)
		return int(n)
	}
	before := []int{count("partners"), count("partner_credentials"), count("consumer_keys")}
	var out bytes.Buffer
	s := &demo.Seeder{DB: env.DB.Bun, Partners: env.App.Partners, Earning: env.App.Earning, Content: env.App.Content, Catalog: env.App.Catalog, Merchants: env.App.Merchants, SecretsDir: env.Secrets}
	_, err := s.Run(ctx, &out)
	require.NoError(t, err)
	require.Equal(t, before, []int{count("partners"), count("partner_credentials"), count("consumer_keys")})
	require.Contains(t, out.String(), "dev_acme_secret_change_me")
	require.Contains(t, out.String(), "https://acme.example.test")
	require.Contains(t, out.String(), "acme.private.pem")

	p, err := env.App.Partners.BySlug(ctx, env.DB.Bun, "acme")
	require.NoError(t, err)
	require.Equal(t, "Acme", p.Name)
	require.Equal(t, "Acme Rewards", p.DisplayName)
	require.Equal(t, "uploads/partners/acme-logo.png", p.LogoPath)
	require.Equal(t, "https://acme.example.test", *p.Issuer)
}
