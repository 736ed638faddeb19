package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/demo"
	"github.com/perkshq/perks/internal/keyring"
	"github.com/perkshq/perks/internal/partner"
)

// TestOperatorCLI drives `perks partner`, `perks key` and `perks token`
// against a real database, as an operator would. The commands read their
// configuration from the test's own environment (testEnv).
func TestOperatorCLI(t *testing.T) {
	t.Parallel()
	penv := testEnv{}
	db, url := dbtest.NewDBWithURL(t)
	secrets := t.TempDir()
	master := make([]byte, 32)
	_, _ = rand.Read(master)
	penv.set("DATABASE_URL", url)
	penv.set("PERKS_SECRETS_DIR", secrets)
	penv.set("PERKS_MASTER_KEY", base64.StdEncoding.EncodeToString(master))
	keys, err := keyring.New(master)
	require.NoError(t, err)
	svc := partner.NewService(keys)

	perks := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		err := penv.run(context.Background(), args, &out, &errOut)
		require.NoError(t, err, "perks %s\nstderr: %s", strings.Join(args, " "), errOut.String())
		return out.String()
	}
	fails := func(args ...string) error {
		t.Helper()
		var out, errOut bytes.Buffer
		err := penv.run(context.Background(), args, &out, &errOut)
		require.Error(t, err, "perks %s should fail", strings.Join(args, " "))
		return err
	}

	perks("seed")
	out := perks("partner", "create", "--slug", "initech", "--name", "Initech", "--issuer", "https://initech.example.test")
	require.Contains(t, out, "created partner initech")
	require.Contains(t, perks("partner", "list"), "initech")

	out = perks("partner", "set", "--partner", "initech", "--api-enabled=false", "--require-hmac-v2", "--require-request-binding",
		"--allowed-origins", "203.0.113.7, 192.0.2.0/24,api.initech.example.test", "--schemes", "ed25519,request_jwt",
		"--rate-limit", "600", "--rate-limit-burst", "default", "--audience", "perks", "--max-token-lifetime", "24h",
		"--jwks-url", "https://initech.example.test/.well-known/jwks.json")
	require.Contains(t, out, "api access:               disabled")
	p, err := svc.BySlug(t.Context(), db.Bun, "initech")
	require.NoError(t, err)
	require.False(t, p.APIEnabled)
	require.True(t, p.RequireHMACV2)
	require.True(t, p.RequireRequestBinding)
	require.Equal(t, []string{"203.0.113.7", "192.0.2.0/24", "api.initech.example.test"}, p.AllowedOrigins)
	require.Equal(t, []string{"ed25519", "request_jwt"}, p.AllowedSchemes)
	require.Equal(t, 600, *p.RateLimitPerMinute)
	require.Nil(t, p.RateLimitBurst)
	require.Equal(t, "perks", p.Audience)
	require.Equal(t, 86400, p.MaxTokenLifetimeSeconds)
	require.Equal(t, "https://initech.example.test/.well-known/jwks.json", *p.JWKSURL)
	// Only the flags given change; empty values clear.
	perks("partner", "set", "--partner", "initech", "--api-enabled=true", "--allowed-origins", "", "--jwks-url", "")
	p, err = svc.BySlug(t.Context(), db.Bun, "initech")
	require.NoError(t, err)
	require.True(t, p.APIEnabled)
	require.True(t, p.RequireHMACV2, "untouched")
	require.Empty(t, p.AllowedOrigins)
	require.Nil(t, p.JWKSURL)
	require.Contains(t, fails("partner", "set", "--partner", "initech", "--allowed-origins", "not a host!").Error(), "allowedOrigins")
	require.Contains(t, fails("partner", "set", "--partner", "initech", "--schemes", "basic").Error(), "unknown scheme")
	require.Contains(t, perks("partner", "show", "--partner", "initech"), "require hmac v2:          true")

	// Who may frame the webview (/consumer?partner=initech): 'none' until set.
	require.Contains(t, perks("partner", "show", "--partner", "initech"), "frame ancestors:          'none'")
	out = perks("partner", "set", "--partner", "initech", "--frame-ancestors", "self, https://App.Initech.example.test,https://*.initech.example.test:8443")
	require.Contains(t, out, "frame ancestors:          'self' https://app.initech.example.test https://*.initech.example.test:8443")
	for _, bad := range []string{"https://a.example.test/path", "https://a.example.test; script-src *", "*", "'unsafe-inline'", "'none',https://a.example.test", "javascript:"} {
		require.Contains(t, fails("partner", "set", "--partner", "initech", "--frame-ancestors", bad).Error(), "frameAncestors", bad)
	}
	perks("partner", "set", "--partner", "initech", "--frame-ancestors", "")
	p, err = svc.BySlug(t.Context(), db.Bun, "initech")
	require.NoError(t, err)
	require.Empty(t, p.FrameAncestors)

	// Which browser origins may call /graphql (CORS): none until set.
	require.Contains(t, perks("partner", "show", "--partner", "initech"), "cors origins:             (none)")
	out = perks("partner", "set", "--partner", "initech", "--cors-origins", "https://App.Initech.example.test, http://localhost:3000")
	require.Contains(t, out, "cors origins:             https://app.initech.example.test,http://localhost:3000")
	require.Contains(t, fails("partner", "set", "--partner", "initech", "--cors-origins", "https://*.initech.example.test").Error(), "corsOrigins")

	// Ed25519: the pair is generated, the private key and API key shown once.
	out = perks("partner", "credential", "create", "--partner", "initech", "--kind", "ed25519", "--description", "prod")
	apiKey := regexp.MustCompile(`X-API-Key, shown once\): (\S+)`).FindStringSubmatch(out)
	require.Len(t, apiKey, 2, out)
	require.Contains(t, out, "-----BEGIN PRIVATE KEY-----")
	k, err := svc.Ed25519ByAPIKey(t.Context(), db.Bun, apiKey[1])
	require.NoError(t, err)
	block, _ := pem.Decode([]byte(out[strings.Index(out, "-----BEGIN"):]))
	priv, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	require.NoError(t, err)
	require.Equal(t, k.PublicKey, priv.(ed25519.PrivateKey).Public())
	// Or the partner registers its own public key.
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	pubFile := filepath.Join(t.TempDir(), "ed.pub")
	der, _ := x509.MarshalPKIXPublicKey(pub)
	require.NoError(t, os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600))
	out = perks("partner", "credential", "create", "--partner", "initech", "--kind", "ed25519", "--public-key", pubFile)
	require.NotContains(t, out, "PRIVATE KEY")
	out = perks("partner", "credential", "create", "--partner", "initech", "--kind", "request_jwt")
	require.Contains(t, out, "partner id (iss): "+p.ID.String())
	require.Contains(t, out, "secret (shown once")
	list := perks("partner", "credential", "list", "--partner", "initech")
	require.Equal(t, 3, strings.Count(list, "enabled"), list)
	id := regexp.MustCompile(`(?m)^([0-9a-f-]{36})\s+request_jwt`).FindStringSubmatch(list)
	require.Len(t, id, 2, list)
	perks("partner", "credential", "disable", "--partner", "initech", "--id", id[1])
	require.Contains(t, perks("partner", "credential", "list", "--partner", "initech"), "disabled")

	// Consumer keys: add from a PEM (algorithm from the key), list, disable,
	// rotate, and mint a development token with the new key.
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	dir := t.TempDir()
	pubDER, _ := x509.MarshalPKIXPublicKey(&rk.PublicKey)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "k1.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o600))
	privDER, _ := x509.MarshalPKCS8PrivateKey(rk)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "k1.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}), 0o600))
	require.Contains(t, perks("key", "add", "--partner", "initech", "--kid", "k1", "--pem", filepath.Join(dir, "k1.pub"), "--description", "first"), "key k1 (RS256) enabled")
	out = perks("key", "add", "--partner", "initech", "--kid", "hs", "--generate-secret")
	require.Contains(t, out, "HS256 secret (shown once)")
	require.Regexp(t, `k1\s+RS256\s+enabled`, perks("key", "list", "--partner", "initech"))
	perks("key", "disable", "--partner", "initech", "--kid", "k1")
	require.Regexp(t, `k1\s+RS256\s+disabled`, perks("key", "list", "--partner", "initech"))
	perks("key", "enable", "--partner", "initech", "--kid", "k1")
	ek, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	pubDER, _ = x509.MarshalPKIXPublicKey(&ek.PublicKey)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "k2.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o600))
	out = perks("key", "rotate", "--partner", "initech", "--kid", "k2", "--pem", filepath.Join(dir, "k2.pub"), "--retire", "k1")
	require.Contains(t, out, "key k1 disabled")
	ks, err := svc.EnabledConsumerKeys(t.Context(), db.Bun, p.ID, "")
	require.NoError(t, err)
	var kids []string
	for _, k := range ks {
		kids = append(kids, k.Kid)
	}
	require.ElementsMatch(t, []string{"k2", "hs"}, kids)
	perks("key", "add", "--partner", "initech", "--jwks-url", "https://initech.example.test/jwks")
	require.Contains(t, perks("key", "list", "--partner", "initech"), "(jwks)")
	require.Error(t, fails("key", "disable", "--partner", "initech", "--kid", "nope"))

	tok := perks("token", "mint", "--partner", "initech", "--sub", "usr_cli", "--key", filepath.Join(dir, "k1.pem"), "--kid", "k1")
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	require.NoError(t, err)
	require.Equal(t, "k1", parsed.Header["kid"])
	require.Equal(t, "RS256", parsed.Header["alg"])
	require.Equal(t, "https://initech.example.test", parsed.Claims.(jwt.MapClaims)["iss"])
	// The demo partner's default key still works without flags.
	_, err = os.Stat(filepath.Join(secrets, demo.Acme.Slug+".private.pem"))
	require.NoError(t, err)
	require.NotEmpty(t, perks("token", "mint", "--partner", "acme", "--sub", "usr_demo_001"))
	// --locale sets the claim the webview picks its language from.
	parsed, _, err = jwt.NewParser().ParseUnverified(perks("token", "mint", "--partner", "acme", "--sub", "usr_demo_001", "--locale", "fr-FR"), jwt.MapClaims{})
	require.NoError(t, err)
	require.Equal(t, "fr-FR", parsed.Claims.(jwt.MapClaims)["locale"])
	require.Regexp(t, `^http://localhost:4000/consumer#token=ey[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$`,
		perks("token", "mint", "--partner", "acme", "--sub", "usr_demo_001", "--webview"))
}

