package tier

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/event"
)

// Change is one user's move between tiers.
type Change struct {
	PartnerID uuid.UUID `bun:"partner_id,type:uuid"`
	UserID    uuid.UUID `bun:"user_id,type:uuid"`
	From      string    `bun:"previous"`
	To        string    `bun:"code"`
	Up        bool      `bun:"up"`
}

// evaluateSQL places users on the tier their qualifying points give now:
// $1 now, $2 partner, $3 users. The work is the SQL function
// tier_evaluate (migration 20261126500000), with a cached generic plan.
const evaluateSQL = `SELECT * FROM tier_evaluate($1, $2, $3::uuid[])`

// qualifyingSQL is a user's qualifying points in the window of ?0.
const qualifyingSQL = `SELECT coalesce(sum(tp.points), 0)::bigint FROM tier_points tp
	CROSS JOIN (SELECT coalesce((SELECT tier_basis FROM program_policies WHERE partner_id = ?1), 'lifetime') AS basis,
		date_trunc('month', ?0::timestamptz AT TIME ZONE 'UTC') AS m) w
	WHERE tp.partner_id = ?1 AND tp.user_id = ?2 AND tp.month <= w.m AND tp.month >= tier_window_start(w.basis, w.m)`

// QualifyingTx returns the user's qualifying points at now under the
// partner's basis (for user info and the progress to the next tier).
func (s *Service) QualifyingTx(ctx context.Context, db bun.IDB, partnerID, userID uuid.UUID) (int64, error) {
	var n int64
	if err := db.NewRaw(qualifyingSQL, s.now(), partnerID, userID).Scan(ctx, &n); err != nil {
		return 0, fmt.Errorf("qualifying points: %w", err)
	}
	return n, nil
}

