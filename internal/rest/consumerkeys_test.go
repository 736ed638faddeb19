package rest_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/partner"
)

func pubPEM(t testing.TB, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	require.NoError(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func addKey(t testing.TB, env *apptest.Env, slug string, p partner.AddConsumerKeyParams) {
	t.Helper()
	pt, err := env.App.Partners.BySlug(context.Background(), env.DB.Bun, slug)
	require.NoError(t, err)
	_, err = env.App.Partners.UpsertConsumerKey(context.Background(), env.DB.Bun, pt.ID, p)
	require.NoError(t, err)
}

func setKeyEnabled(t testing.TB, env *apptest.Env, slug, kid string, on bool) {
	t.Helper()
	pt, err := env.App.Partners.BySlug(context.Background(), env.DB.Bun, slug)
	require.NoError(t, err)
	require.NoError(t, env.App.Partners.SetConsumerKeyEnabled(context.Background(), env.DB.Bun, pt.ID, kid, on))
}

// sign signs claims with any key through golang-jwt, with extra header fields.
func sign(t testing.TB, method jwt.SigningMethod, key any, header, claims map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, jwt.MapClaims(claims))
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return s
}

func me(env *apptest.Env, header, token string, extra ...[2]string) *apptest.Response {
	req, _ := http.NewRequest(http.MethodGet, env.Server.URL+"/me", nil)
	if token != "" {
		if header == "Authorization" {
			token = "Bearer " + token
		}
		req.Header.Set(header, token)
	}
	for _, h := range extra {
		req.Header.Set(h[0], h[1])
	}
	return env.Do(req)
}

var rsaKeys struct {
	once sync.Once
	keys []*rsa.PrivateKey
}

// testRSAKey returns one of a few RSA keys generated once per process.
func testRSAKey(t testing.TB, i int) *rsa.PrivateKey {
	rsaKeys.once.Do(func() {
		for j := 0; j < 3; j++ {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			rsaKeys.keys = append(rsaKeys.keys, k)
		}
	})
	return rsaKeys.keys[i]
}

// TestSeed002RS256KidPrimary reproduces seed 002: the partner uploads a
// public key with a description and the enabled toggle; its back end signs
// {"alg":"RS256","typ":"JWT","kid":"primary"} with only sub and exp; the
// widget's first call creates the user profile.
func TestSeed002RS256KidPrimary(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	key := testRSAKey(t, 0)
	addKey(t, env, "acme", partner.AddConsumerKeyParams{Kid: "primary", Description: "widget key", Algorithm: "RS256", PublicKeyPEM: pubPEM(t, &key.PublicKey)})
	exp := env.Now().Add(time.Hour).Unix()
	tok := apptest.MintRS256(t, key, map[string]any{"typ": "JWT", "kid": "primary"}, map[string]any{"sub": "user_88421", "exp": exp})
	res := me(env, "Authorization", tok)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	require.Equal(t, "acme", res.JSON(t)["partner"].(map[string]any)["slug"], "kid registered by one partner finds it")
	got := env.Partner("acme", http.MethodGet, "/integrations/users/user_88421", nil)
	require.Equal(t, http.StatusOK, got.StatusCode, "the profile exists from the first open: %s", got.Body)

	// The standard structure (no kid) tries the partner's enabled keys;
	// without iss or kid the partner comes from X-Partner-Slug.
	noKid := apptest.MintRS256(t, key, map[string]any{"typ": "JWT"}, map[string]any{"sub": "user_88421", "exp": exp})
	require.Equal(t, "TOKEN_INVALID", me(env, "Authorization", noKid).Code())
	res = me(env, "Authorization", noKid, [2]string{"X-Partner-Slug", "acme"})
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)

	// Another partner registering the same kid makes the kid ambiguous:
	// then X-Partner-Slug decides, and the wrong one fails.
	g := testRSAKey(t, 1)
	addKey(t, env, "globex", partner.AddConsumerKeyParams{Kid: "primary", Algorithm: "RS256", PublicKeyPEM: pubPEM(t, &g.PublicKey)})
	require.Equal(t, "TOKEN_INVALID", me(env, "Authorization", tok).Code())
	require.Equal(t, http.StatusOK, me(env, "Authorization", tok, [2]string{"X-Partner-Slug", "acme"}).StatusCode)
	require.Equal(t, "TOKEN_INVALID", me(env, "Authorization", tok, [2]string{"X-Partner-Slug", "globex"}).Code())
}

