package tier

import "time"

// EarnState is what an earn needs to know of the user's tier, read with
// the earn's rule query (earning.PartModifier.PrefetchSQL) instead of
// statements of its own: the tier whose multiplier applies, and enough to
// tell afterwards whether the earn may have moved the user (MayChange), so
// that most earns skip tier_evaluate.
type EarnState struct {
	// Current's fields decode from "code", "name", "multiplier".
	Current
	Rank      int   `json:"rank"`
	Threshold int64 `json:"threshold"`
	// Next is the lowest threshold above the current tier's, nil at the
	// top tier.
	Next *int64 `json:"next"`
	// Downgrade is the policy's tierDowngrade.
	Downgrade string `json:"downgrade"`
	// ReviewAt is when ReviewWorker next looks at the user's row, nil
	// without a row (the base tier) or without reviews.
	ReviewAt *time.Time `json:"reviewAt"`
	// Qualifying and Lifetime are the user's qualifying points and
	// lifetime earned points, read in one snapshot.
	Qualifying int64 `json:"qualifying"`
	Lifetime   int64 `json:"lifetime"`
}

// EarnStateSQL is the SQL expression of the earn's rule query that reads
// EarnState as a JSON object (NULL when the partner has no tiers). It reads
// r.partner_id (the rule's partner), pp.tier_basis and pp.tier_downgrade
// (the partner's program_policies row, NULL without one), earn.user_id
// and earn.now: the contract of earning.PartModifier.PrefetchSQL. The
// tier is the one currentSQL gives (the user's row, else the base tier);
// qualifying points follow qualifyingSQL.
const EarnStateSQL = `(SELECT json_build_object(
		'code', cur.code, 'name', cur.name, 'multiplier', cur.multiplier, 'rank', cur.rank, 'threshold', cur.threshold,
		'next', (SELECT min(n.threshold) FROM tiers n WHERE n.partner_id = r.partner_id AND n.rank > cur.rank),
		'downgrade', coalesce(pp.tier_downgrade, 'never'),
		'reviewAt', ut.review_at,
		'qualifying', (SELECT coalesce(sum(tp.points), 0)::bigint FROM tier_points tp
			WHERE tp.partner_id = r.partner_id AND tp.user_id = earn.user_id
			AND tp.month <= date_trunc('month', earn.now AT TIME ZONE 'UTC')
			AND tp.month >= tier_window_start(coalesce(pp.tier_basis, 'lifetime'), date_trunc('month', earn.now AT TIME ZONE 'UTC'))),
		'lifetime', coalesce((SELECT b.lifetime_earned FROM balances b WHERE b.partner_id = r.partner_id AND b.user_id = earn.user_id), 0))
	FROM (SELECT 1) one
	LEFT JOIN user_tiers ut ON ut.partner_id = r.partner_id AND ut.user_id = earn.user_id
	JOIN LATERAL (
		SELECT t.code, t.name, t.multiplier, t.rank, t.threshold FROM tiers t
		WHERE t.partner_id = r.partner_id AND (t.rank = 0 OR t.code = ut.code)
		ORDER BY t.rank DESC LIMIT 1
	) cur ON true)`

// ReviewMargin is how far ahead of a due review an earn still evaluates
// the user's tier itself (MayChange): a review that runs while the earn is
// in flight has a due time before its own clock, so an earn whose read
// showed the review more than ReviewMargin away cannot race one. It is far
// longer than any earn's transaction.
const ReviewMargin = time.Hour

// MayChange reports whether an earn that read st, then credited the user
// and saw their lifetime earned points become lifetimeAfter (under the
// balance row's lock), may have changed the user's tier, so that it must
// run EvaluateTx; false lets it skip that statement.
//
// Qualifying points rise only with lifetime earned points, by the same
// amount in the same transaction (earn and activate entries count in both;
// a reversal lowers both or neither, a positive adjustment raises only
// the lifetime), and every writer moves the balance row. So the user's
// qualifying points after this earn are at most st.Qualifying plus the
// lifetime gained since the read, concurrent earns committed before this
// one's balance update included: below the next threshold, no upgrade is
// possible. A downgrade comes from the earn only under the immediate
// policy when the read already showed the user below their tier, and a
// review due within ReviewMargin could be running now: both evaluate.
func (st *EarnState) MayChange(lifetimeAfter int64, now time.Time) bool {
	if st == nil {
		return true
	}
	gained := lifetimeAfter - st.Lifetime
	switch {
	case gained < 0:
		return true // a reversal since the read: no bound to rely on
	case st.Next != nil && st.Qualifying+gained >= *st.Next:
		return true
	case st.Downgrade == DowngradeImmediate && st.Qualifying < st.Threshold:
		return true
	case st.ReviewAt != nil && st.ReviewAt.Before(now.Add(ReviewMargin)):
		return true
	}
	return false
}
