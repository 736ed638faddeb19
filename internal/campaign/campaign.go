// Package campaign owns a partner's campaigns (issue 14): time-boxed
// promotions that add points on top of an earn's base points, either a
// multiplier or a fixed bonus, when a CEL condition over the earn, the user
// and the time holds, within a total budget and a per-user cap.
//
// ApplyTx is what the earn pipeline calls, inside the earn's transaction:
// it answers the awards of one earn and charges the budgets and caps, so
// that a budget hit by a storm of concurrent earns pays exactly up to its
// total, never more. docs/program.md ("Campaigns") is the partner's view.
package campaign

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
)

// Stacking policies: how a campaign combines with the other campaigns that
// match the same earn.
const (
	// StackAdditive campaigns all apply: their awards add up.
	StackAdditive = "additive"
	// StackBestOf campaigns compete: of those that match an earn, only the
	// one awarding the most applies (ties: the smallest code). Additive
	// campaigns apply besides it.
	StackBestOf = "bestOf"
)

// Bounds of a campaign's fields.
const (
	MaxActions    = 100
	MaxNameLen    = 200
	MaxDescLen    = 2000
	MaxBonus      = 1_000_000_000
	MaxBudget     = 1_000_000_000
	MaxUserCap    = 1_000_000_000
	MinMultiplier = 101   // hundredths: x1.01
	MaxMultiplier = 10000 // hundredths: x100.00
)

// Campaign is one stored campaign.
type Campaign struct {
	bun.BaseModel `bun:"table:campaigns,alias:c"`

	PartnerID   uuid.UUID  `bun:"partner_id,pk,type:uuid"`
	Code        string     `bun:"code,pk"`
	Name        string     `bun:"name"`
	Description string     `bun:"description"`
	StartsAt    *time.Time `bun:"starts_at"`
	EndsAt      *time.Time `bun:"ends_at"`
	// Actions are the rule codes the campaign applies to; empty: all.
	Actions []string `bun:"actions,array"`
	// MultiplierHundredths (200 = x2) or BonusPoints: exactly one is set.
	MultiplierHundredths *int   `bun:"multiplier_hundredths"`
	BonusPoints          *int64 `bun:"bonus_points"`
	// Condition is a CEL expression; "" always holds.
	Condition    string `bun:"condition"`
	BudgetPoints *int64 `bun:"budget_points"`
	// SpentPoints is what the campaign awarded: the row's spent_points
	// plus its budget slots' (List, Get and PutTx add them up).
	SpentPoints   int64     `bun:"spent_points"`
	UserCapPoints *int64    `bun:"user_cap_points"`
	Stacking      string    `bun:"stacking"`
	Enabled       bool      `bun:"enabled"`
	Version       int       `bun:"version"`
	CreatedAt     time.Time `bun:"created_at"`
	UpdatedAt     time.Time `bun:"updated_at"`

	Inserted bool `bun:"inserted,scanonly"`
}

// ActiveAt reports whether the campaign's window holds t: from StartsAt
// (inclusive) until EndsAt (exclusive).
func (c *Campaign) ActiveAt(t time.Time) bool {
	return c.Enabled && (c.StartsAt == nil || !t.Before(*c.StartsAt)) && (c.EndsAt == nil || t.Before(*c.EndsAt))
}

// AppliesTo reports whether the campaign covers the action.
func (c *Campaign) AppliesTo(action string) bool {
	return len(c.Actions) == 0 || slices.Contains(c.Actions, action)
}

// Multiplier formats MultiplierHundredths as a decimal ("2", "1.5",
// "1.25"), "" for a bonus campaign.
func (c *Campaign) Multiplier() string {
	if c.MultiplierHundredths == nil {
		return ""
	}
	return FormatHundredths(*c.MultiplierHundredths)
}