// TestSeed003HS256UserObject reproduces seed 003: an HS256 token signed
// with the account's auth token, kid = account id, a `user` object and a
// 7-day exp, sent as X-SaaSquatch-User-Token; the object maps onto the
// profile.
func TestSeed003HS256UserObject(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	const accountSid, authToken = "IRa1b2c3d4e5f6AcmeAccount", "Zx8kq3mV7pR2sT9wY4bN6cH1jL5dF0gA"
	addKey(t, env, "acme", partner.AddConsumerKeyParams{Kid: accountSid, Description: "impact.com account", Algorithm: "HS256", Secret: []byte(authToken)})
	now := env.Now()
	userPayload := map[string]any{
		"id": "john@example.com", "accountId": "john@example.com",
		"firstName": "John", "lastName": "Doe", "email": "john@example.com", "locale": "en_US",
	}
	// C#: DateTime.UtcNow.Date.AddDays(7); Ruby/PHP/Java: now + 7 days;
	// Python: time.time() + 7*24*3600, a float.
	midnight := now.UTC().Truncate(24 * time.Hour)
	for name, exp := range map[string]any{
		"csharp": midnight.Add(7 * 24 * time.Hour).Unix(),
		"ruby":   now.Add(7 * 24 * time.Hour).Unix(),
		"python": float64(now.Add(7*24*time.Hour).UnixNano()) / 1e9,
	} {
		tok := apptest.SignJWT(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": accountSid},
			map[string]any{"user": userPayload, "exp": exp}, hs256([]byte(authToken)))
		res := me(env, "X-SaaSquatch-User-Token", tok)
		require.Equal(t, http.StatusOK, res.StatusCode, "%s: %s", name, res.Body)
		require.Equal(t, "John Doe", res.JSON(t)["displayName"], name)
	}
	u := env.Partner("acme", http.MethodGet, "/integrations/users/john@example.com", nil).JSON(t)
	require.Equal(t, "John", u["firstName"])
	require.Equal(t, "Doe", u["lastName"])
	require.Equal(t, "john@example.com", u["email"])
	require.Equal(t, "en-US", u["locale"])

	// Beyond the partner's 7-day maximum (plus leeway) is refused.
	tooLong := apptest.SignJWT(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": accountSid},
		map[string]any{"user": userPayload, "exp": now.Add(8 * 24 * time.Hour).Unix()}, hs256([]byte(authToken)))
	require.Equal(t, "TOKEN_INVALID", me(env, "X-SaaSquatch-User-Token", tooLong).Code())
}

// TestKeyRotation: two enabled keys both verify (with and without kid), a
// disabled key stops verifying with the very next request, and every key
// type verifies with exactly its own algorithm.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	old, next := testRSAKey(t, 0), testRSAKey(t, 1)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	edPub, edPriv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	addKey(t, env, "acme", partner.AddConsumerKeyParams{Kid: "2025", Algorithm: "RS256", PublicKeyPEM: pubPEM(t, &old.PublicKey)})
	addKey(t, env, "acme", partner.AddConsumerKeyParams{Kid: "2026", Algorithm: "RS256", PublicKeyPEM: pubPEM(t, &next.PublicKey)})
	addKey(t, env, "acme", partner.AddConsumerKeyParams{Kid: "ec-1", Algorithm: "ES256", PublicKeyPEM: pubPEM(t, &ec.PublicKey)})
	addKey(t, env, "acme", partner.AddConsumerKeyParams{Kid: "ed-1", Algorithm: "EdDSA", PublicKeyPEM: pubPEM(t, edPub)})

	claims := func() map[string]any {
		now := env.Now()
		return map[string]any{"iss": "https://acme.example.test", "sub": "rotating", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	}
	ok := func(tok string) {
		t.Helper()
		res := me(env, "Authorization", tok)
		require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	}
	refused := func(tok string) {
		t.Helper()
		res := me(env, "Authorization", tok)
		require.Equal(t, http.StatusUnauthorized, res.StatusCode, "%s", res.Body)
		require.Equal(t, "TOKEN_INVALID", res.Code())
	}
	oldKid := sign(t, jwt.SigningMethodRS256, old, map[string]any{"kid": "2025"}, claims())
	nextKid := sign(t, jwt.SigningMethodRS256, next, map[string]any{"kid": "2026"}, claims())
	oldNoKid := sign(t, jwt.SigningMethodRS256, old, nil, claims())
	for _, tok := range []string{oldKid, nextKid, oldNoKid, sign(t, jwt.SigningMethodRS256, next, nil, claims()),
		sign(t, jwt.SigningMethodES256, ec, map[string]any{"kid": "ec-1"}, claims()),
		sign(t, jwt.SigningMethodEdDSA, edPriv, map[string]any{"kid": "ed-1"}, claims()),
		sign(t, jwt.SigningMethodEdDSA, edPriv, nil, claims())} {
		ok(tok)
	}
	// A kid naming one key with a token signed by another is refused.
	refused(sign(t, jwt.SigningMethodRS256, old, map[string]any{"kid": "2026"}, claims()))
	// An EC key cannot verify an RS256 token and vice versa.
	refused(sign(t, jwt.SigningMethodES256, ec, map[string]any{"kid": "2025"}, claims()))

	setKeyEnabled(t, env, "acme", "2025", false)
	refused(oldKid)
	refused(oldNoKid)
	ok(nextKid)
	setKeyEnabled(t, env, "acme", "2025", true)
	ok(oldKid)

	// Replacing a kid's material takes effect at once, cached parse or not.
	addKey(t, env, "acme", partner.AddConsumerKeyParams{Kid: "2025", Algorithm: "RS256", PublicKeyPEM: pubPEM(t, &next.PublicKey)})
	refused(oldKid)
	ok(sign(t, jwt.SigningMethodRS256, next, map[string]any{"kid": "2025"}, claims()))
}