// TestKeyCommandSharedKidAndOptionalExp: `perks key add` warns, without
// naming the other partner, when another partner already uses the kid;
// --allow-no-exp/--max-age (add and set) store a key's allowance for
// tokens without exp; lists answer --json.
func TestKeyCommandSharedKidAndOptionalExp(t *testing.T) {
	t.Parallel()
	penv := testEnv{}
	db, url := dbtest.NewDBWithURL(t)
	penv.set("DATABASE_URL", url)
	penv.set("PERKS_SECRETS_DIR", t.TempDir())
	perks := func(args ...string) (string, string, error) {
		t.Helper()
		var out, errOut bytes.Buffer
		err := penv.run(context.Background(), args, &out, &errOut)
		return out.String(), errOut.String(), err
	}
	ok := func(args ...string) (string, string) {
		t.Helper()
		out, errOut, err := perks(args...)
		require.NoError(t, err, "perks %s\nstderr: %s", strings.Join(args, " "), errOut)
		return out, errOut
	}
	ok("seed")

	_, warn := ok("key", "add", "--partner", "acme", "--kid", "primary", "--generate-secret")
	require.Empty(t, warn, "the first partner with the kid")
	_, warn = ok("key", "add", "--partner", "globex", "--kid", "primary", "--generate-secret")
	require.Equal(t, "warning: kid primary is also used by another partner; tokens without iss or X-Partner-Slug will not resolve to you\n", warn)
	require.NotContains(t, warn, "acme")
	ok("key", "disable", "--partner", "acme", "--kid", "primary")
	_, warn = ok("key", "enable", "--partner", "acme", "--kid", "primary")
	require.Contains(t, warn, "kid primary is also used by another partner", "re-enabling warns too")

	secret := filepath.Join(t.TempDir(), "auth-token.txt")
	require.NoError(t, os.WriteFile(secret, []byte("Zx8kq3mV7pR2sT9wY4bN6cH1jL5dF0gA\n"), 0o600))
	out, _ := ok("key", "add", "--partner", "acme", "--kid", "IRacct", "--secret-file", secret, "--allow-no-exp", "--max-age", "24h")
	require.Contains(t, out, "tokens without exp are accepted up to 24h0m0s after their iat")
	_, _, err := perks("key", "add", "--partner", "acme", "--kid", "x", "--generate-secret", "--max-age", "1h")
	require.ErrorContains(t, err, "--max-age only applies with --allow-no-exp")

	type key struct {
		Kid         string `json:"kid"`
		Enabled     bool   `json:"enabled"`
		NoExpMaxAge string `json:"noExpMaxAge"`
	}
	keys := func() map[string]key {
		t.Helper()
		out, _ := ok("key", "list", "--partner", "acme", "--json")
		var l struct{ Keys []key }
		require.NoError(t, json.Unmarshal([]byte(out), &l), out)
		m := map[string]key{}
		for _, k := range l.Keys {
			m[k.Kid] = k
		}
		return m
	}
	require.Equal(t, key{"IRacct", true, "24h0m0s"}, keys()["IRacct"])
	require.Equal(t, key{"primary", true, ""}, keys()["primary"])

	out, _ = ok("key", "set", "--partner", "acme", "--kid", "IRacct", "--allow-no-exp=false")
	require.Contains(t, out, "tokens must carry exp")
	require.Empty(t, keys()["IRacct"].NoExpMaxAge)
	out, _ = ok("key", "set", "--partner", "acme", "--kid", "IRacct", "--allow-no-exp")
	require.Contains(t, out, "up to 168h0m0s", "the partner's maximum token lifetime by default")
	_, _, err = perks("key", "set", "--partner", "acme", "--kid", "nope", "--description", "x")
	require.ErrorContains(t, err, "NOT_FOUND")

	// The other lists answer --json too.
	var partners []map[string]any
	out, _ = ok("partner", "list", "--json")
	require.NoError(t, json.Unmarshal([]byte(out), &partners), out)
	require.Len(t, partners, 3, "acme, its sandbox (seeded since issue 16) and globex")
	for _, p := range partners {
		require.Equal(t, "active", p["status"], "the seeded partners are active")
	}
	var creds []map[string]any
	out, _ = ok("partner", "credential", "list", "--partner", "acme", "--json")
	require.NoError(t, json.Unmarshal([]byte(out), &creds), out)
	require.NotEmpty(t, creds)
	for _, cmd := range [][]string{{"merchant", "list", "--partner", "acme", "--json"}, {"webhook", "list", "--partner", "acme", "--json"}, {"webhook", "deliveries", "--partner", "acme", "--json"}, {"migrate", "status", "--json"}} {
		out, _ = ok(cmd...)
		var v []map[string]any
		require.NoError(t, json.Unmarshal([]byte(out), &v), "%s: %s", cmd, out)
	}

	// A development token without exp.
	tok, _ := ok("token", "mint", "--partner", "acme", "--sub", "usr_demo_001", "--no-exp")
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	require.NoError(t, err)
	require.NotContains(t, parsed.Claims.(jwt.MapClaims), "exp")
	require.Contains(t, parsed.Claims.(jwt.MapClaims), "iat")
	_ = db
}
