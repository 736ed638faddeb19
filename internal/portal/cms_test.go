package portal_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/account"
	"github.com/perkshq/perks/internal/content"
	"github.com/perkshq/perks/internal/portal"
)

// TestCMSRoles: every role may open the Catalog and content pages; only
// owners and managers may change them, and every change route refuses the
// others (403, nothing changed).
func TestCMSRoles(t *testing.T) {
	t.Parallel()
	b := setup(t)
	pages := []string{"/portal/gifts", "/portal/gifts/new", "/portal/gifts/coffee", "/portal/rules", "/portal/ads", "/portal/campaigns", "/portal/settings"}
	posts := []string{"/portal/gifts", "/portal/gifts/coffee/retire", "/portal/gifts/coffee/codes", "/portal/rules", "/portal/rules/purchase/disable",
		"/portal/ads", "/portal/ads/bonus-video/delete", "/portal/settings/program", "/portal/settings/tiers", "/portal/settings/referrals",
		"/portal/campaigns", "/portal/campaigns/x/delete"}
	for _, role := range []string{account.RoleViewer, account.RoleDeveloper, account.RoleSupport} {
		br, _ := b.member(t, b.acme, role+"@acme.example", role)
		for _, path := range pages {
			pg := br.get(path)
			require.Equal(t, http.StatusOK, pg.Status, "%s GET %s", role, path)
			require.NotContains(t, pg.Body, `type="submit">Save`, "%s sees no save button on %s", role, path)
		}
		csrf := br.csrfOf(t)
		for _, path := range posts {
			res := br.post(path, url.Values{"csrf": {csrf}, "sku": {"coffee"}, "existing": {"true"}, "title": {"x"}, "costPoints": {"1"},
				"codeSource": {"none"}, "code": {"x"}, "name": {"x"}, "points": {"1"}, "id": {"x"}, "kind": {"news"}})
			require.Equal(t, http.StatusForbidden, res.Status, "%s POST %s", role, path)
		}
	}
	require.Equal(t, 1, b.env.Count("gifts", "sku = 'coffee' AND title <> 'x' AND retired_at IS NULL"))
	require.Zero(t, b.env.Count("earning_rules", "code = 'x'"))
	require.Zero(t, b.env.Count("ads", "id = 'x'"))
	require.Equal(t, 1, b.env.Count("ads", "id = 'bonus-video'"))
	require.Zero(t, b.env.Count("audit_log", "action LIKE 'gift.%' OR action LIKE 'ad.%' OR action LIKE 'rule.%'"))
}

