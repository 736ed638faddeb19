// Package referral owns a partner's referral program (issue 15, seed 003's
// advocate program): one code per user, attribution of a new user to the
// referrer whose code they came with, rewards paid when the referral
// qualifies (held pending for the policy's hold period, cancelled if the
// qualifying earn is undone), caps per referrer and fraud guards.
//
// The earn path reaches it through earning.Service.Referrals (EarnedTx,
// EarnUndoneTx), inside the earn's transaction; docs/referrals.md has the
// rules and their edge cases.
package referral

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

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/earning"
	"github.com/perkshq/perks/internal/event"
	"github.com/perkshq/perks/internal/keyring"
	"github.com/perkshq/perks/internal/ledger"
	"github.com/perkshq/perks/internal/ratelimit"
	"github.com/perkshq/perks/internal/textcheck"
)

// Statuses of a referral: pending (attributed, not qualified yet),
// qualified (rewards written, pending until the hold ends), rewarded
// (rewards available: final) and cancelled (the qualifying earn was
// reversed or cancelled during the hold: final).
const (
	StatusPending   = "pending"
	StatusQualified = "qualified"
	StatusRewarded  = "rewarded"
	StatusCancelled = "cancelled"
)

// Sources of an attribution.
const (
	SourceAPI = "api" // referredBy on POST /integrations/users
	SourceApp = "app" // GraphQL applyReferralCode
)

// Policy is a partner's referral policy. A partner without one has codes
// and attribution (DefaultPolicy) and no rewards.
type Policy struct {
	bun.BaseModel `bun:"table:referral_policies"`

	PartnerID             uuid.UUID `bun:"partner_id,pk,type:uuid"`
	Enabled               bool      `bun:"enabled"`
	CodePattern           string    `bun:"code_pattern"`
	LinkTemplate          string    `bun:"link_template"`
	AttributionWindowDays int       `bun:"attribution_window_days"`
	QualifyAction         string    `bun:"qualify_action"`
	QualifyMinAmount      *int64    `bun:"qualify_min_amount"`
	ReferrerPoints        int64     `bun:"referrer_points"`
	RefereePoints         int64     `bun:"referee_points"`
	HoldDays              int       `bun:"hold_days"`
	MonthlyCap            *int      `bun:"monthly_cap"`
	LifetimeCap           *int      `bun:"lifetime_cap"`
	VelocityLimit         *int      `bun:"velocity_limit"`
	VelocityWindowMinutes int       `bun:"velocity_window_minutes"`
	UpdatedAt             time.Time `bun:"updated_at"`
}

// DefaultCodePattern is eight readable characters.
const DefaultCodePattern = "########"

// DefaultPolicy is what a partner without a referral policy gets: codes
// of DefaultCodePattern, no link, a 30-day attribution window, no rewards
// (Enabled false).
func DefaultPolicy(partnerID uuid.UUID) Policy {
	return Policy{PartnerID: partnerID, CodePattern: DefaultCodePattern, AttributionWindowDays: 30, VelocityWindowMinutes: 60}
}

// Referral is one referred user.
type Referral struct {
	bun.BaseModel `bun:"table:referrals,alias:r"`

	PartnerID         uuid.UUID  `bun:"partner_id,pk,type:uuid"`
	ID                int64      `bun:"id,pk,autoincrement"`
	ReferrerID        uuid.UUID  `bun:"referrer_id,type:uuid"`
	RefereeID         uuid.UUID  `bun:"referee_id,type:uuid"`
	Code              string     `bun:"code"`
	Source            string     `bun:"source"`
	Status            string     `bun:"status"`
	ReferrerPoints    int64      `bun:"referrer_points"`
	RefereePoints     int64      `bun:"referee_points"`
	Capped            bool       `bun:"capped"`
	QualifyingEntryID *int64     `bun:"qualifying_entry_id"`
	HoldUntil         *time.Time `bun:"hold_until"`
	CreatedAt         time.Time  `bun:"created_at"`
	QualifiedAt       *time.Time `bun:"qualified_at"`
	RewardedAt        *time.Time `bun:"rewarded_at"`
	CancelledAt       *time.Time `bun:"cancelled_at"`
	// Xid is the export's change tracking (set by the database).
	Xid string `bun:"xid,scanonly"`
}

// DefaultApplyLimit bounds applyReferralCode per user: 5 at once, then one
// a minute, so a user cannot walk the code space.
var DefaultApplyLimit = ratelimit.Limit{PerMinute: 1, Burst: 5}

// Service runs the referral program.
type Service struct {
	Ledger *ledger.Service
	Events *event.Recorder
	// Keys hashes emails for the self-referral guard.
	Keys *keyring.Keyring
	// Limiter and ApplyLimit rate-limit applyReferralCode per user
	// (in memory, per replica: unlike the partner and consumer limits,
	// it is not shared through PostgreSQL).
	Limiter    *ratelimit.Limiter
	ApplyLimit ratelimit.Limit
	Now        func() time.Time
}

