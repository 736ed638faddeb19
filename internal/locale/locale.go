// Package locale holds the per-locale text of a partner's content (gift and
// ad titles, descriptions, bodies) and picks the text a user reads.
//
// The base columns (a gift's title, an ad's body...) stay the text every
// client has always read and written; Translations add, per BCP 47 tag, the
// fields given in that locale:
//
//	{"fr": {"title": "Café offert", "description": "..."}, "de": {"title": "..."}}
//
// A reader's preferences are the user's locale (the consumer token's locale
// claim, else the user's profile), then the partner's default content
// locale. For each preference in turn the exact tag is tried, then its
// language alone (fr-CA, then fr); the first translation that has the field
// wins, else the base text. A field is picked on its own: a locale that
// translates only the title shows its title with the base description.
package locale

import (
	"context"
	"slices"
	"strings"

	"golang.org/x/text/language"

	"github.com/perkshq/perks/internal/apperr"
)

// MaxLocales bounds the translations of one item.
const MaxLocales = 50

// Translations maps a canonical BCP 47 tag to its fields' text.
type Translations map[string]map[string]string

// Field describes one translatable field: its name and how to check it.
type Field struct {
	Name string
	// Check validates a value (the same rule as the base field); path is
	// the field's name in error messages (translations.fr.title).
	Check func(path, v string) (string, error)
}

// Canonical returns the canonical form of a BCP 47 tag (fr-ca: fr-CA), or
// an error naming field.
func Canonical(field, tag string) (string, error) {
	t, err := language.Parse(strings.ReplaceAll(strings.TrimSpace(tag), "_", "-"))
	if err != nil || tag == "" || len(tag) > 35 {
		return "", apperr.Field(apperr.CodeInvalidField, field, "%s must be a BCP 47 language tag such as fr or pt-BR", field)
	}
	return t.String(), nil
}

// Normalize checks translations against the item's fields and returns them
// with canonical tags and checked values; never nil. field names the whole
// object in errors ("translations").
func Normalize(field string, in Translations, fields []Field) (Translations, error) {
	out := Translations{}
	if len(in) > MaxLocales {
		return nil, apperr.Field(apperr.CodeInvalidField, field, "%s holds at most %d locales", field, MaxLocales)
	}
	tags := make([]string, 0, len(in))
	for tag := range in {
		tags = append(tags, tag)
	}
	slices.Sort(tags) // deterministic errors
	for _, tag := range tags {
		canon, err := Canonical(field, tag)
		if err != nil {
			return nil, apperr.Field(apperr.CodeInvalidField, field, "%s keys must be BCP 47 language tags such as fr or pt-BR; %q is not", field, truncate(tag, 40))
		}
		if _, dup := out[canon]; dup {
			return nil, apperr.Field(apperr.CodeInvalidField, field, "%s gives %s twice (tags are compared in canonical form)", field, canon)
		}
		vals := in[tag]
		if len(vals) == 0 {
			return nil, apperr.Field(apperr.CodeInvalidField, field+"."+canon, "%s.%s is empty: omit the locale instead", field, canon)
		}
		m := make(map[string]string, len(vals))
		for name, v := range vals {
			i := slices.IndexFunc(fields, func(f Field) bool { return f.Name == name })
			if i < 0 {
				names := make([]string, len(fields))
				for j, f := range fields {
					names[j] = f.Name
				}
				return nil, apperr.Field(apperr.CodeInvalidField, field+"."+canon, "%s.%s may only give %s; %q is not translatable", field, canon, strings.Join(names, ", "), truncate(name, 40))
			}
			cv, err := fields[i].Check(field+"."+canon+"."+name, v)
			if err != nil {
				return nil, err
			}
			m[name] = cv
		}
		out[canon] = m
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

type prefsKey struct{}

// WithPreferences returns ctx carrying the reader's locale preferences, in
// order (empty and invalid tags are skipped). The GraphQL transport sets
// them for each consumer's operation.
func WithPreferences(ctx context.Context, tags ...*string) context.Context {
	var prefs []string
	for _, t := range tags {
		if t == nil || *t == "" {
			continue
		}
		c, err := Canonical("locale", *t)
		if err != nil {
			continue
		}
		for _, cand := range []string{c, baseLanguage(c)} {
			if cand != "" && !slices.Contains(prefs, cand) {
				prefs = append(prefs, cand)
			}
		}
	}
	if len(prefs) == 0 {
		return ctx
	}
	return context.WithValue(ctx, prefsKey{}, prefs)
}

// Preferences returns the tags WithPreferences stored, most preferred first.
func Preferences(ctx context.Context) []string {
	p, _ := ctx.Value(prefsKey{}).([]string)
	return p
}

// baseLanguage is the language subtag of a canonical tag ("fr" of "fr-CA"),
// or "" when the tag is a language alone.
func baseLanguage(tag string) string {
	if i := strings.IndexByte(tag, '-'); i > 0 {
		return tag[:i]
	}
	return ""
}

// Pick returns the text of field for the reader's preferences in ctx, or
// base when no preferred locale gives it.
func (t Translations) Pick(ctx context.Context, field, base string) string {
	if len(t) == 0 {
		return base
	}
	return t.PickFor(Preferences(ctx), field, base)
}

// PickFor is Pick with explicit preferences (canonical tags, most preferred
// first, each followed by its language as WithPreferences lists them).
func (t Translations) PickFor(prefs []string, field, base string) string {
	for _, p := range prefs {
		if v, ok := t[p][field]; ok && v != "" {
			return v
		}
	}
	return base
}

// Tags returns the translations' tags, sorted.
func (t Translations) Tags() []string {
	out := make([]string, 0, len(t))
	for k := range t {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
