package rest_test

import (
	"context"
	"encoding/base64"
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

// serving waits until e's partner cache serves again after a write of its
// own (the write's notification came back), which is when a replica
// remembers tokens.
func serving(t *testing.T, e *apptest.Env) {
	t.Helper()
	require.Eventually(t, e.App.Partners.Cache.Serving, 5*time.Second, time.Millisecond)
}

// TestVerifiedTokenCache: a replica verifies a consumer token's signature
// once and remembers it, and the memory never accepts what a full
// verification would refuse: time claims are judged on every request, a
// token altered in any byte is verified in full, and a change to the
// partner's keys or access on any replica makes every remembered token
// verify again.
func TestVerifiedTokenCache(t *testing.T) {
	t.Parallel()

	const kid, iss = "cache-key", "https://acme.example.test"
	type bundle struct {
		env *apptest.Env
		// tok signs claims (sub, iss, iat and a 10-minute exp by default)
		// with the key registered as kid.
		tok    func(extra map[string]any, drop ...string) string
		cached func(e *apptest.Env) int
	}
	setup := func(t *testing.T, key partner.AddConsumerKeyParams) *bundle {
		t.Helper()
		env := apptest.New(t)
		rsaKey := testRSAKey(t, 0)
		key.Kid, key.Algorithm, key.PublicKeyPEM = kid, "RS256", pubPEM(t, &rsaKey.PublicKey)
		addKey(t, env, "acme", key)
		serving(t, env)
		return &bundle{
			env: env,
			tok: func(extra map[string]any, drop ...string) string {
				now := env.Now()
				c := map[string]any{"iss": iss, "sub": "cache-user", "iat": now.Add(-time.Minute).Unix(), "exp": now.Add(10 * time.Minute).Unix()}
				for k, v := range extra {
					c[k] = v
				}
				for _, k := range drop {
					delete(c, k)
				}
				return sign(t, jwt.SigningMethodRS256, rsaKey, map[string]any{"kid": kid}, c)
			},
			cached: func(e *apptest.Env) int { return e.App.Portal.ConsumerAuth.CachedTokens() },
		}
	}
	ok := func(t *testing.T, e *apptest.Env, tok string, extra ...[2]string) {
		t.Helper()
		res := me(e, "Authorization", tok, extra...)
		require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	}
	refused := func(t *testing.T, e *apptest.Env, tok string, extra ...[2]string) refusal {
		t.Helper()
		r := refusalOf(t, me(e, "Authorization", tok, extra...))
		require.NotEqual(t, http.StatusOK, r.status)
		return r
	}

	t.Run("time is judged on every request", func(t *testing.T) {
		t.Parallel()
		b := setup(t, partner.AddConsumerKeyParams{})
		tok := b.tok(nil)
		ok(t, b.env, tok)
		require.Equal(t, 1, b.cached(b.env))
		ok(t, b.env, tok)
		require.Equal(t, 1, b.cached(b.env), "the same token, remembered once")

		b.env.Clock.Advance(10*time.Minute + b.env.App.Config.JWTLeeway + time.Second)
		r := refused(t, b.env, tok)
		require.Equal(t, refusal{401, "TOKEN_EXPIRED", auth.ReasonExpired, r.detail}, r)
		require.Equal(t, 0, b.cached(b.env), "an expired token is forgotten")
	})

	t.Run("a token without exp ages out", func(t *testing.T) {
		t.Parallel()
		b := setup(t, partner.AddConsumerKeyParams{NoExpMaxAge: 5 * time.Minute})
		tok := b.tok(nil, "exp")
		ok(t, b.env, tok)
		require.Equal(t, 1, b.cached(b.env))
		b.env.Clock.Advance(5*time.Minute + b.env.App.Config.JWTLeeway)
		r := refused(t, b.env, tok)
		require.Equal(t, refusal{401, "TOKEN_EXPIRED", auth.ReasonMaxAgeExceeded, r.detail}, r)
	})

	t.Run("a token not valid yet is not remembered", func(t *testing.T) {
		t.Parallel()
		b := setup(t, partner.AddConsumerKeyParams{})
		tok := b.tok(map[string]any{"nbf": b.env.Now().Add(5 * time.Minute).Unix()})
		r := refused(t, b.env, tok)
		require.Equal(t, refusal{401, "TOKEN_INVALID", auth.ReasonNotYetValid, r.detail}, r)
		require.Equal(t, 0, b.cached(b.env))
		b.env.Clock.Advance(5 * time.Minute)
		ok(t, b.env, tok)
	})

	t.Run("an altered token is verified in full", func(t *testing.T) {
		t.Parallel()
		b := setup(t, partner.AddConsumerKeyParams{})
		tok := b.tok(nil)
		ok(t, b.env, tok)
		parts := strings.Split(tok, ".")
		sig, err := base64.RawURLEncoding.DecodeString(parts[2])
		require.NoError(t, err)
		sig[len(sig)/2] ^= 1
		forged := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)
		other := strings.Split(b.tok(map[string]any{"sub": "someone-else"}), ".")
		swapped := parts[0] + "." + other[1] + "." + parts[2]
		for name, bad := range map[string]string{"signature": forged, "claims": swapped} {
			r := refused(t, b.env, bad)
			require.Equal(t, refusal{401, "TOKEN_INVALID", auth.ReasonBadSignature, r.detail}, r, name)
		}
		require.Equal(t, 1, b.cached(b.env), "refusals are not remembered")
		ok(t, b.env, tok)
	})

	t.Run("the partner hint is part of the memory", func(t *testing.T) {
		t.Parallel()
		b := setup(t, partner.AddConsumerKeyParams{})
		tok := b.tok(nil, "iss")
		ok(t, b.env, tok, [2]string{"X-Partner-Slug", "acme"})
		r := refused(t, b.env, tok, [2]string{"X-Partner-Slug", "globex"})
		require.Equal(t, "TOKEN_INVALID", r.code, "acme's token sent as globex's is judged with globex's keys")
	})

	t.Run("a disabled key is refused on every replica", func(t *testing.T) {
		t.Parallel()
		b := setup(t, partner.AddConsumerKeyParams{})
		replica := b.env.Replica()
		tok := b.tok(nil)
		for _, e := range []*apptest.Env{b.env, replica} {
			ok(t, e, tok)
			ok(t, e, tok)
			require.Equal(t, 1, b.cached(e))
		}
		before := replica.App.Partners.Cache.Notifications()
		setKeyEnabled(t, b.env, "acme", kid, false)
		r := refused(t, b.env, tok)
		require.Equal(t, "TOKEN_INVALID", r.code, "the writing replica refuses at once")
		require.Eventually(t, func() bool { return replica.App.Partners.Cache.Notifications() > before }, 5*time.Second, time.Millisecond)
		r = refused(t, replica, tok)
		require.Equal(t, refusal{401, "TOKEN_INVALID", auth.ReasonUnknownKid, r.detail}, r, "the other replica refuses once notified")

		setKeyEnabled(t, b.env, "acme", kid, true)
		ok(t, b.env, tok)
		require.Eventually(t, func() bool { return me(replica, "Authorization", tok).StatusCode == http.StatusOK }, 5*time.Second, 5*time.Millisecond)
	})

	t.Run("a program switched off refuses remembered tokens", func(t *testing.T) {
		t.Parallel()
		b := setup(t, partner.AddConsumerKeyParams{})
		tok := b.tok(nil)
		ok(t, b.env, tok)
		setControls(t, b.env, "acme", partner.Controls{APIEnabled: ptr(false)})
		serving(t, b.env) // past the write's own bypass: only the epoch refuses
		r := refused(t, b.env, tok)
		require.Equal(t, 403, r.status)
		require.Equal(t, "PARTNER_DISABLED", r.code)
	})

	t.Run("a changed audience refuses remembered tokens", func(t *testing.T) {
		t.Parallel()
		b := setup(t, partner.AddConsumerKeyParams{})
		tok := b.tok(nil)
		ok(t, b.env, tok)
		setControls(t, b.env, "acme", partner.Controls{Audience: ptr("perks-acme")})
		serving(t, b.env) // past the write's own bypass: only the epoch refuses
		r := refused(t, b.env, tok)
		require.Equal(t, refusal{401, "TOKEN_INVALID", auth.ReasonAudience, r.detail}, r)
	})

	t.Run("logout still refuses a remembered token", func(t *testing.T) {
		t.Parallel()
		b := setup(t, partner.AddConsumerKeyParams{})
		tok := b.tok(nil)
		ok(t, b.env, tok)
		res := b.env.GraphQL(tok, `mutation { logout }`, nil)
		require.JSONEq(t, `{"logout":true}`, string(res.Data))
		r := refused(t, b.env, tok)
		require.Equal(t, "TOKEN_REVOKED", r.code)
	})

	t.Run("tokens verified by a published key are not remembered", func(t *testing.T) {
		t.Parallel()
		b := setup(t, partner.AddConsumerKeyParams{})
		published := testRSAKey(t, 2)
		srv := newJWKSServer(t)
		srv.set("ok", rsaJWK("published", &published.PublicKey))
		setControls(t, b.env, "acme", partner.Controls{JWKSURL: ptr(srv.URL + "/.well-known/jwks.json")})
		serving(t, b.env)
		now := b.env.Now()
		tok := sign(t, jwt.SigningMethodRS256, published, map[string]any{"kid": "published"},
			map[string]any{"iss": iss, "sub": "jwks-user", "iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()})
		ok(t, b.env, tok)
		ok(t, b.env, tok)
		require.Equal(t, 0, b.cached(b.env), "a JWKS set changes without a notification")
	})

	t.Run("the portal's token tester never uses the memory", func(t *testing.T) {
		t.Parallel()
		b := setup(t, partner.AddConsumerKeyParams{})
		tok := b.tok(nil)
		p, err := b.env.App.Partners.BySlug(context.Background(), b.env.DB.Bun, "acme")
		require.NoError(t, err)
		_, err = b.env.App.Portal.ConsumerAuth.Inspect(context.Background(), p, tok)
		require.NoError(t, err)
		require.Equal(t, 0, b.cached(b.env))
	})
}
