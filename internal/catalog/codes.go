package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"slices"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/database"
)

// MaxCodesPerUpload bounds one upload call.
const MaxCodesPerUpload = 100_000

var codeRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{2,63}$`)

// ValidateCode checks a voucher code: 3-64 characters, letters, digits,
// '_', '.', '-', starting with a letter or digit. The alphabet keeps codes
// safe in a URL path segment, a CSV cell and a till's keyboard. Codes are
// case-sensitive, exactly as uploaded.
func ValidateCode(field, code string) error {
	if !codeRE.MatchString(code) {
		return apperr.Field(apperr.CodeInvalidField, field, "%s must be 3-64 characters: letters, digits, '_', '.', '-', starting with a letter or digit", field)
	}
	return nil
}

// Duplicate is an uploaded code that was not inserted.
type Duplicate struct {
	Code string `json:"code"`
	// Position is the code's 1-based position in the upload (header line
	// and blank lines of a CSV not counted).
	Position int `json:"position"`
	// Reason is "repeated_in_upload" or "already_stored" (uploaded before,
	// for this gift or another of the partner's, or generated).
	Reason string `json:"reason"`
}

// Duplicate reasons.
const (
	ReasonRepeated = "repeated_in_upload"
	ReasonStored   = "already_stored"
)

// UploadResult reports an upload.
type UploadResult struct {
	Received   int
	Inserted   int
	Duplicates []Duplicate
	// Available is the gift's pool of unassigned codes after the upload.
	Available int
}

// UploadCodesTx adds codes to a pool gift in two statements whatever the
// count: one INSERT ... SELECT unnest(...) ON CONFLICT DO NOTHING RETURNING,
// and the update of the gift's available count. Codes already stored for
// the partner and codes repeated within the upload are reported, never
// inserted twice.
func (s *Service) UploadCodesTx(ctx context.Context, tx bun.Tx, partnerID uuid.UUID, sku string, codes []string) (*UploadResult, error) {
	if err := ValidateSKU("sku", sku); err != nil {
		return nil, err
	}
	if len(codes) == 0 {
		return nil, apperr.Field(apperr.CodeMissingField, "codes", "send at least one code")
	}
	if len(codes) > MaxCodesPerUpload {
		return nil, apperr.Field(apperr.CodeInvalidField, "codes", "at most %d codes per call; split the upload", MaxCodesPerUpload)
	}
	res := &UploadResult{Received: len(codes)}
	unique := make([]string, 0, len(codes))
	position := make(map[string]int, len(codes))
	for i, c := range codes {
		if err := ValidateCode("codes", c); err != nil {
			return nil, apperr.Field(apperr.CodeInvalidField, "codes", "the code at position %d is not valid: codes are 3-64 characters of letters, digits, '_', '.', '-', starting with a letter or digit", i+1)
		}
		if _, seen := position[c]; seen {
			res.Duplicates = append(res.Duplicates, Duplicate{Code: c, Position: i + 1, Reason: ReasonRepeated})
			continue
		}
		position[c] = i + 1
		unique = append(unique, c)
	}
	g, err := s.GiftBySKU(ctx, tx, partnerID, sku)
	if err != nil {
		return nil, err
	}
	if g.CodeSource != SourcePool {
		return nil, apperr.New(apperr.CodeCodeSource, "gift %q takes its codes from %q, not from an uploaded pool", sku, g.CodeSource)
	}
	var inserted []string
	err = tx.NewRaw(`WITH ins AS (
			INSERT INTO gift_codes (partner_id, code, gift_id, source, created_at)
			SELECT ?, c.code, ?, 'pool', ? FROM unnest(?::text[]) WITH ORDINALITY AS c(code, ord) ORDER BY c.ord
			ON CONFLICT (partner_id, code) DO NOTHING
			RETURNING code)
		SELECT code FROM ins`, partnerID, g.ID, s.Now().UTC(), pgdialect.Array(unique)).Scan(ctx, &inserted)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("insert codes of gift %s: %w", sku, err)
	}
	res.Inserted = len(inserted)
	if len(inserted) < len(unique) {
		got := make(map[string]struct{}, len(inserted))
		for _, c := range inserted {
			got[c] = struct{}{}
		}
		for _, c := range unique {
			if _, ok := got[c]; !ok {
				res.Duplicates = append(res.Duplicates, Duplicate{Code: c, Position: position[c], Reason: ReasonStored})
			}
		}
	}
	sortDuplicates(res.Duplicates) // reads like the upload
	// Available counts out the codes the gift's claim slots took (not
	// folded into the row yet); claims never wait on this update.
	err = tx.NewRaw(`UPDATE gifts SET codes_available = codes_available + ?, updated_at = ?
		WHERE partner_id = ? AND id = ?
		RETURNING codes_available - coalesce((SELECT sum(pool_taken) FROM gift_claim_slots s
			WHERE s.partner_id = gifts.partner_id AND s.gift_id = gifts.id), 0)`, len(inserted), s.Now().UTC(), partnerID, g.ID).Scan(ctx, &res.Available)
	if err != nil {
		return nil, fmt.Errorf("count codes of gift %s: %w", sku, err)
	}
	return res, nil
}

func sortDuplicates(d []Duplicate) {
	slices.SortFunc(d, func(a, b Duplicate) int { return a.Position - b.Position })
}

// TakeUnitTx takes one unit of a gift for userID's claim and counts it, and
// poolCode says the claim took a pool code (counted out of the gift's
// available codes). The unit comes from one of the gift's claim slots
// (gift_take_unit, migration 20261201010000): the first from the user's
// slot on that has room and that no concurrent claim holds, else, waiting
// for every slot, any with room. The slot's lock is held to the end of the
// transaction, so the count can never pass the stock, yet up to GiftSlots
// claims of one gift hold a unit at once. It returns the gift as read once
// the slot was locked (a partner's change committed before shows: callers
// check it again), with its counts including this claim. Claims call it
// last to hold the slot as briefly as possible.
//
// Errors: OUT_OF_STOCK when no slot has a unit left (and, for a gift still
// counted on its row, GIFT_UNAVAILABLE when it was retired).
func (s *Service) TakeUnitTx(ctx context.Context, tx bun.Tx, partnerID, giftID, userID uuid.UUID, poolCode bool) (*Gift, error) {
	g := new(Gift)
	// Prepared, like every statement of a claim.
	err := database.QueryRowModel(ctx, tx, g, `SELECT `+database.Columns(tx, (*Gift)(nil), "")+` FROM gift_take_unit($1, $2, $3, $4)`,
		partnerID, giftID, slotOf(userID), poolCode)
	if err == nil {
		return g, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("take a unit of gift %s: %w", giftID, err)
	}
	cur, err := s.GiftByID(ctx, tx, partnerID, giftID)
	if err != nil {
		return nil, err
	}
	if cur.RetiredAt != nil {
		return nil, apperr.New(apperr.CodeGiftUnavailable, "the gift was retired")
	}
	return nil, apperr.New(apperr.CodeOutOfStock, "the gift is out of stock")
}

// GiftForClaimTx reads the gift for userID's claim and, in the same
// statement, counts the claim in the user's per-gift counter (inserting or
// updating gift_claim_counters, whose row lock serialises one user's claims
// of the gift to their commits): claims is the user's claims of it with this
// one. It counts only while the gift is neither retired nor sold out as read
// (claims is then 0), so that the claims of a sold-out gift are refused
// without writing; the caller refuses every other case from the gift
// (Availability) and LIMIT_REACHED when claims passes the per-user limit,
// rolling the transaction back, so a refused claim counts nothing.
// GIFT_NOT_FOUND when there is no such gift.
func (s *Service) GiftForClaimTx(ctx context.Context, tx bun.Tx, partnerID, giftID, userID uuid.UUID) (g *Gift, claims int, err error) {
	var row struct {
		Gift
		Claims *int `bun:"claims"`
	}
	// Prepared, like every statement of a claim: key lookups and an upsert.
	err = database.QueryRowModel(ctx, tx, &row, `WITH g AS (SELECT `+giftColumns(tx)+` FROM gifts WHERE partner_id = $1 AND id = $2),
		c AS (INSERT INTO gift_claim_counters AS c (partner_id, user_id, gift_id, claims)
			SELECT $1, $3, $2, 1 FROM g WHERE g.retired_at IS NULL AND (g.stock_total IS NULL OR g.claimed_count < g.stock_total)
			ON CONFLICT (partner_id, user_id, gift_id) DO UPDATE SET claims = c.claims + 1
			RETURNING claims)
		SELECT g.*, (SELECT claims FROM c) AS claims FROM g`, partnerID, giftID, userID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, apperr.New(apperr.CodeGiftNotFound, "gift not found")
	}
	if err != nil {
		return nil, 0, fmt.Errorf("load gift and count the claim: %w", err)
	}
	if row.Claims != nil {
		claims = *row.Claims
	}
	return &row.Gift, claims, nil
}
