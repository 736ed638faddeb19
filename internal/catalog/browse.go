package catalog

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/merchant"
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
	// A prepared statement per combination of filters (at most 16 texts):
	// the catalog page is every consumer's most frequent read.
	args := []any{partnerID, now}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	var w strings.Builder
	if q.After != nil {
		fmt.Fprintf(&w, " AND (position, sku) > (%s, %s)", arg(q.After.Position), arg(q.After.SKU))
	}
	if q.Category != "" {
		fmt.Fprintf(&w, " AND category = %s", arg(q.Category))
	}
	if s := strings.TrimSpace(q.Search); s != "" {
		like := arg("%" + escapeLike(s) + "%")
		fmt.Fprintf(&w, " AND (title ILIKE %s OR description ILIKE %s OR sku ILIKE %s)", like, like, like)
	}
	if q.MaxCost != nil {
		fmt.Fprintf(&w, " AND cost_points <= %s", arg(*q.MaxCost))
	}
	limit := arg(int64(q.Limit))
	var out []Gift
	err := database.QueryModel(ctx, db, &out, "SELECT "+giftColumns(db)+` FROM gifts
		WHERE partner_id = $1 AND retired_at IS NULL
		AND (visible_from IS NULL OR visible_from <= $2) AND (visible_until IS NULL OR visible_until > $2)`+w.String()+
		" ORDER BY position, sku LIMIT "+limit, args...)
	if err != nil {
		return nil, fmt.Errorf("catalog page: %w", err)
	}
	return out, nil
}

// escapeLike makes s match literally inside a LIKE pattern (backslash is
// PostgreSQL's default LIKE escape).
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

var giftColumnList struct {
	once sync.Once
	cols string
}

// giftColumns is Gift's column list for a SELECT ... FROM gifts, its counts
// including the claim slots' (countedColumns), computed once.
func giftColumns(db bun.IDB) string {
	giftColumnList.once.Do(func() { giftColumnList.cols = countedColumns(db, "gifts") })
	return giftColumnList.cols
}

// ShownMerchants returns, in one query, the merchants of each gift as the
// consumer API shows them: id, code, name and whether enabled (not their
// timestamps), in code order like MerchantsOf. Scanned by hand rather than
// as a bun model: the catalog page runs it for every page (prepared).
func (s *Service) ShownMerchants(ctx context.Context, db bun.IDB, partnerID uuid.UUID, giftIDs []uuid.UUID) (map[uuid.UUID][]merchant.Merchant, error) {
	rows, err := database.Query(ctx, db, `SELECT gm.gift_id, m.id, m.code, m.name, m.enabled FROM gift_merchants gm
		JOIN merchants m ON m.partner_id = gm.partner_id AND m.id = gm.merchant_id
		WHERE gm.partner_id = $1 AND gm.gift_id = ANY ($2::uuid[]) ORDER BY m.code`, partnerID, giftIDs)
	if err != nil {
		return nil, fmt.Errorf("load merchants of gifts: %w", err)
	}
	defer rows.Close()
	out := make(map[uuid.UUID][]merchant.Merchant, len(giftIDs))
	for rows.Next() {
		var giftID uuid.UUID
		m := merchant.Merchant{PartnerID: partnerID}
		if err := rows.Scan(&giftID, &m.ID, &m.Code, &m.Name, &m.Enabled); err != nil {
			return nil, fmt.Errorf("scan merchants of gifts: %w", err)
		}
		out[giftID] = append(out[giftID], m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load merchants of gifts: %w", err)
	}
	return out, nil
}