// FormatHundredths writes n/100 as the shortest exact decimal.
func FormatHundredths(n int) string {
	s := fmt.Sprintf("%d.%02d", n/100, n%100)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

var multiplierRE = regexp.MustCompile(`^([0-9]{1,3})(?:\.([0-9]{1,2})0*)?$`)

// ParseMultiplier reads an exact decimal with at most two significant
// decimals ("2", "1.5", "1.25", "1.50") into hundredths, from x1.01 to
// x100. A third significant decimal is refused rather than rounded: the
// partner sees the multiplier it set.
func ParseMultiplier(field, s string) (int, error) {
	m := multiplierRE.FindStringSubmatch(s)
	if m == nil {
		return 0, apperr.Field(apperr.CodeInvalidField, field, "%s must be a decimal from 1.01 to 100 with at most two decimals, such as 2 or 1.5", field)
	}
	whole, _ := strconv.Atoi(m[1])
	frac := 0
	if m[2] != "" {
		f := m[2]
		if len(f) == 1 {
			f += "0"
		}
		frac, _ = strconv.Atoi(f)
	}
	n := whole*100 + frac
	if n < MinMultiplier || n > MaxMultiplier {
		return 0, apperr.Field(apperr.CodeInvalidField, field, "%s must be a decimal from 1.01 to 100 with at most two decimals, such as 2 or 1.5", field)
	}
	return n, nil
}

// Input is a campaign as the partner sends it (create or replace).
type Input struct {
	Name                 string
	Description          string
	StartsAt             *time.Time
	EndsAt               *time.Time
	Actions              []string
	MultiplierHundredths *int
	BonusPoints          *int64
	Condition            string
	BudgetPoints         *int64
	UserCapPoints        *int64
	Stacking             string
	Enabled              bool
}

var codeRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)

// ValidateCode checks a campaign or action code (the rules' format).
func ValidateCode(field, code string) error {
	if !codeRE.MatchString(code) {
		return apperr.Field(apperr.CodeInvalidField, field, "%s must be 1-64 characters: lowercase letters, digits, '_', '.', '-'", field)
	}
	return nil
}

func invalid(field, format string, args ...any) error {
	return apperr.Field(apperr.CodeInvalidField, field, format, args...)
}

// validate checks every field but the condition (Compile's) and the
// actions' existence (PutTx's).
func (in *Input) validate() error {
	if n := len([]rune(strings.TrimSpace(in.Name))); n == 0 || n > MaxNameLen {
		return invalid("name", "name must be 1 to %d characters", MaxNameLen)
	}
	if len([]rune(in.Description)) > MaxDescLen {
		return invalid("description", "description must be at most %d characters", MaxDescLen)
	}
	if in.StartsAt != nil && in.EndsAt != nil && !in.StartsAt.Before(*in.EndsAt) {
		return invalid("until", "until must be after from")
	}
	if len(in.Actions) > MaxActions {
		return invalid("actions", "actions holds at most %d codes", MaxActions)
	}
	seen := map[string]bool{}
	for i, a := range in.Actions {
		if err := ValidateCode(fmt.Sprintf("actions[%d]", i), a); err != nil {
			return err
		}
		if seen[a] {
			return invalid("actions", "actions must not repeat a code (%s)", a)
		}
		seen[a] = true
	}
	switch {
	case in.MultiplierHundredths == nil && in.BonusPoints == nil:
		return apperr.Field(apperr.CodeMissingField, "multiplier", "send either multiplier or bonus")
	case in.MultiplierHundredths != nil && in.BonusPoints != nil:
		return invalid("bonus", "send either multiplier or bonus, not both")
	case in.MultiplierHundredths != nil && (*in.MultiplierHundredths < MinMultiplier || *in.MultiplierHundredths > MaxMultiplier):
		return invalid("multiplier", "multiplier must be a decimal from 1.01 to 100 with at most two decimals")
	case in.BonusPoints != nil && (*in.BonusPoints < 1 || *in.BonusPoints > MaxBonus):
		return invalid("bonus", "bonus must be a whole number of points from 1 to %d", MaxBonus)
	}
	if in.BudgetPoints != nil && (*in.BudgetPoints < 1 || *in.BudgetPoints > MaxBudget) {
		return invalid("budget", "budget must be a whole number of points from 1 to %d", int64(MaxBudget))
	}
	if in.UserCapPoints != nil && (*in.UserCapPoints < 1 || *in.UserCapPoints > MaxUserCap) {
		return invalid("perUserCap", "perUserCap must be a whole number of points from 1 to %d", MaxUserCap)
	}
	if in.Stacking != StackAdditive && in.Stacking != StackBestOf {
		return invalid("stacking", "stacking must be additive or bestOf")
	}
	return nil
}