// jwksServer serves a JWK Set and can be made slow, huge or down.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	keys    []map[string]any
	mode    string
	fetches atomic.Int64
	release chan struct{}
}

func newJWKSServer(t *testing.T) *jwksServer {
	s := &jwksServer{release: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		mode, keys := s.mode, s.keys
		s.mu.Unlock()
		switch mode {
		case "down":
			http.Error(w, "boom", http.StatusInternalServerError)
		case "slow":
			select {
			case <-s.release:
			case <-r.Context().Done():
			}
		case "huge":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"keys":[],"pad":"` + strings.Repeat("x", 200<<10) + `"}`))
		default:
			w.Header().Set("Content-Type", "application/jwk-set+json")
			_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
		}
	}))
	t.Cleanup(func() { close(s.release); s.Close() })
	return s
}

func (s *jwksServer) set(mode string, keys ...map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mode = mode
	if keys != nil {
		s.keys = keys
	}
}

func rsaJWK(kid string, k *rsa.PublicKey) map[string]any {
	return map[string]any{
		"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
		"n": base64.RawURLEncoding.EncodeToString(k.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.E)).Bytes()),
	}
}

// TestJWKS: keys published at the partner's JWKS URL verify; an unknown kid
// refreshes the set at most once per 10 s; a failed refresh keeps the last
// good set; slow, huge and dead endpoints refuse without hanging.
func TestJWKS(t *testing.T) {
	t.Parallel()
	// No endpoint here is slow: a generous timeout keeps a loaded machine
	// from failing the healthy fetches.
	env := apptest.New(t, apptest.Options{Env: map[string]string{"PERKS_JWKS_TIMEOUT": "30s"}})
	srv := newJWKSServer(t)
	k1, k2 := testRSAKey(t, 0), testRSAKey(t, 1)
	srv.set("ok", rsaJWK("k1", &k1.PublicKey))
	setControls(t, env, "acme", partner.Controls{JWKSURL: ptr(srv.URL + "/.well-known/jwks.json")})
	tok := func(key *rsa.PrivateKey, kid string) string {
		now := env.Now()
		return sign(t, jwt.SigningMethodRS256, key, map[string]any{"kid": kid},
			map[string]any{"iss": "https://acme.example.test", "sub": "jwks-user", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
	}
	code := func(token string) string {
		res := me(env, "Authorization", token)
		if res.StatusCode == http.StatusOK {
			return "OK"
		}
		return res.Code()
	}

	require.Equal(t, "OK", code(tok(k1, "k1")))
	require.EqualValues(t, 1, srv.fetches.Load())
	require.Equal(t, "OK", code(tok(k1, "k1")), "served from the cache")
	require.EqualValues(t, 1, srv.fetches.Load())

	// k2 is published; the first token naming it refreshes the set, but not
	// within 10 s of the previous fetch.
	srv.set("ok", rsaJWK("k1", &k1.PublicKey), rsaJWK("k2", &k2.PublicKey))
	require.Equal(t, "TOKEN_INVALID", code(tok(k2, "k2")))
	require.EqualValues(t, 1, srv.fetches.Load(), "no refresh within the minimum interval")
	env.Clock.Advance(11 * time.Second)
	require.Equal(t, "OK", code(tok(k2, "k2")))
	require.EqualValues(t, 2, srv.fetches.Load())

	// A flood of unknown kids costs one fetch per interval.
	env.Clock.Advance(11 * time.Second)
	for i := 0; i < 5; i++ {
		require.Equal(t, "TOKEN_INVALID", code(tok(k2, "k-unknown")))
	}
	require.EqualValues(t, 3, srv.fetches.Load())

	// Down: a refresh (the set is past its TTL) fails; the last good set
	// still verifies.
	srv.set("down")
	env.Clock.Advance(16 * time.Minute)
	require.Equal(t, "OK", code(tok(k1, "k1")))
	require.EqualValues(t, 4, srv.fetches.Load(), "the refresh was attempted")
	require.Contains(t, env.Logs.String(), "jwks fetch failed")

	// Disabling nothing in Perks: a key removed from the JWKS stops
	// verifying once the set is refreshed.
	srv.set("ok", rsaJWK("k2", &k2.PublicKey))
	env.Clock.Advance(16 * time.Minute)
	require.Equal(t, "TOKEN_INVALID", code(tok(k1, "k1")))
	require.Equal(t, "OK", code(tok(k2, "k2")))
}

// TestConsumerTokenKeyAttacks extends the token attack table with key-set
// attacks: injected and unknown kids, another partner's key, algorithm
// confusion against HS256 and JWKS keys, and JWKS endpoints that are slow,
// huge or down. Each is refused with its code, in bounded time, and creates
// nothing.
func TestConsumerTokenKeyAttacks(t *testing.T) {
	t.Parallel()
	type fixture struct {
		env *apptest.Env
		srv *jwksServer
	}
	setup := func(t *testing.T, mode string) fixture {
		// Only the slow endpoint needs a short timeout (it never answers);
		// the healthy fetches get a generous one, so a loaded machine
		// cannot turn them into refusals.
		timeout := "30s"
		if mode == "slow" {
			timeout = "300ms"
		}
		env := apptest.New(t, apptest.Options{Env: map[string]string{"PERKS_JWKS_TIMEOUT": timeout}})
		srv := newJWKSServer(t)
		srv.set(mode, rsaJWK("jwks-1", &testRSAKey(t, 2).PublicKey))
		setControls(t, env, "acme", partner.Controls{JWKSURL: ptr(srv.URL)})
		addKey(t, env, "acme", partner.AddConsumerKeyParams{Kid: "hs-1", Algorithm: "HS256", Secret: []byte("acme-hs256-secret-0123456789abcdef")})
		return fixture{env: env, srv: srv}
	}
	acmeClaims := func(env *apptest.Env) map[string]any {
		now := env.Now()
		return map[string]any{"iss": "https://acme.example.test", "sub": "attacker", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	}
	jwksKey := testRSAKey(t, 2)
	jwksPEM := pubPEM(t, &jwksKey.PublicKey)
	cases := []struct {
		name  string
		mode  string
		token func(f fixture) string
		code  string
	}{
		{"kid with path traversal", "ok", func(f fixture) string {
			return apptest.MintRS256(t, f.env.PrivateKey("acme"), map[string]any{"kid": "../../../../etc/passwd"}, acmeClaims(f.env))
		}, "TOKEN_INVALID"},
		{"kid with SQL", "ok", func(f fixture) string {
			return apptest.MintRS256(t, f.env.PrivateKey("acme"), map[string]any{"kid": "' OR '1'='1"}, acmeClaims(f.env))
		}, "TOKEN_INVALID"},
		{"kid that is a URL", "ok", func(f fixture) string {
			return apptest.MintRS256(t, f.env.PrivateKey("acme"), map[string]any{"kid": "https://evil.example/jwks.json"}, acmeClaims(f.env))
		}, "TOKEN_INVALID"},
		{"kid not a string", "ok", func(f fixture) string {
			return apptest.MintRS256(t, f.env.PrivateKey("acme"), map[string]any{"kid": map[string]any{"$ne": ""}}, acmeClaims(f.env))
		}, "TOKEN_INVALID"},
		{"jku header pointing elsewhere", "ok", func(f fixture) string {
			evil := testRSAKey(t, 1)
			return apptest.MintRS256(t, evil, map[string]any{"kid": "jwks-1", "jku": "https://evil.example/jwks.json"}, acmeClaims(f.env))
		}, "TOKEN_INVALID"},
		{"embedded jwk header", "ok", func(f fixture) string {
			evil := testRSAKey(t, 1)
			return apptest.MintRS256(t, evil, map[string]any{"jwk": rsaJWK("x", &evil.PublicKey)}, acmeClaims(f.env))
		}, "TOKEN_INVALID"},
		{"key of another partner with its kid", "ok", func(f fixture) string {
			return apptest.MintRS256(t, f.env.PrivateKey("globex"), map[string]any{"kid": "globex-dev-1"}, acmeClaims(f.env))
		}, "TOKEN_INVALID"},
		{"key of another partner under acme's kid", "ok", func(f fixture) string {
			return apptest.MintRS256(t, f.env.PrivateKey("globex"), map[string]any{"kid": "acme-dev-1"}, acmeClaims(f.env))
		}, "TOKEN_INVALID"},
		{"HS256 kid signed with HS384", "ok", func(f fixture) string {
			return sign(t, jwt.SigningMethodHS384, []byte("acme-hs256-secret-0123456789abcdef"), map[string]any{"kid": "hs-1"}, acmeClaims(f.env))
		}, "TOKEN_INVALID"},
		{"RS256 to HS256 with a JWKS key's PEM", "ok", func(f fixture) string {
			return apptest.SignJWT(t, map[string]any{"alg": "HS256", "kid": "jwks-1"}, acmeClaims(f.env), hs256([]byte(jwksPEM)))
		}, "TOKEN_INVALID"},
		{"alg none with a JWKS kid", "ok", func(f fixture) string {
			return apptest.SignJWT(t, map[string]any{"alg": "none", "kid": "jwks-1"}, acmeClaims(f.env), nil)
		}, "TOKEN_INVALID"},
		{"JWKS key, missing exp", "ok", func(f fixture) string {
			c := acmeClaims(f.env)
			delete(c, "exp")
			return apptest.MintRS256(t, jwksKey, map[string]any{"kid": "jwks-1"}, c)
		}, "TOKEN_INVALID"},
		{"JWKS key, nbf in the future", "ok", func(f fixture) string {
			c := acmeClaims(f.env)
			c["nbf"] = f.env.Now().Add(10 * time.Minute).Unix()
			return apptest.MintRS256(t, jwksKey, map[string]any{"kid": "jwks-1"}, c)
		}, "TOKEN_INVALID"},
		{"JWKS key, lifetime above the maximum", "ok", func(f fixture) string {
			c := acmeClaims(f.env)
			c["exp"] = f.env.Now().Add(30 * 24 * time.Hour).Unix()
			return apptest.MintRS256(t, jwksKey, map[string]any{"kid": "jwks-1"}, c)
		}, "TOKEN_INVALID"},
		{"JWKS endpoint slow", "slow", func(f fixture) string {
			return apptest.MintRS256(t, jwksKey, map[string]any{"kid": "jwks-1"}, acmeClaims(f.env))
		}, "TOKEN_INVALID"},
		{"JWKS endpoint huge", "huge", func(f fixture) string {
			return apptest.MintRS256(t, jwksKey, map[string]any{"kid": "jwks-1"}, acmeClaims(f.env))
		}, "TOKEN_INVALID"},
		{"JWKS endpoint down", "down", func(f fixture) string {
			return apptest.MintRS256(t, jwksKey, map[string]any{"kid": "jwks-1"}, acmeClaims(f.env))
		}, "TOKEN_INVALID"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, tc.mode)
			before := dbtest.Snapshot(t, f.env.DB.Bun)
			start := time.Now()
			res := me(f.env, "Authorization", tc.token(f))
			// The slow endpoint never answers, so any answer means the
			// timeout fired; the bound only turns a hang into a failure.
			require.Less(t, time.Since(start), 20*time.Second, "the request does not hang on the JWKS endpoint")
			require.Equal(t, http.StatusUnauthorized, res.StatusCode, "%s", res.Body)
			require.Equal(t, tc.code, res.Code(), "%s", res.Body)
			require.Equal(t, before, dbtest.Snapshot(t, f.env.DB.Bun))
		})
	}
	// Control: the same JWKS token verifies when the endpoint is healthy.
	f := setup(t, "ok")
	res := me(f.env, "Authorization", apptest.MintRS256(t, jwksKey, map[string]any{"kid": "jwks-1"}, acmeClaims(f.env)))
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
}

// TestLogoutEverywhere: GraphQL logout and the partner's logout route set
// tokens_valid_after; tokens issued before answer TOKEN_REVOKED, tokens
// minted afterwards work.
func TestLogoutEverywhere(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	before := env.Token("acme", "leaver", nil)
	require.Equal(t, http.StatusOK, env.Consumer(before, http.MethodGet, "/me", nil).StatusCode)
	env.Clock.Advance(2 * time.Second)

	res := env.GraphQL(before, `mutation { logout }`, nil)
	require.Empty(t, res.Errors)
	require.JSONEq(t, `{"logout":true}`, string(res.Data))
	r := env.Consumer(before, http.MethodGet, "/me", nil)
	require.Equal(t, http.StatusUnauthorized, r.StatusCode)
	require.Equal(t, "TOKEN_REVOKED", r.Code())
	require.Equal(t, "TOKEN_REVOKED", env.GraphQL(before, `{ me { id } }`, nil).ErrorCode())
	require.Equal(t, "TOKEN_REVOKED", env.GraphQL(before, `mutation { logout }`, nil).ErrorCode())

	// A token minted right after the logout (same second) works.
	after := env.Token("acme", "leaver", nil)
	require.Equal(t, http.StatusOK, env.Consumer(after, http.MethodGet, "/me", nil).StatusCode)
	// A token without iat counts from exp minus the maximum lifetime: a
	// 7-day token minted now is after the logout, a 1-hour one could
	// predate it and is refused.
	week := env.Token("acme", "leaver", map[string]any{"iat": nil, "exp": env.Now().Add(7 * 24 * time.Hour).Unix()})
	require.Equal(t, http.StatusOK, env.Consumer(week, http.MethodGet, "/me", nil).StatusCode)
	hour := env.Token("acme", "leaver", map[string]any{"iat": nil})
	require.Equal(t, "TOKEN_REVOKED", env.Consumer(hour, http.MethodGet, "/me", nil).Code())

	// The partner's back end logs the user out too.
	env.Clock.Advance(2 * time.Second)
	res2 := env.Partner("acme", http.MethodPost, "/integrations/users/leaver/logout", nil)
	require.Equal(t, http.StatusNoContent, res2.StatusCode, "%s", res2.Body)
	require.Equal(t, "TOKEN_REVOKED", env.Consumer(after, http.MethodGet, "/me", nil).Code())
	require.Equal(t, http.StatusOK, env.Consumer(env.Token("acme", "leaver", nil), http.MethodGet, "/me", nil).StatusCode)

	// Unknown users, and other partners' users, are not found.
	require.Equal(t, "USER_NOT_FOUND", env.Partner("acme", http.MethodPost, "/integrations/users/nobody/logout", nil).Code())
	require.Equal(t, "USER_NOT_FOUND", env.Partner("globex", http.MethodPost, "/integrations/users/leaver/logout", nil).Code())
	// Without a token GraphQL logout is UNAUTHENTICATED.
	require.Equal(t, "UNAUTHENTICATED", env.GraphQL("", `mutation { logout }`, nil).ErrorCode())
}

// TestAudienceAndLifetimeControls: a partner that configures an audience
// requires it; the maximum lifetime is the partner's own.
func TestAudienceAndLifetimeControls(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	setControls(t, env, "acme", partner.Controls{Audience: ptr("perks-widget"), MaxTokenLifetimeSeconds: ptr(3600)})
	now := env.Now()
	for _, c := range []struct {
		name  string
		extra map[string]any
		code  string
	}{
		{"no aud", nil, "TOKEN_INVALID"},
		{"wrong aud", map[string]any{"aud": "someone-else"}, "TOKEN_INVALID"},
		{"aud", map[string]any{"aud": "perks-widget"}, ""},
		{"aud in a list", map[string]any{"aud": []string{"x", "perks-widget"}}, ""},
		{"lifetime above the partner's hour", map[string]any{"aud": "perks-widget", "exp": now.Add(2 * time.Hour).Unix()}, "TOKEN_INVALID"},
	} {
		res := env.Consumer(env.Token("acme", "aud-user", c.extra), http.MethodGet, "/me", nil)
		require.Equal(t, c.code, res.Code(), "%s: %s", c.name, res.Body)
	}
}
