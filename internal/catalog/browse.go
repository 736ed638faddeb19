package catalog

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/textcheck"
)

// Cursor is a position in the catalog order (position, then SKU).
type Cursor struct {
	Position int
	SKU      string
}

// Encode returns the opaque cursor string clients pass back.
func (c Cursor) Encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte("g:" + strconv.Itoa(c.Position) + ":" + c.SKU))
}

// DecodeCursor parses a cursor made by Encode.
func DecodeCursor(field, s string) (*Cursor, error) {
	bad := apperr.Field(apperr.CodeInvalidField, field, "%s is not a cursor of this list", field)
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, bad
	}
	parts := strings.SplitN(string(b), ":", 3)
	if len(parts) != 3 || parts[0] != "g" || ValidateSKU(field, parts[2]) != nil {
		return nil, bad
	}
	pos, err := strconv.Atoi(parts[1])
	if err != nil {
		return nil, bad
	}
	return &Cursor{Position: pos, SKU: parts[2]}, nil
}

// MaxSearch bounds the search text.
const MaxSearch = 100

// PageQuery filters and pages the consumer catalog.
type PageQuery struct {
	After    *Cursor
	Limit    int
	Category string
	// Search matches title, description or SKU, case-insensitively.
	Search string
	// MaxCost, when set, keeps gifts costing at most this (the user's
	// balance for `affordable: true`).
	MaxCost *int64
}

// Page returns up to q.Limit gifts visible at now, in catalog order, in one
// query. Gifts the user cannot claim are included (availability says why),
// except that MaxCost filters by price.
func (s *Service) Page(ctx context.Context, db bun.IDB, partnerID uuid.UUID, now time.Time, q PageQuery) ([]Gift, error) {
	if q.Category != "" {
		if err := ValidateCategory("category", q.Category); err != nil {
			return nil, err
		}
	}
	if !utf8.ValidString(q.Search) || utf8.RuneCountInString(q.Search) > MaxSearch {
		return nil, apperr.Field(apperr.CodeInvalidField, "search", "search must be at most %d characters", MaxSearch)
	}
	if err := textcheck.Line("search", q.Search); err != nil {
		return nil, err
	}
	var out []Gift
	sel := db.NewSelect().Model(&out).
		Where("partner_id = ? AND retired_at IS NULL", partnerID).
		Where("(visible_from IS NULL OR visible_from <= ?) AND (visible_until IS NULL OR visible_until > ?)", now, now).
		OrderExpr("position, sku").Limit(int64(q.Limit))
	if q.After != nil {
		sel = sel.Where("(position, sku) > (?, ?)", q.After.Position, q.After.SKU)
	}
	if q.Category != "" {
		sel = sel.Where("category = ?", q.Category)
	}
	if s := strings.TrimSpace(q.Search); s != "" {
		like := "%" + escapeLike(s) + "%"
		sel = sel.Where("(title ILIKE ? OR description ILIKE ? OR sku ILIKE ?)", like, like, like)
	}
	if q.MaxCost != nil {
		sel = sel.Where("cost_points <= ?", *q.MaxCost)
	}
	if err := sel.Scan(ctx); err != nil {
		return nil, fmt.Errorf("catalog page: %w", err)
	}
	return out, nil
}

// escapeLike makes s match literally inside a LIKE pattern (backslash is
// PostgreSQL's default LIKE escape).
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}
