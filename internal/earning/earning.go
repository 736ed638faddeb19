// Package earning owns a partner's earning rules (the actions users earn
// points for) and the earn operation that applies them: caps, cooldowns and
// active windows checked and counted in the same transaction as the ledger
// entry.
package earning

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/schema"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/ledger"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/program"
	"github.com/perkshq/perks/internal/textcheck"
	"github.com/perkshq/perks/internal/tier"
	"github.com/perkshq/perks/internal/user"
)

// Rule is one earning rule.
type Rule struct {
	bun.BaseModel `bun:"table:earning_rules"`

	PartnerID         uuid.UUID  `bun:"partner_id,pk,type:uuid"`
	Code              string     `bun:"code,pk"`
	Name              string     `bun:"name"`
	Description       string     `bun:"description"`
	Points            int64      `bun:"points"`
	VariablePoints    bool       `bun:"variable_points"`
	MaxPoints         *int64     `bun:"max_points"`
	ClientTriggerable bool       `bun:"client_triggerable"`
	LifetimeCap       *int       `bun:"lifetime_cap"`
	DailyCap          *int       `bun:"daily_cap"`
	CooldownSeconds   *int       `bun:"cooldown_seconds"`
	ActiveFrom        *time.Time `bun:"active_from"`
	ActiveUntil       *time.Time `bun:"active_until"`
	Enabled           bool       `bun:"enabled"`
	// PendingDays and ExpiryDays override the program policy's for points
	// earned with this rule (nil: the policy applies); see program.Resolve.
	PendingDays *int `bun:"pending_days"`
	ExpiryDays  *int `bun:"expiry_days"`
	// PointsPerAmount makes a per-amount rule: an earn sends an amount
	// and gets floor(amount × Points ÷ PointsPerAmount), Points points
	// for every PointsPerAmount minor units (nil: a fixed or variable
	// rule). Two integers, so the rate is exact.
	PointsPerAmount *int64    `bun:"points_per_amount"`
	CreatedAt       time.Time `bun:"created_at"`
	UpdatedAt       time.Time `bun:"updated_at"`

	// inserted is read back from an upsert to tell create from replace.
	Inserted bool `bun:"inserted,scanonly"`
}

// Active reports whether the rule can be earned at t.
func (r *Rule) Active(t time.Time) bool {
	return r.Enabled && (r.ActiveFrom == nil || !t.Before(*r.ActiveFrom)) && (r.ActiveUntil == nil || t.Before(*r.ActiveUntil))
}

func (r *Rule) limited() bool {
	return r.LifetimeCap != nil || r.DailyCap != nil || r.CooldownSeconds != nil
}

// Counter is a user's tally for one rule.
type Counter struct {
	bun.BaseModel `bun:"table:earning_counters"`

	PartnerID uuid.UUID `bun:"partner_id,pk,type:uuid"`
	UserID    uuid.UUID `bun:"user_id,pk,type:uuid"`
	Code      string    `bun:"code,pk"`
	Total     int       `bun:"total"`
	Day       time.Time `bun:"day,type:date"`
	DayCount  int       `bun:"day_count"`
	LastAt    time.Time `bun:"last_at"`
}

// Service manages rules and earns.
type Service struct {
	Ledger *ledger.Service
	// Users resolves the partner's external user ids of earns.
	Users *user.Service
	// Tiers, when set, moves users up in the transaction of the earn that
	// crosses a threshold (tier.EvaluateTx).
	Tiers *tier.Service
	Now   func() time.Time

	// Tier and Campaigns are the breakdown's modifiers (see Modifier),
	// called in the earn's transaction in this fixed order: the tier
	// multiplier on the rule's points, then the campaigns on top. Nil
	// (the default) applies none.
	Tier      Modifier
	Campaigns Modifier

	// Referrals, when set, is the referral program's hook
	// (referral.Service), called in the transaction of an earn (EarnTx,
	// only for a partner with an enabled referral policy: the program
	// parts probe, no extra query otherwise) and of a reversal or cancel
	// of an earn (ReverseTx, CancelTx).
	Referrals ReferralHook

	// ruleSQL is the earn's rule query with the modifiers' prefetches
	// (ruleQuery), built on first use.
	ruleSQLOnce sync.Once
	ruleSQL     string
	rulePre     []int
}

