package earning

import (
	"context"
	"encoding/json"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/ledger"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/tier"
	"github.com/perkshq/perks/internal/user"
)

// MaxAmount bounds an earn's amount in minor units: 2,000,000,000 (20
// million euros in cents, 2 billion yen). Like every integer of the API
// it fits in 32 bits, and it is beyond any single purchase.
const MaxAmount int64 = 2_000_000_000

// MaxPointsPerAmount bounds a rule's pointsPerAmount (the minor units that
// earn its points).
const MaxPointsPerAmount int64 = 1_000_000_000

// How an earn's base points were found.
const (
	BaseFixed     = "fixed"     // the rule's points
	BaseVariable  = "variable"  // the points the partner sent (a variable-points rule)
	BasePerAmount = "perAmount" // floor(amount × points ÷ pointsPerAmount)
)

// Kinds of breakdown steps, in the order they are applied.
const (
	StepTier     = "tier"     // the user's tier multiplier, on the rule's points
	StepCampaign = "campaign" // a campaign's multiplier or bonus, on top
	StepCap      = "cap"      // the rule's maxPoints or the ledger's MaxPoints (negative)
)

// Breakdown is how an earn's points were computed: the base, the ordered
// steps that changed them, and the total the ledger entry holds. The sum of
// Base.Points and every step's Points is always Total. It is answered by
// every earn and kept on its ledger entry (ledger_entries.breakdown), so
// "why did I get these points" is answerable on every row.
type Breakdown struct {
	Base  Base   `json:"base"`
	Steps []Step `json:"steps"`
	Total int64  `json:"total"`
}

// Base is the rule's points for this earn and how they were found.
type Base struct {
	Method string `json:"method"`
	Points int64  `json:"points"`
	// Amount is the earn's amount in minor units of Currency, as sent, on
	// any rule (a fixed rule keeps it for the record and for campaign
	// conditions; only a perAmount rule computes with it).
	Amount   *int64  `json:"amount,omitempty"`
	Currency *string `json:"currency,omitempty"`
	// Rate is the per-amount rule's rate: Points for every PerAmount.
	Rate *Rate `json:"rate,omitempty"`
}

// Rate is a per-amount rule's exact rate: Points points for every
// PerAmount minor units.
type Rate struct {
	Points    int64 `json:"points"`
	PerAmount int64 `json:"perAmount"`
}

// Step is one change of the points after the base: a tier multiplier, a
// campaign multiplier or bonus, or the cap. Points is what it added
// (negative for a cap or a multiplier below 1).
type Step struct {
	Kind string `json:"kind"`
	Code string `json:"code,omitempty"`
	Name string `json:"name,omitempty"`
	// Multiplier (a multiplier step) or Bonus (a fixed bonus): at most one.
	Multiplier *Multiplier `json:"multiplier,omitempty"`
	Bonus      *int64      `json:"bonus,omitempty"`
	Points     int64       `json:"points"`
}

// Multiplier is an exact earn multiplier in ten-thousandths: 10000 is ×1,
// 12500 is ×1.25. JSON writes and reads it as a decimal number (1.25),
// parsed digit by digit, never through a float.
type Multiplier int64

// MultiplierOne is ×1.
const MultiplierOne Multiplier = 10000

// MaxMultiplier bounds a multiplier: ×100.
const MaxMultiplier Multiplier = 100 * MultiplierOne

// ParseMultiplier reads a decimal such as "1.25" or "2" with at most four
// decimals, from 0 to 100.
func ParseMultiplier(s string) (Multiplier, error) {
	whole, frac, hasFrac := strings.Cut(s, ".")
	if whole == "" || len(whole) > 3 || (hasFrac && (frac == "" || len(frac) > 4)) {
		return 0, fmt.Errorf("multiplier %q: want a decimal from 0 to 100 with at most 4 decimals", s)
	}
	digits := whole + frac + strings.Repeat("0", 4-len(frac))
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("multiplier %q: want a decimal from 0 to 100 with at most 4 decimals", s)
		}
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || Multiplier(n) > MaxMultiplier {
		return 0, fmt.Errorf("multiplier %q: want a decimal from 0 to 100 with at most 4 decimals", s)
	}
	return Multiplier(n), nil
}

// String is the multiplier as a decimal without trailing zeros: "1.25".
func (m Multiplier) String() string {
	s := strconv.FormatInt(int64(m)/10000, 10)
	if f := int64(m) % 10000; f != 0 {
		s += "." + strings.TrimRight(fmt.Sprintf("%04d", f), "0")
	}
	return s
}

