// Package tier owns a partner's tiers (issue 14): the ordered list, each
// user's current tier, the qualifying points it follows and the changes
// between tiers (upgrades in the earn's transaction, downgrades by the
// periodic ReviewWorker). See docs/program.md, "Tiers".
//
// Qualifying points are the points earned: earn and activate entries count,
// reverse entries take theirs back, pending and cancelled points never
// count. A statement-level trigger on ledger_entries (migration
// 20261126500000) keeps them per user and calendar month (UTC) in
// tier_points, so every writer of entries is covered, set-based ones with a
// single upsert per statement, and a window (lifetime, rolling 12 months,
// calendar year) is a sum of a few rows.
package tier

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/event"
	"github.com/perkshq/perks/internal/textcheck"
)

// Bounds of a tier list.
const (
	MaxTiers        = 20
	MaxThreshold    = 1_000_000_000_000
	MaxBenefits     = 2000
	MinMultiplier   = 100  // x1.00, in hundredths
	MaxMultiplier   = 1000 // x10.00
	MultiplierScale = 100
)

// Qualifying bases and downgrade modes of the program policy.
const (
	BasisLifetime     = "lifetime"
	BasisRolling12    = "rolling12"
	BasisCalendarYear = "calendarYear"

	DowngradeNever     = "never"
	DowngradePeriodEnd = "periodEnd"
	DowngradeImmediate = "immediate"

	MaxGraceDays = 365
)

// Tier is one tier of a partner.
type Tier struct {
	bun.BaseModel `bun:"table:tiers"`

	PartnerID uuid.UUID `bun:"partner_id,pk,type:uuid"`
	Code      string    `bun:"code,pk"`
	// Rank is the tier's place in the list: 0 for the base tier.
	Rank      int    `bun:"rank"`
	Name      string `bun:"name"`
	Threshold int64  `bun:"threshold"`
	// Multiplier is the earn multiplier in hundredths (150 = x1.50).
	Multiplier int    `bun:"multiplier"`
	Benefits   string `bun:"benefits"`
}

// Input is one tier as the partner sends it, in list order.
type Input struct {
	Code       string
	Name       string
	Threshold  int64
	Multiplier int // hundredths, see ParseMultiplier
	Benefits   string
}

var codeRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)

func invalid(field, format string, args ...any) error {
	return apperr.Field(apperr.CodeInvalidField, field, format, args...)
}

// multiplierRE is a JSON number with at most two decimals and no exponent.
var multiplierRE = regexp.MustCompile(`^[0-9]{1,2}(\.[0-9]{1,2})?$`)

// ParseMultiplier reads a multiplier sent as a JSON number (1.5, 2, 1.25)
// into hundredths, exactly: more than two decimals (1.255) or an exponent
// is refused rather than rounded, so what is stored is what was sent.
func ParseMultiplier(field string, n json.Number) (int, error) {
	s := string(n)
	if !multiplierRE.MatchString(s) {
		return 0, invalid(field, "%s must be a number from 1.00 to 10.00 with at most 2 decimals", field)
	}
	whole, frac, _ := strings.Cut(s, ".")
	for len(frac) < 2 {
		frac += "0"
	}
	w, _ := strconv.Atoi(whole)
	f, _ := strconv.Atoi(frac)
	v := w*MultiplierScale + f
	if v < MinMultiplier || v > MaxMultiplier {
		return 0, invalid(field, "%s must be a number from 1.00 to 10.00 with at most 2 decimals", field)
	}
	return v, nil
}

// FormatMultiplier is the JSON number of a multiplier in hundredths.
func FormatMultiplier(v int) json.Number {
	return json.Number(strconv.FormatFloat(float64(v)/MultiplierScale, 'f', -1, 64))
}

