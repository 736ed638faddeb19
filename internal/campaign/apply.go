package campaign

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// UserFacts is what conditions know of the user (user.country, user.tier,
// user.attributes).
type UserFacts struct {
	// Country is the ISO 3166-1 alpha-2 code, "" when unknown.
	Country string
	// Tier is the user's tier code, "" when none.
	Tier string
	// Attributes are the user's custom attributes (DecodeObject's values).
	Attributes map[string]any
}

// Facts describe one earn for ApplyTx.
type Facts struct {
	// Action is the earning rule's code.
	Action string
	// BasePoints are the points the earn awards before campaigns (rule
	// points, after the tier multiplier): multipliers apply to them.
	BasePoints int64
	// Amount is the earn's amount in minor units; nil when the earn has
	// none (conditions test has(earn.amount)).
	Amount *int64
	// Metadata is the earn's metadata object (DecodeObject), nil for none.
	Metadata map[string]any
	// User, when nil, is loaded from the users row (country and
	// attributes; tier ""), only if some active campaign has a condition.
	User *UserFacts
	// At is the instant the windows are checked at and `now` in
	// conditions; zero means the service's clock.
	At time.Time
	// DryRun computes the awards from the budgets and caps as they are,
	// without locking or charging anything (the earn's dry run).
	DryRun bool
	// Candidates, when CandidatesKnown, are the campaigns that may apply
	// as CandidatesSQL read them (with the earn's rule query; nil when
	// none): ApplyTx does not read them again.
	Candidates      []byte
	CandidatesKnown bool
}

// Award is what one campaign adds to an earn.
type Award struct {
	Code string
	Name string
	// MultiplierHundredths (200 = x2) or Bonus, as the campaign says.
	MultiplierHundredths *int
	Bonus                *int64
	// Points is what the campaign awards: base x (multiplier - 1) rounded
	// down, or the bonus, then reduced to what is left of the budget and
	// of the user's cap.
	Points int64
	// Limited is true when the budget or the per-user cap cut Points
	// below the campaign's nominal award.
	Limited bool
}

// candidate is an active campaign covering the earn's action, as ApplyTx
// reads it.
type candidate struct {
	Code                 string `json:"code"`
	Name                 string `json:"name"`
	MultiplierHundredths *int   `json:"multiplier"`
	BonusPoints          *int64 `json:"bonus"`
	Condition            string `json:"condition"`
	BudgetPoints         *int64 `json:"budget"`
	UserCapPoints        *int64 `json:"userCap"`
	Stacking             string `json:"stacking"`
	// LeftPoints is what the budget's slots had left when ApplyTx read
	// them, without a lock (nil without a budget): it skips an exhausted
	// budget, ranks bestOf campaigns and answers dry runs; the charge
	// itself decides under the slots' locks.
	LeftPoints *int64 `json:"left"`

	nominal, payable int64
}

// CandidatesSQL is the SQL expression that reads the campaigns which may
// apply to an earn, as a JSON array in code order (NULL for none): the
// enabled ones whose window holds earn.at and that cover the rule r.code,
// each with what its budget has left. It follows the contract of
// earning.PartModifier.PrefetchSQL (r.partner_id, r.code, earn.at), so the
// earn reads it with its rule query; ApplyTx runs it alone otherwise.
const CandidatesSQL = `(SELECT json_agg(json_build_object(
		'code', c.code, 'name', c.name, 'multiplier', c.multiplier_hundredths, 'bonus', c.bonus_points,
		'condition', c.condition, 'budget', c.budget_points, 'userCap', c.user_cap_points, 'stacking', c.stacking,
		'left', CASE WHEN c.budget_points IS NOT NULL THEN coalesce((SELECT sum(s.budget - s.spent) FROM campaign_budget_slots s
			WHERE s.partner_id = c.partner_id AND s.code = c.code), 0) END) ORDER BY c.code)
	FROM campaigns c
	WHERE c.partner_id = r.partner_id AND c.enabled
	AND (c.starts_at IS NULL OR c.starts_at <= earn.at) AND (c.ends_at IS NULL OR c.ends_at > earn.at)
	AND (cardinality(c.actions) = 0 OR r.code = ANY(c.actions)))`

