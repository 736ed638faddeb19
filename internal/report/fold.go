package report

import (
	"context"
	"fmt"
	"time"

	"github.com/riverqueue/river"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/jobs"
)

// FoldInterval is how often the deltas the triggers append are folded into
// report_days. Reports are exact in between (they read the deltas
// too); folding keeps the deltas, which have no index, few: a reader scans
// at most about FoldInterval of writes (10,000 rows at 1,000 statements/s,
// see docs/benchmarks.md).
const FoldInterval = 10 * time.Second

// UserDaysKept is how many past days (UTC dates) of report_user_days a fold
// keeps: entries are written "now", so only today's rows (in any time zone,
// which may be a day off UTC) can still meet a user again.
const UserDaysKept = 2

// FoldTx moves every delta into report_days (one upsert per partner, day
// and kind) and report_gift_days (per partner, day and gift), and forgets
// who was active on days that are over.
// It says how many deltas it folded. Deltas are deleted and added in one
// statement, so a reader sees them either unfolded or folded, never both or
// neither; two concurrent folds never fold a delta twice (the second waits
// for the first's row locks and skips what it deleted).
func FoldTx(ctx context.Context, tx bun.Tx, now time.Time) (int64, error) {
	var n int64
	err := tx.NewRaw(`WITH d AS (
		DELETE FROM report_deltas RETURNING partner_id, day, kind, points, entries
	), f AS (
		INSERT INTO report_days AS t (partner_id, day, kind, points, entries)
		SELECT partner_id, day, kind, sum(points), sum(entries) FROM d GROUP BY 1, 2, 3
		-- A stable order: two folds never deadlock.
		ORDER BY 1, 2, 3
		ON CONFLICT (partner_id, day, kind) DO UPDATE SET points = t.points + EXCLUDED.points, entries = t.entries + EXCLUDED.entries
	)
	SELECT count(*) FROM d`).Scan(ctx, &n)
	if err != nil {
		return 0, fmt.Errorf("fold report deltas: %w", err)
	}
	var gifts int64
	err = tx.NewRaw(`WITH d AS (
		DELETE FROM report_gift_deltas RETURNING partner_id, day, gift_id, claims, points, redemptions
	), f AS (
		INSERT INTO report_gift_days AS t (partner_id, day, gift_id, claims, points, redemptions)
		SELECT partner_id, day, gift_id, sum(claims), sum(points), sum(redemptions) FROM d GROUP BY 1, 2, 3
		ORDER BY 1, 2, 3
		ON CONFLICT (partner_id, day, gift_id) DO UPDATE SET claims = t.claims + EXCLUDED.claims,
			points = t.points + EXCLUDED.points, redemptions = t.redemptions + EXCLUDED.redemptions
	)
	SELECT count(*) FROM d`).Scan(ctx, &gifts)
	if err != nil {
		return 0, fmt.Errorf("fold report gift deltas: %w", err)
	}
	n += gifts
	keep := dateOf(now.UTC()).AddDate(0, 0, -UserDaysKept)
	if _, err := tx.NewRaw("DELETE FROM report_user_days WHERE day < ?", keep).Exec(ctx); err != nil {
		return 0, fmt.Errorf("prune report user days: %w", err)
	}
	return n, nil
}

// FoldArgs folds the report deltas.
type FoldArgs struct{}

// Kind implements river.JobArgs.
func (FoldArgs) Kind() string { return "report_fold" }

// InsertOpts keeps one pending run at a time across replicas.
func (FoldArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueMaintenance, MaxAttempts: 5, UniqueOpts: river.UniqueOpts{ByPeriod: FoldInterval}}
}

// FoldWorker works FoldArgs: FoldTx in one transaction.
type FoldWorker struct {
	river.WorkerDefaults[FoldArgs]
	DB  bun.IDB
	Now func() time.Time // nil: the wall clock
}

// Work implements river.Worker.
func (w *FoldWorker) Work(ctx context.Context, _ *river.Job[FoldArgs]) error {
	now := time.Now()
	if w.Now != nil {
		now = w.Now()
	}
	return w.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		_, err := FoldTx(ctx, tx, now)
		return err
	})
}

// Periodic schedules the fold.
func Periodic() []*river.PeriodicJob {
	return []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(FoldInterval), func() (river.JobArgs, *river.InsertOpts) {
			return FoldArgs{}, nil
		}, &river.PeriodicJobOpts{ID: "report_fold", RunOnStart: true}),
	}
}

