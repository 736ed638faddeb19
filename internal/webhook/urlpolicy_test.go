package webhook_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/config"
	"github.com/perkshq/perks/internal/webhook"
)

// production is the policy of PERKS_ENV=production without
// PERKS_WEBHOOK_ALLOW_PRIVATE.
func production() *webhook.URLPolicy { return &webhook.URLPolicy{RequireHTTPS: true} }

// TestSSRFRefusedInProduction: each URL is refused when the endpoint is
// saved, and, checked separately, at dial time.
func TestSSRFRefusedInProduction(t *testing.T) {
	t.Parallel()
	// A live server on loopback: if a dial got through, it would count it.
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	port := mustPort(t, srv.URL)

	cases := []struct {
		name, url string
		code      apperr.Code
	}{
		{"loopback IPv4", "http://127.0.0.1:" + port + "/hook", apperr.CodeWebhookURLForbidden},
		{"loopback IPv4 over https", "https://127.0.0.1:" + port + "/hook", apperr.CodeWebhookURLForbidden},
		{"loopback IPv6", "https://[::1]:" + port + "/hook", apperr.CodeWebhookURLForbidden},
		{"cloud metadata", "https://169.254.169.254/latest/meta-data/", apperr.CodeWebhookURLForbidden},
		{"private 10/8", "https://10.0.0.1/hook", apperr.CodeWebhookURLForbidden},
		{"private 192.168/16", "https://192.168.1.20/hook", apperr.CodeWebhookURLForbidden},
		{"private 172.16/12", "https://172.16.5.4/hook", apperr.CodeWebhookURLForbidden},
		{"link-local IPv6", "https://[fe80::1]/hook", apperr.CodeWebhookURLForbidden},
		{"unique local IPv6", "https://[fd12::1]/hook", apperr.CodeWebhookURLForbidden},
		{"IPv4-mapped loopback", "https://[::ffff:127.0.0.1]/hook", apperr.CodeWebhookURLForbidden},
		{"unspecified", "https://0.0.0.0/hook", apperr.CodeWebhookURLForbidden},
		{"carrier-grade NAT", "https://100.64.0.1/hook", apperr.CodeWebhookURLForbidden},
		{"name resolving to loopback", "https://localhost:" + port + "/hook", apperr.CodeWebhookURLForbidden},
		{"plain http to a public address", "http://93.184.215.14/hook", apperr.CodeWebhookURLForbidden},
		{"credentials in the URL", "https://user:pass@93.184.215.14/hook", apperr.CodeInvalidField},
		{"not http", "ftp://93.184.215.14/hook", apperr.CodeInvalidField},
		{"relative", "/hook", apperr.CodeInvalidField},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			err := production().CheckURL(context.Background(), "url", c.url)
			e := apperr.As(err)
			require.NotNil(t, e, "%s must be refused", c.url)
			require.Equal(t, c.code, e.Code, e.Message)
			require.Equal(t, "url", e.Field)
		})
	}

	// Dial time, with https not required so that the address check is what
	// refuses (and the live server proves no connection was made).
	dialOnly := &webhook.URLPolicy{}
	sender := webhook.NewSender(dialOnly)
	for _, raw := range []string{
		"http://127.0.0.1:" + port, "http://[::1]:" + port, "http://169.254.169.254", "http://10.0.0.1",
		"http://localhost:" + port, "http://[::ffff:127.0.0.1]:" + port,
	} {
		t.Run("dial "+raw, func(t *testing.T) {
			t.Parallel()
			u, err := url.Parse(raw)
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err = dialOnly.DialContext(ctx, "tcp", net.JoinHostPort(u.Hostname(), portOr(u, "80")))
			require.ErrorIs(t, err, webhook.ErrForbiddenAddress)

			res := sender.Send(ctx, webhook.Message{URL: raw + "/hook", ID: "msg_1", Timestamp: time.Now(), Body: []byte("{}"), Keys: [][]byte{[]byte("k")}})
			require.Zero(t, res.StatusCode)
			require.Contains(t, res.Err, "refusing to connect")
		})
	}
	t.Cleanup(func() { require.Zero(t, hits.Load(), "no refused URL reached the server") })
}

