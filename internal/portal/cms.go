package portal

import (
	"context"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/account"
	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/audit"
	"github.com/perkshq/perks/internal/bulk"
	"github.com/perkshq/perks/internal/campaign"
	"github.com/perkshq/perks/internal/catalog"
	"github.com/perkshq/perks/internal/content"
	"github.com/perkshq/perks/internal/earning"
	"github.com/perkshq/perks/internal/locale"
	"github.com/perkshq/perks/internal/program"
	"github.com/perkshq/perks/internal/referral"
	"github.com/perkshq/perks/internal/tier"
)

// The Catalog and content pages (the CMS): gifts with their stock, windows,
// per-locale text and code uploads; earning rules; ads; the program
// settings (expiry policy, default content locale, tiers, referral policy);
// campaigns. Each page calls the same domain service method as the partner
// REST route that does the same thing (named on each handler), so
// automation never needs the portal. Reading needs PermView, changing
// PermProgram (owner, manager). Every change is audited in its own
// transaction, before and after.

// CMS holds the domain services of the Catalog and content pages.
type CMS struct {
	Catalog   *catalog.Service
	Content   *content.Service
	Earning   *earning.Service
	Program   *program.Service
	Tiers     *tier.Service
	Campaigns *campaign.Service
	Referrals *referral.Service
	Bulk      *bulk.Service
}

// MaxUploadBytes bounds a portal code upload (the REST route's default).
const MaxUploadBytes = 8 << 20

// cmsPages are the templates of these pages, parsed with the form helpers.
var cmsPages = []string{"gifts", "gift", "upload", "rules", "ads", "settings", "campaigns"}

func init() {
	for _, name := range cmsPages {
		pages[name] = template.Must(template.New("layout.html").Funcs(funcs).Funcs(cmsFuncs).
			ParseFS(files, "templates/layout.html", "templates/cms-form.html", "templates/"+name+".html"))
	}
}

// registerCMS mounts the Catalog and content pages.
func (p *Portal) registerCMS(h func(string, http.HandlerFunc)) {
	view, change := account.PermView, account.PermProgram
	h("GET "+Path+"/gifts", p.authed(view, p.giftsPage))
	h("GET "+Path+"/gifts/new", p.authed(view, p.giftPage))
	h("GET "+Path+"/gifts/{sku}", p.authed(view, p.giftPage))
	h("POST "+Path+"/gifts", p.authed(change, p.saveGift))
	h("POST "+Path+"/gifts/{sku}/retire", p.authed(change, p.retireGift))
	// The body limit applies before the form (and its CSRF token) is read.
	h("POST "+Path+"/gifts/{sku}/codes", limitBody(MaxUploadBytes, p.authed(change, p.uploadCodes)))
	h("GET "+Path+"/gifts/{sku}/uploads/{id}", p.authed(view, p.uploadPage))
	h("GET "+Path+"/rules", p.authed(view, p.rulesPage))
	h("POST "+Path+"/rules", p.authed(change, p.saveRule))
	h("POST "+Path+"/rules/{code}/disable", p.authed(change, p.disableRule))
	h("GET "+Path+"/ads", p.authed(view, p.adsPage))
	h("POST "+Path+"/ads", p.authed(change, p.saveAd))
	h("POST "+Path+"/ads/{id}/delete", p.authed(change, p.deleteAd))
	h("GET "+Path+"/settings", p.authed(view, p.settingsPage))
	h("POST "+Path+"/settings/program", p.authed(change, p.saveProgram))
	h("POST "+Path+"/settings/tiers", p.authed(change, p.saveTiers))
	h("POST "+Path+"/settings/referrals", p.authed(change, p.saveReferrals))
	h("GET "+Path+"/campaigns", p.authed(view, p.campaignsPage))
	h("POST "+Path+"/campaigns", p.authed(change, p.saveCampaign))
	h("POST "+Path+"/campaigns/{code}/delete", p.authed(change, p.deleteCampaign))
}

func limitBody(n int64, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, n)
		next(w, r)
	}
}

// --- form helpers ---

// form is what a CMS page's form shows: the values (the stored object's,
// or what was posted when it was refused) and the refusal.
type form struct {
	Values url.Values
	Err    *apperr.Error
}

// fieldView is one labelled input of a form (templates/cms-form.html).
type fieldView struct {
	Name, Label, Type, Value, Hint, Error string
	Options                               []string
	Checked, ReadOnly                     bool
}

