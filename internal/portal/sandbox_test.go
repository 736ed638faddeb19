package portal_test

import (
	"crypto/ed25519"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/account"
	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/demo"
)

// TestSandboxSwitch: the same session switches to the sandbox and back;
// every sandbox page has the banner; pages act on the sandbox (an API
// access record created there signs requests that land in the sandbox);
// the Team page stays the live team; a viewer switches but may not reset;
// a reset needs the slug typed and spares credentials and live data.
func TestSandboxSwitch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	owner, _ := b.member(t, b.acme, "owner@acme.example", account.RoleOwner)
	viewer, _ := b.member(t, b.acme, "viewer@acme.example", account.RoleViewer)

	home := owner.get("/portal")
	require.NotContains(t, home.Body, "sandbox-banner")
	require.Contains(t, home.Body, `id="environment">Live<`)

	res := owner.post("/portal/environment", url.Values{"csrf": {owner.csrfOf(t)}, "environment": {"sandbox"}})
	require.Equal(t, http.StatusSeeOther, res.Status, res.Body)
	for _, path := range []string{"/portal", "/portal/api-access", "/portal/team", "/portal/audit", "/portal/sandbox"} {
		pg := owner.get(path)
		require.Equal(t, http.StatusOK, pg.Status, "%s: %s", path, pg.Body)
		require.Contains(t, pg.Body, `id="sandbox-banner"`, path)
		require.Contains(t, pg.Body, "<title>[Sandbox] ", path)
	}
	// The Team page is the live team, shared by both environments.
	team := owner.get("/portal/team")
	require.Contains(t, team.Body, "viewer@acme.example")
	// The viewer's own session is still live.
	require.NotContains(t, viewer.get("/portal").Body, "sandbox-banner")

	// An API access record made in the sandbox signs sandbox requests.
	created := owner.post("/portal/api-access", url.Values{"csrf": {owner.csrfOf(t)}, "description": {"sandbox server"}})
	require.Equal(t, http.StatusCreated, created.Status, created.Body)
	require.Contains(t, created.Body, "<code>acme-sandbox</code>")
	apiKey := created.find(t, `<pre id="api-key">([^<]+)</pre>`)
	k, err := demo.ParsePrivateKey([]byte(created.find(t, `(?s)<pre id="private-key">(.+?)</pre>`)))
	require.NoError(t, err)
	body := []byte(`{"externalUserId":"portal-sandbox-user"}`)
	ts := strconv.FormatInt(b.env.Now().Unix(), 10)
	idem := uuid.NewString()
	req, err := http.NewRequest(http.MethodPost, b.env.Server.URL+"/integrations/users", strings.NewReader(string(body)))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(auth.HeaderAPIKey, apiKey)
	req.Header.Set("X-Timestamp", ts)
	req.Header.Set("X-Signature", auth.SignEd25519(k.(ed25519.PrivateKey), ts, http.MethodPost, "/integrations/users", body, idem))
	req.Header.Set("Idempotency-Key", idem)
	signed := b.env.Do(req)
	require.Equal(t, http.StatusCreated, signed.StatusCode, "%s", signed.Body)
	require.Equal(t, "sandbox", signed.Header.Get("Perks-Environment"))
	require.Equal(t, http.StatusOK, b.env.Partner("acme-sandbox", http.MethodGet, "/integrations/users/portal-sandbox-user", nil).StatusCode)
	require.Equal(t, "USER_NOT_FOUND", b.env.Partner("acme", http.MethodGet, "/integrations/users/portal-sandbox-user", nil).Code())
	// Live's API access page does not list the sandbox's record.
	require.Equal(t, http.StatusSeeOther, owner.post("/portal/environment", url.Values{"csrf": {owner.csrfOf(t)}, "environment": {"live"}}).Status)
	require.NotContains(t, owner.get("/portal/api-access").Body, "sandbox server")
	require.NotContains(t, owner.get("/portal").Body, "sandbox-banner")

	// A viewer may switch but not reset (nor create).
	vres := viewer.post("/portal/environment", url.Values{"csrf": {viewer.csrfOf(t)}, "environment": {"sandbox"}})
	require.Equal(t, http.StatusSeeOther, vres.Status)
	require.Contains(t, viewer.get("/portal/sandbox").Body, `id="sandbox-banner"`)
	require.NotContains(t, viewer.get("/portal/sandbox").Body, `id="reset"`)
	require.Equal(t, http.StatusForbidden, viewer.post("/portal/sandbox/reset", url.Values{"csrf": {viewer.csrfOf(t)}, "confirm": {"acme-sandbox"}}).Status)
	require.Equal(t, http.StatusForbidden, viewer.post("/portal/sandbox", url.Values{"csrf": {viewer.csrfOf(t)}}).Status)

	// A reset without the slug typed changes nothing; with it, the data
	// goes and the credential stays.
	bad := owner.post("/portal/sandbox/reset", url.Values{"csrf": {owner.csrfOf(t)}, "confirm": {"acme"}})
	require.Equal(t, http.StatusBadRequest, bad.Status, bad.Body)
	require.Equal(t, http.StatusOK, b.env.Partner("acme-sandbox", http.MethodGet, "/integrations/users/portal-sandbox-user", nil).StatusCode)
	ok := owner.post("/portal/sandbox/reset", url.Values{"csrf": {owner.csrfOf(t)}, "confirm": {"acme-sandbox"}})
	require.Equal(t, http.StatusOK, ok.Status, ok.Body)
	require.Contains(t, ok.Body, "users: 1")
	require.Equal(t, "USER_NOT_FOUND", b.env.Partner("acme-sandbox", http.MethodGet, "/integrations/users/portal-sandbox-user", nil).Code())
	require.Equal(t, http.StatusCreated, b.env.Partner("acme-sandbox", http.MethodPost, "/integrations/users", []byte(`{"externalUserId":"after-reset"}`)).StatusCode)
}

// TestSandboxCreateFromPortal: a partner without a sandbox sees a create
// button (owners and developers); creating switches the session to it and
// shows its first HMAC secret once; switching to a sandbox that does not
// exist is refused.
func TestSandboxCreateFromPortal(t *testing.T) {
	t.Parallel()
	b := setup(t)
	dev, _ := b.member(t, b.globe, "dev@globex.example", account.RoleDeveloper)

	pg := dev.get("/portal/sandbox")
	require.Contains(t, pg.Body, `id="no-sandbox"`)
	res := dev.post("/portal/environment", url.Values{"csrf": {dev.csrfOf(t)}, "environment": {"sandbox"}})
	require.Equal(t, http.StatusConflict, res.Status)
	require.NotContains(t, dev.get("/portal").Body, "sandbox-banner")

	res = dev.post("/portal/sandbox", url.Values{"csrf": {dev.csrfOf(t)}})
	require.Equal(t, http.StatusOK, res.Status, res.Body)
	require.Contains(t, res.Body, `id="sandbox-banner"`)
	secret := res.find(t, `<pre id="sandbox-hmac-secret">([^<]+)</pre>`)
	req, err := http.NewRequest(http.MethodGet, b.env.Server.URL+"/integrations/sandbox", nil)
	require.NoError(t, err)
	req.Header.Set("X-Partner-Slug", "globex-sandbox")
	req.Header.Set("X-Signature", b.env.SignV1(secret, nil))
	got := b.env.Do(req)
	require.Equal(t, http.StatusOK, got.StatusCode, "%s", got.Body)
	require.Equal(t, "globex-sandbox", got.JSON(t)["slug"])
	require.NotContains(t, dev.get("/portal/sandbox").Body, secret, "shown once")
}
