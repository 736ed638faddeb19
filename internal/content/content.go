// Package content holds a partner's ads: bonus, special and news items
// shown in the app (seed 001 ad/bonus, ad/specials, ad/news), each with a
// priority, a visible window and the countries it targets.
package content

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"golang.org/x/text/language"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/earning"
	"github.com/perkshq/perks/internal/locale"
	"github.com/perkshq/perks/internal/textcheck"
)

// Ad kinds.
const (
	KindBonus   = "bonus"
	KindSpecial = "special"
	KindNews    = "news"
)

// Ad is one content item.
type Ad struct {
	bun.BaseModel `bun:"table:ads"`

	PartnerID    uuid.UUID  `bun:"partner_id,pk,type:uuid"`
	ID           string     `bun:"id,pk"`
	Kind         string     `bun:"kind"`
	Title        string     `bun:"title"`
	Body         string     `bun:"body"`
	ImageURL     *string    `bun:"image_url"`
	LinkURL      *string    `bun:"link_url"`
	ActionCode   *string    `bun:"action_code"`
	Priority     int        `bun:"priority"`
	VisibleFrom  *time.Time `bun:"visible_from"`
	VisibleUntil *time.Time `bun:"visible_until"`
	Countries    []string   `bun:"countries,array"`
	// Translations are the title and body per locale (package locale).
	Translations locale.Translations `bun:"translations,type:jsonb"`
	CreatedAt    time.Time           `bun:"created_at"`
	UpdatedAt    time.Time           `bun:"updated_at"`

	Inserted bool `bun:"inserted,scanonly"`
}

// Visible reports whether the ad shows at t.
func (a *Ad) Visible(t time.Time) bool {
	return (a.VisibleFrom == nil || !t.Before(*a.VisibleFrom)) && (a.VisibleUntil == nil || t.Before(*a.VisibleUntil))
}

// LocalTitle is the title in the reader's locale (locale.WithPreferences),
// the base title when none is given: GraphQL's Ad.title.
func (a *Ad) LocalTitle(ctx context.Context) string {
	return a.Translations.Pick(ctx, "title", a.Title)
}

// LocalBody is the body in the reader's locale: GraphQL's Ad.body.
func (a *Ad) LocalBody(ctx context.Context) string { return a.Translations.Pick(ctx, "body", a.Body) }

// TranslatableFields are an ad's fields that Translations may give, each
// checked like the base field.
var TranslatableFields = []locale.Field{
	{Name: "title", Check: func(path, v string) (string, error) {
		if v = strings.TrimSpace(v); v == "" || len(v) > 200 {
			return "", apperr.Field(apperr.CodeInvalidField, path, "%s must be 1 to 200 characters", path)
		}
		return v, textcheck.Line(path, v)
	}},
	{Name: "body", Check: func(path, v string) (string, error) {
		if len(v) > 5000 {
			return "", apperr.Field(apperr.CodeInvalidField, path, "%s must be at most 5000 characters", path)
		}
		return v, textcheck.Multiline(path, v)
	}},
}

// Service manages ads.
type Service struct {
	Earning *earning.Service
	Now     func() time.Time
}

var idRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// ValidateID checks an ad id.
func ValidateID(id string) error {
	if !idRE.MatchString(id) {
		return apperr.Field(apperr.CodeInvalidField, "id", "id must be 1-64 characters: letters, digits, '_', '.', '-'")
	}
	return nil
}

// Input is an ad as the partner sends it.
type Input struct {
	Kind, Title, Body             string
	ImageURL, LinkURL, ActionCode *string
	Priority                      int
	VisibleFrom, VisibleUntil     *time.Time
	Countries                     []string
	// Translations give title and body per locale (nil: none).
	Translations locale.Translations
}

func checkURL(field string, v *string) error {
	if v == nil {
		return nil
	}
	if err := textcheck.Line(field, *v); err != nil {
		return err
	}
	u, err := url.Parse(*v)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(*v) > 2048 {
		return apperr.Field(apperr.CodeInvalidField, field, "%s must be an absolute http(s) URL", field)
	}
	return nil
}

