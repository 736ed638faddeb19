// Package program owns a partner's program policy (issue 13): how points
// expire, how long earned points stay pending, whether a reversal may take a
// balance below zero, and how many days before expiry users are warned. It
// also holds Resolve, the pure computation the ledger uses to date a new lot.
//
// A partner that never set a policy has Default: nothing expires, nothing is
// pending, reversals never go below zero, warnings 30 days before expiry.
package program

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"golang.org/x/text/currency"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/tier"
)

// Expiry modes.
const (
	ExpiryNone    = "none"    // points never expire
	ExpiryRolling = "rolling" // ExpiryDays after the points become available
	ExpiryFixed   = "fixed"   // at the end of the next of ExpiryDates
)

// Negative balance modes: whether a reversal may take a balance below zero.
const (
	NegativeForbid = "forbid" // reverse what can be taken, report the shortfall
	NegativeAllow  = "allow"  // the balance goes negative; later earns pay the debt first
)

// Bounds of the policy's fields (and of a rule's overrides).
const (
	MaxDays        = 3650 // pending and expiry days: ten years
	MaxWarningDays = 365
	MaxDates       = 12
)

// Policy is one partner's program policy.
type Policy struct {
	bun.BaseModel `bun:"table:program_policies"`

	PartnerID uuid.UUID `bun:"partner_id,pk,type:uuid"`
	// ExpiryMode is none, rolling or fixed.
	ExpiryMode string `bun:"expiry_mode"`
	// ExpiryDays is set in rolling mode only.
	ExpiryDays *int `bun:"expiry_days"`
	// ExpiryRoundToMonthEnd (rolling only) moves the expiry to the end of
	// its month, so that a statement can say "expire on 31 Dec".
	ExpiryRoundToMonthEnd bool `bun:"expiry_round_to_month_end"`
	// ExpiryDates (fixed only) are "MM-DD" dates, sorted, without duplicates.
	ExpiryDates       []string `bun:"expiry_dates,array"`
	PendingDays       int      `bun:"pending_days"`
	NegativeBalance   string   `bun:"negative_balance"`
	ExpiryWarningDays int      `bun:"expiry_warning_days"`
	// Currency is the program's ISO 4217 code (nil: none set): earns'
	// amounts are whole minor units of it. Perks never converts currencies.
	Currency *string `bun:"currency"`
	// Tier policy (internal/tier): the qualifying basis (lifetime,
	// rolling12, calendarYear), the downgrade (never, periodEnd, immediate)
	// and periodEnd's grace days.
	TierBasis     string    `bun:"tier_basis"`
	TierDowngrade string    `bun:"tier_downgrade"`
	TierGraceDays int       `bun:"tier_grace_days"`
	CreatedAt     time.Time `bun:"created_at"`
	UpdatedAt     time.Time `bun:"updated_at"`
}

// Default is the policy of a partner that never set one.
func Default(partnerID uuid.UUID) Policy {
	return Policy{
		PartnerID: partnerID, ExpiryMode: ExpiryNone, ExpiryDates: []string{},
		NegativeBalance: NegativeForbid, ExpiryWarningDays: 30,
		TierBasis: tier.BasisLifetime, TierDowngrade: tier.DowngradeNever,
	}
}

// Input is a policy as the partner sends it: a replacement of the whole
// policy (omitted fields take their default values in the transport).
type Input struct {
	ExpiryMode            string
	ExpiryDays            *int
	ExpiryRoundToMonthEnd bool
	ExpiryDates           []string
	PendingDays           int
	NegativeBalance       string
	ExpiryWarningDays     int
	// Currency is an ISO 4217 code such as EUR (nil: none).
	Currency      *string
	TierBasis     string
	TierDowngrade string
	TierGraceDays int
}

func invalid(field, format string, args ...any) error {
	return apperr.Field(apperr.CodeInvalidField, field, format, args...)
}

// ValidateDays checks a number of pending (min 0) or expiry (min 1) days.
func ValidateDays(field string, v, min int) error {
	if v < min || v > MaxDays {
		return invalid(field, "%s must be a whole number from %d to %d", field, min, MaxDays)
	}
	return nil
}

