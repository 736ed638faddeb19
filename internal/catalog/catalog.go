// Package catalog owns a partner's gifts: what users can spend points on,
// with stock, per-user limits, windows, countries, the merchants that honour
// them and where their voucher codes come from (an uploaded pool, a pattern,
// or none for online gifts). Claiming a gift is the voucher package's job;
// this package answers "may this user claim it, and if not, why".
package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"golang.org/x/text/language"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/locale"
	"github.com/perkshq/perks/internal/merchant"
	"github.com/perkshq/perks/internal/textcheck"
)

// Code sources.
const (
	SourcePool      = "pool"
	SourceGenerated = "generated"
	SourceNone      = "none"
)

// Gift is one catalog item.
type Gift struct {
	bun.BaseModel `bun:"table:gifts"`

	PartnerID   uuid.UUID `bun:"partner_id,pk,type:uuid"`
	ID          uuid.UUID `bun:"id,pk,type:uuid"`
	SKU         string    `bun:"sku"`
	Title       string    `bun:"title"`
	Description string    `bun:"description"`
	ImageURL    string    `bun:"image_url"`
	Category    string    `bun:"category"`
	CostPoints  int64     `bun:"cost_points"`
	// StockTotal is every unit ever available (nil: unlimited); what is
	// left is StockTotal - ClaimedCount.
	StockTotal             *int       `bun:"stock_total"`
	ClaimedCount           int        `bun:"claimed_count"`
	ErasedClaims           int        `bun:"erased_claims"`
	PerUserLimit           *int       `bun:"per_user_limit"`
	VisibleFrom            *time.Time `bun:"visible_from"`
	VisibleUntil           *time.Time `bun:"visible_until"`
	ClaimableFrom          *time.Time `bun:"claimable_from"`
	ClaimableUntil         *time.Time `bun:"claimable_until"`
	Countries              []string   `bun:"countries,array"`
	CodeSource             string     `bun:"code_source"`
	CodePattern            *string    `bun:"code_pattern"`
	CodesAvailable         int        `bun:"codes_available"`
	VoucherLifetimeSeconds *int       `bun:"voucher_lifetime_seconds"`
	RefundOnExpiry         bool       `bun:"refund_on_expiry"`
	Position               int        `bun:"position"`
	// MinTier is the tier code a user needs at least (nil: any tier).
	MinTier *string `bun:"min_tier"`
	// Translations are the title and description per locale (package
	// locale); never nil once loaded.
	Translations locale.Translations `bun:"translations,type:jsonb"`
	RetiredAt    *time.Time          `bun:"retired_at"`
	CreatedAt    time.Time           `bun:"created_at"`
	UpdatedAt    time.Time           `bun:"updated_at"`

	Inserted bool `bun:"inserted,scanonly"`
}

// LocalTitle is the title in the reader's locale (locale.WithPreferences),
// the base title when none is given: GraphQL's Gift.title.
func (g *Gift) LocalTitle(ctx context.Context) string {
	return g.Translations.Pick(ctx, "title", g.Title)
}

// LocalDescription is the description in the reader's locale: GraphQL's
// Gift.description.
func (g *Gift) LocalDescription(ctx context.Context) string {
	return g.Translations.Pick(ctx, "description", g.Description)
}

// Remaining is the stock left, nil when unlimited.
func (g *Gift) Remaining() *int {
	if g.StockTotal == nil {
		return nil
	}
	n := max(*g.StockTotal-g.ClaimedCount, 0)
	return &n
}

// Visible reports whether the gift shows in the catalog at t.
func (g *Gift) Visible(t time.Time) bool {
	return g.RetiredAt == nil && within(t, g.VisibleFrom, g.VisibleUntil)
}

// Claimable reports whether the gift may be claimed at t (visible too).
func (g *Gift) Claimable(t time.Time) bool {
	return g.Visible(t) && within(t, g.ClaimableFrom, g.ClaimableUntil)
}

func within(t time.Time, from, until *time.Time) bool {
	return (from == nil || !t.Before(*from)) && (until == nil || t.Before(*until))
}