var cmsFuncs = template.FuncMap{
	// field builds an input: field form name label type [hint] [options...]
	// where type is text, number, datetime-local, textarea, checkbox or
	// select (then the remaining arguments are its options).
	"field": func(f *form, name, label, typ string, more ...string) fieldView {
		v := fieldView{Name: name, Label: label, Type: typ}
		if f != nil {
			v.Value = f.Values.Get(name)
			v.Checked = v.Value == "on" || v.Value == "true"
			v.Error = f.fieldError(name)
		}
		if typ == "select" {
			v.Options = more
		} else if len(more) > 0 {
			v.Hint = more[0]
		}
		return v
	},
	// trow builds translation row i: its locale, title and textField
	// (description or body) inputs; errors under translations.<tag> show
	// on the row of that locale.
	"trow": func(f *form, i int, textField, textLabel string) translationRow {
		p := "tr." + strconv.Itoa(i) + "."
		row := translationRow{N: i + 1,
			Locale: fieldView{Name: p + "locale", Label: "Locale (BCP 47 tag, e.g. fr or pt-BR)", Type: "text"},
			Title:  fieldView{Name: p + "title", Label: "Title", Type: "text"},
			Text:   fieldView{Name: p + textField, Label: textLabel, Type: "textarea"},
		}
		if f == nil {
			return row
		}
		row.Locale.Value, row.Title.Value, row.Text.Value = f.Values.Get(p+"locale"), f.Values.Get(p+"title"), f.Values.Get(p+textField)
		if f.Err != nil && row.Locale.Value != "" {
			if tag, err := locale.Canonical("locale", row.Locale.Value); err == nil {
				switch f.Err.Field {
				case "translations." + tag + ".title":
					row.Title.Error = f.Err.Message
				case "translations." + tag + "." + textField:
					row.Text.Error = f.Err.Message
				case "translations." + tag:
					row.Locale.Error = f.Err.Message
				}
			} else if f.Err.Field == "translations" {
				row.Locale.Error = f.Err.Message
			}
		}
		return row
	},
	// readonly marks a field view read-only (the key of an existing item).
	"readonly": func(on bool, v fieldView) fieldView { v.ReadOnly = on; return v },
	"join":     strings.Join,
	"add":      func(a, b int) int { return a + b },
	"local": func(t *time.Time, loc *time.Location) string {
		if t == nil {
			return ""
		}
		return t.In(loc).Format("2006-01-02 15:04")
	},
	"deref": func(p any) string {
		switch v := p.(type) {
		case *int:
			if v != nil {
				return strconv.Itoa(*v)
			}
		case *int64:
			if v != nil {
				return strconv.FormatInt(*v, 10)
			}
		case *string:
			if v != nil {
				return *v
			}
		}
		return "—"
	},
	"pct": func(done, total int) int {
		if total == 0 {
			return 100
		}
		return done * 100 / total
	},
}

// translationRow is one locale's inputs of a gift or ad form.
type translationRow struct {
	N                   int
	Locale, Title, Text fieldView
}

// fieldError is the refusal's message when it names field (or, for a
// translation row's field, any field under it).
func (f *form) fieldError(field string) string {
	if f == nil || f.Err == nil || f.Err.Field == "" {
		return ""
	}
	if f.Err.Field == field || (strings.HasSuffix(field, ".") && strings.HasPrefix(f.Err.Field, field)) {
		return f.Err.Message
	}
	return ""
}

// refusal turns a caller error into the form's message; other errors are
// nil (the caller answers 500).
func refusal(err error) *apperr.Error {
	if e := apperr.As(err); e != nil && e.Code != apperr.CodeInternal {
		return e
	}
	return nil
}

// parsed reads typed values from a posted form, remembering the first
// refusal with its field.
type parsed struct {
	v   url.Values
	loc *time.Location
	err error
}

func (ps *parsed) str(name string) string { return strings.TrimSpace(ps.v.Get(name)) }

func (ps *parsed) optStr(name string) *string {
	if s := ps.str(name); s != "" {
		return &s
	}
	return nil
}

func (ps *parsed) bool(name string) bool { v := ps.v.Get(name); return v == "on" || v == "true" }

func (ps *parsed) fail(field, format string, args ...any) {
	if ps.err == nil {
		ps.err = apperr.Field(apperr.CodeInvalidField, field, format, args...)
	}
}