// parseDate reads "MM-DD". February 29 is refused: in three years out of
// four it does not exist, and a partner means either the 28th or March 1st.
func parseDate(s string) (month time.Month, day int, ok bool) {
	if len(s) != 5 || s[2] != '-' {
		return 0, 0, false
	}
	var m, d int
	for i, c := range []byte(s) {
		if i == 2 {
			continue
		}
		if c < '0' || c > '9' {
			return 0, 0, false
		}
		if i < 2 {
			m = m*10 + int(c-'0')
		} else {
			d = d*10 + int(c-'0')
		}
	}
	if m < 1 || m > 12 || d < 1 {
		return 0, 0, false
	}
	// 2001 is not a leap year: February has 28 days.
	last := time.Date(2001, time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Day()
	if d > last {
		return 0, 0, false
	}
	return time.Month(m), d, true
}

// Validate checks every field and the combination of mode and fields; the
// error names the field.
func (in Input) Validate() error {
	switch in.ExpiryMode {
	case ExpiryNone, ExpiryRolling, ExpiryFixed:
	default:
		return invalid("expiryMode", "expiryMode must be none, rolling or fixed")
	}
	if in.ExpiryMode == ExpiryRolling {
		if in.ExpiryDays == nil {
			return apperr.Field(apperr.CodeMissingField, "expiryDays", "expiryDays is required when expiryMode is rolling")
		}
	} else if in.ExpiryDays != nil {
		return invalid("expiryDays", "expiryDays only applies when expiryMode is rolling")
	}
	if in.ExpiryDays != nil {
		if err := ValidateDays("expiryDays", *in.ExpiryDays, 1); err != nil {
			return err
		}
	}
	if in.ExpiryRoundToMonthEnd && in.ExpiryMode != ExpiryRolling {
		return invalid("expiryRoundToMonthEnd", "expiryRoundToMonthEnd only applies when expiryMode is rolling")
	}
	if len(in.ExpiryDates) > MaxDates {
		return invalid("expiryDates", "expiryDates holds at most %d dates", MaxDates)
	}
	if in.ExpiryMode == ExpiryFixed && len(in.ExpiryDates) == 0 {
		return apperr.Field(apperr.CodeMissingField, "expiryDates", "expiryDates needs at least one date when expiryMode is fixed")
	}
	if in.ExpiryMode != ExpiryFixed && len(in.ExpiryDates) > 0 {
		return invalid("expiryDates", "expiryDates only applies when expiryMode is fixed")
	}
	seen := make(map[string]bool, len(in.ExpiryDates))
	for _, d := range in.ExpiryDates {
		if _, _, ok := parseDate(d); !ok {
			return invalid("expiryDates", "expiryDates must be calendar dates MM-DD such as 12-31 (not 02-29)")
		}
		if seen[d] {
			return invalid("expiryDates", "expiryDates must not repeat a date")
		}
		seen[d] = true
	}
	if err := ValidateDays("pendingDays", in.PendingDays, 0); err != nil {
		return err
	}
	if in.NegativeBalance != NegativeForbid && in.NegativeBalance != NegativeAllow {
		return invalid("negativeBalance", "negativeBalance must be forbid or allow")
	}
	if in.ExpiryWarningDays < 0 || in.ExpiryWarningDays > MaxWarningDays {
		return invalid("expiryWarningDays", "expiryWarningDays must be a whole number from 0 to %d", MaxWarningDays)
	}
	if in.Currency != nil {
		if err := ValidateCurrency("currency", *in.Currency); err != nil {
			return err
		}
	}
	// An empty tier basis or downgrade is the default (callers written
	// before tiers leave them empty).
	basis, down := in.TierBasis, in.TierDowngrade
	if basis == "" {
		basis = tier.BasisLifetime
	}
	if down == "" {
		down = tier.DowngradeNever
	}
	if err := tier.ValidatePolicy(basis, down, in.TierGraceDays); err != nil {
		return err
	}
	return nil
}

// ValidateCurrency checks an ISO 4217 currency code: three upper-case
// letters naming a currency ISO 4217 knows (golang.org/x/text/currency's
// table), so a typo such as EUE is refused rather than stored.
func ValidateCurrency(field, code string) error {
	ok := len(code) == 3
	for i := 0; ok && i < 3; i++ {
		ok = code[i] >= 'A' && code[i] <= 'Z'
	}
	if ok {
		_, err := currency.ParseISO(code)
		ok = err == nil
	}
	if !ok {
		return invalid(field, "%s must be an ISO 4217 currency code such as EUR or SGD", field)
	}
	return nil
}

// Service reads and replaces program policies.
type Service struct {
	Now func() time.Time
	// PartnerChanged, when set, is told before a statement changes the
	// partners row (partner.Service.Changed: authentication's cache).
	PartnerChanged func()
}

func (s *Service) now() time.Time {
	if s.Now == nil {
		return time.Now().UTC()
	}
	return s.Now().UTC()
}

// Get returns the partner's policy, or Default when it never set one (then
// CreatedAt and UpdatedAt are zero).
func (s *Service) Get(ctx context.Context, db bun.IDB, partnerID uuid.UUID) (Policy, error) {
	p := Policy{}
	err := db.NewSelect().Model(&p).Where("partner_id = ?", partnerID).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return Default(partnerID), nil
	}
	if err != nil {
		return Policy{}, fmt.Errorf("load program policy: %w", err)
	}
	if p.ExpiryDates == nil {
		p.ExpiryDates = []string{}
	}
	return p, nil
}