// OffersCountry reports whether a user in country may claim the gift. A
// gift limited to some countries is not offered to a user whose country is
// unknown.
func (g *Gift) OffersCountry(country *string) bool {
	if len(g.Countries) == 0 {
		return true
	}
	return country != nil && slices.Contains(g.Countries, *country)
}

// VoucherExpiry is when a voucher claimed at t expires (nil: never).
func (g *Gift) VoucherExpiry(t time.Time) *time.Time {
	if g.VoucherLifetimeSeconds == nil {
		return nil
	}
	e := t.Add(time.Duration(*g.VoucherLifetimeSeconds) * time.Second)
	return &e
}

// Viewer is what availability depends on besides the gift.
type Viewer struct {
	Country *string
	Balance int64
	// Claims is how many vouchers of this gift the user already has.
	Claims int
	// TierRank is the user's tier rank and TierRanks the partner's tier
	// codes by rank (tier.RanksTx); needed only for gifts with a MinTier.
	// A MinTier missing from TierRanks is above everyone: fail closed.
	TierRank  int
	TierRanks map[string]int
}

// MeetsTier reports whether v's tier is at least code.
func (v Viewer) MeetsTier(code string) bool {
	r, ok := v.TierRanks[code]
	return ok && v.TierRank >= r
}

// Availability says whether v may claim g at t: "" when yes, otherwise
// the code a claim would fail with. Precedence (first that applies):
// GIFT_UNAVAILABLE, NOT_IN_COUNTRY, TIER_TOO_LOW, OUT_OF_STOCK, CODES_EXHAUSTED,
// LIMIT_REACHED, INSUFFICIENT_POINTS. A claim checks in the same order, so
// the catalog and the claim tell the same story (except when a concurrent
// claim takes the last unit in between).
func (g *Gift) Availability(t time.Time, v Viewer) apperr.Code {
	switch {
	case !g.Claimable(t):
		return apperr.CodeGiftUnavailable
	case !g.OffersCountry(v.Country):
		return apperr.CodeNotInCountry
	case g.MinTier != nil && !v.MeetsTier(*g.MinTier):
		return apperr.CodeTierTooLow
	case g.StockTotal != nil && g.ClaimedCount >= *g.StockTotal:
		return apperr.CodeOutOfStock
	case g.CodeSource == SourcePool && g.CodesAvailable <= 0:
		return apperr.CodeCodesExhausted
	case g.PerUserLimit != nil && v.Claims >= *g.PerUserLimit:
		return apperr.CodeLimitReached
	case v.Balance < g.CostPoints:
		return apperr.CodeInsufficientPoints
	}
	return ""
}

// Service manages gifts and their codes.
type Service struct {
	Merchants *merchant.Service
	Now       func() time.Time
}

// NewService returns a Service using the wall clock.
func NewService(m *merchant.Service) *Service { return &Service{Merchants: m, Now: time.Now} }

var skuRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// ValidateSKU checks a gift SKU.
func ValidateSKU(field, sku string) error {
	if !skuRE.MatchString(sku) {
		return apperr.Field(apperr.CodeInvalidField, field, "%s must be 1-64 characters: letters, digits, '_', '.', '-', starting with a letter or digit", field)
	}
	return nil
}

var categoryRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// ValidateCategory checks a category slug.
func ValidateCategory(field, c string) error {
	if !categoryRE.MatchString(c) {
		return apperr.Field(apperr.CodeInvalidField, field, "%s must be 1-63 lowercase letters, digits, '-' or '_'", field)
	}
	return nil
}

// Limits of a gift's fields.
const (
	MaxTitle           = 200
	MaxDescription     = 4000
	MaxImageURL        = 2048
	MaxCountries       = 250
	MaxMerchants       = 100
	MaxStock           = 100_000_000
	MaxLifetimeSeconds = 10 * 366 * 24 * 3600
	MinLifetimeSeconds = 60
)

// GiftInput is a gift as the partner sends it (create or replace).
type GiftInput struct {
	Title                  string
	Description            string
	ImageURL               string
	Category               string
	CostPoints             int64
	Stock                  *int
	PerUserLimit           *int
	VisibleFrom            *time.Time
	VisibleUntil           *time.Time
	ClaimableFrom          *time.Time
	ClaimableUntil         *time.Time
	Countries              []string
	CodeSource             string
	CodePattern            string
	VoucherLifetimeSeconds *int
	RefundOnExpiry         bool
	Merchants              []string
	Position               int
	// MinTier is a tier code of the partner's list (nil: any tier).
	MinTier *string
	// Translations give title and description per locale (nil: none).
	Translations locale.Translations
}

