package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/report"
)

// reportsEntries is how many ledger entries the fixture has
// (BENCH_REPORTS_ENTRIES overrides it, for a quick trial).
var reportsEntries = 1_000_000

func init() {
	if v, err := strconv.Atoi(os.Getenv("BENCH_REPORTS_ENTRIES")); err == nil && v >= reportsDays {
		reportsEntries = v
	}
	register(Scenario{Name: "reports", Run: runReports})
	heavy["reports"] = true
}

// The reports fixture, on a partner of its own in Europe/Paris: a year of
// history, reportsEntries ledger entries of reportsUsers users written one
// statement per day (so the rollup triggers run as they would, once per
// statement), reportsDeliveries webhook deliveries with their attempts, and
// a voucher for every burn.
const (
	reportsUsers      = 50_000
	reportsDays       = 365
	reportsDeliveries = 300_000
	reportsGifts      = 40
	// reportsDeltas is a fold interval of unfolded writes (10 s) at 1,000
	// statements/s.
	reportsDeltas = 10_000
)

// runReports seeds the fixture with set-based INSERT ... SELECT
// generate_series statements, then times every report (report.Run, as the
// API and the Overview call it) over the last 30 days and the last 366 days,
// one client: after the fold, and with a fold interval of deltas not yet
// folded.
// The baselines are what the ledger reports would cost without the rollup:
// the same figures aggregated from ledger_entries. It ends with
// report.CheckInvariants.
func runReports(ctx context.Context, b *Bench) ([]Row, error) {
	p, err := b.App.Partners.Upsert(ctx, b.DB.Bun, partner.CreateParams{Slug: "bench-reports", Name: "Bench reports"})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "seeding %d ledger entries over %d days...\n", reportsEntries, reportsDays)
	t0 := time.Now()
	today := time.Now().UTC().Truncate(24 * time.Hour)
	if err := seedReports(ctx, b, p.ID, today); err != nil {
		return nil, fmt.Errorf("seed reports: %w", err)
	}
	seeded := time.Since(t0)
	fmt.Fprintf(os.Stderr, "seeded in %s\n", seeded.Round(time.Second))

	t1 := time.Now()
	var folded int64
	if err := b.DB.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		folded, err = report.FoldTx(ctx, tx, time.Now())
		return err
	}); err != nil {
		return nil, err
	}
	foldTime := time.Since(t1)
	var rollupRows int
	if err := b.DB.Pool.QueryRow(ctx, "SELECT count(*) FROM report_days WHERE partner_id = $1", p.ID).Scan(&rollupRows); err != nil {
		return nil, err
	}
	// The app's own fold job (every 10 s) may have folded most deltas during the seed.
	out := []Row{{Scenario: "reports", Variant: "seed (set-based)", Note: fmt.Sprintf("%d entries, %d deliveries in %s; last fold %d deltas in %s; %d rollup rows",
		reportsEntries, reportsDeliveries, seeded.Round(time.Second), folded, foldTime.Round(time.Millisecond), rollupRows)}}

	dur := b.Duration
	if dur > 5*time.Second {
		dur = 5 * time.Second
	}
	periods := []struct {
		name string
		r    report.Range
	}{
		{"30 days", report.Range{From: today.AddDate(0, 0, -29), To: today}},
		{"366 days", report.Range{From: today.AddDate(0, 0, -365), To: today}},
	}
	measure := func(state string) error {
		for _, per := range periods {
			for _, name := range report.Names {
				rate, p50, p99, err := Load(ctx, 1, dur, func(ctx context.Context, _, _ int) error {
					_, err := report.Run(ctx, b.DB.Bun, p.ID, name, per.r)
					return err
				})
				if err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				out = append(out, Row{Scenario: "reports", Variant: fmt.Sprintf("%s, %s, %s", name, per.name, state), Clients: 1, Rate: rate, Unit: "reports/s", P50: p50, P99: p99})
			}
		}
		return nil
	}
	if err := measure("folded"); err != nil {
		return nil, err
	}
	// A fold interval of writes not yet folded: single-row deltas of today.
	if _, err := b.DB.Pool.Exec(ctx, `INSERT INTO report_deltas (partner_id, day, kind, points, entries)
		SELECT $1, $2::date, 'earn', 0, 0 FROM generate_series(1, $3)`, p.ID, today, reportsDeltas); err != nil {
		return nil, err
	}
	if err := measure(fmt.Sprintf("+%d unfolded deltas", reportsDeltas)); err != nil {
		return nil, err
	}

	// Baselines: the ledger figures straight from the entries.
	for _, per := range periods {
		lo, hi := per.r.From, per.r.To.AddDate(0, 0, 1)
		for _, base := range []struct{ name, sql string }{
			{"points from ledger_entries", `SELECT (created_at AT TIME ZONE 'Europe/Paris')::date, kind, sum(points) FROM ledger_entries
				WHERE partner_id = ?0 AND created_at >= ?1 AND created_at < ?2 GROUP BY 1, 2`},
			{"active-users from ledger_entries", `SELECT (created_at AT TIME ZONE 'Europe/Paris')::date, count(DISTINCT user_id) FROM ledger_entries
				WHERE partner_id = ?0 AND created_at >= ?1 AND created_at < ?2 AND kind IN ('earn', 'pending', 'burn') GROUP BY 1`},
			{"webhooks from webhook_deliveries", `SELECT (created_at AT TIME ZONE 'Europe/Paris')::date, count(*) FILTER (WHERE status = 'succeeded'), count(*)
				FROM webhook_deliveries WHERE partner_id = ?0 AND created_at >= ?1 AND created_at < ?2 GROUP BY 1`},
		} {
			rate, p50, p99, err := Load(ctx, 1, dur, func(ctx context.Context, _, _ int) error {
				_, err := b.DB.Bun.NewRaw(base.sql, p.ID, lo, hi).Exec(ctx)
				return err
			})
			if err != nil {
				return nil, fmt.Errorf("baseline %s: %w", base.name, err)
			}
			out = append(out, Row{Scenario: "reports", Variant: fmt.Sprintf("baseline: %s, %s", base.name, per.name), Clients: 1, Rate: rate, Unit: "reports/s", P50: p50, P99: p99,
				Note: "the figures without the rollup"})
		}
	}
	if _, err := b.DB.Pool.Exec(ctx, "DELETE FROM report_deltas WHERE partner_id = $1 AND entries = 0", p.ID); err != nil {
		return nil, err
	}
	if err := report.CheckInvariants(ctx, b.DB.Bun); err != nil {
		return nil, fmt.Errorf("after the reports: %w", err)
	}
	out[0].Note += "; invariants hold"
	return out, nil
}