// ReferralHook is what the earn paths tell the referral program:
// EarnedTx after an earn's entry (it may qualify the user's referral and
// write its rewards), EarnUndoneTx after a reversal or cancel of the earn
// earnEntryID (it cancels rewards that earn qualified, still on hold).
type ReferralHook interface {
	EarnedTx(ctx context.Context, tx bun.Tx, p *partner.Partner, e *ledger.Entry, amount *int64) error
	EarnUndoneTx(ctx context.Context, tx bun.Tx, p *partner.Partner, earnEntryID int64) error
	// EarnedManyTx is EarnedTx for a batch (EarnManyTx): entries in input
	// order, amounts[i] the amount of entries[i].
	EarnedManyTx(ctx context.Context, tx bun.Tx, p *partner.Partner, entries []*ledger.Entry, amounts []*int64) error
}

// NewService returns a Service using the wall clock, for managing rules;
// earning by external user id needs Users too.
func NewService(l *ledger.Service) *Service { return &Service{Ledger: l, Now: time.Now} }

var codeRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)

// ValidateCode checks an action code.
func ValidateCode(field, code string) error {
	if !codeRE.MatchString(code) {
		return apperr.Field(apperr.CodeInvalidField, field, "%s must be 1-64 characters: lowercase letters, digits, '_', '.', '-'", field)
	}
	return nil
}

// RuleInput is a rule as the partner sends it (create or replace).
type RuleInput struct {
	Name              string
	Description       string
	Points            int64
	VariablePoints    bool
	MaxPoints         *int64
	ClientTriggerable bool
	LifetimeCap       *int
	DailyCap          *int
	CooldownSeconds   *int
	ActiveFrom        *time.Time
	ActiveUntil       *time.Time
	Enabled           bool
	// PendingDays (0..3650) and ExpiryDays (1..3650) override the program
	// policy; nil means the policy applies.
	PendingDays *int
	ExpiryDays  *int
	// PointsPerAmount (1..MaxPointsPerAmount) makes Points the points
	// awarded for every PointsPerAmount minor units of an earn's amount;
	// not with VariablePoints.
	PointsPerAmount *int64
}

func (in RuleInput) validate() error {
	if in.Name == "" || len(in.Name) > 200 {
		return apperr.Field(apperr.CodeInvalidField, "name", "name must be 1 to 200 characters")
	}
	if err := textcheck.Line("name", in.Name); err != nil {
		return err
	}
	if err := textcheck.Multiline("description", in.Description); err != nil {
		return err
	}
	if len(in.Description) > 2000 {
		return apperr.Field(apperr.CodeInvalidField, "description", "description must be at most 2000 characters")
	}
	if err := ledger.ValidatePoints("points", in.Points); err != nil {
		return err
	}
	if in.PointsPerAmount != nil {
		if in.VariablePoints {
			return apperr.Field(apperr.CodeInvalidField, "pointsPerAmount", "pointsPerAmount and variablePoints cannot both be set")
		}
		if *in.PointsPerAmount < 1 || *in.PointsPerAmount > MaxPointsPerAmount {
			return apperr.Field(apperr.CodeInvalidField, "pointsPerAmount", "pointsPerAmount must be a whole number of minor units from 1 to %d", MaxPointsPerAmount)
		}
	}
	if in.MaxPoints != nil {
		if !in.VariablePoints && in.PointsPerAmount == nil {
			return apperr.Field(apperr.CodeInvalidField, "maxPoints", "maxPoints only applies when variablePoints is true or pointsPerAmount is set")
		}
		if err := ledger.ValidatePoints("maxPoints", *in.MaxPoints); err != nil {
			return err
		}
	}
	for _, c := range []struct {
		field string
		v     *int
	}{{"lifetimeCap", in.LifetimeCap}, {"dailyCap", in.DailyCap}, {"cooldownSeconds", in.CooldownSeconds}} {
		if c.v != nil && (*c.v < 1 || *c.v > math.MaxInt32) {
			return apperr.Field(apperr.CodeInvalidField, c.field, "%s must be a positive whole number (omit it for no limit)", c.field)
		}
	}
	if in.ActiveFrom != nil && in.ActiveUntil != nil && !in.ActiveUntil.After(*in.ActiveFrom) {
		return apperr.Field(apperr.CodeInvalidField, "activeUntil", "activeUntil must be after activeFrom")
	}
	if in.PendingDays != nil {
		if err := program.ValidateDays("pendingDays", *in.PendingDays, 0); err != nil {
			return err
		}
	}
	if in.ExpiryDays != nil {
		if err := program.ValidateDays("expiryDays", *in.ExpiryDays, 1); err != nil {
			return err
		}
	}
	return nil
}

