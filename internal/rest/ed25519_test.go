package rest_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/demo"
	"github.com/perkshq/perks/internal/partner"
)

// seed004Client signs requests the way seed 004 describes its partner API:
// X-API-Key names the credential, X-Timestamp is Unix seconds, X-Signature
// is the base64 Ed25519 signature of the canonical string, and writes carry
// an Idempotency-Key. It builds the canonical string itself rather than
// calling auth.Ed25519Message, so the test checks the documented format.
type seed004Client struct {
	env    *apptest.Env
	apiKey string
	key    ed25519.PrivateKey
}

func canonical(ts, method, pathQuery string, body []byte, idem string) []byte {
	sum := sha256.Sum256(body)
	return []byte(ts + "\n" + method + "\n" + pathQuery + "\n" + hex.EncodeToString(sum[:]) + "\n" + idem)
}

// request builds a signed request; tamper, when set, edits it after signing.
func (c *seed004Client) request(method, pathQuery string, body []byte, idem string, ts int64, tamper func(*http.Request)) *http.Request {
	T := strconv.FormatInt(ts, 10)
	sig := base64.StdEncoding.EncodeToString(ed25519.Sign(c.key, canonical(T, method, pathQuery, body, idem)))
	req, err := http.NewRequest(method, c.env.Server.URL+pathQuery, bytes.NewReader(body))
	require.NoError(c.env.T, err)
	if len(body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("X-API-Key", c.apiKey)
	req.Header.Set("X-Timestamp", T)
	req.Header.Set("X-Signature", sig)
	if idem != "" {
		req.Header.Set("Idempotency-Key", idem)
	}
	if tamper != nil {
		tamper(req)
	}
	return req
}

func (c *seed004Client) do(method, pathQuery string, body []byte, idem string) *apptest.Response {
	return c.env.Do(c.request(method, pathQuery, body, idem, c.env.Now().Unix(), nil))
}

// newSeed004Client creates a platform-generated Ed25519 credential for the
// partner and parses the private key from the PEM shown once, as a partner
// would.
func newSeed004Client(t *testing.T, env *apptest.Env, slug string) *seed004Client {
	t.Helper()
	p, err := env.App.Partners.BySlug(context.Background(), env.DB.Bun, slug)
	require.NoError(t, err)
	cred, err := env.App.Partners.CreateEd25519Credential(context.Background(), env.DB.Bun, p.ID, "seed 004 test", nil)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(cred.APIKey, partner.APIKeyPrefix))
	k, err := demo.ParsePrivateKey([]byte(cred.PrivateKeyPEM))
	require.NoError(t, err)
	return &seed004Client{env: env, apiKey: cred.APIKey, key: k.(ed25519.PrivateKey)}
}

// TestSeed004Ed25519Client reproduces seed 004's partner recipe end to end,
// and checks that the API key is stored only as a hash.
func TestSeed004Ed25519Client(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	c := newSeed004Client(t, env, "acme")

	res := c.do(http.MethodPost, "/integrations/users", []byte(validBody), "create-usr_1")
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	res = c.do(http.MethodGet, "/integrations/users/usr_1?fields=all", nil, "")
	require.Equal(t, http.StatusOK, res.StatusCode, "reads need no idempotency key: %s", res.Body)
	require.Equal(t, "one@acme.example.test", res.JSON(t)["email"])
	res = c.do(http.MethodDelete, "/integrations/users/usr_1", nil, "delete-usr_1")
	require.Equal(t, http.StatusNoContent, res.StatusCode, "%s", res.Body)

	var stored int
	require.NoError(t, env.DB.Bun.NewRaw("SELECT count(*) FROM partner_credentials WHERE api_key_hash = ? AND position(?::bytea in api_key_hash) = 0",
		partner.HashAPIKey(c.apiKey), []byte(c.apiKey)).Scan(t.Context(), &stored))
	require.Equal(t, 1, stored)
	var used bool
	require.NoError(t, env.DB.Bun.NewRaw("SELECT last_used_at IS NOT NULL FROM partner_credentials WHERE api_key_hash = ?", partner.HashAPIKey(c.apiKey)).Scan(t.Context(), &used))
	require.True(t, used, "last use is recorded")

	// A partner that registers its own public key signs with its own
	// private key; Perks never sees it.
	pub, priv, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	p, err := env.App.Partners.BySlug(t.Context(), env.DB.Bun, "globex")
	require.NoError(t, err)
	own, err := env.App.Partners.CreateEd25519Credential(t.Context(), env.DB.Bun, p.ID, "own key", pub)
	require.NoError(t, err)
	require.Empty(t, own.PrivateKeyPEM)
	g := &seed004Client{env: env, apiKey: own.APIKey, key: priv}
	res = g.do(http.MethodPost, "/integrations/users", []byte(validBody), "g-1")
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
}