// TranslatableFields are a gift's fields that Translations may give, each
// checked like the base field.
var TranslatableFields = []locale.Field{
	{Name: "title", Check: func(path, v string) (string, error) {
		v = strings.TrimSpace(v)
		if v == "" || utf8.RuneCountInString(v) > MaxTitle || hasControl(v) {
			return "", apperr.Field(apperr.CodeInvalidField, path, "%s must be 1 to %d characters without control characters", path, MaxTitle)
		}
		return v, nil
	}},
	{Name: "description", Check: func(path, v string) (string, error) {
		if !utf8.ValidString(v) || utf8.RuneCountInString(v) > MaxDescription {
			return "", apperr.Field(apperr.CodeInvalidField, path, "%s must be at most %d characters", path, MaxDescription)
		}
		return v, textcheck.Multiline(path, v)
	}},
}

func (in *GiftInput) normalize() error {
	in.Title = strings.TrimSpace(in.Title)
	if in.Title == "" || utf8.RuneCountInString(in.Title) > MaxTitle || hasControl(in.Title) {
		return apperr.Field(apperr.CodeInvalidField, "title", "title must be 1 to %d characters without control characters", MaxTitle)
	}
	if !utf8.ValidString(in.Description) || utf8.RuneCountInString(in.Description) > MaxDescription {
		return apperr.Field(apperr.CodeInvalidField, "description", "description must be at most %d characters", MaxDescription)
	}
	if err := textcheck.Multiline("description", in.Description); err != nil {
		return err
	}
	tr, err := locale.Normalize("translations", in.Translations, TranslatableFields)
	if err != nil {
		return err
	}
	in.Translations = tr
	if err := textcheck.Line("imageUrl", in.ImageURL); err != nil {
		return err
	}
	if in.ImageURL != "" {
		u, err := url.Parse(in.ImageURL)
		if err != nil || len(in.ImageURL) > MaxImageURL || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return apperr.Field(apperr.CodeInvalidField, "imageUrl", "imageUrl must be an absolute http(s) URL of at most %d bytes", MaxImageURL)
		}
	}
	if in.Category != "" {
		if err := ValidateCategory("category", in.Category); err != nil {
			return err
		}
	}
	if in.CostPoints < 1 || in.CostPoints > 1_000_000_000 {
		return apperr.Field(apperr.CodePointsOutOfRange, "costPoints", "costPoints must be a whole number from 1 to 1000000000")
	}
	if in.Stock != nil && (*in.Stock < 0 || *in.Stock > MaxStock) {
		return apperr.Field(apperr.CodeInvalidField, "stock", "stock must be a whole number from 0 to %d (omit it for unlimited)", MaxStock)
	}
	if in.PerUserLimit != nil && (*in.PerUserLimit < 1 || *in.PerUserLimit > math.MaxInt32) {
		return apperr.Field(apperr.CodeInvalidField, "perUserLimit", "perUserLimit must be a positive whole number (omit it for no limit)")
	}
	if in.VisibleFrom != nil && in.VisibleUntil != nil && !in.VisibleUntil.After(*in.VisibleFrom) {
		return apperr.Field(apperr.CodeInvalidField, "visibleUntil", "visibleUntil must be after visibleFrom")
	}
	if in.ClaimableFrom != nil && in.ClaimableUntil != nil && !in.ClaimableUntil.After(*in.ClaimableFrom) {
		return apperr.Field(apperr.CodeInvalidField, "claimableUntil", "claimableUntil must be after claimableFrom")
	}
	if len(in.Countries) > MaxCountries {
		return apperr.Field(apperr.CodeInvalidField, "countries", "countries lists at most %d codes", MaxCountries)
	}
	countries := make([]string, 0, len(in.Countries))
	for _, c := range in.Countries {
		v := strings.ToUpper(strings.TrimSpace(c))
		r, err := language.ParseRegion(v)
		if err != nil || len(v) != 2 || !r.IsCountry() || r.String() != v {
			return apperr.Field(apperr.CodeInvalidField, "countries", "countries must be ISO 3166-1 alpha-2 codes such as SG; %q is not", c)
		}
		if !slices.Contains(countries, v) {
			countries = append(countries, v)
		}
	}
	slices.Sort(countries)
	in.Countries = countries
	switch in.CodeSource {
	case SourcePool, SourceNone:
		if in.CodePattern != "" {
			return apperr.Field(apperr.CodeInvalidField, "codePattern", "codePattern only applies when codeSource is generated")
		}
	case SourceGenerated:
		if in.CodePattern == "" {
			return apperr.Field(apperr.CodeMissingField, "codePattern", "codePattern is required when codeSource is generated")
		}
		if _, err := ParsePattern("codePattern", in.CodePattern, in.Stock); err != nil {
			return err
		}
	default:
		return apperr.Field(apperr.CodeInvalidField, "codeSource", "codeSource must be pool, generated or none")
	}
	if in.VoucherLifetimeSeconds != nil && (*in.VoucherLifetimeSeconds < MinLifetimeSeconds || *in.VoucherLifetimeSeconds > MaxLifetimeSeconds) {
		return apperr.Field(apperr.CodeInvalidField, "voucherLifetimeSeconds", "voucherLifetimeSeconds must be from %d to %d (omit it for vouchers that never expire)", MinLifetimeSeconds, MaxLifetimeSeconds)
	}
	if in.RefundOnExpiry && in.VoucherLifetimeSeconds == nil {
		return apperr.Field(apperr.CodeInvalidField, "refundOnExpiry", "refundOnExpiry needs a voucherLifetimeSeconds")
	}
	if len(in.Merchants) > MaxMerchants {
		return apperr.Field(apperr.CodeInvalidField, "merchants", "a gift lists at most %d merchants", MaxMerchants)
	}
	merchants := make([]string, 0, len(in.Merchants))
	for _, m := range in.Merchants {
		if err := merchant.ValidateCode("merchants", m); err != nil {
			return err
		}
		if !slices.Contains(merchants, m) {
			merchants = append(merchants, m)
		}
	}
	in.Merchants = merchants
	if len(in.Merchants) > 0 && in.CodeSource == SourceNone {
		return apperr.Field(apperr.CodeInvalidField, "codeSource", "a gift honoured by merchants needs codes (pool or generated): merchants look vouchers up by code")
	}
	if in.Position < -1_000_000 || in.Position > 1_000_000 {
		return apperr.Field(apperr.CodeInvalidField, "position", "position must be between -1000000 and 1000000")
	}
	return nil
}