// TestDNSRebindingCaughtAtDialTime: a name that resolved to a public
// address when the endpoint was saved and resolves to loopback when the
// delivery dials is refused.
func TestDNSRebindingCaughtAtDialTime(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)

	var answer atomic.Value
	answer.Store(netip.MustParseAddr("93.184.215.14"))
	policy := &webhook.URLPolicy{Lookup: func(ctx context.Context, host string) ([]netip.Addr, error) {
		if host != "rebind.example" {
			return nil, errors.New("no such host")
		}
		return []netip.Addr{answer.Load().(netip.Addr)}, nil
	}}
	hook := "http://rebind.example:" + mustPort(t, srv.URL) + "/hook"
	require.NoError(t, policy.CheckURL(context.Background(), "url", hook), "public when saved")

	answer.Store(netip.MustParseAddr("127.0.0.1"))
	res := webhook.NewSender(policy).Send(context.Background(), webhook.Message{URL: hook, ID: "msg_1", Timestamp: time.Now(), Body: []byte("{}"), Keys: [][]byte{[]byte("k")}})
	require.Zero(t, res.StatusCode)
	require.Contains(t, res.Err, "loopback")
	require.Zero(t, hits.Load())

	// The same server is reachable when private addresses are allowed
	// (development), which shows the refusal above was the policy's.
	policy.AllowPrivate = true
	res = webhook.NewSender(policy).Send(context.Background(), webhook.Message{URL: hook, ID: "msg_1", Timestamp: time.Now(), Body: []byte("{}"), Keys: [][]byte{[]byte("k")}})
	require.Equal(t, 200, res.StatusCode, res.Err)
	require.EqualValues(t, 1, hits.Load())
}

// TestAllowPrivateStillRefusesMetadata: development may reach loopback and
// private networks, never the cloud metadata service.
func TestAllowPrivateStillRefusesMetadata(t *testing.T) {
	t.Parallel()
	dev := &webhook.URLPolicy{AllowPrivate: true}
	require.NoError(t, dev.CheckURL(context.Background(), "url", "http://127.0.0.1:9/hook"))
	require.NoError(t, dev.CheckURL(context.Background(), "url", "http://localhost:9/hook"))
	require.NoError(t, dev.CheckURL(context.Background(), "url", "http://10.1.2.3/hook"))
	err := dev.CheckURL(context.Background(), "url", "http://169.254.169.254/latest/meta-data/")
	require.Equal(t, apperr.CodeWebhookURLForbidden, apperr.CodeOf(err))
	_, err = dev.DialContext(context.Background(), "tcp", "169.254.169.254:80")
	require.ErrorIs(t, err, webhook.ErrForbiddenAddress)
}

func mustPort(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	return u.Port()
}

func portOr(u *url.URL, def string) string {
	if p := u.Port(); p != "" {
		return p
	}
	if strings.EqualFold(u.Scheme, "https") {
		return "443"
	}
	return def
}

// TestDevelopmentNamesTheSettingForLocalURLs: in development (issue 11) a
// loopback or private webhook URL is refused with the setting that allows
// it, through the API as configured by the app; production never suggests
// it, and a cloud metadata address, refused whatever the setting, gets no
// hint.
func TestDevelopmentNamesTheSettingForLocalURLs(t *testing.T) {
	t.Parallel()
	require.Contains(t, config.MarkdownTable(), "`"+webhook.AllowPrivateSetting+"`", "the hint names a real setting")
	env := apptest.New(t, apptest.Options{Env: map[string]string{webhook.AllowPrivateSetting: "false"}})
	hint := webhook.AllowPrivateSetting + "=true"
	for _, u := range []string{"http://127.0.0.1:8080/hook", "http://localhost:8080/hook", "http://192.168.1.20/hook", "http://[::1]/hook"} {
		res := env.Partner("acme", http.MethodPost, "/integrations/webhook-endpoints", []byte(`{"url":"`+u+`"}`))
		require.Equal(t, http.StatusBadRequest, res.StatusCode, "%s: %s", u, res.Body)
		require.Equal(t, string(apperr.CodeWebhookURLForbidden), res.Code(), u)
		require.Contains(t, string(res.Body), hint, u)
	}
	res := env.Partner("acme", http.MethodPost, "/integrations/webhook-endpoints", []byte(`{"url":"http://169.254.169.254/latest/meta-data/"}`))
	require.Equal(t, string(apperr.CodeWebhookURLForbidden), res.Code())
	require.NotContains(t, string(res.Body), webhook.AllowPrivateSetting)

	for _, u := range []string{"https://127.0.0.1/hook", "https://localhost/hook"} {
		err := production().CheckURL(context.Background(), "url", u)
		require.Equal(t, apperr.CodeWebhookURLForbidden, apperr.CodeOf(err), u)
		require.NotContains(t, err.Error(), webhook.AllowPrivateSetting, "production never suggests it")
	}
}
