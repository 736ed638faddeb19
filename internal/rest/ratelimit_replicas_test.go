package rest_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/partner"
)

// TestRateLimitAcrossReplicas: two app instances on one database share a
// partner's buckets. With a burst of 4, four calls pass in total, spread
// over both replicas, and the fifth is refused whichever replica gets it
// (per-replica buckets let eight through). The consumer bucket is shared
// the same way, and a refill is seen by both.
func TestRateLimitAcrossReplicas(t *testing.T) {
	t.Parallel()
	setup := func(t *testing.T) (a, b *apptest.Env) {
		a = apptest.New(t)
		setControls(t, a, "acme", partner.Controls{RateLimitPerMinute: ptr(60), RateLimitBurst: ptr(4),
			ConsumerRateLimitPerMinute: ptr(60), ConsumerRateLimitBurst: ptr(2)})
		return a, a.Replica()
	}
	a, b := setup(t)
	call := func(env *apptest.Env) *apptest.Response {
		return env.Partner("acme", http.MethodGet, "/integrations/users/nobody", nil)
	}
	replicas := []*apptest.Env{a, b}
	for i, want := range []string{"3", "2", "1", "0"} {
		res := call(replicas[i%2])
		require.Equal(t, http.StatusNotFound, res.StatusCode, "call %d", i)
		require.Equal(t, want, res.Header.Get("RateLimit-Remaining"), "call %d", i)
	}
	for i, env := range replicas {
		res := call(env)
		require.Equal(t, http.StatusTooManyRequests, res.StatusCode, "replica %d: the shared bucket is empty", i)
		require.Equal(t, "1", res.Header.Get("Retry-After"))
	}

	tok := a.Token("acme", "rl-replicas", nil)
	require.Equal(t, http.StatusOK, a.Consumer(tok, http.MethodGet, "/me", nil).StatusCode)
	require.Equal(t, http.StatusOK, b.Consumer(tok, http.MethodGet, "/me", nil).StatusCode)
	require.Equal(t, http.StatusTooManyRequests, a.Consumer(tok, http.MethodGet, "/me", nil).StatusCode)
	require.Equal(t, http.StatusTooManyRequests, b.Consumer(tok, http.MethodGet, "/me", nil).StatusCode)

	// One second refills one token: one call passes, on either replica.
	a.Clock.Advance(time.Second)
	require.Equal(t, http.StatusNotFound, call(b).StatusCode, "refilled")
	require.Equal(t, http.StatusTooManyRequests, call(a).StatusCode, "one token, taken by the other replica")
}