// Validate checks a whole list: 0 to MaxTiers tiers, codes unique, the
// first threshold 0 (every user is at least on the base tier, so "no tier"
// never needs a case), thresholds strictly increasing, each field bounded.
// The field of an error is tiers[i].name.
func Validate(list []Input) error {
	if len(list) > MaxTiers {
		return invalid("tiers", "tiers holds at most %d tiers", MaxTiers)
	}
	seen := make(map[string]bool, len(list))
	for i, in := range list {
		f := func(name string) string { return fmt.Sprintf("tiers[%d].%s", i, name) }
		if !codeRE.MatchString(in.Code) {
			return invalid(f("code"), "%s must be 1-64 characters: lowercase letters, digits, '_', '.', '-'", f("code"))
		}
		if seen[in.Code] {
			return invalid(f("code"), "%s repeats the code %q", f("code"), in.Code)
		}
		seen[in.Code] = true
		if in.Name == "" || len(in.Name) > 200 {
			return invalid(f("name"), "%s must be 1 to 200 characters", f("name"))
		}
		if err := textcheck.Line(f("name"), in.Name); err != nil {
			return err
		}
		if len(in.Benefits) > MaxBenefits {
			return invalid(f("benefits"), "%s must be at most %d characters", f("benefits"), MaxBenefits)
		}
		if err := textcheck.Multiline(f("benefits"), in.Benefits); err != nil {
			return err
		}
		if in.Multiplier < MinMultiplier || in.Multiplier > MaxMultiplier {
			return invalid(f("multiplier"), "%s must be a number from 1.00 to 10.00 with at most 2 decimals", f("multiplier"))
		}
		switch {
		case i == 0 && in.Threshold != 0:
			return invalid(f("threshold"), "the first tier is the base tier: its threshold must be 0")
		case in.Threshold < 0 || in.Threshold > MaxThreshold:
			return invalid(f("threshold"), "%s must be a whole number from 0 to %d", f("threshold"), int64(MaxThreshold))
		case i > 0 && in.Threshold <= list[i-1].Threshold:
			return invalid(f("threshold"), "thresholds must increase strictly: %s must be above %d", f("threshold"), list[i-1].Threshold)
		}
	}
	return nil
}

// ValidatePolicy checks the tier part of a program policy.
func ValidatePolicy(basis, downgrade string, graceDays int) error {
	switch basis {
	case BasisLifetime, BasisRolling12, BasisCalendarYear:
	default:
		return invalid("tierBasis", "tierBasis must be lifetime, rolling12 or calendarYear")
	}
	switch downgrade {
	case DowngradeNever, DowngradePeriodEnd, DowngradeImmediate:
	default:
		return invalid("tierDowngrade", "tierDowngrade must be never, periodEnd or immediate")
	}
	if graceDays < 0 || graceDays > MaxGraceDays {
		return invalid("tierGraceDays", "tierGraceDays must be a whole number from 0 to %d", MaxGraceDays)
	}
	if graceDays > 0 && downgrade != DowngradePeriodEnd {
		return invalid("tierGraceDays", "tierGraceDays only applies when tierDowngrade is periodEnd")
	}
	return nil
}

// Service manages tiers and moves users between them.
type Service struct {
	Events *event.Recorder
	Now    func() time.Time
}

func (s *Service) now() time.Time {
	if s.Now == nil {
		return time.Now().UTC()
	}
	return s.Now().UTC()
}

// List returns the partner's tiers in order (empty: the partner has none).
func (s *Service) List(ctx context.Context, db bun.IDB, partnerID uuid.UUID) ([]Tier, error) {
	out := []Tier{}
	if err := db.NewSelect().Model(&out).Where("partner_id = ?", partnerID).OrderExpr("rank").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list tiers: %w", err)
	}
	return out, nil
}

