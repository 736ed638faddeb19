package rest_test

import (
	"bytes"
	"context"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/partner"
)

func setControls(t *testing.T, env *apptest.Env, slug string, c partner.Controls) {
	t.Helper()
	p, err := env.App.Partners.BySlug(context.Background(), env.DB.Bun, slug)
	require.NoError(t, err)
	_, err = env.App.Partners.UpdateControls(context.Background(), env.DB.Bun, p.ID, c)
	require.NoError(t, err)
}

func ptr[T any](v T) *T { return &v }

// signedV2 builds an HMAC request with the given signature entries.
func hmacRequest(env *apptest.Env, method, path string, body []byte, sig string) *http.Request {
	req, _ := http.NewRequest(method, env.Server.URL+path, bytes.NewReader(body))
	req.Header.Set("X-Partner-Slug", "acme")
	req.Header.Set("X-Signature", sig)
	if len(body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

// TestHMACV2Required: a v1 signature covers neither method nor path, so a
// DELETE captured for one user verifies for every user in that second. With
// v2 required, the replay against another user's path is refused, and v2
// signatures bound to their path pass.
func TestHMACV2Required(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	for _, id := range []string{"victim", "bystander"} {
		res := env.Partner("acme", http.MethodPost, "/integrations/users", []byte(`{"externalUserId":"`+id+`"}`))
		require.Equal(t, http.StatusCreated, res.StatusCode)
	}
	ts := strconv.FormatInt(env.Now().Unix(), 10)
	v1 := "t=" + ts + ",v1=" + auth.SignV1([]byte(acmeSecret), ts, nil)

	// Without the switch, the captured v1 DELETE works against any path.
	setControls(t, env, "acme", partner.Controls{RequireHMACV2: ptr(false)})
	res := env.Do(hmacRequest(env, http.MethodDelete, "/integrations/users/bystander", nil, v1))
	require.Equal(t, http.StatusNoContent, res.StatusCode, "v1 alone does not bind the path: %s", res.Body)

	setControls(t, env, "acme", partner.Controls{RequireHMACV2: ptr(true)})
	before := dbtest.Snapshot(t, env.DB.Bun)
	ts2 := strconv.FormatInt(env.Now().Unix()-1, 10)
	capturedV1 := "t=" + ts2 + ",v1=" + auth.SignV1([]byte(acmeSecret), ts2, nil)
	res = env.Do(hmacRequest(env, http.MethodDelete, "/integrations/users/victim", nil, capturedV1))
	require.Equal(t, http.StatusUnauthorized, res.StatusCode, "%s", res.Body)
	require.Equal(t, "SIGNATURE_V2_REQUIRED", res.Code())
	// A v2 signature for one user's DELETE replayed against the other's path.
	v2 := "t=" + ts2 + ",v2=" + auth.SignV2([]byte(acmeSecret), ts2, http.MethodDelete, "/integrations/users/bystander", nil)
	res = env.Do(hmacRequest(env, http.MethodDelete, "/integrations/users/victim", nil, v2))
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	require.Equal(t, "INVALID_SIGNATURE", res.Code())
	// Method swapped.
	v2 = "t=" + ts2 + ",v2=" + auth.SignV2([]byte(acmeSecret), ts2, http.MethodGet, "/integrations/users/victim", nil)
	res = env.Do(hmacRequest(env, http.MethodDelete, "/integrations/users/victim", nil, v2))
	require.Equal(t, "INVALID_SIGNATURE", res.Code())
	require.Equal(t, before, dbtest.Snapshot(t, env.DB.Bun))

	// The genuine v2 request passes, and v1+v2 headers (migration) too.
	v2 = "t=" + ts2 + ",v1=" + auth.SignV1([]byte(acmeSecret), ts2, nil) + ",v2=" + auth.SignV2([]byte(acmeSecret), ts2, http.MethodDelete, "/integrations/users/victim", nil)
	res = env.Do(hmacRequest(env, http.MethodDelete, "/integrations/users/victim", nil, v2))
	require.Equal(t, http.StatusNoContent, res.StatusCode, "%s", res.Body)

	// Every verified entry is remembered: dropping one entry of the
	// captured header does not make it new.
	setControls(t, env, "acme", partner.Controls{RequireHMACV2: ptr(false)})
	body := []byte(`{"externalUserId":"victim","locale":"en"}`)
	both := "t=" + ts2 + ",v1=" + auth.SignV1([]byte(acmeSecret), ts2, body) + ",v2=" + auth.SignV2([]byte(acmeSecret), ts2, http.MethodPost, "/integrations/users", body)
	res = env.Do(hmacRequest(env, http.MethodPost, "/integrations/users", body, both))
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	for _, part := range []string{both[:strings.Index(both, ",v2=")], "t=" + ts2 + both[strings.Index(both, ",v2="):]} {
		res = env.Do(hmacRequest(env, http.MethodPost, "/integrations/users", body, part))
		require.Equal(t, "SIGNATURE_REPLAYED", res.Code(), "%s: %s", part, res.Body)
	}
}

// TestPartnerControlsRefuse: API access off, scheme not allowed, origin not
// allowed and rate limit exceeded, on every scheme, each with its status and
// code and no change.
func TestPartnerControlsRefuse(t *testing.T) {
	t.Parallel()
	type fixture struct {
		env *apptest.Env
		ed  *seed004Client
		rj  *seed001Client
	}
	setup := func(t *testing.T, opts apptest.Options) fixture {
		env := apptest.New(t, opts)
		f := fixture{env: env, ed: newSeed004Client(t, env, "acme"), rj: newSeed001Client(t, env, "acme", acmeRequestSecret)}
		f.rj.login(t)
		return f
	}
	body := []byte(`{"externalUserId":"controls-user"}`)
	type call func(f fixture) *apptest.Response
	calls := map[string]call{
		"hmac": func(f fixture) *apptest.Response {
			return f.env.Partner("acme", http.MethodPost, "/integrations/users", body)
		},
		"ed25519": func(f fixture) *apptest.Response {
			return f.ed.do(http.MethodPost, "/integrations/users", body, "idem-"+uuid.NewString())
		},
		"request_jwt": func(f fixture) *apptest.Response {
			f.env.Clock.Advance(time.Second) // iat is whole seconds; each JWT must differ
			return f.rj.send(http.MethodPost, "/integrations/users", map[string]string{"Content-Type": "application/json"}, map[string]any{"externalUserId": "controls-user"}, body)
		},
	}
	consumer := func(f fixture) *apptest.Response {
		return f.env.Consumer(f.env.Token("acme", "controls-user", nil), http.MethodGet, "/me", nil)
	}

	cases := []struct {
		name     string
		opts     apptest.Options
		controls partner.Controls
		// warmup requests are sent (and must succeed) before the checked one.
		warmup   int
		status   int
		code     string
		consumer bool // the consumer call is refused too
	}{
		{name: "api access off", controls: partner.Controls{APIEnabled: ptr(false)}, status: 403, code: "PARTNER_DISABLED", consumer: true},
		{name: "scheme not allowed", controls: partner.Controls{AllowedSchemes: ptr([]string{"hmac"})}, status: 403, code: "SCHEME_NOT_ALLOWED"},
		{name: "origin not allowed (IP)", controls: partner.Controls{AllowedOrigins: ptr([]string{"203.0.113.7"})}, status: 403, code: "ORIGIN_NOT_ALLOWED"},
		{name: "origin not allowed (CIDR)", controls: partner.Controls{AllowedOrigins: ptr([]string{"10.0.0.0/8", "2001:db8::/32"})}, status: 403, code: "ORIGIN_NOT_ALLOWED"},
		{name: "origin not allowed (FQDN)", controls: partner.Controls{AllowedOrigins: ptr([]string{"api.acme.example.test"})},
			opts:   apptest.Options{Resolver: apptest.StaticResolver{"api.acme.example.test": {netip.MustParseAddr("198.51.100.4")}}},
			status: 403, code: "ORIGIN_NOT_ALLOWED"},
		{name: "rate limit exceeded", controls: partner.Controls{RateLimitPerMinute: ptr(1), RateLimitBurst: ptr(2)}, warmup: 2, status: 429, code: "RATE_LIMITED"},
	}
	for _, tc := range cases {
		for scheme, send := range calls {
			if tc.name == "scheme not allowed" && scheme == "hmac" {
				continue
			}
			t.Run(tc.name+"/"+scheme, func(t *testing.T) {
				t.Parallel()
				f := setup(t, tc.opts)
				setControls(t, f.env, "acme", tc.controls)
				for i := 0; i < tc.warmup; i++ {
					res := send(f)
					require.Contains(t, []int{200, 201}, res.StatusCode, "warmup: %s", res.Body)
				}
				before := dbtest.Snapshot(t, f.env.DB.Bun)
				res := send(f)
				require.Equal(t, tc.status, res.StatusCode, "%s", res.Body)
				require.Equal(t, tc.code, res.Code(), "%s", res.Body)
				require.Equal(t, before, dbtest.Snapshot(t, f.env.DB.Bun))
				if tc.status == 429 {
					// One token a minute: the next one is up to a minute away
					// (less when the clock moved between the calls).
					retry, _ := strconv.Atoi(res.Header.Get("Retry-After"))
					require.True(t, retry > 50 && retry <= 60, "Retry-After %d", retry)
					require.Equal(t, "2", res.Header.Get("RateLimit-Limit"))
					require.Equal(t, "0", res.Header.Get("RateLimit-Remaining"))
					reset, _ := strconv.Atoi(res.Header.Get("RateLimit-Reset"))
					require.True(t, reset > 110 && reset <= 120, "RateLimit-Reset %d", reset)
				}
				c := consumer(f)
				if tc.consumer {
					require.Equal(t, tc.status, c.StatusCode, "%s", c.Body)
					require.Equal(t, tc.code, c.Code())
					g := f.env.GraphQL(f.env.Token("acme", "controls-user", nil), `{ me { id } }`, nil)
					require.Equal(t, tc.code, g.ErrorCode())
				} else {
					require.Equal(t, http.StatusOK, c.StatusCode, "consumer calls are not subject to this control: %s", c.Body)
				}
			})
		}
	}
}

// TestOriginsAndProxies: allowed origins accept IPs, CIDRs and host names
// (resolved through the injected resolver and cached), and X-Forwarded-For
// is believed only from a trusted proxy.
func TestOriginsAndProxies(t *testing.T) {
	t.Parallel()
	resolver := &countingResolver{addrs: map[string][]netip.Addr{"api.acme.example.test": {netip.MustParseAddr("198.51.100.4")}}}
	env := apptest.New(t, apptest.Options{Resolver: resolver, Env: map[string]string{"PERKS_TRUSTED_PROXIES": "127.0.0.1"}})
	send := func(xff string) *apptest.Response {
		req := hmacRequest(env, http.MethodGet, "/integrations/users/nobody", nil, env.SignV1(acmeSecret, nil))
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		return env.Do(req)
	}
	allowed := func(res *apptest.Response) bool { return res.StatusCode == http.StatusNotFound }

	setControls(t, env, "acme", partner.Controls{AllowedOrigins: ptr([]string{"203.0.113.7", "192.0.2.0/24", "api.acme.example.test"})})
	for _, c := range []struct {
		xff string
		ok  bool
	}{
		{"203.0.113.7", true},
		{"192.0.2.200", true},
		{"198.51.100.4", true},               // the host name's address
		{"198.51.100.5", false},              // not listed
		{"", false},                          // the proxy itself (127.0.0.1)
		{"203.0.113.7, 198.51.100.5", false}, // right-most untrusted entry counts
		{"198.51.100.5, 203.0.113.7", true},  // a forged left entry is ignored
		{"203.0.113.7, 127.0.0.1", true},     // trusted hops are skipped
		{"not-an-ip", false},
	} {
		res := send(c.xff)
		require.Equal(t, c.ok, allowed(res), "X-Forwarded-For %q: %s", c.xff, res.Body)
		if !c.ok {
			require.Equal(t, "ORIGIN_NOT_ALLOWED", res.Code())
		}
	}
	require.Equal(t, 1, resolver.count(), "the host name is resolved once per TTL")
	env.Clock.Advance(61 * time.Second)
	require.True(t, allowed(send("198.51.100.4")))
	require.Equal(t, 2, resolver.count())

	// DNS failing: the last good answer is kept for a while.
	resolver.fail(true)
	env.Clock.Advance(61 * time.Second)
	require.True(t, allowed(send("198.51.100.4")), "last good answer kept")

	// Without trusted proxies, X-Forwarded-For is ignored entirely.
	env2 := apptest.New(t)
	setControls(t, env2, "acme", partner.Controls{AllowedOrigins: ptr([]string{"203.0.113.7"})})
	req := hmacRequest(env2, http.MethodGet, "/integrations/users/nobody", nil, env2.SignV1(acmeSecret, nil))
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	require.Equal(t, "ORIGIN_NOT_ALLOWED", env2.Do(req).Code())
	setControls(t, env2, "acme", partner.Controls{AllowedOrigins: ptr([]string{"127.0.0.0/8"})})
	require.Equal(t, http.StatusNotFound, env2.Partner("acme", http.MethodGet, "/integrations/users/nobody", nil).StatusCode)
}

// countingResolver counts lookups and can be made to fail.
type countingResolver struct {
	addrs   map[string][]netip.Addr
	mu      sync.Mutex
	n       int
	failing bool
}

func (r *countingResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	if r.failing {
		return nil, context.DeadlineExceeded
	}
	return apptest.StaticResolver(r.addrs).LookupNetIP(ctx, network, host)
}

func (r *countingResolver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

func (r *countingResolver) fail(b bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failing = b
}

// TestRateLimitHeaders: every answer of a limited partner carries the
// RateLimit-* headers; back end and consumers have separate buckets; the
// bucket refills with time.
func TestRateLimitHeaders(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	setControls(t, env, "acme", partner.Controls{RateLimitPerMinute: ptr(60), RateLimitBurst: ptr(3), ConsumerRateLimitPerMinute: ptr(60), ConsumerRateLimitBurst: ptr(1)})
	for i, want := range []string{"2", "1", "0"} {
		res := env.Partner("acme", http.MethodGet, "/integrations/users/nobody", nil)
		require.Equal(t, http.StatusNotFound, res.StatusCode, "call %d", i)
		require.Equal(t, "3", res.Header.Get("RateLimit-Limit"))
		require.Equal(t, want, res.Header.Get("RateLimit-Remaining"))
	}
	res := env.Partner("acme", http.MethodGet, "/integrations/users/nobody", nil)
	require.Equal(t, http.StatusTooManyRequests, res.StatusCode)
	require.Equal(t, "1", res.Header.Get("Retry-After"))

	// Consumers have their own bucket: the back end's exhaustion does not
	// touch them, and theirs answers 429 on GraphQL too.
	tok := env.Token("acme", "rl-user", nil)
	res = env.Consumer(tok, http.MethodGet, "/me", nil)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	require.Equal(t, "1", res.Header.Get("RateLimit-Limit"))
	g := env.Consumer(tok, http.MethodPost, "/graphql", []byte(`{"query":"{ me { id } }"}`))
	require.Equal(t, http.StatusTooManyRequests, g.StatusCode, "%s", g.Body)
	require.Equal(t, "1", g.Header.Get("Retry-After"))
	require.Contains(t, string(g.Body), `"code":"RATE_LIMITED"`)

	// Globex is not affected by acme's limits.
	require.Equal(t, http.StatusNotFound, env.Partner("globex", http.MethodGet, "/integrations/users/nobody", nil).StatusCode)

	env.Clock.Advance(time.Second)
	require.Equal(t, http.StatusNotFound, env.Partner("acme", http.MethodGet, "/integrations/users/nobody", nil).StatusCode, "refilled")

	// 0 means unlimited: no headers at all.
	setControls(t, env, "acme", partner.Controls{RateLimitPerMinute: ptr(0)})
	res = env.Partner("acme", http.MethodGet, "/integrations/users/nobody", nil)
	require.Empty(t, res.Header.Get("RateLimit-Limit"))
}