func hasControl(s string) bool {
	for _, r := range s {
		if textcheck.Refused(r, false) {
			return true
		}
	}
	return false
}

// PutGiftTx creates or replaces a gift by SKU; created reports which.
// Replacing keeps what users did (claimed_count, uploaded codes, vouchers)
// and un-retires a retired gift. stock is the total: lowering it below the
// units already claimed is refused.
func (s *Service) PutGiftTx(ctx context.Context, tx bun.Tx, partnerID uuid.UUID, sku string, in GiftInput) (*Gift, bool, error) {
	if err := ValidateSKU("sku", sku); err != nil {
		return nil, false, err
	}
	if err := in.normalize(); err != nil {
		return nil, false, err
	}
	merchants, err := s.Merchants.ByCodes(ctx, tx, partnerID, "merchants", in.Merchants)
	if err != nil {
		return nil, false, err
	}
	if in.MinTier != nil {
		var known bool
		if err := tx.NewRaw("SELECT EXISTS (SELECT 1 FROM tiers WHERE partner_id = ? AND code = ?)", partnerID, *in.MinTier).Scan(ctx, &known); err != nil {
			return nil, false, fmt.Errorf("check min tier: %w", err)
		}
		if !known {
			return nil, false, apperr.Field(apperr.CodeInvalidField, "minTier", "minTier must be the code of one of your tiers (GET /integrations/tiers)")
		}
	}
	// Lock an existing gift and its claim slots so no claim slips in
	// between this check and the update: stock is the total and may not
	// drop below what is claimed.
	var cur struct {
		ID      uuid.UUID `bun:"id,type:uuid"`
		Claimed int       `bun:"claimed_count"`
	}
	var slotClaimed, slotPoolTaken int
	err = tx.NewRaw("SELECT id, claimed_count FROM gifts WHERE partner_id = ? AND sku = ? FOR UPDATE", partnerID, sku).Scan(ctx, &cur)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return nil, false, fmt.Errorf("lock gift %s: %w", sku, err)
	default:
		if slotClaimed, slotPoolTaken, err = slotTotals(ctx, tx, partnerID, cur.ID); err != nil {
			return nil, false, err
		}
	}
	claimed := cur.Claimed + slotClaimed
	if in.Stock != nil && *in.Stock < claimed {
		return nil, false, apperr.Field(apperr.CodeInvalidField, "stock", "stock is the total and %d units are already claimed; stock must be at least that", claimed)
	}
	now := s.Now().UTC()
	g := &Gift{
		PartnerID: partnerID, ID: uuid.New(), SKU: sku, Title: in.Title, Description: in.Description,
		ImageURL: in.ImageURL, Category: in.Category, CostPoints: in.CostPoints, StockTotal: clone(in.Stock),
		PerUserLimit: clone(in.PerUserLimit), VisibleFrom: utc(in.VisibleFrom), VisibleUntil: utc(in.VisibleUntil),
		ClaimableFrom: utc(in.ClaimableFrom), ClaimableUntil: utc(in.ClaimableUntil), Countries: in.Countries,
		CodeSource: in.CodeSource, VoucherLifetimeSeconds: clone(in.VoucherLifetimeSeconds), RefundOnExpiry: in.RefundOnExpiry,
		Position: in.Position, CreatedAt: now, UpdatedAt: now, MinTier: clone(in.MinTier), Translations: in.Translations,
	}
	if in.CodePattern != "" {
		g.CodePattern = clone(&in.CodePattern)
	}
	err = tx.NewInsert().Model(g).
		ExcludeColumn("claimed_count", "erased_claims", "codes_available", "retired_at").
		On("CONFLICT (partner_id, sku) DO UPDATE").
		Set("title = EXCLUDED.title, description = EXCLUDED.description, image_url = EXCLUDED.image_url").
		Set("category = EXCLUDED.category, cost_points = EXCLUDED.cost_points, stock_total = EXCLUDED.stock_total").
		Set("per_user_limit = EXCLUDED.per_user_limit, visible_from = EXCLUDED.visible_from, visible_until = EXCLUDED.visible_until").
		Set("claimable_from = EXCLUDED.claimable_from, claimable_until = EXCLUDED.claimable_until, countries = EXCLUDED.countries").
		Set("code_source = EXCLUDED.code_source, code_pattern = EXCLUDED.code_pattern").
		Set("voucher_lifetime_seconds = EXCLUDED.voucher_lifetime_seconds, refund_on_expiry = EXCLUDED.refund_on_expiry").
		Set("position = EXCLUDED.position, retired_at = NULL, updated_at = EXCLUDED.updated_at").
		Set("min_tier = EXCLUDED.min_tier, translations = EXCLUDED.translations").
		Returning("*, (xmax = 0) AS inserted").
		Scan(ctx)
	if err != nil {
		if isCheckViolation(err, "gifts_stock_nonnegative") {
			return nil, false, apperr.Field(apperr.CodeInvalidField, "stock", "stock is the total and may not be lower than the units already claimed")
		}
		return nil, false, fmt.Errorf("put gift %s: %w", sku, err)
	}
	if err := foldSlotsTx(ctx, tx, g, slotClaimed, slotPoolTaken); err != nil {
		return nil, false, err
	}
	if _, err := tx.NewDelete().TableExpr("gift_merchants").Where("partner_id = ? AND gift_id = ?", partnerID, g.ID).Exec(ctx); err != nil {
		return nil, false, fmt.Errorf("replace merchants of gift %s: %w", sku, err)
	}
	if len(merchants) > 0 {
		ids := make([]uuid.UUID, len(merchants))
		for i, m := range merchants {
			ids[i] = m.ID
		}
		if _, err := tx.NewRaw(`INSERT INTO gift_merchants (partner_id, gift_id, merchant_id)
			SELECT ?, ?, unnest(?::uuid[])`, partnerID, g.ID, pgdialect.Array(ids)).Exec(ctx); err != nil {
			return nil, false, fmt.Errorf("insert merchants of gift %s: %w", sku, err)
		}
	}
	return g, g.Inserted, nil
}

