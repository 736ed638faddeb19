package portal_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/account"
)

var keyRE = regexp.MustCompile(`name="key" value="([^"]+)"`)

func (p *page) key(t *testing.T) string {
	t.Helper()
	m := keyRE.FindStringSubmatch(p.Body)
	require.NotNil(t, m, "no adjustment key in %s", p.Body)
	return m[1]
}

// TestUsersAdjust: support looks a user up, adjusts with a reason (once
// per form, even sent twice), sees the balance and the audit entry; bad
// input is refused with a message and changes nothing.
func TestUsersAdjust(t *testing.T) {
	t.Parallel()
	b := setup(t)
	support, _ := b.member(t, b.acme, "support@acme.example", account.RoleSupport)
	userID := b.env.FundedUser("acme", "pu-alice", "FR", 100)
	entries := func() int { return b.env.Count("ledger_entries", "user_id = ?", userID) }

	res := support.get("/portal/users?q=pu-alice")
	require.Equal(t, http.StatusSeeOther, res.Status, res.Body)
	require.Equal(t, "/portal/users/pu-alice", res.Header.Get("Location"))
	pg := support.get("/portal/users/pu-alice")
	require.Equal(t, http.StatusOK, pg.Status, pg.Body)
	require.Equal(t, "100", pg.find(t, `id="balance">([^<]+)<`))
	require.Contains(t, pg.Body, `id="adjust"`)
	require.Equal(t, http.StatusNotFound, support.get("/portal/users?q=nobody-here").Status)

	before := entries()
	key := pg.key(t)
	for name, tc := range map[string]struct {
		points, reason string
		status         int
		msg            string
	}{
		"zero":          {"0", "x", http.StatusUnprocessableEntity, "non-zero"},
		"huge":          {"1000000001", "x", http.StatusUnprocessableEntity, "between"},
		"beyond int64":  {"99999999999999999999", "x", http.StatusUnprocessableEntity, "whole number"},
		"not a number":  {"12abc", "x", http.StatusUnprocessableEntity, "whole number"},
		"fraction":      {"2.5", "x", http.StatusUnprocessableEntity, "whole number"},
		"empty":         {"", "x", http.StatusUnprocessableEntity, "required"},
		"empty reason":  {"5", "   ", http.StatusUnprocessableEntity, "reason is required"},
		"long reason":   {"5", strings.Repeat("r", 501), http.StatusUnprocessableEntity, "at most 500"},
		"below zero":    {"-101", "too much", http.StatusUnprocessableEntity, ""},
		"control chars": {"5", "a\x07b", http.StatusUnprocessableEntity, "control characters"},
	} {
		res := support.post("/portal/users/pu-alice/adjust", url.Values{"csrf": {pg.csrf(t)}, "key": {key}, "points": {tc.points}, "reason": {tc.reason}})
		require.Equal(t, tc.status, res.Status, "%s: %s", name, res.Body)
		require.Contains(t, res.Body, `role="alert"`, name)
		require.Contains(t, res.find(t, `role="alert">([^<]+)<`), tc.msg, name)
		require.Equal(t, before, entries(), "%s changes nothing", name)
	}
	res = support.post("/portal/users/pu-alice/adjust", url.Values{"csrf": {pg.csrf(t)}, "points": {"5"}, "reason": {"no key"}})
	require.Equal(t, http.StatusBadRequest, res.Status)
	require.Equal(t, before, entries())

	// The same form sent twice applies once.
	form := url.Values{"csrf": {pg.csrf(t)}, "key": {key}, "points": {"-30"}, "reason": {"goodwill correction"}}
	res = support.post("/portal/users/pu-alice/adjust", form)
	require.Equal(t, http.StatusCreated, res.Status, res.Body)
	require.Equal(t, "70", res.find(t, `id="balance">([^<]+)<`))
	again := support.post("/portal/users/pu-alice/adjust", form)
	require.Equal(t, http.StatusCreated, again.Status, again.Body)
	require.Contains(t, again.Body, "already sent")
	require.Equal(t, "70", again.find(t, `id="balance">([^<]+)<`))
	require.Equal(t, before+1, entries())
	require.NotEqual(t, key, res.key(t), "a fresh form gets a fresh key")
	// The same key with other figures is refused.
	form.Set("points", "-31")
	require.Equal(t, http.StatusUnprocessableEntity, support.post("/portal/users/pu-alice/adjust", form).Status)
	require.Equal(t, before+1, entries())

	require.Equal(t, 1, b.env.Count("ledger_entries", "user_id = ? AND kind = 'adjust' AND points = -30 AND reason = 'goodwill correction'", userID))
	require.Equal(t, 1, b.env.Count("audit_log", "realm_id = ? AND action = 'user.adjust' AND actor_label = 'support@acme.example' AND target = ?", b.acme.ID, "user "+userID.String()))
	require.Contains(t, res.Body, "goodwill correction", "the history shows the entry")
}