// TestEd25519Attacks tampers with each covered component after signing and
// checks the status, the code and that nothing changed.
func TestEd25519Attacks(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	c := newSeed004Client(t, env, "acme")
	other := newSeed004Client(t, env, "globex")
	now := env.Now().Unix()
	body := []byte(validBody)
	path := "/integrations/users"

	disabled := newSeed004Client(t, env, "acme")
	acme, err := env.App.Partners.BySlug(t.Context(), env.DB.Bun, "acme")
	require.NoError(t, err)
	var disabledID string
	require.NoError(t, env.DB.Bun.NewRaw("SELECT id FROM partner_credentials WHERE api_key_hash = ?", partner.HashAPIKey(disabled.apiKey)).Scan(t.Context(), &disabledID))
	_, err = env.DB.Bun.NewRaw("UPDATE partner_credentials SET enabled = false WHERE partner_id = ? AND id = ?", acme.ID, disabledID).Exec(t.Context())
	require.NoError(t, err)

	replayed := c.request(http.MethodPost, path, body, "replayed-key", now-3, nil)
	res := env.Do(replayed)
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	// The same signed request again is a retry (its signature covers its
	// Idempotency-Key): the stored answer, byte for byte.
	again := env.Do(c.request(http.MethodPost, path, body, "replayed-key", now-3, nil))
	require.Equal(t, http.StatusCreated, again.StatusCode, "%s", again.Body)
	require.Equal(t, string(res.Body), string(again.Body))
	require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))

	set := func(k, v string) func(*http.Request) { return func(r *http.Request) { r.Header.Set(k, v) } }
	cases := []struct {
		name   string
		req    *http.Request
		status int
		code   string
	}{
		{"timestamp changed", c.request(http.MethodPost, path, body, "k1", now, set("X-Timestamp", strconv.FormatInt(now-1, 10))), 401, "INVALID_SIGNATURE"},
		{"method changed", c.request(http.MethodPut, path, body, "k2", now, func(r *http.Request) { r.Method = http.MethodPost }), 401, "INVALID_SIGNATURE"},
		{"path changed", c.request(http.MethodPost, "/integrations/users?x=1", body, "k3", now, func(r *http.Request) { r.URL.RawQuery = "" }), 401, "INVALID_SIGNATURE"},
		{"query added", c.request(http.MethodPost, path, body, "k4", now, func(r *http.Request) { r.URL.RawQuery = "dryRun=true" }), 401, "INVALID_SIGNATURE"},
		{"body changed", c.request(http.MethodPost, path, body, "k5", now, func(r *http.Request) {
			b := []byte(strings.Replace(validBody, "usr_1", "usr_2", 1))
			r.Body, r.ContentLength = readCloser(b), int64(len(b))
		}), 401, "INVALID_SIGNATURE"},
		{"idempotency key changed", c.request(http.MethodPost, path, body, "k6", now, set("Idempotency-Key", "k6-other")), 401, "INVALID_SIGNATURE"},
		{"api key of another partner", c.request(http.MethodPost, path, body, "k7", now, set("X-API-Key", other.apiKey)), 401, "INVALID_SIGNATURE"},
		{"unknown api key", c.request(http.MethodPost, path, body, "k8", now, set("X-API-Key", partner.NewAPIKey())), 401, "INVALID_SIGNATURE"},
		{"disabled credential", disabled.request(http.MethodPost, path, body, "k9", now, nil), 401, "INVALID_SIGNATURE"},
		{"signed by another key", other.request(http.MethodPost, path, body, "k10", now, set("X-API-Key", c.apiKey)), 401, "INVALID_SIGNATURE"},
		{"signature not base64", c.request(http.MethodPost, path, body, "k11", now, set("X-Signature", "%%%")), 401, "INVALID_SIGNATURE"},
		{"signature truncated", c.request(http.MethodPost, path, body, "k12", now, func(r *http.Request) {
			r.Header.Set("X-Signature", r.Header.Get("X-Signature")[:40])
		}), 401, "INVALID_SIGNATURE"},
		{"no signature", c.request(http.MethodPost, path, body, "k13", now, func(r *http.Request) { r.Header.Del("X-Signature") }), 401, "INVALID_SIGNATURE"},
		{"no timestamp", c.request(http.MethodPost, path, body, "k14", now, func(r *http.Request) { r.Header.Del("X-Timestamp") }), 401, "INVALID_SIGNATURE"},
		{"timestamp in milliseconds", c.request(http.MethodPost, path, body, "k15", now*1000, nil), 401, "TIMESTAMP_OUT_OF_RANGE"},
		{"stale timestamp", c.request(http.MethodPost, path, body, "k16", now-301, nil), 401, "TIMESTAMP_OUT_OF_RANGE"},
		{"future timestamp", c.request(http.MethodPost, path, body, "k17", now+301, nil), 401, "TIMESTAMP_OUT_OF_RANGE"},
		{"write without idempotency key", c.request(http.MethodPost, path, body, "", now, nil), 400, "IDEMPOTENCY_KEY_REQUIRED"},
		{"delete without idempotency key", c.request(http.MethodDelete, "/integrations/users/usr_1", nil, "", now, nil), 400, "IDEMPOTENCY_KEY_REQUIRED"},
		{"idempotency key too long", c.request(http.MethodPost, path, body, strings.Repeat("k", 256), now, nil), 400, "IDEMPOTENCY_KEY_INVALID"},
		{"idempotency key not ASCII", c.request(http.MethodPost, path, body, "clé", now, nil), 400, "IDEMPOTENCY_KEY_INVALID"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := dbtest.Snapshot(t, env.DB.Bun)
			res := env.Do(tc.req)
			require.Equal(t, tc.status, res.StatusCode, "%s", res.Body)
			require.Equal(t, tc.code, res.Code(), "%s", res.Body)
			require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))
			require.Equal(t, before, dbtest.Snapshot(t, env.DB.Bun), "a rejected request changed the database")
		})
	}
	// The log never carries the signature or the API key.
	require.NotContains(t, env.Logs.String(), c.apiKey)
	require.NotContains(t, env.Logs.String(), replayed.Header.Get("X-Signature"))
}