// PutTx validates list and replaces the partner's tiers with it inside tx;
// refused input changes nothing. Users are then placed on the new list at
// once, set-based: a user whose tier code is gone is placed from their
// qualifying points (up or down), and every user with qualifying points is
// raised to what the new thresholds give (never lowered by a replacement
// otherwise: the downgrade policy decides that). Each move records
// tier.changed. An empty list removes tiers altogether.
func (s *Service) PutTx(ctx context.Context, tx bun.Tx, partnerID uuid.UUID, list []Input) ([]Tier, error) {
	if err := Validate(list); err != nil {
		return nil, err
	}
	// Serialises replacements of one partner's list (the unique rank would
	// otherwise make two concurrent ones fail rather than wait).
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtextextended('tiers:' || ?::text, 0))", partnerID); err != nil {
		return nil, fmt.Errorf("lock tiers: %w", err)
	}
	if _, err := tx.NewDelete().Model((*Tier)(nil)).Where("partner_id = ?", partnerID).Exec(ctx); err != nil {
		return nil, fmt.Errorf("delete tiers: %w", err)
	}
	out := make([]Tier, len(list))
	for i, in := range list {
		out[i] = Tier{PartnerID: partnerID, Code: in.Code, Rank: i, Name: in.Name, Threshold: in.Threshold, Multiplier: in.Multiplier, Benefits: in.Benefits}
	}
	if len(out) == 0 {
		if _, err := tx.NewDelete().TableExpr("user_tiers").Where("partner_id = ?", partnerID).Exec(ctx); err != nil {
			return nil, fmt.Errorf("delete user tiers: %w", err)
		}
		return out, nil
	}
	if _, err := tx.NewInsert().Model(&out).Exec(ctx); err != nil {
		return nil, fmt.Errorf("insert tiers: %w", err)
	}
	// Ranks follow the codes; a code that is gone gets rank -1, below any
	// tier, so that the evaluation below moves the user whatever the policy.
	if _, err := tx.ExecContext(ctx, `UPDATE user_tiers ut SET rank = coalesce(t.rank, -1)
		FROM user_tiers u LEFT JOIN tiers t ON t.partner_id = u.partner_id AND t.code = u.code
		WHERE u.partner_id = ? AND ut.partner_id = u.partner_id AND ut.user_id = u.user_id`, partnerID); err != nil {
		return nil, fmt.Errorf("re-rank user tiers: %w", err)
	}
	var users []uuid.UUID
	if err := tx.NewRaw(`SELECT user_id FROM tier_points WHERE partner_id = ? UNION SELECT user_id FROM user_tiers WHERE partner_id = ?`,
		partnerID, partnerID).Scan(ctx, &users); err != nil {
		return nil, fmt.Errorf("list users with qualifying points: %w", err)
	}
	if _, err := s.EvaluateTx(ctx, tx, partnerID, users...); err != nil {
		return nil, err
	}
	return out, nil
}

// Current is a user's tier as the earn pipeline needs it.
type Current struct {
	Code string
	Name string
	// Multiplier in hundredths (100 when the partner has no tiers).
	Multiplier int
}

// currentSQL reads users' tiers in one query: the tier of their
// user_tiers row, else the base tier. A partner without tiers yields no row.
const currentSQL = `SELECT u.id AS user_id, t.code, t.name, t.multiplier
	FROM unnest(?::uuid[]) u(id)
	JOIN LATERAL (
		SELECT t.code, t.name, t.multiplier FROM tiers t
		WHERE t.partner_id = ? AND (t.rank = 0 OR t.code = (SELECT ut.code FROM user_tiers ut WHERE ut.partner_id = ? AND ut.user_id = u.id))
		ORDER BY t.rank DESC LIMIT 1
	) t ON true`

// CurrentTx returns the user's current tier and multiplier inside the
// caller's transaction (one indexed query), ok false when the partner has
// no tiers (multiplier x1.00).
func CurrentTx(ctx context.Context, db bun.IDB, partnerID, userID uuid.UUID) (Current, bool, error) {
	m, err := CurrentManyTx(ctx, db, partnerID, []uuid.UUID{userID})
	if err != nil {
		return Current{}, false, err
	}
	c, ok := m[userID]
	if !ok {
		return Current{Multiplier: MultiplierScale}, false, nil
	}
	return c, true, nil
}