// Service manages campaigns and applies them to earns.
type Service struct {
	Now func() time.Time
	// Limits are the conditions' cost limits (zero: the defaults).
	Limits Limits

	condsOnce sync.Once
	conds     *cache
}

// NewService returns a service with the wall clock and default limits.
func NewService() *Service { return &Service{Now: time.Now} }

func (s *Service) now() time.Time {
	if s.Now == nil {
		return time.Now().UTC()
	}
	return s.Now().UTC()
}

func (s *Service) cache() *cache {
	// Lazy, so that the zero Service works; Limits must be set before the
	// first call.
	s.condsOnce.Do(func() { s.conds = newCache(s.Limits) })
	return s.conds
}

// PutTx creates (created true) or replaces the campaign code. Refused input
// (a bad field, a condition that does not compile or costs too much, an
// action that names no earning rule, a budget below what was already
// awarded) changes nothing. A replace keeps what the campaign spent and the
// per-user totals: editing a running campaign does not refill its budget;
// delete it to start over. A budget is stored spread over BudgetSlots rows
// (see chargeBudgets); a new budget re-spreads the budget and what was spent
// over them, under their locks, so the total stays exact.
func (s *Service) PutTx(ctx context.Context, db bun.IDB, partnerID uuid.UUID, code string, in Input) (*Campaign, bool, error) {
	if err := ValidateCode("code", code); err != nil {
		return nil, false, err
	}
	if err := in.validate(); err != nil {
		return nil, false, err
	}
	if in.Condition != "" {
		cond, err := Compile(in.Condition, s.Limits)
		if err != nil {
			return nil, false, err
		}
		s.cache().lru.Add(cond.Source, cond)
	}
	if err := s.checkActions(ctx, db, partnerID, in.Actions); err != nil {
		return nil, false, err
	}
	now := s.now()
	actions := slices.Clone(in.Actions)
	if actions == nil {
		actions = []string{}
	}
	slices.Sort(actions)
	c := &Campaign{
		PartnerID: partnerID, Code: code, Name: strings.TrimSpace(in.Name), Description: in.Description,
		StartsAt: utcPtr(in.StartsAt), EndsAt: utcPtr(in.EndsAt), Actions: actions,
		MultiplierHundredths: clone(in.MultiplierHundredths), BonusPoints: clone(in.BonusPoints), Condition: in.Condition,
		BudgetPoints: clone(in.BudgetPoints), UserCapPoints: clone(in.UserCapPoints), Stacking: in.Stacking, Enabled: in.Enabled,
		Version: 1, CreatedAt: now, UpdatedAt: now,
	}
	// Lock the row and its budget's slots (if any) and read what the
	// campaign already paid: a budget below that is refused, and the total
	// moves between spent_points and the slots as the budget comes and goes.
	spent, _, err := slotsSpent(ctx, db, partnerID, code)
	if err != nil {
		return nil, false, err
	}
	if in.BudgetPoints != nil && spent > *in.BudgetPoints {
		return nil, false, invalid("budget", "budget must be at least the %d points the campaign already awarded", spent)
	}
	if in.BudgetPoints == nil {
		c.SpentPoints = spent // no slots: the row keeps the total
	}
	err = db.NewInsert().Model(c).
		On("CONFLICT (partner_id, code) DO UPDATE").
		Set("name = EXCLUDED.name, description = EXCLUDED.description").
		Set("starts_at = EXCLUDED.starts_at, ends_at = EXCLUDED.ends_at, actions = EXCLUDED.actions").
		Set("multiplier_hundredths = EXCLUDED.multiplier_hundredths, bonus_points = EXCLUDED.bonus_points").
		Set("condition = EXCLUDED.condition, budget_points = EXCLUDED.budget_points, spent_points = EXCLUDED.spent_points").
		Set("user_cap_points = EXCLUDED.user_cap_points, stacking = EXCLUDED.stacking, enabled = EXCLUDED.enabled").
		Set("version = c.version + 1, updated_at = EXCLUDED.updated_at").
		Returning("*, (xmax = 0) AS inserted").
		Scan(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("put campaign: %w", err)
	}
	if err := writeSlots(ctx, db, partnerID, code, c.BudgetPoints, spent); err != nil {
		return nil, false, err
	}
	c.SpentPoints = spent
	return c, c.Inserted, nil
}