// CheckInvariants verifies, for every partner, that the outstanding points
// of the rollup (folded and not) equal the sum of the balances, its pending
// points the sum of pending_points, and, unless users of the partner were
// erased (their entries and vouchers are gone, their history stays), that
// the rollup equals the entries per kind and the vouchers per gift. It
// returns the first mismatch.
func CheckInvariants(ctx context.Context, db bun.IDB) error {
	var bad []string
	err := db.NewRaw(`WITH r AS (
		SELECT partner_id, kind, sum(points) AS points, sum(entries) AS entries FROM (
			SELECT partner_id, kind, points, entries FROM report_days
			UNION ALL SELECT partner_id, kind, points, entries FROM report_deltas) x
		GROUP BY 1, 2
	), roll AS (
		SELECT partner_id,
			coalesce(sum(points) FILTER (WHERE kind IN ('earn', 'activate', 'adjust_up', 'adjust_down', 'burn', 'refund', 'expire', 'reverse', 'erased')), 0) AS avail,
			coalesce(sum(points) FILTER (WHERE kind IN ('pending', 'cancel', 'reverse_pending', 'erased_pending')), 0)
				- coalesce(sum(points) FILTER (WHERE kind = 'activate'), 0) AS pend
		FROM r GROUP BY 1
	), bal AS (
		SELECT partner_id, sum(points) AS avail, sum(pending_points) AS pend FROM balances GROUP BY 1
	), ent AS (
		SELECT partner_id, report_kind(kind, points, source_type) AS kind, sum(points) AS points, count(*) AS entries
		FROM ledger_entries GROUP BY 1, 2
	)
	SELECT format('partner %s: rollup outstanding %s pending %s, balances %s and %s', coalesce(roll.partner_id, bal.partner_id),
		coalesce(roll.avail, 0), coalesce(roll.pend, 0), coalesce(bal.avail, 0), coalesce(bal.pend, 0))
	FROM roll FULL JOIN bal ON bal.partner_id = roll.partner_id
	WHERE coalesce(roll.avail, 0) <> coalesce(bal.avail, 0) OR coalesce(roll.pend, 0) <> coalesce(bal.pend, 0)
	UNION ALL
	SELECT format('partner %s kind %s: rollup %s points in %s entries, ledger %s in %s', coalesce(r.partner_id, ent.partner_id),
		coalesce(r.kind, ent.kind), coalesce(r.points, 0), coalesce(r.entries, 0), coalesce(ent.points, 0), coalesce(ent.entries, 0))
	FROM r FULL JOIN ent ON ent.partner_id = r.partner_id AND ent.kind = r.kind
	WHERE coalesce(r.kind, ent.kind) NOT IN ('active', 'erased', 'erased_pending', 'webhook_succeeded', 'webhook_failed')
	  AND NOT EXISTS (SELECT 1 FROM r e WHERE e.partner_id = coalesce(r.partner_id, ent.partner_id) AND e.kind IN ('erased', 'erased_pending'))
	  AND (coalesce(r.points, 0) <> coalesce(ent.points, 0) OR coalesce(r.entries, 0) <> coalesce(ent.entries, 0))
	UNION ALL
	SELECT format('partner %s gift %s: rollup %s claims of %s points and %s redemptions, vouchers %s, %s and %s',
		coalesce(g.partner_id, v.partner_id), coalesce(g.gift_id, v.gift_id), coalesce(g.claims, 0), coalesce(g.points, 0),
		coalesce(g.redemptions, 0), coalesce(v.claims, 0), coalesce(v.points, 0), coalesce(v.redemptions, 0))
	FROM (SELECT partner_id, gift_id, sum(claims) AS claims, sum(points) AS points, sum(redemptions) AS redemptions FROM (
			SELECT partner_id, gift_id, claims, points, redemptions FROM report_gift_days
			UNION ALL SELECT partner_id, gift_id, claims, points, redemptions FROM report_gift_deltas) x GROUP BY 1, 2) g
	FULL JOIN (SELECT partner_id, gift_id, count(*) AS claims, sum(cost_points) AS points, count(redeemed_at) AS redemptions
			FROM vouchers GROUP BY 1, 2) v ON v.partner_id = g.partner_id AND v.gift_id = g.gift_id
	WHERE NOT EXISTS (SELECT 1 FROM r e WHERE e.partner_id = coalesce(g.partner_id, v.partner_id) AND e.kind IN ('erased', 'erased_pending'))
	  AND (coalesce(g.claims, 0) <> coalesce(v.claims, 0) OR coalesce(g.points, 0) <> coalesce(v.points, 0)
	       OR coalesce(g.redemptions, 0) <> coalesce(v.redemptions, 0))
	LIMIT 1`).Scan(ctx, &bad)
	if err != nil {
		return fmt.Errorf("check report invariants: %w", err)
	}
	if len(bad) > 0 {
		return fmt.Errorf("report rollup disagrees with the ledger: %s", bad[0])
	}
	return nil
}