// CurrentManyTx is CurrentTx for a batch (EarnManyTx): one query whatever
// the number of users; users are absent from the map when the partner has
// no tiers.
func CurrentManyTx(ctx context.Context, db bun.IDB, partnerID uuid.UUID, userIDs []uuid.UUID) (map[uuid.UUID]Current, error) {
	var rows []struct {
		UserID     uuid.UUID `bun:"user_id,type:uuid"`
		Code       string    `bun:"code"`
		Name       string    `bun:"name"`
		Multiplier int       `bun:"multiplier"`
	}
	if err := db.NewRaw(currentSQL, uuidArray(userIDs), partnerID, partnerID).Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("load current tiers: %w", err)
	}
	out := make(map[uuid.UUID]Current, len(rows))
	for _, r := range rows {
		out[r.UserID] = Current{Code: r.Code, Name: r.Name, Multiplier: r.Multiplier}
	}
	return out, nil
}

// RanksTx returns the user's tier rank (0, the base tier, without a row)
// and the partner's tier codes by rank, in one query, for catalog.Viewer.
func RanksTx(ctx context.Context, db bun.IDB, partnerID, userID uuid.UUID) (int, map[string]int, error) {
	var rows []struct {
		Code string `bun:"code"`
		Rank int    `bun:"rank"`
		Mine bool   `bun:"mine"`
	}
	if err := db.NewRaw(`SELECT t.code, t.rank, ut.user_id IS NOT NULL AS mine FROM tiers t
		LEFT JOIN user_tiers ut ON ut.partner_id = t.partner_id AND ut.user_id = ? AND ut.code = t.code
		WHERE t.partner_id = ?`, userID, partnerID).Scan(ctx, &rows); err != nil {
		return 0, nil, fmt.Errorf("load tier ranks: %w", err)
	}
	mine, ranks := 0, make(map[string]int, len(rows))
	for _, r := range rows {
		ranks[r.Code] = r.Rank
		if r.Mine {
			mine = r.Rank
		}
	}
	return mine, ranks, nil
}

// CodesTx returns the tier code of each user (base tier when they have no
// row); empty when the partner has no tiers. For user info and exports.
func CodesTx(ctx context.Context, db bun.IDB, partnerID uuid.UUID, userIDs []uuid.UUID) (map[uuid.UUID]string, error) {
	m, err := CurrentManyTx(ctx, db, partnerID, userIDs)
	if err != nil {
		return nil, err
	}
	out := make(map[uuid.UUID]string, len(m))
	for id, c := range m {
		out[id] = c.Code
	}
	return out, nil
}

func uuidArray(ids []uuid.UUID) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(id.String())
	}
	b.WriteByte('}')
	return b.String()
}

// Progress is a user's tier and the next one up.
type Progress struct {
	Tier *Tier // nil: the partner has no tiers
	Next *Tier // nil: at the top, or no tiers
	// PointsToGo is the qualifying points still needed for Next (0 when
	// already reached, pending the next evaluation).
	PointsToGo int64
}

// ProgressTx returns the user's tier, the next tier and the qualifying
// points still needed for it (for the consumer's "me" view).
func (s *Service) ProgressTx(ctx context.Context, db bun.IDB, partnerID, userID uuid.UUID) (Progress, error) {
	list, err := s.List(ctx, db, partnerID)
	if err != nil || len(list) == 0 {
		return Progress{}, err
	}
	c, _, err := CurrentTx(ctx, db, partnerID, userID)
	if err != nil {
		return Progress{}, err
	}
	var p Progress
	for i := range list {
		if list[i].Code == c.Code {
			p.Tier = &list[i]
			if i+1 < len(list) {
				p.Next = &list[i+1]
			}
		}
	}
	if p.Next != nil {
		q, err := s.QualifyingTx(ctx, db, partnerID, userID)
		if err != nil {
			return Progress{}, err
		}
		p.PointsToGo = max(p.Next.Threshold-q, 0)
	}
	return p, nil
}