// PutRule creates or replaces a rule; created reports which.
func (s *Service) PutRule(ctx context.Context, db bun.IDB, partnerID uuid.UUID, code string, in RuleInput) (*Rule, bool, error) {
	if err := ValidateCode("code", code); err != nil {
		return nil, false, err
	}
	if err := in.validate(); err != nil {
		return nil, false, err
	}
	now := s.Now().UTC()
	// Copies: RETURNING * scans into the rule, and must not write through
	// pointers the caller still holds.
	r := &Rule{
		PartnerID: partnerID, Code: code, Name: in.Name, Description: in.Description, Points: in.Points,
		VariablePoints: in.VariablePoints, MaxPoints: clone(in.MaxPoints), ClientTriggerable: in.ClientTriggerable,
		LifetimeCap: clone(in.LifetimeCap), DailyCap: clone(in.DailyCap), CooldownSeconds: clone(in.CooldownSeconds),
		ActiveFrom: clone(in.ActiveFrom), ActiveUntil: clone(in.ActiveUntil), Enabled: in.Enabled, CreatedAt: now, UpdatedAt: now,
		PendingDays: clone(in.PendingDays), ExpiryDays: clone(in.ExpiryDays), PointsPerAmount: clone(in.PointsPerAmount),
	}
	err := db.NewInsert().Model(r).
		On("CONFLICT (partner_id, code) DO UPDATE").
		Set("name = EXCLUDED.name, description = EXCLUDED.description, points = EXCLUDED.points").
		Set("variable_points = EXCLUDED.variable_points, max_points = EXCLUDED.max_points").
		Set("client_triggerable = EXCLUDED.client_triggerable, lifetime_cap = EXCLUDED.lifetime_cap").
		Set("daily_cap = EXCLUDED.daily_cap, cooldown_seconds = EXCLUDED.cooldown_seconds").
		Set("active_from = EXCLUDED.active_from, active_until = EXCLUDED.active_until, enabled = EXCLUDED.enabled").
		Set("pending_days = EXCLUDED.pending_days, expiry_days = EXCLUDED.expiry_days").
		Set("points_per_amount = EXCLUDED.points_per_amount").
		Set("updated_at = EXCLUDED.updated_at").
		Returning("*, (xmax = 0) AS inserted").
		Scan(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("put earning rule %s: %w", code, err)
	}
	return r, r.Inserted, nil
}

// Rules lists a partner's rules by code; disabled ones only when asked.
func (s *Service) Rules(ctx context.Context, db bun.IDB, partnerID uuid.UUID, includeDisabled bool) ([]Rule, error) {
	var out []Rule
	q := db.NewSelect().Model(&out).Where("partner_id = ?", partnerID).OrderExpr("code")
	if !includeDisabled {
		q = q.Where("enabled")
	}
	if err := q.Scan(ctx); err != nil {
		return nil, fmt.Errorf("list earning rules: %w", err)
	}
	return out, nil
}

// Rule loads one rule.
func (s *Service) Rule(ctx context.Context, db bun.IDB, partnerID uuid.UUID, code string) (*Rule, error) {
	r := new(Rule)
	err := db.NewSelect().Model(r).Where("partner_id = ? AND code = ?", partnerID, code).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.New(apperr.CodeActionNotFound, "no earning rule %q", code)
	}
	if err != nil {
		return nil, fmt.Errorf("load earning rule %s: %w", code, err)
	}
	return r, nil
}

