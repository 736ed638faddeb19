package rest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
)

// TestContentLocales: gift and ad text per locale over REST (stored with
// canonical tags, echoed as an object, {} when none) and in GraphQL, where
// each user reads their locale (the token's claim or their profile), else
// the partner's defaultLocale, else the base text; a field a locale does not
// give falls back on its own. Old clients that never send translations see
// the same contract.
func TestContentLocales(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)

	gift := `{"title":"Free coffee","description":"Any size.","costPoints":10,"codeSource":"none",
		"translations":{"FR":{"title":"Café offert","description":"Toutes tailles."},"de":{"title":"Gratis Kaffee"}}}`
	res := env.Partner("acme", http.MethodPut, "/integrations/gifts/coffee-fr", []byte(gift))
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	require.Equal(t, map[string]any{
		"fr": map[string]any{"title": "Café offert", "description": "Toutes tailles."},
		"de": map[string]any{"title": "Gratis Kaffee"},
	}, res.JSON(t)["translations"], "tags are canonical")
	plain := env.Partner("acme", http.MethodPut, "/integrations/gifts/plain", []byte(`{"title":"Plain","costPoints":10,"codeSource":"none"}`))
	require.Equal(t, http.StatusCreated, plain.StatusCode, "%s", plain.Body)
	require.Equal(t, map[string]any{}, plain.JSON(t)["translations"], "an old client's gift: {}")

	ad := `{"kind":"news","title":"Double points","body":"This weekend.","translations":{"fr":{"title":"Points doublés","body":"Ce week-end."}}}`
	res = env.Partner("acme", http.MethodPut, "/integrations/ads/double", []byte(ad))
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	got := env.Partner("acme", http.MethodGet, "/integrations/ads/double", nil)
	require.Equal(t, map[string]any{"fr": map[string]any{"title": "Points doublés", "body": "Ce week-end."}}, got.JSON(t)["translations"])

	env.FundedUser("acme", "loc-fr", "SG", 0)
	query := `{ catalog { edges { node { sku title description } } } ads { title body } }`
	read := func(tok string) (map[string][2]string, [2]string) {
		t.Helper()
		r := env.GraphQL(tok, query, nil)
		require.Empty(t, r.Errors, "%s", r.Data)
		var d struct {
			Catalog struct {
				Edges []struct {
					Node struct{ SKU, Title, Description string }
				}
			}
			Ads []struct{ Title, Body string }
		}
		require.NoError(t, json.Unmarshal(r.Data, &d))
		gifts := map[string][2]string{}
		for _, e := range d.Catalog.Edges {
			gifts[e.Node.SKU] = [2]string{e.Node.Title, e.Node.Description}
		}
		var a [2]string
		for _, x := range d.Ads {
			if x.Title == "Double points" || x.Title == "Points doublés" {
				a = [2]string{x.Title, x.Body}
			}
		}
		return gifts, a
	}
	tok := func(sub, loc string) string {
		extra := map[string]any{}
		if loc != "" {
			extra["locale"] = loc
		}
		return env.Token("acme", sub, extra)
	}

	gifts, a := read(tok("loc-fr", "fr"))
	require.Equal(t, [2]string{"Café offert", "Toutes tailles."}, gifts["coffee-fr"])
	require.Equal(t, [2]string{"Plain", ""}, gifts["plain"])
	require.Equal(t, [2]string{"Points doublés", "Ce week-end."}, a)

	gifts, _ = read(tok("loc-fr-ca", "fr-CA"))
	require.Equal(t, "Café offert", gifts["coffee-fr"][0], "fr-CA falls back to fr")
	gifts, _ = read(tok("loc-de", "de"))
	require.Equal(t, [2]string{"Gratis Kaffee", "Any size."}, gifts["coffee-fr"], "each field falls back on its own")
	gifts, a = read(tok("loc-es", "es"))
	require.Equal(t, [2]string{"Free coffee", "Any size."}, gifts["coffee-fr"], "no translation, no default: base text")
	require.Equal(t, "Double points", a[0])
	// The profile's locale applies when the token has no claim.
	gifts, _ = read(tok("loc-fr", ""))
	require.Equal(t, "Café offert", gifts["coffee-fr"][0], "the locale stored from the earlier token")

	// The partner's default locale comes before the base text.
	res = env.Partner("acme", http.MethodPut, "/integrations/program", []byte(`{"defaultLocale":"FR"}`))
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	require.Equal(t, "fr", res.JSON(t)["defaultLocale"])
	require.Equal(t, "fr", env.Partner("acme", http.MethodGet, "/integrations/program", nil).JSON(t)["defaultLocale"])
	gifts, a = read(tok("loc-es", "es"))
	require.Equal(t, "Café offert", gifts["coffee-fr"][0])
	require.Equal(t, "Points doublés", a[0])
	gifts, _ = read(tok("loc-de", "de"))
	require.Equal(t, [2]string{"Gratis Kaffee", "Toutes tailles."}, gifts["coffee-fr"], "de title, then the default's description")

	// Another partner's users never see acme's default.
	require.Nil(t, env.Partner("globex", http.MethodGet, "/integrations/program", nil).JSON(t)["defaultLocale"])
}