// clone copies a pointed-to value: bun scans RETURNING columns through the
// model's existing pointers, which must not be the caller's.
func clone[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// GiftBySKU loads a gift, retired or not.
func (s *Service) GiftBySKU(ctx context.Context, db bun.IDB, partnerID uuid.UUID, sku string) (*Gift, error) {
	return s.one(ctx, db, "partner_id = ? AND sku = ?", partnerID, sku)
}

// GiftByID loads a gift, retired or not.
func (s *Service) GiftByID(ctx context.Context, db bun.IDB, partnerID, id uuid.UUID) (*Gift, error) {
	// Prepared: the catalog and the vouchers read gifts by id all the time.
	g := new(Gift)
	err := database.QueryRowModel(ctx, db, g, "SELECT "+giftColumns(db)+" FROM gifts WHERE partner_id = $1 AND id = $2", partnerID, id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.New(apperr.CodeGiftNotFound, "gift not found")
	}
	if err != nil {
		return nil, fmt.Errorf("load gift: %w", err)
	}
	return g, nil
}

func (s *Service) one(ctx context.Context, db bun.IDB, where string, args ...any) (*Gift, error) {
	g := new(Gift)
	err := db.NewSelect().Model(g).ColumnExpr(countedColumns(db, `"gift"`)).Where(where, args...).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.New(apperr.CodeGiftNotFound, "gift not found")
	}
	if err != nil {
		return nil, fmt.Errorf("load gift: %w", err)
	}
	return g, nil
}