// MarshalJSON writes the decimal as a JSON number.
func (m Multiplier) MarshalJSON() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalJSON reads a JSON number exactly (ParseMultiplier).
func (m *Multiplier) UnmarshalJSON(b []byte) error {
	v, err := ParseMultiplier(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// computeLimit saturates the breakdown's intermediate sums: far above any
// cap (ledger.MaxPoints), far below overflow.
const computeLimit int64 = 1 << 53

// mulDiv is floor(a × b ÷ c) for non-negative a, b and positive c, exact
// in 128 bits, saturated at computeLimit.
func mulDiv(a, b, c int64) int64 {
	if a <= 0 || b <= 0 || c <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi >= uint64(c) {
		return computeLimit // the quotient would not fit in 64 bits
	}
	q, _ := bits.Div64(hi, lo, uint64(c))
	if q > uint64(computeLimit) {
		return computeLimit
	}
	return int64(q)
}

// PerAmountPoints is a per-amount rule's base: floor(amount × points ÷
// perAmount). Floor, because points are the partner's liability: a
// purchase of 9.99 at 1 point per 1.00 earns 9, never a point it did not
// pay for, and every program that says "1 point per euro" means exactly
// this. The product is exact (128 bits), so no rate or amount loses a unit.
func PerAmountPoints(amount int64, r Rate) int64 { return mulDiv(amount, r.Points, r.PerAmount) }

// Multiply is floor(points × m): a multiplier applied to points, rounded
// down for the reason PerAmountPoints gives. ×1.25 on 7 points is 8
// (8.75 rounded down); on 8 points, 10.
func Multiply(points int64, m Multiplier) int64 {
	return mulDiv(points, int64(m), int64(MultiplierOne))
}

// MultiplierStep is the step of multiplier m applied to on points: it adds
// Multiply(on, m) − on, so the rounding happens once, on the product.
func MultiplierStep(kind, code, name string, on int64, m Multiplier) Step {
	mm := m
	return Step{Kind: kind, Code: code, Name: name, Multiplier: &mm, Points: Multiply(on, m) - on}
}

// BonusStep is the step of a fixed bonus.
func BonusStep(kind, code, name string, bonus int64) Step {
	b := bonus
	return Step{Kind: kind, Code: code, Name: name, Bonus: &b, Points: bonus}
}

// Earn is what a Modifier sees of an earn being computed, inside the
// earn's transaction, after the rule's own checks and its caps and
// cooldown passed.
type Earn struct {
	Partner *partner.Partner
	UserID  uuid.UUID
	// User is the user's row when the earn read it (by external id), nil
	// when the earn named the user by internal id: a modifier that needs
	// the user's country or attributes reads them here instead of
	// querying again.
	User *user.User
	Rule *Rule
	// Params is the request: amount, metadata, occurredAt, reference.
	Params *EarnParams
	Now    time.Time
	// Base is the rule's points (Breakdown.Base.Points); Points is the
	// running total before this modifier (Base plus the earlier steps).
	Base   int64
	Points int64
	// Tier is the user's tier code before this earn as the tier modifier
	// read it ("" when the partner has no tiers), and TierKnown says the
	// tier modifier ran (TierModifier sets both), so the campaigns that
	// follow it need not read the tier again.
	Tier      string
	TierKnown bool
	// Parts says which parts of a program the partner uses, when the earn
	// read it with its rule (PartsKnown): the PartModifier of a part the
	// partner does not use is not called (TierModifier,
	// campaign.Service.EarnModifier), so an earn of a
	// partner without tiers or campaigns pays for neither (EarnTx reads
	// the parts with its rule, a batch once per attempt). Unknown means
	// every modifier looks for itself.
	Parts      ProgramParts
	PartsKnown bool
	// Prefetched is what the modifier being called read with the earn's
	// rule query (PartModifier.PrefetchSQL), when PrefetchKnown: a JSON
	// value, nil for SQL NULL. A modifier uses it instead of querying; a
	// batch earn leaves PrefetchKnown false and the modifier reads for
	// itself.
	Prefetched    []byte
	PrefetchKnown bool
	// TierState is the user's tier as TierModifier found it in its
	// prefetched read, nil when it did not: EarnTx asks it whether the
	// earn may have moved the user (tier.EarnState.MayChange).
	TierState *tier.EarnState

	// prefetched are the rule query's reads, by modifier (Service.modifiers
	// order); nil entries were not read.
	prefetched []*[]byte
}

// ProgramParts are the optional parts of a partner's program an earn
// would consult.
type ProgramParts struct {
	Tiers     bool // the partner has a tier list
	Campaigns bool // the partner has an enabled campaign
	Referrals bool // the partner has an enabled referral policy
}

// Modifier adds steps to an earn's breakdown, in the earn's transaction:
// the extension point of tiers and campaigns. A modifier may read and
// write (a campaign's budget) with tx: its writes commit or roll back
// with the earn, so a dry run (which rolls back) consumes nothing. It
// returns the steps it applies, each with the points it adds (use
// MultiplierStep and BonusStep for exact rounding), or none.
type Modifier interface {
	ApplyTx(ctx context.Context, tx bun.IDB, e *Earn) ([]Step, error)
}

// PartModifier is a Modifier that serves one part of a program (tiers,
// campaigns): for an earn whose partner is known not to use it (Earn.Parts),
// it is not called, and a batch needs no per-item savepoint for it. A plain
// Modifier always runs.
type PartModifier struct {
	Modifier
	// Uses says whether a partner with these parts needs the modifier.
	Uses func(ProgramParts) bool
	// PrefetchSQL, when set, is one SQL expression (a json value or NULL)
	// that EarnTx evaluates in its rule query, only for a partner the
	// modifier serves, and hands to the modifier as Earn.Prefetched: what
	// the modifier would read costs the earn no round trip. It may refer
	// to r (the earning_rules row), pp (the partner's program_policies
	// row, all NULL without one) and earn: earn.user_id (uuid), earn.at
	// (timestamptz: the earn's occurredAt, else now) and earn.now
	// (timestamptz).
	PrefetchSQL string
}

// active reports whether m runs for e.
func active(m Modifier, e *Earn) bool {
	if m == nil {
		return false
	}
	if pm, ok := m.(PartModifier); ok && e.PartsKnown {
		return pm.Uses(e.Parts)
	}
	return true
}

// ModifierFunc adapts a function to Modifier.
type ModifierFunc func(ctx context.Context, tx bun.IDB, e *Earn) ([]Step, error)

// ApplyTx calls f.
func (f ModifierFunc) ApplyTx(ctx context.Context, tx bun.IDB, e *Earn) ([]Step, error) {
	return f(ctx, tx, e)
}

// base is the rule's points for an earn and how they were found; decide
// has already checked the request against the rule.
func (r *Rule) base(ep *EarnParams, currency *string) Base {
	b := Base{Method: BaseFixed, Points: r.Points, Amount: clone(ep.Amount)}
	if b.Amount != nil {
		b.Currency = clone(currency)
	}
	switch {
	case r.PointsPerAmount != nil:
		rate := Rate{Points: r.Points, PerAmount: *r.PointsPerAmount}
		b.Method, b.Rate, b.Points = BasePerAmount, &rate, PerAmountPoints(*ep.Amount, rate)
	case ep.Points != nil:
		b.Method, b.Points = BaseVariable, *ep.Points
	}
	return b
}

// breakdownTx runs the pipeline of one earn: the base, then the tier
// modifier on the rule's points, then the campaigns modifier on top (in
// that fixed order; a nil modifier is skipped), then the cap: the total
// never exceeds the rule's maxPoints (when set) nor ledger.MaxPoints, and
// a cap step records what it took off. A total below 1 point refuses the
// earn with NO_POINTS_EARNED (an amount too small for the rate).
func (s *Service) breakdownTx(ctx context.Context, tx bun.IDB, e *Earn, base Base) (Breakdown, error) {
	bd := Breakdown{Base: base, Steps: []Step{}}
	running := base.Points
	e.Base = base.Points
	if e.PartsKnown && !e.Parts.Tiers {
		// A partner without tiers: the user has none, and conditions
		// need not read one.
		e.Tier, e.TierKnown = "", true
	}
	for i, m := range s.modifiers() {
		if !active(m, e) {
			continue
		}
		e.Points = running
		e.Prefetched, e.PrefetchKnown = nil, false
		if i < len(e.prefetched) && e.prefetched[i] != nil {
			e.Prefetched, e.PrefetchKnown = *e.prefetched[i], true
		}
		steps, err := m.ApplyTx(ctx, tx, e)
		if err != nil {
			return Breakdown{}, err
		}
		for _, st := range steps {
			running = min(max(running+st.Points, -computeLimit), computeLimit)
			bd.Steps = append(bd.Steps, st)
		}
	}
	if limit := e.Rule.maxPoints(); running > limit {
		bd.Steps = append(bd.Steps, Step{Kind: StepCap, Name: capName(e.Rule), Points: limit - running})
		running = limit
	}
	if running < 1 {
		return Breakdown{}, apperr.New(apperr.CodeNoPointsEarned, "action %q awards no points for this earn (%d computed)", e.Rule.Code, running)
	}
	bd.Total = running
	return bd, nil
}

// modifiers are the breakdown's modifiers in their fixed order.
func (s *Service) modifiers() []Modifier { return []Modifier{s.Tier, s.Campaigns} }

// capName says which cap applied.
func capName(r *Rule) string {
	if r.MaxPoints != nil {
		return "maxPoints"
	}
	return "ledger.MaxPoints"
}

// encode is the breakdown as stored on the entry.
func (bd *Breakdown) encode() (json.RawMessage, error) {
	b, err := json.Marshal(bd)
	if err != nil {
		return nil, fmt.Errorf("encode breakdown: %w", err)
	}
	return b, nil
}

// DryRun answers what EarnTx would award for ep, with its breakdown, and
// changes nothing: it runs the very same earn (checks, caps, modifiers,
// ledger statement) in a transaction of its own (a savepoint when db is a
// transaction) that it always rolls back, so no entry, counter, balance,
// lot, event or campaign budget survives it, and the answer cannot drift
// from a real earn's. The returned entry is what would have been written
// (its ID is not: the rolled-back insert only used up a sequence number).
// A dry run is refused exactly as the earn would be; a reference already
// used answers CONFLICT.
func (s *Service) DryRun(ctx context.Context, db bun.IDB, p *partner.Partner, ep EarnParams) (*ledger.Entry, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin dry run: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	e, err := s.EarnTx(ctx, tx, p, ep)
	if err != nil {
		return nil, err
	}
	e.ID = 0
	return e, nil
}