// Policy loads the partner's referral policy; ok is false (and the policy
// DefaultPolicy) when it never set one.
func (s *Service) Policy(ctx context.Context, db bun.IDB, partnerID uuid.UUID) (Policy, bool, error) {
	p := Policy{}
	err := db.NewSelect().Model(&p).Where("partner_id = ?", partnerID).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return DefaultPolicy(partnerID), false, nil
	}
	if err != nil {
		return Policy{}, false, fmt.Errorf("load referral policy: %w", err)
	}
	return p, true, nil
}

var patternRE = regexp.MustCompile(`^[A-Z0-9#-]{4,32}$`)

// Validate checks a policy as the partner sends it; field names are the
// API's.
func (p *Policy) Validate() error {
	if !patternRE.MatchString(p.CodePattern) || strings.Count(p.CodePattern, "#") < 4 {
		return apperr.Field(apperr.CodeInvalidField, "codePattern", "codePattern must be 4 to 32 of A-Z, 0-9, '-' and '#' (a random readable character), with at least four '#'")
	}
	if p.LinkTemplate != "" {
		u, err := url.Parse(strings.ReplaceAll(p.LinkTemplate, "{code}", "X"))
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || !strings.Contains(p.LinkTemplate, "{code}") || len(p.LinkTemplate) > 500 {
			return apperr.Field(apperr.CodeInvalidField, "linkTemplate", "linkTemplate must be an http(s) URL of at most 500 characters containing {code}")
		}
		if err := textcheck.Line("linkTemplate", p.LinkTemplate); err != nil {
			return err
		}
	}
	if p.AttributionWindowDays < 0 || p.AttributionWindowDays > 3650 {
		return apperr.Field(apperr.CodeInvalidField, "attributionWindowDays", "attributionWindowDays must be from 0 to 3650")
	}
	if err := earning.ValidateCode("qualifyAction", p.QualifyAction); err != nil {
		return err
	}
	if p.QualifyMinAmount != nil && (*p.QualifyMinAmount < 0 || *p.QualifyMinAmount > earning.MaxAmount) {
		return apperr.Field(apperr.CodeInvalidField, "qualifyMinAmount", "qualifyMinAmount must be a whole number of minor units from 0 to %d", earning.MaxAmount)
	}
	for _, f := range []struct {
		name string
		v    int64
	}{{"referrerPoints", p.ReferrerPoints}, {"refereePoints", p.RefereePoints}} {
		if f.v < 0 || f.v > ledger.MaxPoints {
			return apperr.Field(apperr.CodePointsOutOfRange, f.name, "%s must be a whole number from 0 to %d", f.name, ledger.MaxPoints)
		}
	}
	if p.HoldDays < 0 || p.HoldDays > 365 {
		return apperr.Field(apperr.CodeInvalidField, "holdDays", "holdDays must be from 0 to 365")
	}
	for _, f := range []struct {
		name string
		v    *int
	}{{"monthlyCap", p.MonthlyCap}, {"lifetimeCap", p.LifetimeCap}, {"velocityLimit", p.VelocityLimit}} {
		if f.v != nil && (*f.v < 1 || *f.v > 1000000) {
			return apperr.Field(apperr.CodeInvalidField, f.name, "%s must be from 1 to 1000000 (omit it for no limit)", f.name)
		}
	}
	if p.VelocityWindowMinutes < 1 || p.VelocityWindowMinutes > 43200 {
		return apperr.Field(apperr.CodeInvalidField, "velocityWindowMinutes", "velocityWindowMinutes must be from 1 to 43200 (30 days)")
	}
	return nil
}

// PutPolicy validates and replaces the partner's referral policy. It
// applies to referrals qualifying after it: rewards already written keep
// their points and hold.
func (s *Service) PutPolicy(ctx context.Context, db bun.IDB, partnerID uuid.UUID, p Policy) (Policy, error) {
	p.PartnerID = partnerID
	if err := p.Validate(); err != nil {
		return Policy{}, err
	}
	p.UpdatedAt = s.Now().UTC()
	_, err := db.NewInsert().Model(&p).On("CONFLICT (partner_id) DO UPDATE").
		Set("enabled = EXCLUDED.enabled, code_pattern = EXCLUDED.code_pattern, link_template = EXCLUDED.link_template").
		Set("attribution_window_days = EXCLUDED.attribution_window_days, qualify_action = EXCLUDED.qualify_action").
		Set("qualify_min_amount = EXCLUDED.qualify_min_amount, referrer_points = EXCLUDED.referrer_points").
		Set("referee_points = EXCLUDED.referee_points, hold_days = EXCLUDED.hold_days, monthly_cap = EXCLUDED.monthly_cap").
		Set("lifetime_cap = EXCLUDED.lifetime_cap, velocity_limit = EXCLUDED.velocity_limit").
		Set("velocity_window_minutes = EXCLUDED.velocity_window_minutes, updated_at = EXCLUDED.updated_at").
		Exec(ctx)
	if err != nil {
		return Policy{}, fmt.Errorf("put referral policy: %w", err)
	}
	return p, nil
}

// Link is the share link of code under the policy ("" without a template).
func (p Policy) Link(code string) string {
	if p.LinkTemplate == "" || code == "" {
		return ""
	}
	return strings.ReplaceAll(p.LinkTemplate, "{code}", url.QueryEscape(code))
}