// GiftsByIDs loads gifts by id (for dataloaders); missing ids are absent
// from the map.
func (s *Service) GiftsByIDs(ctx context.Context, db bun.IDB, partnerID uuid.UUID, ids []uuid.UUID) (map[uuid.UUID]*Gift, error) {
	var gifts []Gift
	if err := db.NewSelect().Model(&gifts).ColumnExpr(countedColumns(db, `"gift"`)).Where("partner_id = ? AND id IN (?)", partnerID, bun.List(ids)).Scan(ctx); err != nil {
		return nil, fmt.Errorf("load gifts: %w", err)
	}
	out := make(map[uuid.UUID]*Gift, len(gifts))
	for i := range gifts {
		out[gifts[i].ID] = &gifts[i]
	}
	return out, nil
}

// Gifts lists a partner's gifts in catalog order; retired ones only when asked.
func (s *Service) Gifts(ctx context.Context, db bun.IDB, partnerID uuid.UUID, includeRetired bool) ([]Gift, error) {
	var out []Gift
	q := db.NewSelect().Model(&out).ColumnExpr(countedColumns(db, `"gift"`)).Where("partner_id = ?", partnerID).OrderExpr("position, sku")
	if !includeRetired {
		q = q.Where("retired_at IS NULL")
	}
	if err := q.Scan(ctx); err != nil {
		return nil, fmt.Errorf("list gifts: %w", err)
	}
	return out, nil
}

// Retire hides a gift from the catalog and refuses new claims. Vouchers
// already claimed stay valid. Retiring a retired gift succeeds; PUT brings
// a gift back.
//
// It then locks the gift's claim slots, so that it returns only once every
// claim that took a unit before it committed has ended: no claim that
// commits after Retire returns was accepted without seeing it.
func (s *Service) Retire(ctx context.Context, db bun.IDB, partnerID uuid.UUID, sku string) error {
	return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var id uuid.UUID
		err := tx.NewRaw(`UPDATE gifts SET retired_at = coalesce(retired_at, ?), updated_at = ?
			WHERE partner_id = ? AND sku = ? RETURNING id`, s.Now().UTC(), s.Now().UTC(), partnerID, sku).Scan(ctx, &id)
		if errors.Is(err, sql.ErrNoRows) {
			return apperr.New(apperr.CodeGiftNotFound, "no gift %q", sku)
		}
		if err != nil {
			return fmt.Errorf("retire gift %s: %w", sku, err)
		}
		_, _, err = slotTotals(ctx, tx, partnerID, id)
		return err
	})
}