// seedReports writes the fixture. Entry kinds cycle in blocks of ten per
// user (6 earns of 100, 2 burns of 50, an expiry of 20, an adjustment of
// 10), so every balance ends positive; balance_after is not a running sum (no report reads
// it) and the fixture has no lots, so ledger.CheckInvariants does not apply,
// report.CheckInvariants does (balances are the sums of the entries).
func seedReports(ctx context.Context, b *Bench, partnerID uuid.UUID, today time.Time) error {
	exec := func(q string, args ...any) error {
		_, err := b.DB.Pool.Exec(ctx, q, args...)
		return err
	}
	if err := exec("UPDATE partners SET timezone = 'Europe/Paris' WHERE id = $1", partnerID); err != nil {
		return err
	}
	if err := exec(`INSERT INTO users (partner_id, id, external_id_hash, external_id)
		SELECT $1, gen_random_uuid(), sha256(convert_to('bench-reports-' || g, 'UTF8')), 'r-' || g FROM generate_series(1, $2) g`, partnerID, reportsUsers); err != nil {
		return err
	}
	// The users in a stable order, for generate_series to pick from.
	if err := exec(`CREATE UNLOGGED TABLE bench_report_users AS
		SELECT row_number() OVER (ORDER BY id) - 1 AS n, id FROM users WHERE partner_id = $1`, partnerID); err != nil {
		return err
	}
	if err := exec("CREATE UNIQUE INDEX ON bench_report_users (n)"); err != nil {
		return err
	}
	perDay := reportsEntries / reportsDays
	start := today.AddDate(0, 0, -(reportsDays - 1))
	for d := 0; d < reportsDays; d++ {
		n := perDay
		if d == reportsDays-1 {
			n = reportsEntries - perDay*(reportsDays-1)
		}
		// Entry g of the whole run is of kind g % 10 and user (g / 10) %
		// users: every day has every kind, every user blocks of all ten.
		err := exec(`INSERT INTO ledger_entries (partner_id, user_id, kind, points, balance_after, reason, occurred_at, created_at)
			SELECT $1, u.id, k.kind, k.points, 0, 'bench', t, t
			FROM generate_series($2::bigint, $3::bigint) g
			JOIN bench_report_users u ON u.n = (g / 10) % $4
			CROSS JOIN LATERAL (SELECT g % 10 AS c) c
			CROSS JOIN LATERAL (SELECT CASE WHEN c.c < 6 THEN 'earn' WHEN c.c < 8 THEN 'burn' WHEN c.c = 8 THEN 'expire' ELSE 'adjust' END AS kind,
				CASE WHEN c.c < 6 THEN 100 WHEN c.c < 8 THEN -50 WHEN c.c = 8 THEN -20 ELSE 10 END AS points) k
			CROSS JOIN LATERAL (SELECT $5::timestamptz + (g - $2) * ($6::float8 / ($3 - $2 + 1)) * interval '1 second' AS t) ts`,
			partnerID, int64(d*perDay), int64(d*perDay+n-1), reportsUsers, start.AddDate(0, 0, d), 86400.0)
		if err != nil {
			return fmt.Errorf("day %d: %w", d, err)
		}
	}
	if err := exec(`INSERT INTO balances (partner_id, user_id, points, lifetime_earned)
		SELECT partner_id, user_id, sum(points), sum(points) FILTER (WHERE kind = 'earn') FROM ledger_entries WHERE partner_id = $1 GROUP BY 1, 2`, partnerID); err != nil {
		return err
	}
	if err := exec(`INSERT INTO gifts (partner_id, sku, title, cost_points, code_source)
		SELECT $1, 'G' || g, 'Gift ' || g, 50, 'none' FROM generate_series(1, $2) g`, partnerID, reportsGifts); err != nil {
		return err
	}
	// A voucher per burn, half redeemed a day later; gifts by a skewed pick.
	if err := exec(`INSERT INTO vouchers (partner_id, id, gift_id, user_id, status, cost_points, burn_entry_id, claimed_at, redeemed_at)
		SELECT e.partner_id, gen_random_uuid(), g.id, e.user_id, CASE WHEN e.id % 2 = 0 THEN 'redeemed' ELSE 'claimed' END, 50, e.id, e.created_at,
			CASE WHEN e.id % 2 = 0 THEN e.created_at + interval '1 day' END
		FROM ledger_entries e
		JOIN LATERAL (SELECT id FROM gifts WHERE partner_id = e.partner_id AND sku = 'G' || (1 + (e.id * e.id) % $2)) g ON true
		WHERE e.partner_id = $1 AND e.kind = 'burn'`, partnerID, reportsGifts); err != nil {
		return err
	}
	var endpoint uuid.UUID
	if err := b.DB.Pool.QueryRow(ctx, `INSERT INTO webhook_endpoints (partner_id, url, secret_sealed, enabled)
		VALUES ($1, 'https://bench.invalid/hook', '\x00', false) RETURNING id`, partnerID).Scan(&endpoint); err != nil {
		return err
	}
	// A delivery per event, each with its attempts: 97% succeed at once,
	// the others fail (500) and succeed a minute later.
	if err := exec(`WITH ev AS (
			INSERT INTO events (partner_id, type, data, created_at)
			SELECT $1, 'points.earned', '{}', $3::timestamptz + g * ($4::float8 / $2) * interval '1 second' FROM generate_series(0, $2 - 1) g
			RETURNING id, created_at
		), d AS (
			INSERT INTO webhook_deliveries (partner_id, event_id, endpoint_id, event_type, status, attempt_count, created_at, updated_at, completed_at)
			SELECT $1, ev.id, $5, 'points.earned', 'succeeded', 1, ev.created_at, ev.created_at, ev.created_at FROM ev
			RETURNING id, created_at
		)
		INSERT INTO webhook_attempts (partner_id, delivery_id, attempt, attempted_at, status_code, latency_ms)
		SELECT $1, d.id, a.n, d.created_at + (a.n - 1) * interval '1 minute', a.code, 20
		FROM d CROSS JOIN LATERAL (
			SELECT 1 AS n, CASE WHEN random() < 0.97 THEN 200 ELSE 500 END AS code
		) first
		CROSS JOIN LATERAL (
			SELECT first.n, first.code UNION ALL SELECT 2, 200 WHERE first.code = 500
		) a`, partnerID, reportsDeliveries, start, float64(reportsDays*86400), endpoint); err != nil {
		return err
	}
	if err := exec("DROP TABLE bench_report_users"); err != nil {
		return err
	}
	if err := exec("VACUUM ANALYZE users, balances, ledger_entries, vouchers, events, webhook_deliveries, webhook_attempts, report_deltas, report_days"); err != nil {
		return err
	}
	return exec("CHECKPOINT")
}