// TestCMSSettingsAndForms: a manager saves the program policy with a
// default locale, tiers, the referral policy, a rule and an ad with a
// translation; bad input is shown next to its field and changes nothing;
// another partner's items are not found.
func TestCMSSettingsAndForms(t *testing.T) {
	t.Parallel()
	b := setup(t)
	m, _ := b.member(t, b.acme, "manager@acme.example", account.RoleManager)
	csrf := m.csrfOf(t)
	post := func(path string, v url.Values) *page {
		t.Helper()
		v.Set("csrf", csrf)
		return m.post(path, v)
	}

	// Program policy: a refusal names its field; a good one saves.
	res := post("/portal/settings/program", url.Values{"expiryMode": {"rolling"}, "negativeBalance": {"forbid"}, "tierBasis": {"lifetime"}, "tierDowngrade": {"never"}})
	require.Equal(t, http.StatusBadRequest, res.Status, res.Body)
	require.Contains(t, res.Body, `id="err-expiryDays"`)
	require.Contains(t, res.Body, `aria-invalid="true"`)
	res = post("/portal/settings/program", url.Values{"expiryMode": {"rolling"}, "expiryDays": {"365"}, "negativeBalance": {"forbid"},
		"tierBasis": {"lifetime"}, "tierDowngrade": {"never"}, "expiryWarningDays": {"30"}, "defaultLocale": {"fr-fr"}})
	require.Equal(t, http.StatusSeeOther, res.Status, res.Body)
	require.Equal(t, 1, b.env.Count("program_policies", "partner_id = ? AND expiry_days = 365", b.acme.ID))
	require.Equal(t, 1, b.env.Count("partners", "id = ? AND default_locale = 'fr-FR'", b.acme.ID))
	require.Contains(t, m.get("/portal/settings").Body, `value="fr-FR"`)

	// Tiers: a bad multiplier, then two tiers.
	res = post("/portal/settings/tiers", url.Values{"tier.0.code": {"base"}, "tier.0.name": {"Base"}, "tier.0.threshold": {"0"}, "tier.0.multiplier": {"1.234"}})
	require.Equal(t, http.StatusBadRequest, res.Status, res.Body)
	require.Contains(t, res.Body, "multiplier")
	require.Zero(t, b.env.Count("tiers", "partner_id = ? AND code = 'base'", b.acme.ID))
	res = post("/portal/settings/tiers", url.Values{"tier.0.code": {"base"}, "tier.0.name": {"Base"}, "tier.0.threshold": {"0"},
		"tier.1.code": {"gold"}, "tier.1.name": {"Gold"}, "tier.1.threshold": {"1000"}, "tier.1.multiplier": {"1.5"}})
	require.Equal(t, http.StatusSeeOther, res.Status, res.Body)
	require.Equal(t, 1, b.env.Count("tiers", "partner_id = ? AND code = 'gold' AND multiplier = 150", b.acme.ID))

	// Referral policy.
	res = post("/portal/settings/referrals", url.Values{"enabled": {"on"}, "qualifyAction": {"purchase"}, "referrerPoints": {"-5"}, "refereePoints": {"50"}})
	require.Equal(t, http.StatusBadRequest, res.Status, res.Body)
	require.Contains(t, res.Body, `id="err-referrerPoints"`)
	require.Zero(t, b.env.Count("referral_policies", "partner_id = ?", b.acme.ID))
	res = post("/portal/settings/referrals", url.Values{"enabled": {"on"}, "qualifyAction": {"purchase"}, "referrerPoints": {"100"}, "refereePoints": {"50"},
		"attributionWindowDays": {"30"}, "velocityWindowMinutes": {"60"}})
	require.Equal(t, http.StatusSeeOther, res.Status, res.Body)
	require.Equal(t, 1, b.env.Count("referral_policies", "partner_id = ? AND referrer_points = 100", b.acme.ID))

	// A rule: points 0 refused next to the field, then saved.
	res = post("/portal/rules", url.Values{"code": {"review"}, "name": {"Review"}, "points": {"0"}, "enabled": {"on"}})
	require.Equal(t, http.StatusBadRequest, res.Status, res.Body)
	require.Contains(t, res.Body, `id="err-points"`)
	require.Contains(t, res.Body, `value="Review"`, "what was typed is kept")
	res = post("/portal/rules", url.Values{"code": {"review"}, "name": {"Review"}, "points": {"5"}, "enabled": {"on"}})
	require.Equal(t, http.StatusSeeOther, res.Status, res.Body)
	require.Equal(t, 1, b.env.Count("earning_rules", "partner_id = ? AND code = 'review' AND points = 5", b.acme.ID))

	// An ad with a translation; a bad tag is refused on its row.
	res = post("/portal/ads", url.Values{"id": {"news-1"}, "kind": {"news"}, "title": {"Hello"}, "tr.0.locale": {"not a tag"}, "tr.0.title": {"Bonjour"}})
	require.Equal(t, http.StatusBadRequest, res.Status, res.Body)
	require.Contains(t, res.Body, `id="err-tr.0.locale"`)
	res = post("/portal/ads", url.Values{"id": {"news-1"}, "kind": {"news"}, "title": {"Hello"}, "tr.0.locale": {"fr"}, "tr.0.title": {"Bonjour"}})
	require.Equal(t, http.StatusSeeOther, res.Status, res.Body)
	ad, err := b.env.App.Content.Get(b.ctx, b.env.DB.Bun, b.acme.ID, "news-1")
	require.NoError(t, err)
	require.Equal(t, "Bonjour", ad.Translations["fr"]["title"])
	require.Contains(t, m.get("/portal/ads?edit=news-1").Body, `value="Bonjour"`)

	// Another partner's items: not found, unchanged.
	_, _, err = b.env.App.Content.Put(b.ctx, b.env.DB.Bun, b.globe.ID, "globex-ad", content.Input{Kind: content.KindNews, Title: "Globex"})
	require.NoError(t, err)
	require.Equal(t, http.StatusNotFound, post("/portal/ads/globex-ad/delete", url.Values{}).Status)
	require.NotContains(t, m.get("/portal/ads?edit=globex-ad").Body, "Globex")
	require.Equal(t, 1, b.env.Count("ads", "id = 'globex-ad'"))
	require.Equal(t, http.StatusNotFound, m.get("/portal/gifts/globex-nothing").Status)

	// Audited with before and after.
	require.Equal(t, 1, b.env.Count("audit_log", "action = 'tiers.put' AND actor_label = 'manager@acme.example'"))
	require.Equal(t, 1, b.env.Count("audit_log", "action = 'ad.put' AND target = 'ad news-1'"))
}

// TestOversizedUploadIsTold: a code file over the portal's limit is
// refused as too large (413), not as a form without its CSRF token.
func TestOversizedUploadIsTold(t *testing.T) {
	t.Parallel()
	b := setup(t)
	m, _ := b.member(t, b.acme, "manager@acme.example", account.RoleManager)
	csrf := m.csrfOf(t)
	res := m.post("/portal/gifts/coffee/codes", url.Values{"csrf": {csrf}, "codes": {strings.Repeat("A", portal.MaxUploadBytes+1)}})
	require.Equal(t, http.StatusRequestEntityTooLarge, res.Status)
	require.Contains(t, res.Body, "larger than the portal accepts")
	require.Zero(t, b.env.Count("bulk_jobs", "partner_id = ?", b.acme.ID))
}