// MerchantsOf returns, in one query, the merchants (enabled or not) that
// honour each of the gifts, by merchant code.
func (s *Service) MerchantsOf(ctx context.Context, db bun.IDB, partnerID uuid.UUID, giftIDs []uuid.UUID) (map[uuid.UUID][]merchant.Merchant, error) {
	var rows []struct {
		GiftID    uuid.UUID `bun:"gift_id,type:uuid"`
		ID        uuid.UUID `bun:"id,type:uuid"`
		Code      string    `bun:"code"`
		Name      string    `bun:"name"`
		Enabled   bool      `bun:"enabled"`
		CreatedAt time.Time `bun:"created_at"`
		UpdatedAt time.Time `bun:"updated_at"`
	}
	// Prepared: every catalog page runs it.
	err := database.QueryModel(ctx, db, &rows, `SELECT gm.gift_id, m.id, m.code, m.name, m.enabled, m.created_at, m.updated_at FROM gift_merchants gm
		JOIN merchants m ON m.partner_id = gm.partner_id AND m.id = gm.merchant_id
		WHERE gm.partner_id = $1 AND gm.gift_id = ANY ($2::uuid[]) ORDER BY m.code`, partnerID, giftIDs)
	if err != nil {
		return nil, fmt.Errorf("load merchants of gifts: %w", err)
	}
	out := make(map[uuid.UUID][]merchant.Merchant, len(giftIDs))
	for _, r := range rows {
		out[r.GiftID] = append(out[r.GiftID], merchant.Merchant{
			PartnerID: partnerID, ID: r.ID, Code: r.Code, Name: r.Name, Enabled: r.Enabled, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
		})
	}
	return out, nil
}

// ClaimCounts returns, in one query, how many vouchers of each gift the
// user claimed (absent: none).
func (s *Service) ClaimCounts(ctx context.Context, db bun.IDB, partnerID, userID uuid.UUID, giftIDs []uuid.UUID) (map[uuid.UUID]int, error) {
	var rows []struct {
		GiftID uuid.UUID `bun:"gift_id,type:uuid"`
		Claims int       `bun:"claims"`
	}
	// Prepared: every catalog page runs it.
	err := database.QueryModel(ctx, db, &rows, `SELECT gift_id, claims FROM gift_claim_counters
		WHERE partner_id = $1 AND user_id = $2 AND gift_id = ANY ($3::uuid[])`, partnerID, userID, giftIDs)
	if err != nil {
		return nil, fmt.Errorf("load claim counts: %w", err)
	}
	out := make(map[uuid.UUID]int, len(rows))
	for _, r := range rows {
		out[r.GiftID] = r.Claims
	}
	return out, nil
}

// HonouredBy reports whether the merchant honours the gift.
func (s *Service) HonouredBy(ctx context.Context, db bun.IDB, partnerID, giftID, merchantID uuid.UUID) (bool, error) {
	return db.NewSelect().TableExpr("gift_merchants").
		Where("partner_id = ? AND gift_id = ? AND merchant_id = ?", partnerID, giftID, merchantID).Exists(ctx)
}

// HasMerchants reports whether the gift is redeemed at merchants (true) or
// online in the app (false).
func (s *Service) HasMerchants(ctx context.Context, db bun.IDB, partnerID, giftID uuid.UUID) (bool, error) {
	return db.NewSelect().TableExpr("gift_merchants").Where("partner_id = ? AND gift_id = ?", partnerID, giftID).Exists(ctx)
}

type sqlStater interface{ SQLState() string }

func state(err error) string {
	var e sqlStater
	if errors.As(err, &e) {
		return e.SQLState()
	}
	return ""
}

func isCheckViolation(err error, constraint string) bool {
	return state(err) == "23514" && strings.Contains(err.Error(), constraint)
}