// ruleAndPolicy is a rule and its partner's program policy read in one
// query (the earn hot path): the pol_ columns are NULL when the partner
// never set a policy.
type ruleAndPolicy struct {
	Rule `bun:",extend"`

	// RuleFound is false when the partner has no rule of that code (the
	// rule's columns are then NULL).
	RuleFound bool `bun:"rule_found,scanonly"`
	// User is the earn's user when it was named by external id (ruleQuery's
	// $6); its id is uuid.Nil when the partner has no such user or the
	// earn named the user by id.
	User user.User `bun:"embed:u_"`

	PolExpiryMode            *string  `bun:"pol_expiry_mode,scanonly"`
	PolExpiryDays            *int     `bun:"pol_expiry_days,scanonly"`
	PolExpiryRoundToMonthEnd *bool    `bun:"pol_round,scanonly"`
	PolExpiryDates           []string `bun:"pol_expiry_dates,array,scanonly"`
	PolPendingDays           *int     `bun:"pol_pending_days,scanonly"`
	PolCurrency              *string  `bun:"pol_currency,scanonly"`
	HasTiers                 bool     `bun:"has_tiers,scanonly"`
	HasCampaigns             bool     `bun:"has_campaigns,scanonly"`
	HasReferrals             bool     `bun:"has_referrals,scanonly"`
	// Pre0 and Pre1 are the prefetched values of the first and second
	// modifier (ruleQuery), as JSON text; NULL when not read or NULL.
	Pre0 *string `bun:"pre_0,scanonly"`
	Pre1 *string `bun:"pre_1,scanonly"`
}

// partsSQL reads which program parts the partner r.partner_id uses (three
// index probes), as has_tiers, has_campaigns and has_referrals.
const partsSQL = `EXISTS (SELECT 1 FROM tiers t WHERE t.partner_id = r.partner_id) AS has_tiers,
		EXISTS (SELECT 1 FROM campaigns c WHERE c.partner_id = r.partner_id AND c.enabled) AS has_campaigns,
		EXISTS (SELECT 1 FROM referral_policies rp WHERE rp.partner_id = r.partner_id AND rp.enabled) AS has_referrals`

// partsOf reads which program parts a partner uses, for a batch of earns
// (EarnTx reads them with its rule instead).
func partsOf(ctx context.Context, db bun.IDB, partnerID uuid.UUID) (ProgramParts, error) {
	var row struct {
		HasTiers     bool `bun:"has_tiers"`
		HasCampaigns bool `bun:"has_campaigns"`
		HasReferrals bool `bun:"has_referrals"`
	}
	if err := db.NewRaw(`SELECT `+partsSQL+` FROM (SELECT ?::uuid AS partner_id) r`, partnerID).Scan(ctx, &row); err != nil {
		return ProgramParts{}, fmt.Errorf("read the partner's program parts: %w", err)
	}
	return ProgramParts{Tiers: row.HasTiers, Campaigns: row.HasCampaigns, Referrals: row.HasReferrals}, nil
}

// ruleLookup is what one round trip reads for an earn: its user (when
// named by external id), its rule, the partner's policy (program.Default
// when it has none), which program parts the partner uses and what the
// modifiers of those parts prefetch.
type ruleLookup struct {
	// User is nil when the earn named its user by id, or when the partner
	// has no user of that external id (UserFound false).
	User      *user.User
	UserFound bool
	// Rule is nil when the partner has no rule of that code.
	Rule       *Rule
	Policy     program.Policy
	Parts      ProgramParts
	Prefetched []*[]byte
}

// ruleWithPolicy loads one rule with its policy, parts and prefetches
// for the user userID (lookup); ACTION_NOT_FOUND when there is no such
// rule.
func (s *Service) ruleWithPolicy(ctx context.Context, db bun.IDB, partnerID uuid.UUID, code string, userID uuid.UUID, at, now time.Time) (*Rule, program.Policy, ProgramParts, []*[]byte, error) {
	l, err := s.lookup(ctx, db, partnerID, code, userID, nil, at, now)
	if err != nil {
		return nil, program.Policy{}, ProgramParts{}, nil, err
	}
	if err := ruleFound(l, code); err != nil {
		return nil, program.Policy{}, ProgramParts{}, nil, err
	}
	return l.Rule, l.Policy, l.Parts, l.Prefetched, nil
}