// Put validates in and replaces the partner's policy with it. Refused input
// changes nothing. Lots already created keep the dates they were given: a
// policy applies to points earned after it changed.
func (s *Service) Put(ctx context.Context, db bun.IDB, partnerID uuid.UUID, in Input) (Policy, error) {
	// Callers written before tiers leave the tier policy empty: the default.
	if in.TierBasis == "" {
		in.TierBasis = tier.BasisLifetime
	}
	if in.TierDowngrade == "" {
		in.TierDowngrade = tier.DowngradeNever
	}
	if err := in.Validate(); err != nil {
		return Policy{}, err
	}
	dates := slices.Clone(in.ExpiryDates)
	if dates == nil {
		dates = []string{}
	}
	slices.Sort(dates)
	now := s.now()
	p := Policy{
		PartnerID: partnerID, ExpiryMode: in.ExpiryMode, ExpiryDays: clone(in.ExpiryDays),
		ExpiryRoundToMonthEnd: in.ExpiryRoundToMonthEnd, ExpiryDates: dates, PendingDays: in.PendingDays,
		NegativeBalance: in.NegativeBalance, ExpiryWarningDays: in.ExpiryWarningDays, CreatedAt: now, UpdatedAt: now,
		Currency:  clone(in.Currency),
		TierBasis: in.TierBasis, TierDowngrade: in.TierDowngrade, TierGraceDays: in.TierGraceDays,
	}
	_, err := db.NewInsert().Model(&p).
		On("CONFLICT (partner_id) DO UPDATE").
		Set("expiry_mode = EXCLUDED.expiry_mode, expiry_days = EXCLUDED.expiry_days").
		Set("expiry_round_to_month_end = EXCLUDED.expiry_round_to_month_end, expiry_dates = EXCLUDED.expiry_dates").
		Set("pending_days = EXCLUDED.pending_days, negative_balance = EXCLUDED.negative_balance").
		Set("expiry_warning_days = EXCLUDED.expiry_warning_days, updated_at = EXCLUDED.updated_at").
		Set("currency = EXCLUDED.currency").
		Set("tier_basis = EXCLUDED.tier_basis, tier_downgrade = EXCLUDED.tier_downgrade, tier_grace_days = EXCLUDED.tier_grace_days").
		Returning("created_at, updated_at").
		Exec(ctx)
	if err != nil {
		return Policy{}, fmt.Errorf("put program policy: %w", err)
	}
	return p, nil
}

func clone[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