// EvaluateTx moves the users to the tier their qualifying points give now,
// inside the caller's transaction, and records a tier.changed event per
// move. It upgrades always and downgrades only under the immediate policy
// (periodEnd downgrades wait for ReviewWorker). The earn paths call it
// after writing their entries (the trigger has counted the points by then),
// so the earn that crosses a threshold upgrades in its own transaction; a
// reversal should call it too, so that immediate downgrades follow. A
// partner without tiers costs one query that writes nothing.
func (s *Service) EvaluateTx(ctx context.Context, tx bun.Tx, partnerID uuid.UUID, userIDs ...uuid.UUID) ([]Change, error) {
	if len(userIDs) == 0 {
		return nil, nil
	}
	// Prepared (database.Query): it runs on every earn.
	rows, err := database.Query(ctx, tx, evaluateSQL, s.now(), partnerID, uuidArray(userIDs))
	if err != nil {
		return nil, fmt.Errorf("evaluate tiers: %w", err)
	}
	defer rows.Close()
	var changes []Change
	for rows.Next() {
		var c Change
		if err := rows.Scan(&c.PartnerID, &c.UserID, &c.From, &c.To, &c.Up); err != nil {
			return nil, fmt.Errorf("evaluate tiers: %w", err)
		}
		changes = append(changes, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("evaluate tiers: %w", err)
	}
	rows.Close()
	return changes, s.record(ctx, tx, changes)
}

// record writes one tier.changed event per change. Data holds ids and
// codes only, no personal data.
func (s *Service) record(ctx context.Context, tx bun.Tx, changes []Change) error {
	if len(changes) == 0 || s.Events == nil {
		return nil
	}
	events := make([]*event.Event, 0, len(changes))
	for _, c := range changes {
		dir := "down"
		if c.Up {
			dir = "up"
		}
		e, err := s.Events.New(c.PartnerID, event.TierChanged, &c.UserID,
			map[string]any{"userId": c.UserID, "from": c.From, "to": c.To, "direction": dir})
		if err != nil {
			return err
		}
		events = append(events, e)
	}
	return s.Events.RecordTx(ctx, tx, events...)
}

// lockDueSQL locks up to ?1 user_tiers rows whose review is due at ?0,
// oldest due first, across partners. SKIP LOCKED lets two runs share the
// work (a row an earn holds is left for the next batch or run).
const lockDueSQL = `SELECT partner_id, user_id FROM user_tiers WHERE review_at <= ?0
	ORDER BY review_at, partner_id, user_id LIMIT ?1 FOR UPDATE SKIP LOCKED`

// reviewSQL reviews the rows lockDueSQL locked (?1 partners, ?2 users, in
// pairs) at ?0. It is a second statement on purpose: its snapshot is taken
// after the locks, so it sees the qualifying points of every earn that
// committed before them; an earn still in flight updates the row after this
// transaction commits and compares against what the review wrote (see
// evaluateSQL). periodEnd places the user on the best tier of the period
// that just ended and of the current window (grace days let them requalify
// in the new window); immediate on the tier of the current window; a
// partner that switched to never keeps the tier. Every reviewed row gets its
// next review after ?0 (or none), so a row is reviewed, and a change
// recorded, once per period whatever the number of runs, and a crash rolls
// the batch back for the next run.
const reviewSQL = `WITH due AS (
	SELECT ut.partner_id, ut.user_id, ut.code AS old_code, ut.rank AS old_rank, ut.period_end,
	       coalesce(pp.tier_basis, 'lifetime') AS basis, coalesce(pp.tier_downgrade, 'never') AS down,
	       coalesce(pp.tier_grace_days, 0) AS grace, date_trunc('month', ?0::timestamptz AT TIME ZONE 'UTC') AS m
	FROM unnest(?1::uuid[], ?2::uuid[]) k (partner_id, user_id)
	JOIN user_tiers ut ON ut.partner_id = k.partner_id AND ut.user_id = k.user_id
	LEFT JOIN program_policies pp ON pp.partner_id = ut.partner_id
), pts AS (
	SELECT d.*,
		(SELECT coalesce(sum(tp.points), 0) FROM tier_points tp WHERE tp.partner_id = d.partner_id AND tp.user_id = d.user_id
			AND tp.month <= d.m AND tp.month >= tier_window_start(d.basis, d.m))::bigint AS now_pts,
		(SELECT coalesce(sum(tp.points), 0) FROM tier_points tp WHERE tp.partner_id = d.partner_id AND tp.user_id = d.user_id
			AND tp.month < (d.period_end AT TIME ZONE 'UTC') AND tp.month >= (d.period_end AT TIME ZONE 'UTC') - interval '12 months')::bigint AS prev_pts
	FROM due d
), target AS (
	SELECT p.*, CASE WHEN p.down = 'never' OR t.code IS NULL THEN p.old_code ELSE t.code END AS code,
	       CASE WHEN p.down = 'never' OR t.code IS NULL THEN p.old_rank ELSE t.rank END AS rank
	FROM pts p LEFT JOIN LATERAL (
		SELECT code, rank FROM tiers WHERE partner_id = p.partner_id
			AND threshold <= CASE p.down WHEN 'periodEnd' THEN greatest(p.now_pts, p.prev_pts) ELSE p.now_pts END
		ORDER BY rank DESC LIMIT 1
	) t ON true
)
UPDATE user_tiers ut SET
	previous = CASE WHEN tg.rank <> tg.old_rank THEN tg.old_code ELSE ut.previous END,
	since = CASE WHEN tg.rank <> tg.old_rank THEN ?0 ELSE ut.since END,
	code = tg.code, rank = tg.rank,
	period_end = tier_period_end(tg.basis, tg.down, tg.m) AT TIME ZONE 'UTC',
	review_at = (tier_period_end(tg.basis, tg.down, tg.m) + make_interval(days => CASE WHEN tg.down = 'periodEnd' THEN tg.grace ELSE 0 END)) AT TIME ZONE 'UTC'
FROM target tg
WHERE ut.partner_id = tg.partner_id AND ut.user_id = tg.user_id
RETURNING ut.partner_id, ut.user_id, ut.previous, ut.code, tg.rank > tg.old_rank AS up, tg.rank <> tg.old_rank AS changed`

// ReviewDueTx reviews up to batch users whose review is due at now (see
// reviewSQL) and records their tier.changed events in tx. It returns how
// many rows it reviewed (0: nothing is due) and the changes.
func (s *Service) ReviewDueTx(ctx context.Context, tx bun.Tx, now time.Time, batch int) (int, []Change, error) {
	var keys []struct {
		PartnerID uuid.UUID `bun:"partner_id,type:uuid"`
		UserID    uuid.UUID `bun:"user_id,type:uuid"`
	}
	if err := tx.NewRaw(lockDueSQL, now.UTC(), batch).Scan(ctx, &keys); err != nil {
		return 0, nil, fmt.Errorf("lock due tier reviews: %w", err)
	}
	if len(keys) == 0 {
		return 0, nil, nil
	}
	partners, users := make([]uuid.UUID, len(keys)), make([]uuid.UUID, len(keys))
	for i, k := range keys {
		partners[i], users[i] = k.PartnerID, k.UserID
	}
	var rows []struct {
		Change  `bun:",extend"`
		Changed bool `bun:"changed"`
	}
	if err := tx.NewRaw(reviewSQL, now.UTC(), uuidArray(partners), uuidArray(users)).Scan(ctx, &rows); err != nil {
		return 0, nil, fmt.Errorf("review tiers: %w", err)
	}
	var changes []Change
	for _, r := range rows {
		if r.Changed {
			changes = append(changes, r.Change)
		}
	}
	return len(rows), changes, s.record(ctx, tx, changes)
}