// TestUsersRoles: a viewer looks but every change posted directly is
// refused; a developer cannot adjust; nothing changes.
func TestUsersRoles(t *testing.T) {
	t.Parallel()
	b := setup(t)
	viewer, _ := b.member(t, b.acme, "viewer@acme.example", account.RoleViewer)
	dev, _ := b.member(t, b.acme, "dev@acme.example", account.RoleDeveloper)
	userID := b.env.FundedUser("acme", "pu-bob", "FR", 50)
	entries := b.env.Count("ledger_entries", "user_id = ?", userID)
	for _, br := range []*browser{viewer, dev} {
		pg := br.get("/portal/users/pu-bob")
		require.Equal(t, http.StatusOK, pg.Status, pg.Body)
		require.NotContains(t, pg.Body, `id="adjust"`)
		require.NotContains(t, pg.Body, `id="delete-user"`)
		csrf := pg.csrf(t)
		for path, form := range map[string]url.Values{
			"/portal/users/pu-bob/adjust": {"key": {"k-1"}, "points": {"10"}, "reason": {"r"}},
			"/portal/users/pu-bob/logout": {},
			"/portal/users/pu-bob/delete": {"mode": {"erase"}, "confirm": {"pu-bob"}},
		} {
			form.Set("csrf", csrf)
			require.Equal(t, http.StatusForbidden, br.post(path, form).Status, path)
		}
		require.Equal(t, http.StatusForbidden, br.get("/portal/exports/users.csv").Status)
	}
	require.Equal(t, entries, b.env.Count("ledger_entries", "user_id = ?", userID))
	require.Equal(t, 1, b.env.Count("users", "id = ? AND anonymised_at IS NULL", userID))
}

// TestUsersPartnerIsolation: acme's support never sees nor changes
// globex's user, whose external id acme also lacks.
func TestUsersPartnerIsolation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	support, _ := b.member(t, b.acme, "support@acme.example", account.RoleSupport)
	gID := b.env.FundedUser("globex", "pu-gina", "FR", 80)
	require.Equal(t, http.StatusNotFound, support.get("/portal/users?q=pu-gina").Status)
	pg := support.get("/portal/users/pu-gina")
	require.Equal(t, http.StatusNotFound, pg.Status)
	require.NotContains(t, pg.Body, "80")
	csrf := support.csrfOf(t)
	for path, form := range map[string]url.Values{
		"/portal/users/pu-gina/adjust": {"key": {"k-iso"}, "points": {"10"}, "reason": {"r"}},
		"/portal/users/pu-gina/logout": {},
		"/portal/users/pu-gina/delete": {"mode": {"erase"}, "confirm": {"pu-gina"}},
	} {
		form.Set("csrf", csrf)
		require.Equal(t, http.StatusNotFound, support.post(path, form).Status, path)
	}
	require.Equal(t, 1, b.env.Count("ledger_entries", "user_id = ?", gID))
	require.Equal(t, 1, b.env.Count("users", "id = ? AND anonymised_at IS NULL", gID))
}

// TestUsersLogoutAndDelete: logout everywhere; anonymise and erase need
// the external id typed again.
func TestUsersLogoutAndDelete(t *testing.T) {
	t.Parallel()
	b := setup(t)
	support, _ := b.member(t, b.acme, "support@acme.example", account.RoleSupport)
	carol := b.env.FundedUser("acme", "pu-carol", "FR", 10)
	dave := b.env.FundedUser("acme", "pu-dave", "FR", 10)

	res := support.post("/portal/users/pu-carol/logout", url.Values{"csrf": {support.csrfOf(t)}})
	require.Equal(t, http.StatusOK, res.Status, res.Body)
	require.Equal(t, 1, b.env.Count("users", "id = ? AND tokens_valid_after IS NOT NULL", carol))

	for name, form := range map[string]url.Values{
		"wrong confirmation": {"mode": {"erase"}, "confirm": {"pu-caro"}},
		"no confirmation":    {"mode": {"erase"}},
		"bad mode":           {"mode": {"shred"}, "confirm": {"pu-carol"}},
	} {
		form.Set("csrf", support.csrfOf(t))
		res := support.post("/portal/users/pu-carol/delete", form)
		require.Equal(t, http.StatusUnprocessableEntity, res.Status, name)
		require.Contains(t, res.Body, `role="alert"`, name)
		require.Equal(t, 1, b.env.Count("users", "id = ? AND anonymised_at IS NULL", carol), name)
	}
	res = support.post("/portal/users/pu-carol/delete", url.Values{"csrf": {support.csrfOf(t)}, "mode": {"anonymise"}, "confirm": {"pu-carol"}})
	require.Equal(t, http.StatusOK, res.Status, res.Body)
	require.Equal(t, 1, b.env.Count("users", "id = ? AND anonymised_at IS NOT NULL", carol))
	require.Equal(t, 1, b.env.Count("ledger_entries", "user_id = ?", carol), "history kept")

	res = support.post("/portal/users/pu-dave/delete", url.Values{"csrf": {support.csrfOf(t)}, "mode": {"erase"}, "confirm": {"pu-dave"}})
	require.Equal(t, http.StatusOK, res.Status, res.Body)
	require.Zero(t, b.env.Count("users", "id = ?", dave))
	require.Zero(t, b.env.Count("ledger_entries", "user_id = ?", dave))
	require.Equal(t, 1, b.env.Count("audit_log", "action = 'user.erase' AND target = ?", "user "+dave.String()))
	require.Zero(t, b.env.Count("audit_log", "target LIKE '%pu-dave%' OR after::text LIKE '%pu-dave%'"), "no external id left in the audit log")
}