// nominal is the campaign's award before budget and cap: multipliers
// round down (the partner never pays a fraction of a point).
func (c *candidate) nominalFor(base int64) int64 {
	if c.BonusPoints != nil {
		return *c.BonusPoints
	}
	if base <= 0 {
		return 0
	}
	// base <= 10^9 (ledger.MaxPoints) and the factor <= 9900: no overflow.
	return base * int64(*c.MultiplierHundredths-100) / 100
}

// ApplyTx answers the campaigns' awards for one earn of f.BasePoints by
// userID, and charges them to the campaigns' budgets and the user's caps
// inside tx, so the caller records the awards in the same transaction.
//
// A campaign applies when it is enabled, f.At is inside its window, it
// covers f.Action and its condition holds. A condition that fails at run
// time (a missing key read without has(), a type mismatch, the runtime cost
// limit) does not hold: a campaign never fails an earn.
//
// Budgets and caps are exact under concurrency without serialising a
// campaign's earns. A budget is spread over BudgetSlots rows
// (campaign_budget_slots); an earn charges the first slot from its user's
// (slotOf) that can pay the whole award and that no concurrent earn holds
// (SKIP LOCKED), so concurrent earns write different rows; only when every
// slot that could pay is held does it queue on its own slot. Only when no
// slot can pay does chargeBudgets fall back to every slot, locked in
// ascending order, taking what is left up to the award:
// the last award of a budget may be partial (Limited true), and a budget of
// 10,000 pays exactly 10,000 in total. The user's cap totals are locked (in
// code order) before any slot, so two earns of one user take their turns.
// Campaigns without a budget or cap take no lock and write nothing.
//
// Stacking: every matching additive campaign pays; of the matching bestOf
// campaigns only the one paying the most (after budget and cap; ties: the
// smallest code) does. Awards come sorted by code. What a budget has left
// is read without a lock (LeftPoints) for that ranking: should concurrent
// earns empty the chosen campaign's budget before its charge, the earn gets
// nothing from it rather than the runner-up's award.
//
// With no active campaign, ApplyTx costs one indexed read.
func (s *Service) ApplyTx(ctx context.Context, tx bun.IDB, partnerID, userID uuid.UUID, f Facts) ([]Award, error) {
	at := f.At
	if at.IsZero() {
		at = s.now()
	}
	raw := f.Candidates
	if !f.CandidatesKnown {
		var col *string
		err := tx.NewRaw(`SELECT `+CandidatesSQL+` FROM (SELECT ?::uuid AS partner_id, ?::text AS code) r
			CROSS JOIN (SELECT ?::timestamptz AS at) earn`, partnerID, f.Action, at).Scan(ctx, &col)
		if err != nil {
			return nil, fmt.Errorf("load campaigns: %w", err)
		}
		if col != nil {
			raw = []byte(*col)
		}
	}
	if len(raw) == 0 {
		return nil, nil
	}
	var cands []*candidate
	if err := json.Unmarshal(raw, &cands); err != nil {
		return nil, fmt.Errorf("decode campaigns: %w", err)
	}
	if len(cands) == 0 {
		return nil, nil
	}
	matched, err := s.match(ctx, tx, partnerID, userID, f, at, cands)
	if err != nil || len(matched) == 0 {
		return nil, err
	}
	totals, err := userTotals(ctx, tx, partnerID, userID, matched, f.DryRun)
	if err != nil {
		return nil, err
	}
	var best *candidate
	var paid []*candidate
	for _, c := range matched {
		c.payable = c.nominal
		if c.BudgetPoints != nil {
			c.payable = min(c.payable, *c.LeftPoints)
		}
		if c.UserCapPoints != nil {
			c.payable = min(c.payable, *c.UserCapPoints-totals[c.Code])
		}
		if c.payable <= 0 {
			continue
		}
		if c.Stacking == StackBestOf {
			if best == nil || c.payable > best.payable {
				best = c
			}
			continue
		}
		paid = append(paid, c)
	}
	if best != nil {
		paid = append(paid, best)
	}
	// Code order: the slots' locks follow it.
	var budgeted []*candidate
	for _, c := range matched {
		if c.BudgetPoints != nil && !f.DryRun && containsCand(paid, c) {
			budgeted = append(budgeted, c)
		}
	}
	if err := chargeBudgets(ctx, tx, partnerID, userID, budgeted); err != nil {
		return nil, err
	}
	awards := make([]Award, 0, len(paid))
	var charged []*candidate
	for _, c := range matched {
		if !containsCand(paid, c) || c.payable == 0 {
			continue // payable 0: spent by concurrent earns since the read
		}
		charged = append(charged, c)
		awards = append(awards, Award{
			Code: c.Code, Name: c.Name, MultiplierHundredths: c.MultiplierHundredths, Bonus: c.BonusPoints,
			Points: c.payable, Limited: c.payable < c.nominal,
		})
	}
	if !f.DryRun {
		if err := chargeCaps(ctx, tx, partnerID, userID, charged); err != nil {
			return nil, err
		}
	}
	return awards, nil
}

