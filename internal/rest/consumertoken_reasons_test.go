package rest_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/partner"
)

// refusal is the part of a token refusal a client acts on.
type refusal struct {
	status               int
	code, reason, detail string
}

func refusalOf(t *testing.T, res *apptest.Response) refusal {
	t.Helper()
	if res.StatusCode == http.StatusOK {
		return refusal{status: http.StatusOK}
	}
	m := res.JSON(t)
	reason, _ := m["reason"].(string)
	detail, _ := m["detail"].(string)
	return refusal{res.StatusCode, res.Code(), reason, detail}
}

// TestSharedKidOnlyTriesTheNamedPartnersKeys: acme and globex both
// register seed 002's example kid `primary`. A token that says whose it is
// (iss, X-Partner-Slug) verifies with that partner's keys only; one that
// does not is told to send iss or X-Partner-Slug. A kid registered by one
// partner never overrides the X-Partner-Slug of another, whose key is
// published at a JWKS URL under the same kid.
func TestSharedKidOnlyTriesTheNamedPartnersKeys(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	acmeKey, globexKey, jwksKey := testRSAKey(t, 0), testRSAKey(t, 1), testRSAKey(t, 2)
	addKey(t, env, "acme", partner.AddConsumerKeyParams{Kid: "primary", Algorithm: "RS256", PublicKeyPEM: pubPEM(t, &acmeKey.PublicKey)})
	addKey(t, env, "globex", partner.AddConsumerKeyParams{Kid: "primary", Algorithm: "RS256", PublicKeyPEM: pubPEM(t, &globexKey.PublicKey)})
	now := env.Now()
	tok := func(key any, kid, iss string) string {
		c := map[string]any{"sub": "shared-kid-user", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		if iss != "" {
			c["iss"] = iss
		}
		return sign(t, jwt.SigningMethodRS256, key, map[string]any{"kid": kid}, c)
	}
	partnerOf := func(res *apptest.Response) string {
		require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
		return res.JSON(t)["partner"].(map[string]any)["slug"].(string)
	}
	slug := func(s string) [2]string { return [2]string{"X-Partner-Slug", s} }

	require.Equal(t, "acme", partnerOf(me(env, "Authorization", tok(acmeKey, "primary", "https://acme.example.test"))))
	require.Equal(t, "acme", partnerOf(me(env, "Authorization", tok(acmeKey, "primary", ""), slug("acme"))))
	require.Equal(t, "globex", partnerOf(me(env, "Authorization", tok(globexKey, "primary", "https://globex.example.test"))))
	require.Equal(t, "globex", partnerOf(me(env, "Authorization", tok(globexKey, "primary", ""), slug("globex"))))

	for _, key := range []any{acmeKey, globexKey} {
		r := refusalOf(t, me(env, "Authorization", tok(key, "primary", "")))
		require.Equal(t, auth.ReasonPartnerUndetermined, r.reason)
		require.Contains(t, r.detail, "send `iss`")
		require.Contains(t, r.detail, "X-Partner-Slug")
		require.NotContains(t, r.detail, "globex")
		require.NotContains(t, r.detail, "acme")
	}
	// The named partner's keys only: acme's token sent as globex's fails
	// on the signature, never verifies as the other tenant's user.
	r := refusalOf(t, me(env, "Authorization", tok(acmeKey, "primary", ""), slug("globex")))
	require.Equal(t, refusal{401, "TOKEN_INVALID", auth.ReasonBadSignature, r.detail}, r)

	// acme publishes `published` at its JWKS URL; globex registers the same
	// kid in Perks. acme's tokens sent with X-Partner-Slug keep working.
	srv := newJWKSServer(t)
	srv.set("ok", rsaJWK("published", &jwksKey.PublicKey))
	setControls(t, env, "acme", partner.Controls{JWKSURL: ptr(srv.URL + "/.well-known/jwks.json")})
	addKey(t, env, "globex", partner.AddConsumerKeyParams{Kid: "published", Algorithm: "RS256", PublicKeyPEM: pubPEM(t, &globexKey.PublicKey)})
	require.Equal(t, "acme", partnerOf(me(env, "Authorization", tok(jwksKey, "published", ""), slug("acme"))))
	require.Equal(t, "acme", partnerOf(me(env, "Authorization", tok(jwksKey, "published", "https://acme.example.test"))))
}

// TestConsumerTokenErrorsSayWhichCheckFailed: each refusal carries its
// code, a `reason` and a message naming the check, and no message shows key
// material.
func TestConsumerTokenErrorsSayWhichCheckFailed(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	const hsSecret = "reasons-test-secret-0123456789abcdefghij"
	key, other := testRSAKey(t, 0), testRSAKey(t, 1)
	addKey(t, env, "acme", partner.AddConsumerKeyParams{Kid: "primary", Algorithm: "RS256", PublicKeyPEM: pubPEM(t, &key.PublicKey)})
	addKey(t, env, "acme", partner.AddConsumerKeyParams{Kid: "hs", Algorithm: "HS256", Secret: []byte(hsSecret)})
	setControls(t, env, "globex", partner.Controls{Audience: ptr("perks-globex")})
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	now := env.Now()
	const acmeIss, globexIss = "https://acme.example.test", "https://globex.example.test"
	claims := func(extra map[string]any, drop ...string) map[string]any {
		c := map[string]any{"iss": acmeIss, "sub": "reasons-user", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		for k, v := range extra {
			c[k] = v
		}
		for _, k := range drop {
			delete(c, k)
		}
		return c
	}
	rs := func(k any, kid string, c map[string]any) string {
		h := map[string]any{}
		if kid != "" {
			h["kid"] = kid
		}
		return sign(t, jwt.SigningMethodRS256, k, h, c)
	}
	none := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, nil, claims(nil))
	type slugged struct{ token, slug string }

	for _, tc := range []struct {
		name   string
		req    slugged
		want   refusal
		detail string
	}{
		{"malformed", slugged{"not-a-jwt", ""}, refusal{401, "TOKEN_INVALID", auth.ReasonMalformed, ""}, "well-formed JWT"},
		{"alg none", slugged{none, ""}, refusal{401, "TOKEN_INVALID", auth.ReasonUnsupportedAlg, ""}, "RS256, ES256, EdDSA, HS256"},
		{"unknown issuer", slugged{rs(key, "primary", claims(map[string]any{"iss": "https://nobody.example.test"})), ""}, refusal{401, "TOKEN_INVALID", auth.ReasonUnknownIssuer, ""}, "iss"},
		{"unknown slug", slugged{rs(key, "", claims(nil, "iss")), "nobody"}, refusal{401, "TOKEN_INVALID", auth.ReasonUnknownPartner, ""}, "X-Partner-Slug names no partner"},
		{"no partner hint", slugged{rs(key, "", claims(nil, "iss")), ""}, refusal{401, "TOKEN_INVALID", auth.ReasonPartnerUndetermined, ""}, "send `iss`"},
		{"unknown kid, no hint", slugged{rs(key, "nope", claims(nil, "iss")), ""}, refusal{401, "TOKEN_INVALID", auth.ReasonUnknownKid, ""}, "kid"},
		{"unknown kid of the partner", slugged{rs(key, "nope", claims(nil)), ""}, refusal{401, "TOKEN_INVALID", auth.ReasonUnknownKid, ""}, "no enabled key with the token's kid"},
		{"no key for the alg", slugged{sign(t, jwt.SigningMethodES256, ec, nil, claims(nil)), ""}, refusal{401, "TOKEN_INVALID", auth.ReasonNoKey, ""}, "ES256"},
		{"kid of another alg", slugged{sign(t, jwt.SigningMethodES256, ec, map[string]any{"kid": "hs"}, claims(nil)), ""}, refusal{401, "TOKEN_INVALID", auth.ReasonNoKey, ""}, "not a ES256 key"},
		{"bad signature", slugged{rs(other, "primary", claims(nil)), ""}, refusal{401, "TOKEN_INVALID", auth.ReasonBadSignature, ""}, "signature does not verify"},
		{"bad HS256 signature", slugged{sign(t, jwt.SigningMethodHS256, []byte("a-different-secret-of-enough-length!!"), map[string]any{"kid": "hs"}, claims(nil)), ""}, refusal{401, "TOKEN_INVALID", auth.ReasonBadSignature, ""}, "signature does not verify"},
		{"missing exp", slugged{rs(key, "primary", claims(nil, "exp")), ""}, refusal{401, "TOKEN_INVALID", auth.ReasonMissingExp, ""}, "no exp"},
		{"expired", slugged{rs(key, "primary", claims(map[string]any{"iat": now.Add(-2 * time.Hour).Unix(), "exp": now.Add(-time.Hour).Unix()})), ""}, refusal{401, "TOKEN_EXPIRED", auth.ReasonExpired, ""}, "expired"},
		{"not yet valid", slugged{rs(key, "primary", claims(map[string]any{"nbf": now.Add(10 * time.Minute).Unix()})), ""}, refusal{401, "TOKEN_INVALID", auth.ReasonNotYetValid, ""}, "nbf"},
		{"issued in the future", slugged{rs(key, "primary", claims(map[string]any{"iat": now.Add(10 * time.Minute).Unix()})), ""}, refusal{401, "TOKEN_INVALID", auth.ReasonIssuedInFuture, ""}, "iat"},
		{"lifetime", slugged{rs(key, "primary", claims(map[string]any{"exp": now.Add(30 * 24 * time.Hour).Unix()})), ""}, refusal{401, "TOKEN_INVALID", auth.ReasonLifetime, ""}, "lives longer"},
		{"no subject", slugged{rs(key, "primary", claims(nil, "sub")), ""}, refusal{401, "TOKEN_INVALID", auth.ReasonNoSubject, ""}, "subject"},
	} {
		r := refusalOf(t, me(env, "Authorization", tc.req.token, [2]string{"X-Partner-Slug", tc.req.slug}))
		tc.want.detail = r.detail
		require.Equal(t, tc.want, r, tc.name)
		require.Contains(t, r.detail, tc.detail, tc.name)
		for _, secret := range []string{hsSecret, "BEGIN", "MII"} {
			require.NotContains(t, r.detail, secret, tc.name)
		}
	}

	// The audience check, with globex's own key.
	gk := testRSAKey(t, 2)
	addKey(t, env, "globex", partner.AddConsumerKeyParams{Kid: "g1", Algorithm: "RS256", PublicKeyPEM: pubPEM(t, &gk.PublicKey)})
	for _, aud := range []any{nil, "someone-else"} {
		c := claims(map[string]any{"iss": globexIss})
		if aud != nil {
			c["aud"] = aud
		}
		r := refusalOf(t, me(env, "Authorization", rs(gk, "g1", c)))
		require.Equal(t, refusal{401, "TOKEN_INVALID", auth.ReasonAudience, r.detail}, r)
		require.True(t, strings.Contains(r.detail, "aud"), r.detail)
	}
	require.Equal(t, http.StatusOK, me(env, "Authorization", rs(gk, "g1", claims(map[string]any{"iss": globexIss, "aud": "perks-globex"}))).StatusCode)
}

// TestTokenWithoutExpPerKey: seed 003 calls exp optional. A key set to
// allow it accepts tokens without exp while their iat is within the key's
// maximum age (the clock advanced, not slept) and needs iat; other keys
// still require exp.
func TestTokenWithoutExpPerKey(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	const sid, secret = "IRa1b2c3d4e5f6AcmeAccount", "Zx8kq3mV7pR2sT9wY4bN6cH1jL5dF0gA"
	strict := testRSAKey(t, 0)
	addKey(t, env, "acme", partner.AddConsumerKeyParams{Kid: sid, Algorithm: "HS256", Secret: []byte(secret)})
	addKey(t, env, "acme", partner.AddConsumerKeyParams{Kid: "strict", Algorithm: "RS256", PublicKeyPEM: pubPEM(t, &strict.PublicKey)})
	issued := env.Now()
	seed003 := func(c map[string]any) string {
		c["user"] = map[string]any{"id": "john@example.com", "accountId": "john@example.com"}
		return sign(t, jwt.SigningMethodHS256, []byte(secret), map[string]any{"kid": sid, "typ": "JWT"}, c)
	}
	withIat := seed003(map[string]any{"iat": issued.Unix()})
	withoutIat := seed003(map[string]any{})
	strictTok := sign(t, jwt.SigningMethodRS256, strict, map[string]any{"kid": "strict"}, map[string]any{"sub": "strict-user", "iat": issued.Unix()})

	// Off by default.
	require.Equal(t, auth.ReasonMissingExp, refusalOf(t, me(env, "X-SaaSquatch-User-Token", withIat)).reason)

	p, err := env.App.Partners.BySlug(t.Context(), env.DB.Bun, "acme")
	require.NoError(t, err)
	_, err = env.App.Partners.UpdateConsumerKey(t.Context(), env.DB.Bun, p.ID, sid, partner.ConsumerKeyChanges{NoExpMaxAge: ptr(24 * time.Hour)})
	require.NoError(t, err)

	res := me(env, "X-SaaSquatch-User-Token", withIat)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	require.Equal(t, auth.ReasonMissingIat, refusalOf(t, me(env, "X-SaaSquatch-User-Token", withoutIat)).reason)
	require.Equal(t, auth.ReasonMissingExp, refusalOf(t, me(env, "Authorization", strictTok)).reason, "only the key that allows it")

	env.Clock.Advance(23 * time.Hour)
	require.Equal(t, http.StatusOK, me(env, "X-SaaSquatch-User-Token", withIat).StatusCode, "within the maximum age")
	env.Clock.Advance(time.Hour + 2*time.Minute) // past 24h and the 60 s leeway
	r := refusalOf(t, me(env, "X-SaaSquatch-User-Token", withIat))
	require.Equal(t, refusal{401, "TOKEN_EXPIRED", auth.ReasonMaxAgeExceeded, r.detail}, r)
	require.Contains(t, r.detail, "24h0m0s")

	// A token that carries exp is judged by it, as before.
	fresh := env.Now()
	res = me(env, "X-SaaSquatch-User-Token", seed003(map[string]any{"iat": fresh.Unix(), "exp": fresh.Add(time.Hour).Unix()}))
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)

	// Switched off again: exp is required.
	_, err = env.App.Partners.UpdateConsumerKey(t.Context(), env.DB.Bun, p.ID, sid, partner.ConsumerKeyChanges{NoExpMaxAge: ptr(time.Duration(0))})
	require.NoError(t, err)
	require.Equal(t, auth.ReasonMissingExp, refusalOf(t, me(env, "X-SaaSquatch-User-Token", seed003(map[string]any{"iat": env.Now().Unix()}))).reason)
}