// lookup reads, in one prepared statement, the user of an earn and
// everything EarnTx needs of its rule (ruleLookup). The user is named
// either by id (userID; userHash nil: no user row is read) or by the
// keyed hash of their external id (userHash; userID uuid.Nil), in which
// case the prefetches are computed for the user found. A missing user or
// rule is reported in the result, not as an error, so that the caller
// refuses them in its own order. at is the instant campaign windows are
// checked at (the earn's occurredAt, else now).
func (s *Service) lookup(ctx context.Context, db bun.IDB, partnerID uuid.UUID, code string, userID uuid.UUID, userHash []byte, at, now time.Time) (*ruleLookup, error) {
	var row ruleAndPolicy
	query, pre := s.ruleQuery(db.Dialect())
	var id *uuid.UUID
	if userHash == nil {
		id = &userID
	}
	// Prepared: with the parts' reads it takes longer to plan than to run.
	if err := database.QueryRowModel(ctx, db, &row, query, id, at, now, partnerID, code, userHash); err != nil {
		return nil, fmt.Errorf("load earning rule %s: %w", code, err)
	}
	l := &ruleLookup{Parts: ProgramParts{Tiers: row.HasTiers, Campaigns: row.HasCampaigns, Referrals: row.HasReferrals}}
	if userHash != nil && row.User.ID != uuid.Nil {
		u := row.User
		l.User, l.UserFound = &u, true
	}
	if !row.RuleFound {
		return l, nil
	}
	l.Policy = program.Default(partnerID)
	if row.PolExpiryMode != nil {
		l.Policy.ExpiryMode, l.Policy.ExpiryDays, l.Policy.ExpiryDates = *row.PolExpiryMode, row.PolExpiryDays, row.PolExpiryDates
		l.Policy.ExpiryRoundToMonthEnd = row.PolExpiryRoundToMonthEnd != nil && *row.PolExpiryRoundToMonthEnd
		if row.PolPendingDays != nil {
			l.Policy.PendingDays = *row.PolPendingDays
		}
		l.Policy.Currency = row.PolCurrency
	}
	if len(pre) > 0 {
		l.Prefetched = make([]*[]byte, len(s.modifiers()))
		cols := []*string{row.Pre0, row.Pre1}
		for _, i := range pre {
			var b []byte
			if cols[i] != nil {
				b = []byte(*cols[i])
			}
			l.Prefetched[i] = &b
		}
	}
	r := row.Rule
	l.Rule = &r
	return l, nil
}