func (ps *parsed) int64(name string, required bool) *int64 {
	s := ps.str(name)
	if s == "" {
		if required {
			if ps.err == nil {
				ps.err = apperr.Field(apperr.CodeMissingField, name, "%s is required", name)
			}
		}
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		ps.fail(name, "%s must be a whole number", name)
		return nil
	}
	return &n
}

func (ps *parsed) int(name string) *int {
	n := ps.int64(name, false)
	if n == nil {
		return nil
	}
	if *n < -1<<31 || *n > 1<<31-1 {
		ps.fail(name, "%s is out of range", name)
		return nil
	}
	v := int(*n)
	return &v
}

// time reads a datetime-local input in the partner's time zone.
func (ps *parsed) time(name string) *time.Time {
	s := ps.str(name)
	if s == "" {
		return nil
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02 15:04"} {
		if t, err := time.ParseInLocation(layout, s, ps.loc); err == nil {
			return &t
		}
	}
	ps.fail(name, "%s must be a date and time such as 2026-12-31T23:59", name)
	return nil
}

// list reads a list typed as words separated by commas, spaces or lines.
func (ps *parsed) list(name string) []string {
	return strings.FieldsFunc(ps.v.Get(name), func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' })
}

// translations reads the translation rows tr.N.locale / tr.N.<field>: a
// row without a locale is ignored, as is a row with a locale and no text
// (so an empty new row changes nothing).
func (ps *parsed) translations(fields ...string) locale.Translations {
	out := locale.Translations{}
	for i := 0; i < maxTranslationRows; i++ {
		p := "tr." + strconv.Itoa(i) + "."
		tag := ps.str(p + "locale")
		if tag == "" {
			continue
		}
		vals := map[string]string{}
		for _, f := range fields {
			if s := ps.v.Get(p + f); strings.TrimSpace(s) != "" {
				vals[f] = s
			}
		}
		if len(vals) == 0 {
			continue
		}
		if _, dup := out[tag]; dup {
			ps.fail("translations", "the locale %s is given twice", tag)
		}
		out[tag] = vals
	}
	return out
}

// maxTranslationRows is how many translation rows a form may post.
const maxTranslationRows = 50

// translationRows fills the form's translation rows from tr, plus one
// empty row for a new locale.
func translationRows(v url.Values, tr locale.Translations, fields ...string) int {
	tags := tr.Tags()
	for i, tag := range tags {
		p := "tr." + strconv.Itoa(i) + "."
		v.Set(p+"locale", tag)
		for _, f := range fields {
			v.Set(p+f, tr[tag][f])
		}
	}
	return len(tags) + 1
}

// rowsOf counts the rows posted (for re-showing a refused form).
func rowsOf(v url.Values) int {
	n := 0
	for i := 0; i < maxTranslationRows; i++ {
		if v.Has("tr." + strconv.Itoa(i) + ".locale") {
			n = i + 1
		}
	}
	return max(n, 1)
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func timeValue(t *time.Time, loc *time.Location) string {
	if t == nil {
		return ""
	}
	return t.In(loc).Format("2006-01-02T15:04")
}

func itoa(p *int) string {
	if p == nil {
		return ""
	}
	return strconv.Itoa(*p)
}

func i64toa(p *int64) string {
	if p == nil {
		return ""
	}
	return strconv.FormatInt(*p, 10)
}

func boolValue(b bool) string {
	if b {
		return "on"
	}
	return ""
}

// audited runs fn in a transaction and records its change there.
func (p *Portal) audited(ctx context.Context, me *signedIn, action, target string, fn func(ctx context.Context, tx bun.Tx) (before, after any, err error)) error {
	return p.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		before, after, err := fn(ctx, tx)
		if err != nil {
			return err
		}
		_, err = p.Audit.RecordTx(ctx, tx, audit.Change{Realm: audit.RealmPartner, RealmID: me.Partner.ID, Actor: me.actor(),
			Action: action, Target: target, Before: before, After: after})
		return err
	})
}

// changed answers a successful POST with a redirect to the page (so a
// reload does not post again), carrying the notice.
func changed(w http.ResponseWriter, r *http.Request, to, notice string) {
	securityHeaders(w.Header())
	sep := "?"
	if strings.Contains(to, "?") {
		sep = "&"
	}
	http.Redirect(w, r, to+sep+"saved="+url.QueryEscape(notice), http.StatusSeeOther)
}

// savedNotice is the notice a redirect carried, when it is one of ours.
func savedNotice(r *http.Request, allowed ...string) string {
	s := r.URL.Query().Get("saved")
	if slices.Contains(allowed, s) {
		return s
	}
	return ""
}
