package web_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/web"
)

func get(t *testing.T, env *apptest.Env, path string, headers ...string) *apptest.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, env.Server.URL+path, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return env.Do(req)
}

// requireStrict checks the headers every web answer carries.
func requireStrict(t *testing.T, res *apptest.Response, frameAncestors string) {
	t.Helper()
	h := res.Header
	csp := h.Get("Content-Security-Policy")
	require.Equal(t, "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; connect-src 'self'; "+
		"font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors "+frameAncestors+
		"; require-trusted-types-for 'script'; trusted-types 'none'", csp)
	require.Equal(t, "no-referrer", h.Get("Referrer-Policy"))
	require.Equal(t, "nosniff", h.Get("X-Content-Type-Options"))
	require.Equal(t, "same-origin", h.Get("Cross-Origin-Opener-Policy"))
	if frameAncestors == "'none'" {
		require.Equal(t, "DENY", h.Get("X-Frame-Options"))
	} else {
		require.Empty(t, h.Get("X-Frame-Options"), "X-Frame-Options would forbid the partner's frames")
	}
}

func TestPagesAndSecurityHeaders(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)

	// The webview: a strict CSP, not framable unless the partner allows it.
	for _, path := range []string{"/consumer", "/consumer/", "/consumer?partner=globex", "/consumer?partner=nobody", "/consumer?partner=ACME%3B%20script-src%20*"} {
		res := get(t, env, path)
		require.Equal(t, http.StatusOK, res.StatusCode, path)
		require.Equal(t, "text/html; charset=utf-8", res.Header.Get("Content-Type"))
		require.Equal(t, "no-store", res.Header.Get("Cache-Control"))
		requireStrict(t, res, "'none'")
		require.Contains(t, string(res.Body), `<script type="module" src="/assets/consumer/app.js"></script>`)
	}

	// A partner that embeds the webview in its own site lists its origins.
	_, err := env.App.Partners.UpdateControls(context.Background(), env.DB.Bun, env.PartnerID("acme"), partner.Controls{
		FrameAncestors: &[]string{"'self'", "https://app.acme.example.test", "https://*.acme.example.test"},
	})
	require.NoError(t, err)
	res := get(t, env, "/consumer?partner=acme")
	requireStrict(t, res, "'self' https://app.acme.example.test https://*.acme.example.test")
	requireStrict(t, get(t, env, "/consumer"), "'none'")
	requireStrict(t, get(t, env, "/consumer?partner=globex"), "'none'")
	// A list edited by hand in the database never reaches the header.
	_, err = env.DB.Bun.ExecContext(context.Background(), `UPDATE partners SET frame_ancestors = '{"https://x.example.test; script-src *"}' WHERE slug = 'acme'`)
	require.NoError(t, err)
	requireStrict(t, get(t, env, "/consumer?partner=acme"), "'none'")
	require.Contains(t, env.Logs.String(), "webview frame-ancestors lookup failed")

	// /merchant is the signed-in merchant portal now (internal/merchantportal):
	// without a session it sends to its sign-in page, never framed.
	res = get(t, env, "/merchant")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "/merchant/sign-in", res.Request.URL.Path)
	require.Contains(t, string(res.Body), `id="sign-in"`)
	require.Equal(t, "DENY", res.Header.Get("X-Frame-Options"))
	// The page routes do not shadow the merchant API next to them.
	require.Equal(t, "INVALID_SIGNATURE", get(t, env, "/merchant/vouchers/COFFEE-DEMO-0001", "X-API-Key", "mk_nope", "X-Timestamp", "1", "X-Signature", "x").Code())

	// Assets: revalidated with their ETag, strict headers too.
	for path, ct := range map[string]string{
		"/assets/consumer/app.js":  "text/javascript; charset=utf-8",
		"/assets/consumer/api.js":  "text/javascript; charset=utf-8",
		"/assets/consumer/ui.js":   "text/javascript; charset=utf-8",
		"/assets/consumer/app.css": "text/css; charset=utf-8",
		"/assets/shared/base.css":  "text/css; charset=utf-8",
		"/assets/shared/icon.svg":  "image/svg+xml",
	} {
		res := get(t, env, path)
		require.Equal(t, http.StatusOK, res.StatusCode, path)
		require.Equal(t, ct, res.Header.Get("Content-Type"), path)
		require.Equal(t, "no-cache", res.Header.Get("Cache-Control"))
		requireStrict(t, res, "'none'")
		etag := res.Header.Get("ETag")
		require.NotEmpty(t, etag)
		again := get(t, env, path, "If-None-Match", etag)
		require.Equal(t, http.StatusNotModified, again.StatusCode, path)
		require.Empty(t, again.Body)
	}
	for _, path := range []string{"/assets/consumer/index.html", "/assets/nope.js", "/assets/../web.go", "/uploads/partners/nope.png", "/uploads/partners/"} {
		res := get(t, env, path)
		require.Equal(t, http.StatusNotFound, res.StatusCode, path)
	}

	// Seed 000's logo path, relative to the origin, is a real PNG.
	me := env.GraphQL(env.Token("acme", "usr_logo", nil), `{ me { partner { logoPath } } }`, nil)
	require.Empty(t, me.Errors)
	require.Contains(t, string(me.Data), `"logoPath":"uploads/partners/acme-logo.png"`)
	for _, slug := range []string{"acme", "globex"} {
		res := get(t, env, "/uploads/partners/"+slug+"-logo.png")
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.Equal(t, "image/png", res.Header.Get("Content-Type"))
		require.Equal(t, "public, max-age=3600", res.Header.Get("Cache-Control"))
		require.True(t, bytes.HasPrefix(res.Body, []byte("\x89PNG\r\n\x1a\n")))
	}

	// HEAD works; other methods are not pages.
	req, _ := http.NewRequest(http.MethodHead, env.Server.URL+"/consumer", nil)
	require.Equal(t, http.StatusOK, env.Do(req).StatusCode)
	req, _ = http.NewRequest(http.MethodPost, env.Server.URL+"/consumer", strings.NewReader("x"))
	require.NotEqual(t, http.StatusOK, env.Do(req).StatusCode)

	// The access log names the route, never a query string.
	require.Contains(t, env.Logs.String(), `"route":"GET /consumer"`)
	require.NotContains(t, env.Logs.String(), "partner=acme")
	require.Equal(t, web.CSP(nil), get(t, env, "/consumer").Header.Get("Content-Security-Policy"))
}