// ruleQuery is lookup's prepared statement ($1 user id or NULL, $2 at, $3
// now, $4 partner, $5 code, $6 the user's external id hash or NULL) and
// which modifiers' prefetches it reads (their index in Service.modifiers,
// column pre_<index>), built once: the modifiers are set when the service
// is wired. A PartModifier's PrefetchSQL is guarded by the parts it
// serves, so a partner without tiers or campaigns evaluates none of it.
// It always answers one row: the user and the rule are outer-joined to
// the key row, their columns NULL when missing (the prefetches then see
// a NULL user or rule and find nothing).
//
// The rule's and the user's columns are listed, not r.* or u.*: a
// prepared r.* would fail its next run after a migration adds a column
// ("cached plan must not change result type").
func (s *Service) ruleQuery(d schema.Dialect) (string, []int) {
	s.ruleSQLOnce.Do(func() {
		var ruleCols []string
		for _, f := range d.Tables().Get(reflect.TypeFor[Rule]()).Fields {
			ruleCols = append(ruleCols, "r."+string(f.SQLName))
		}
		for _, f := range d.Tables().Get(reflect.TypeFor[user.User]()).Fields {
			ruleCols = append(ruleCols, "u."+string(f.SQLName)+" AS u_"+f.Name)
		}
		var cols strings.Builder
		for i, m := range s.modifiers() {
			pm, ok := m.(PartModifier)
			if !ok || pm.PrefetchSQL == "" {
				continue
			}
			var guards []string
			if pm.Uses(ProgramParts{Tiers: true}) {
				guards = append(guards, "parts.has_tiers")
			}
			if pm.Uses(ProgramParts{Campaigns: true}) {
				guards = append(guards, "parts.has_campaigns")
			}
			if len(guards) == 0 {
				continue
			}
			fmt.Fprintf(&cols, ",\n\t\tCASE WHEN %s THEN (%s)::text END AS pre_%d", strings.Join(guards, " OR "), pm.PrefetchSQL, i)
			s.rulePre = append(s.rulePre, i)
		}
		s.ruleSQL = `SELECT ` + strings.Join(ruleCols, ", ") + `, r.code IS NOT NULL AS rule_found,
		pp.expiry_mode AS pol_expiry_mode, pp.expiry_days AS pol_expiry_days,
		pp.expiry_round_to_month_end AS pol_round, pp.expiry_dates AS pol_expiry_dates, pp.pending_days AS pol_pending_days,
		pp.currency AS pol_currency, parts.has_tiers, parts.has_campaigns, parts.has_referrals` + cols.String() + `
		FROM (SELECT $4::uuid AS partner_id, $5::text AS code, $6::bytea AS user_hash) k
		LEFT JOIN users u ON u.partner_id = k.partner_id AND u.external_id_hash = k.user_hash
		CROSS JOIN LATERAL (SELECT coalesce($1::uuid, u.id) AS user_id, $2::timestamptz AS at, $3::timestamptz AS now) earn
		LEFT JOIN earning_rules r ON r.partner_id = k.partner_id AND r.code = k.code
		LEFT JOIN program_policies pp ON pp.partner_id = r.partner_id
		CROSS JOIN LATERAL (SELECT ` + partsSQL + `) parts`
	})
	return s.ruleSQL, s.rulePre
}