func containsCand(list []*candidate, c *candidate) bool {
	for _, x := range list {
		if x == c {
			return true
		}
	}
	return false
}

// match keeps the candidates whose condition holds and whose nominal award
// is positive.
func (s *Service) match(ctx context.Context, tx bun.IDB, partnerID, userID uuid.UUID, f Facts, at time.Time, cands []*candidate) ([]*candidate, error) {
	var vars map[string]any
	var out []*candidate
	for _, c := range cands {
		c.nominal = c.nominalFor(f.BasePoints)
		if c.nominal <= 0 {
			continue
		}
		if c.Condition != "" {
			if vars == nil {
				u := f.User
				if u == nil {
					loaded, err := LoadUserFacts(ctx, tx, partnerID, userID)
					if err != nil {
						return nil, err
					}
					u = loaded
				}
				vars = Vars(f, u, at)
			}
			cond, err := s.cache().get(c.Condition)
			if err != nil {
				// Saved conditions compiled at save time; a failure here
				// (limits lowered since) means the campaign does not apply.
				continue
			}
			ok, err := cond.Eval(vars)
			if err != nil || !ok {
				continue
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// Vars are the variables of a condition for the earn f by u at at.
func Vars(f Facts, u *UserFacts, at time.Time) map[string]any {
	earn := map[string]any{"action": f.Action, "points": f.BasePoints, "metadata": f.Metadata}
	if f.Metadata == nil {
		earn["metadata"] = map[string]any{}
	}
	if f.Amount != nil {
		earn["amount"] = *f.Amount
	}
	if u == nil {
		u = &UserFacts{}
	}
	attrs := u.Attributes
	if attrs == nil {
		attrs = map[string]any{}
	}
	return map[string]any{
		"earn": earn,
		"user": map[string]any{"country": u.Country, "tier": u.Tier, "attributes": attrs},
		"now":  nowVar(at),
	}
}

// LoadUserFacts reads the user's country, tier and attributes.
func LoadUserFacts(ctx context.Context, db bun.IDB, partnerID, userID uuid.UUID) (*UserFacts, error) {
	var row struct {
		Country    sql.NullString  `bun:"country_code"`
		Attributes json.RawMessage `bun:"attributes"`
		Tier       sql.NullString  `bun:"tier"`
	}
	// The tier is the user's user_tiers row, else the partner's base tier
	// (rank 0), as tier.CurrentTx reads it; none when the partner has no
	// tiers.
	err := db.NewRaw(`SELECT u.country_code, u.attributes,
		coalesce(ut.code, (SELECT t.code FROM tiers t WHERE t.partner_id = u.partner_id AND t.rank = 0)) AS tier
		FROM users u LEFT JOIN user_tiers ut ON ut.partner_id = u.partner_id AND ut.user_id = u.id
		WHERE u.partner_id = ? AND u.id = ?`, partnerID, userID).Scan(ctx, &row)
	if errors.Is(err, sql.ErrNoRows) {
		return &UserFacts{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load user facts: %w", err)
	}
	attrs, err := DecodeObject(row.Attributes)
	if err != nil {
		return nil, fmt.Errorf("decode user attributes: %w", err)
	}
	return &UserFacts{Country: row.Country.String, Tier: row.Tier.String, Attributes: attrs}, nil
}

// DecodeObject decodes a JSON object for conditions: whole numbers become
// int64 (so user.attributes.visits == 3 compares ints), other numbers
// float64. Empty input is an empty map.
func DecodeObject(raw []byte) (map[string]any, error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return map[string]any{}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("unexpected data after the JSON object")
	}
	return convertNumbers(v).(map[string]any), nil
}

func convertNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		s := x.String()
		if !strings.ContainsAny(s, ".eE") {
			if n, err := x.Int64(); err == nil {
				return n
			}
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = convertNumbers(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = convertNumbers(e)
		}
		return x
	}
	return v
}

// userTotal is what one user got from one capped campaign.
type userTotal struct {
	bun.BaseModel `bun:"table:campaign_user_totals,alias:t"`

	PartnerID    uuid.UUID `bun:"partner_id,type:uuid"`
	CampaignCode string    `bun:"campaign_code"`
	UserID       uuid.UUID `bun:"user_id,type:uuid"`
	Points       int64     `bun:"points"`
}

// userTotals answers what the user got so far from each capped campaign
// among matched. Unless dryRun, it first creates the missing rows and
// locks them all, in code order, so that two concurrent earns of one user
// cannot both pay the cap's last points.
func userTotals(ctx context.Context, tx bun.IDB, partnerID, userID uuid.UUID, matched []*candidate, dryRun bool) (map[string]int64, error) {
	var codes []string
	for _, c := range matched {
		if c.UserCapPoints != nil {
			codes = append(codes, c.Code)
		}
	}
	if len(codes) == 0 {
		return nil, nil
	}
	var rows []userTotal
	if dryRun {
		err := tx.NewSelect().Model(&rows).
			Where("partner_id = ? AND user_id = ? AND campaign_code IN (?)", partnerID, userID, bun.List(codes)).
			Scan(ctx)
		if err != nil {
			return nil, fmt.Errorf("read campaign user totals: %w", err)
		}
	} else {
		// One statement creates the missing rows and locks them all (the
		// no-op DO UPDATE takes the row lock and returns the current
		// total), in code order.
		rows = make([]userTotal, 0, len(codes))
		for _, code := range codes {
			rows = append(rows, userTotal{PartnerID: partnerID, CampaignCode: code, UserID: userID})
		}
		_, err := tx.NewInsert().Model(&rows).
			On("CONFLICT (partner_id, campaign_code, user_id) DO UPDATE").
			Set("points = t.points").
			Returning("points").Exec(ctx)
		if err != nil {
			return nil, fmt.Errorf("lock campaign user totals: %w", err)
		}
	}
	out := make(map[string]int64, len(rows))
	for _, r := range rows {
		out[r.CampaignCode] = r.Points
	}
	return out, nil
}

// chargeCaps adds each candidate's payable to the user's total of its
// capped campaigns, in one UPDATE. It is conditional: under the totals'
// locks (userTotals) it always matches, and should a caller ever skip the
// locks it fails rather than overpay.
func chargeCaps(ctx context.Context, tx bun.IDB, partnerID, userID uuid.UUID, paid []*candidate) error {
	var caps []*candidate
	for _, c := range paid {
		if c.UserCapPoints != nil {
			caps = append(caps, c)
		}
	}
	if len(caps) > 0 {
		values, args := valuesList(caps, func(c *candidate) int64 { return *c.UserCapPoints })
		args = append(args, partnerID, userID)
		res, err := tx.NewRaw(`UPDATE campaign_user_totals AS t SET points = t.points + v.pts
			FROM (VALUES `+values+`) AS v (code, pts, cap)
			WHERE t.partner_id = ? AND t.user_id = ? AND t.campaign_code = v.code AND t.points + v.pts <= v.cap`, args...).Exec(ctx)
		if err != nil {
			return fmt.Errorf("charge campaign user totals: %w", err)
		}
		if n, _ := res.RowsAffected(); n != int64(len(caps)) {
			return errors.New("charge campaign user totals: a total changed under its lock")
		}
	}
	return nil
}

// valuesList is "(?, ?::bigint, ?::bigint), ..." and its arguments: each
// candidate's code, payable points and cap(c).
func valuesList(list []*candidate, cap func(*candidate) int64) (string, []any) {
	var b strings.Builder
	args := make([]any, 0, 3*len(list)+2)
	for i, c := range list {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?::bigint, ?::bigint)")
		args = append(args, c.Code, c.payable, cap(c))
	}
	return b.String(), args
}
