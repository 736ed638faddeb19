package locale_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/locale"
)

func ptr(s string) *string { return &s }

// TestPick: the user's tag, then its language, then the partner's default
// (and its language), then the base text, field by field.
func TestPick(t *testing.T) {
	t.Parallel()
	tr := locale.Translations{
		"fr":    {"title": "Café", "description": "Tout"},
		"pt-BR": {"title": "Café (BR)"},
		"de":    {"title": "Kaffee"},
	}
	for _, c := range []struct {
		name          string
		user, partner *string
		field, want   string
	}{
		{"exact", ptr("fr"), nil, "title", "Café"},
		{"case and underscore", ptr("pt_br"), nil, "title", "Café (BR)"},
		{"language of a region", ptr("fr-CA"), nil, "title", "Café"},
		{"no translation, no default", ptr("es"), nil, "title", "Coffee"},
		{"partner default", ptr("es"), ptr("de"), "title", "Kaffee"},
		{"field missing in user's locale: the default's", ptr("de"), ptr("fr"), "description", "Tout"},
		{"field missing everywhere: base", ptr("de"), nil, "description", "Base"},
		{"no locale at all", nil, nil, "title", "Coffee"},
		{"invalid user tag skipped", ptr("!!"), ptr("fr"), "title", "Café"},
		{"region of another language", ptr("pt-PT"), nil, "title", "Coffee"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := locale.WithPreferences(context.Background(), c.user, c.partner)
			base := map[string]string{"title": "Coffee", "description": "Base"}[c.field]
			require.Equal(t, c.want, tr.Pick(ctx, c.field, base))
		})
	}
	require.Equal(t, "x", locale.Translations(nil).Pick(context.Background(), "title", "x"))
}

// TestNormalize: canonical tags, checked values, clear refusals.
func TestNormalize(t *testing.T) {
	t.Parallel()
	fields := []locale.Field{{Name: "title", Check: func(path, v string) (string, error) {
		if v == "" {
			return "", apperr.Field(apperr.CodeInvalidField, path, "%s is empty", path)
		}
		return v, nil
	}}}
	out, err := locale.Normalize("translations", locale.Translations{"EN_gb": {"title": "Tea"}}, fields)
	require.NoError(t, err)
	require.Equal(t, locale.Translations{"en-GB": {"title": "Tea"}}, out)
	out, err = locale.Normalize("translations", nil, fields)
	require.NoError(t, err)
	require.NotNil(t, out, "never nil: stored as {}")
	for _, c := range []struct {
		name  string
		in    locale.Translations
		field string
	}{
		{"bad tag", locale.Translations{"???": {"title": "x"}}, "translations"},
		{"twice", locale.Translations{"fr": {"title": "x"}, "FR": {"title": "y"}}, "translations"},
		{"empty", locale.Translations{"fr": {}}, "translations.fr"},
		{"unknown field", locale.Translations{"fr": {"body": "x"}}, "translations.fr"},
		{"checked value", locale.Translations{"fr": {"title": ""}}, "translations.fr.title"},
	} {
		_, err := locale.Normalize("translations", c.in, fields)
		require.Equal(t, c.field, apperr.As(err).Field, c.name)
	}
}