// DisableRule switches a rule off; its history stays.
func (s *Service) DisableRule(ctx context.Context, db bun.IDB, partnerID uuid.UUID, code string) error {
	res, err := db.NewUpdate().Model((*Rule)(nil)).Set("enabled = false, updated_at = ?", s.Now().UTC()).
		Where("partner_id = ? AND code = ?", partnerID, code).Exec(ctx)
	if err != nil {
		return fmt.Errorf("disable earning rule %s: %w", code, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return apperr.New(apperr.CodeActionNotFound, "no earning rule %q", code)
	}
	return nil
}

// count increments the user's counter for r if, and only if, no cap or
// cooldown forbids it. The conditional upsert locks the counter row, so
// concurrent earns of one user and rule are serialised and each re-checks
// the limits against the committed count.
func (s *Service) count(ctx context.Context, tx bun.Tx, p *partner.Partner, r *Rule, userID uuid.UUID, now time.Time) error {
	day := s.day(p, now)
	var total int
	err := tx.NewRaw(`INSERT INTO earning_counters AS c (partner_id, user_id, code, total, day, day_count, last_at)
		VALUES (?, ?, ?, 1, ?, 1, ?)
		ON CONFLICT (partner_id, user_id, code) DO UPDATE SET
			total = c.total + 1,
			day_count = CASE WHEN c.day = EXCLUDED.day THEN c.day_count + 1 ELSE 1 END,
			day = EXCLUDED.day,
			last_at = EXCLUDED.last_at
		WHERE (?::int IS NULL OR c.total < ?::int)
		  AND (?::int IS NULL OR c.day <> EXCLUDED.day OR c.day_count < ?::int)
		  AND (?::int IS NULL OR c.last_at <= EXCLUDED.last_at - make_interval(secs => ?::int))
		RETURNING total`,
		p.ID, userID, r.Code, day, now,
		r.LifetimeCap, r.LifetimeCap, r.DailyCap, r.DailyCap, r.CooldownSeconds, r.CooldownSeconds,
	).Scan(ctx, &total)
	if err == nil {
		return nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		if isForeignKeyViolation(err) {
			return apperr.New(apperr.CodeUserNotFound, "user not found")
		}
		return fmt.Errorf("count earn of %s: %w", r.Code, err)
	}
	// Refused: the row exists and is locked by us; say which limit.
	c := new(Counter)
	if err := tx.NewSelect().Model(c).Where("partner_id = ? AND user_id = ? AND code = ?", p.ID, userID, r.Code).Scan(ctx); err != nil {
		return fmt.Errorf("read earn counter of %s: %w", r.Code, err)
	}
	switch {
	case r.LifetimeCap != nil && c.Total >= *r.LifetimeCap:
		return apperr.New(apperr.CodeLifetimeCapReached, "action %q can be earned %d times in total", r.Code, *r.LifetimeCap)
	case r.DailyCap != nil && sameDay(c.Day, day) && c.DayCount >= *r.DailyCap:
		return apperr.New(apperr.CodeDailyCapReached, "action %q can be earned %d times a day", r.Code, *r.DailyCap)
	case r.CooldownSeconds != nil:
		wait := c.LastAt.Add(time.Duration(*r.CooldownSeconds) * time.Second).Sub(now)
		return &apperr.Error{Code: apperr.CodeCooldown, Message: fmt.Sprintf("action %q can be earned again in %d seconds", r.Code, ceilSeconds(wait)), RetryAfterSeconds: ceilSeconds(wait)}
	}
	return fmt.Errorf("earn of %s refused without a matching limit", r.Code)
}

func ceilSeconds(d time.Duration) int {
	s := int(math.Ceil(d.Seconds()))
	if s < 1 {
		return 1
	}
	return s
}

func sameDay(a, b time.Time) bool {
	return a.Year() == b.Year() && a.YearDay() == b.YearDay()
}

// day is the calendar day of t in the partner's time zone, as a UTC date.
func (s *Service) day(p *partner.Partner, t time.Time) time.Time {
	y, m, d := t.In(p.Location()).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// policy loads the partner's program policy (program.Default when it never
// set one: available at once, never expiring), one primary-key read per
// earn or per batch.
func (s *Service) policy(ctx context.Context, db bun.IDB, partnerID uuid.UUID) (program.Policy, error) {
	var ps program.Service
	return ps.Get(ctx, db, partnerID)
}

// overrides are the rule's own pending and expiry days for program.Resolve.
func (r *Rule) overrides() program.Overrides {
	return program.Overrides{PendingDays: r.PendingDays, ExpiryDays: r.ExpiryDays}
}

// Availability is what a user may still earn from a rule.
type Availability struct {
	RemainingToday    *int
	RemainingLifetime *int
	AvailableAt       *time.Time
}

// AvailabilityFor computes, in one query, each rule's remaining caps for a user.
func (s *Service) AvailabilityFor(ctx context.Context, db bun.IDB, p *partner.Partner, userID uuid.UUID, rules []Rule) (map[string]Availability, error) {
	var counters []Counter
	if err := db.NewSelect().Model(&counters).Where("partner_id = ? AND user_id = ?", p.ID, userID).Scan(ctx); err != nil {
		return nil, fmt.Errorf("load earn counters: %w", err)
	}
	byCode := map[string]Counter{}
	for _, c := range counters {
		byCode[c.Code] = c
	}
	now := s.Now().UTC()
	today := s.day(p, now)
	out := map[string]Availability{}
	for _, r := range rules {
		c, seen := byCode[r.Code]
		var a Availability
		if r.DailyCap != nil {
			left := *r.DailyCap
			if seen && sameDay(c.Day, today) {
				left -= c.DayCount
			}
			left = max(left, 0)
			a.RemainingToday = &left
		}
		if r.LifetimeCap != nil {
			left := *r.LifetimeCap
			if seen {
				left -= c.Total
			}
			left = max(left, 0)
			a.RemainingLifetime = &left
		}
		if r.CooldownSeconds != nil && seen {
			at := c.LastAt.Add(time.Duration(*r.CooldownSeconds) * time.Second)
			if at.After(now) {
				a.AvailableAt = &at
			}
		}
		out[r.Code] = a
	}
	return out, nil
}

type sqlStater interface{ SQLState() string }

func isForeignKeyViolation(err error) bool {
	var e sqlStater
	return errors.As(err, &e) && e.SQLState() == "23503"
}

// clone returns a pointer to a copy of *p, or nil.
func clone[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