// Put creates or replaces an ad; created reports which.
func (s *Service) Put(ctx context.Context, db bun.IDB, partnerID uuid.UUID, id string, in Input) (*Ad, bool, error) {
	if err := ValidateID(id); err != nil {
		return nil, false, err
	}
	switch in.Kind {
	case KindBonus, KindSpecial, KindNews:
	default:
		return nil, false, apperr.Field(apperr.CodeInvalidField, "kind", "kind must be bonus, special or news")
	}
	if in.Title = strings.TrimSpace(in.Title); in.Title == "" || len(in.Title) > 200 {
		return nil, false, apperr.Field(apperr.CodeInvalidField, "title", "title must be 1 to 200 characters")
	}
	if err := textcheck.Line("title", in.Title); err != nil {
		return nil, false, err
	}
	if err := textcheck.Multiline("body", in.Body); err != nil {
		return nil, false, err
	}
	// priority is an integer column: 2^31 failed the insert (a 500).
	if err := textcheck.Int4("priority", in.Priority); err != nil {
		return nil, false, err
	}
	if len(in.Body) > 5000 {
		return nil, false, apperr.Field(apperr.CodeInvalidField, "body", "body must be at most 5000 characters")
	}
	tr, err := locale.Normalize("translations", in.Translations, TranslatableFields)
	if err != nil {
		return nil, false, err
	}
	if err := checkURL("imageUrl", in.ImageURL); err != nil {
		return nil, false, err
	}
	if err := checkURL("link", in.LinkURL); err != nil {
		return nil, false, err
	}
	if in.VisibleFrom != nil && in.VisibleUntil != nil && !in.VisibleUntil.After(*in.VisibleFrom) {
		return nil, false, apperr.Field(apperr.CodeInvalidField, "visibleUntil", "visibleUntil must be after visibleFrom")
	}
	countries := make([]string, 0, len(in.Countries))
	for _, c := range in.Countries {
		c = strings.ToUpper(c)
		if r, err := language.ParseRegion(c); err != nil || len(c) != 2 || !r.IsCountry() {
			return nil, false, apperr.Field(apperr.CodeInvalidField, "countries", "countries must hold ISO 3166-1 alpha-2 codes")
		}
		countries = append(countries, c)
	}
	if in.ActionCode != nil {
		if err := earning.ValidateCode("action", *in.ActionCode); err != nil {
			return nil, false, err
		}
		r, err := s.Earning.Rule(ctx, db, partnerID, *in.ActionCode)
		if err != nil {
			return nil, false, apperr.Field(apperr.CodeActionNotFound, "action", "no earning rule %q", *in.ActionCode)
		}
		if !r.ClientTriggerable {
			return nil, false, apperr.Field(apperr.CodeActionNotAllowed, "action", "an ad can only offer an action users may trigger from the app")
		}
	}
	now := s.Now().UTC()
	// Copies: RETURNING * scans into the ad, and must not write through
	// pointers the caller still holds.
	ad := &Ad{
		PartnerID: partnerID, ID: id, Kind: in.Kind, Title: in.Title, Body: in.Body, ImageURL: clone(in.ImageURL),
		LinkURL: clone(in.LinkURL), ActionCode: clone(in.ActionCode), Priority: in.Priority, VisibleFrom: clone(in.VisibleFrom),
		VisibleUntil: clone(in.VisibleUntil), Countries: countries, CreatedAt: now, UpdatedAt: now, Translations: tr,
	}
	err = db.NewInsert().Model(ad).
		On("CONFLICT (partner_id, id) DO UPDATE").
		Set("kind = EXCLUDED.kind, title = EXCLUDED.title, body = EXCLUDED.body, image_url = EXCLUDED.image_url").
		Set("link_url = EXCLUDED.link_url, action_code = EXCLUDED.action_code, priority = EXCLUDED.priority").
		Set("visible_from = EXCLUDED.visible_from, visible_until = EXCLUDED.visible_until, countries = EXCLUDED.countries").
		Set("translations = EXCLUDED.translations, updated_at = EXCLUDED.updated_at").
		Returning("*, (xmax = 0) AS inserted").Scan(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("put ad %s: %w", id, err)
	}
	return ad, ad.Inserted, nil
}

// Get loads one ad.
func (s *Service) Get(ctx context.Context, db bun.IDB, partnerID uuid.UUID, id string) (*Ad, error) {
	ad := new(Ad)
	err := db.NewSelect().Model(ad).Where("partner_id = ? AND id = ?", partnerID, id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.New(apperr.CodeNotFound, "ad not found")
	}
	if err != nil {
		return nil, fmt.Errorf("load ad %s: %w", id, err)
	}
	return ad, nil
}

// List returns every ad of the partner (for its management), by kind and
// priority.
func (s *Service) List(ctx context.Context, db bun.IDB, partnerID uuid.UUID) ([]Ad, error) {
	var out []Ad
	err := db.NewSelect().Model(&out).Where("partner_id = ?", partnerID).OrderExpr("kind, priority DESC, id").Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("list ads: %w", err)
	}
	return out, nil
}

// Delete removes an ad.
func (s *Service) Delete(ctx context.Context, db bun.IDB, partnerID uuid.UUID, id string) error {
	res, err := db.NewDelete().Model((*Ad)(nil)).Where("partner_id = ? AND id = ?", partnerID, id).Exec(ctx)
	if err != nil {
		return fmt.Errorf("delete ad %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return apperr.New(apperr.CodeNotFound, "ad not found")
	}
	return nil
}

// ForUser returns the ads a user sees now: of the kind (all when empty),
// in their visible window, for their country (ads without countries show
// everywhere; a user without a country sees only those), by priority.
func (s *Service) ForUser(ctx context.Context, db bun.IDB, partnerID uuid.UUID, kind string, country *string) ([]Ad, error) {
	now := s.Now().UTC()
	var out []Ad
	q := db.NewSelect().Model(&out).Where("partner_id = ?", partnerID).
		Where("(visible_from IS NULL OR visible_from <= ?) AND (visible_until IS NULL OR visible_until > ?)", now, now).
		OrderExpr("priority DESC, id").Limit(100)
	if kind != "" {
		q = q.Where("kind = ?", kind)
	}
	if country != nil {
		q = q.Where("(countries = '{}' OR ? = ANY(countries))", *country)
	} else {
		q = q.Where("countries = '{}'")
	}
	if err := q.Scan(ctx); err != nil {
		return nil, fmt.Errorf("ads for user: %w", err)
	}
	return out, nil
}

// clone returns a pointer to a copy of *p, or nil.
func clone[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