// checkActions refuses an action code that names no earning rule of the
// partner (disabled rules count: they may be enabled again). The campaign
// package reads earning_rules directly so that earning may import it.
func (s *Service) checkActions(ctx context.Context, db bun.IDB, partnerID uuid.UUID, actions []string) error {
	if len(actions) == 0 {
		return nil
	}
	var known []string
	err := db.NewSelect().Table("earning_rules").Column("code").
		Where("partner_id = ? AND code IN (?)", partnerID, bun.List(actions)).Scan(ctx, &known)
	if err != nil {
		return fmt.Errorf("check actions: %w", err)
	}
	for i, a := range actions {
		if !slices.Contains(known, a) {
			return invalid(fmt.Sprintf("actions[%d]", i), "actions[%d] names no earning rule (%s)", i, a)
		}
	}
	return nil
}

// clone copies *p: RETURNING * scans into the campaign and must not write
// through pointers the caller still holds.
func clone[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := t.UTC()
	return &v
}

// List returns the partner's campaigns by code.
func (s *Service) List(ctx context.Context, db bun.IDB, partnerID uuid.UUID) ([]Campaign, error) {
	var out []Campaign
	err := db.NewSelect().Model(&out).Where("partner_id = ?", partnerID).Order("code").Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("list campaigns: %w", err)
	}
	if err := addSlotsSpent(ctx, db, partnerID, out); err != nil {
		return nil, err
	}
	return out, nil
}

func errNotFound(code string) error {
	return apperr.New(apperr.CodeNotFound, "no campaign %s", code)
}

// Get returns one campaign; NOT_FOUND when the partner has none by that code.
func (s *Service) Get(ctx context.Context, db bun.IDB, partnerID uuid.UUID, code string) (*Campaign, error) {
	if err := ValidateCode("code", code); err != nil {
		return nil, err
	}
	c := new(Campaign)
	err := db.NewSelect().Model(c).Where("partner_id = ? AND code = ?", partnerID, code).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNotFound(code)
	}
	if err != nil {
		return nil, fmt.Errorf("get campaign: %w", err)
	}
	one := []Campaign{*c}
	if err := addSlotsSpent(ctx, db, partnerID, one); err != nil {
		return nil, err
	}
	return &one[0], nil
}

// DeleteTx removes the campaign, its budget's slots and its per-user totals (NOT_FOUND when
// there is none). Awards already made stay on the ledger entries that
// carry them (by code and name); a campaign created later with the same
// code starts with a fresh budget. To pause a campaign and keep its
// counters, PUT it with enabled false.
func (s *Service) DeleteTx(ctx context.Context, db bun.IDB, partnerID uuid.UUID, code string) error {
	if err := ValidateCode("code", code); err != nil {
		return err
	}
	res, err := db.NewDelete().Table("campaigns").Where("partner_id = ? AND code = ?", partnerID, code).Exec(ctx)
	if err != nil {
		return fmt.Errorf("delete campaign: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errNotFound(code)
	}
	return nil
}