// TestContentLocalesBadInput: a bad translation is refused with its field
// and changes nothing.
func TestContentLocalesBadInput(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	for _, c := range []struct{ name, path, body, field string }{
		{"bad tag", "/integrations/gifts/bad", `{"title":"Coffee","costPoints":10,"codeSource":"none","translations":{"not a tag!":{"title":"x"}}}`, "translations"},
		{"unknown field", "/integrations/gifts/bad", `{"title":"Coffee","costPoints":10,"codeSource":"none","translations":{"fr":{"sku":"x"}}}`, "translations.fr"},
		{"empty locale", "/integrations/gifts/bad", `{"title":"Coffee","costPoints":10,"codeSource":"none","translations":{"fr":{}}}`, "translations.fr"},
		{"empty title", "/integrations/gifts/bad", `{"title":"Coffee","costPoints":10,"codeSource":"none","translations":{"fr":{"title":"  "}}}`, "translations.fr.title"},
		{"same tag twice", "/integrations/gifts/bad", `{"title":"Coffee","costPoints":10,"codeSource":"none","translations":{"fr":{"title":"a"},"FR":{"title":"b"}}}`, "translations"},
		{"control character", "/integrations/ads/bad", `{"kind":"news","title":"x","translations":{"fr":{"title":"a\u0007b"}}}`, "translations.fr.title"},
		{"ad description", "/integrations/ads/bad", `{"kind":"news","title":"x","translations":{"fr":{"description":"a"}}}`, "translations.fr"},
		{"bad default locale", "/integrations/program", `{"defaultLocale":"12345678901"}`, "defaultLocale"},
	} {
		res := env.Partner("acme", http.MethodPut, c.path, []byte(c.body))
		require.Equal(t, http.StatusBadRequest, res.StatusCode, "%s: %s", c.name, res.Body)
		require.Equal(t, "INVALID_FIELD", res.Code(), c.name)
		require.Equal(t, c.field, res.JSON(t)["field"], c.name)
	}
	require.Zero(t, env.Count("gifts", "sku = 'bad'"))
	require.Zero(t, env.Count("ads", "id = 'bad'"))
	require.Zero(t, env.Count("partners", "default_locale IS NOT NULL"))
}

// TestUploadCodesAsync: ?async=true stores the upload as a codes bulk job
// (the portal's CSV upload): repeated and already stored codes fail with
// CONFLICT, the others join the pool; a bad code refuses the whole upload.
func TestUploadCodesAsync(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := apptest.New(t)
	res := env.Partner("acme", http.MethodPut, "/integrations/gifts/pool-async", []byte(`{"title":"Pool","costPoints":10,"codeSource":"pool"}`))
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	env.UploadCodes("acme", "pool-async", "OLD-0001")

	bad := env.Partner("acme", http.MethodPost, "/integrations/gifts/pool-async/codes?async=true", []byte(`{"codes":["NEW-0001","x"]}`))
	require.Equal(t, http.StatusBadRequest, bad.StatusCode, "%s", bad.Body)
	require.Contains(t, bad.JSON(t)["detail"], "position 2")
	require.Zero(t, env.Count("bulk_jobs", "kind = 'codes'"))

	res = env.Partner("acme", http.MethodPost, "/integrations/gifts/pool-async/codes?async=true", []byte(`{"codes":["NEW-0001","OLD-0001","NEW-0002","NEW-0001"]}`))
	require.Equal(t, http.StatusAccepted, res.StatusCode, "%s", res.Body)
	require.Equal(t, "codes", res.JSON(t)["kind"])
	jobID := uuid.MustParse(res.JSON(t)["jobId"].(string))
	for {
		done, err := env.App.Bulk.ProcessChunk(ctx, env.DB.Bun, env.Acme.Partner.ID, jobID)
		require.NoError(t, err)
		if done {
			break
		}
	}
	job := env.Partner("acme", http.MethodGet, "/integrations/jobs/"+jobID.String()+"?only=errors", nil)
	require.Equal(t, http.StatusOK, job.StatusCode, "%s", job.Body)
	j := job.JSON(t)
	require.Equal(t, "completed", j["state"])
	require.EqualValues(t, 2, j["done"])
	require.EqualValues(t, 2, j["failed"])
	require.Len(t, j["results"], 2)
	for _, r := range j["results"].([]any) {
		require.Equal(t, "CONFLICT", r.(map[string]any)["code"], "%v", r)
	}
	g := env.Partner("acme", http.MethodGet, "/integrations/gifts/pool-async", nil)
	require.EqualValues(t, 3, g.JSON(t)["codesAvailable"])
	require.Zero(t, env.Count("bulk_job_items", "code IS NOT NULL"), "codes are not kept once processed")

	// Another partner's gift is not found.
	res = env.Partner("globex", http.MethodPost, "/integrations/gifts/pool-async/codes?async=true", []byte(`{"codes":["G-0001"]}`))
	require.Equal(t, "GIFT_NOT_FOUND", res.Code())
}
