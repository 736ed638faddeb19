package portal_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/account"
)

// TestExportCSV: support downloads the export as CSV ending with its
// cursor; the page then offers the changes since, and that download holds
// only the users changed after the first; a foreign or broken cursor and a
// bad limit are refused; a viewer may not download.
func TestExportCSV(t *testing.T) {
	t.Parallel()
	b := setup(t)
	support, _ := b.member(t, b.acme, "support@acme.example", account.RoleSupport)
	viewer, _ := b.member(t, b.acme, "viewer@acme.example", account.RoleViewer)
	b.env.FundedUser("acme", "ex-1", "FR", 10)
	b.env.WaitExportable()

	pg := support.get("/portal/exports")
	require.Equal(t, http.StatusOK, pg.Status)
	require.NotContains(t, pg.Body, `id="watermark"`)
	full := support.get("/portal/exports/users.csv")
	require.Equal(t, http.StatusOK, full.Status, full.Body)
	require.Equal(t, "text/csv; charset=utf-8", full.Header.Get("Content-Type"))
	require.Contains(t, full.Header.Get("Content-Disposition"), "acme-users.csv")
	require.Contains(t, full.Body, "ex-1")
	lines := strings.Split(strings.TrimSpace(full.Body), "\n")
	last := lines[len(lines)-1]
	require.True(t, strings.HasPrefix(last, "#cursor,"), last)
	next := strings.Split(last, ",")[1]
	require.Equal(t, next, full.Header.Get("X-Next-Cursor"))

	pg = support.get("/portal/exports")
	require.Contains(t, pg.Body, `id="watermark"`)
	since := pg.find(t, `href="(/portal/exports/users.csv\?cursor=[^"]+)" id="download-since"`)
	u, err := url.Parse(since)
	require.NoError(t, err)
	require.Equal(t, next, u.Query().Get("cursor"))
	require.Equal(t, 1, b.env.Count("export_downloads", "partner_id = ? AND next_cursor = ?", b.acme.ID, next))
	require.Equal(t, 1, b.env.Count("audit_log", "realm_id = ? AND action = 'export.users'", b.acme.ID))

	b.env.FundedUser("acme", "ex-2", "FR", 10)
	b.env.WaitExportable()
	inc := support.get(since)
	require.Equal(t, http.StatusOK, inc.Status, inc.Body)
	require.Contains(t, inc.Body, "ex-2")
	require.NotContains(t, inc.Body, "ex-1", "only the changes since the last download")

	gsupport, _ := b.member(t, b.globe, "support@globex.example", account.RoleSupport)
	for name, path := range map[string]string{
		"another partner's cursor": since,
		"broken cursor":            "/portal/exports/users.csv?cursor=abc.def",
		"zero limit":               "/portal/exports/users.csv?limit=0",
		"word limit":               "/portal/exports/users.csv?limit=many",
	} {
		res := gsupport.get(path)
		require.Equal(t, http.StatusBadRequest, res.Status, name)
		require.Contains(t, res.Body, `role="alert"`, name)
	}
	require.Zero(t, b.env.Count("export_downloads", "partner_id = ?", b.globe.ID))
	require.NotContains(t, gsupport.get("/portal/exports").Body, next, "acme's watermark is acme's")

	require.Equal(t, http.StatusForbidden, viewer.get("/portal/exports/users.csv").Status)
	vp := viewer.get("/portal/exports")
	require.Equal(t, http.StatusOK, vp.Status)
	require.NotContains(t, vp.Body, `id="export-form"`)
}

// TestJobsPages: a multidelete job is listed with its progress; its page
// reloads itself (progress.js, a same-origin file: no inline script, and no
// meta refresh, which axe-core counts as a critical failure) until it finishes; another
// partner's job is not found; bad paging is refused.
func TestJobsPages(t *testing.T) {
	t.Parallel()
	b := setup(t)
	viewer, _ := b.member(t, b.acme, "viewer@acme.example", account.RoleViewer)
	b.env.FundedUser("acme", "job-1", "FR", 10)
	res := b.env.Partner("acme", http.MethodPost, "/integrations/users/multidelete", []byte(`{"externalUserIds":["job-1","job-missing"]}`))
	require.Equal(t, http.StatusAccepted, res.StatusCode, "%s", res.Body)
	id := res.JSON(t)["jobId"].(string)

	list := viewer.get("/portal/jobs")
	require.Equal(t, http.StatusOK, list.Status)
	require.Contains(t, list.Body, `href="/portal/jobs/`+id+`"`)
	require.Contains(t, list.Body, "0 done, 0 failed of 2")

	pg := viewer.get("/portal/jobs/" + id)
	require.Equal(t, http.StatusOK, pg.Status, pg.Body)
	require.Contains(t, pg.Body, `data-reload="2000"`)
	require.Contains(t, pg.Body, `<script src="/portal/assets/progress.js"></script>`)
	require.Contains(t, pg.Body, `id="job-progress" max="100" value="0"`)
	require.Equal(t, strings.Count(pg.Body, "<script"), strings.Count(pg.Body, `<script src="/portal/assets/`), "no inline script")

	// Run the job to its end (the workers are off in this test).
	for {
		done, err := b.env.App.Bulk.ProcessChunk(b.ctx, b.env.DB.Bun, b.acme.ID, uuid.MustParse(id))
		require.NoError(t, err)
		if done {
			break
		}
	}
	pg = viewer.get("/portal/jobs/" + id)
	require.Equal(t, http.StatusOK, pg.Status)
	require.NotContains(t, pg.Body, `data-reload`, "a finished job does not reload")
	require.Contains(t, pg.Body, `value="100"`)
	errs := viewer.get("/portal/jobs/" + id + "?only=errors")
	require.Equal(t, http.StatusOK, errs.Status)
	require.Contains(t, errs.Body, "USER_NOT_FOUND")

	for _, q := range []string{"?only=all", "?after=x", "?after=-2"} {
		require.Equal(t, http.StatusBadRequest, viewer.get("/portal/jobs/"+id+q).Status, q)
	}
	gviewer, _ := b.member(t, b.globe, "viewer@globex.example", account.RoleViewer)
	require.Equal(t, http.StatusNotFound, gviewer.get("/portal/jobs/"+id).Status)
	require.NotContains(t, gviewer.get("/portal/jobs").Body, id)
	require.Equal(t, http.StatusNotFound, viewer.get("/portal/jobs/not-a-uuid").Status)
}
