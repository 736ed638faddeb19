package report

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// KindRequests is the rollup kind of the requests a partner made (points
// holds the count): its back end's REST calls, its users' REST and GraphQL
// calls and its merchants' calls, each counted once it authenticated.
const KindRequests = "requests"

// RequestCounter counts each partner's requests in memory and flushes the
// counts into report_deltas, where they fold into report_days like every
// other figure. Counting is one map read and one atomic add: the request
// path never waits on the database (BenchmarkRequestCounter). A replica
// that dies loses at most FlushEvery of counts; a flush lands on the day
// (in the partner's time zone) of its own time, so requests of the last
// seconds before midnight may count on the next day.
type RequestCounter struct {
	counts sync.Map // partner id (string) -> *atomic.Int64
}

// FlushEvery is how often the server flushes the counts.
const FlushEvery = 10 * time.Second

// Count adds one request of the partner.
func (c *RequestCounter) Count(partnerID string) {
	v, ok := c.counts.Load(partnerID)
	if !ok {
		v, _ = c.counts.LoadOrStore(partnerID, new(atomic.Int64))
	}
	v.(*atomic.Int64).Add(1)
}

// Flush writes the counts made since the last flush as one delta per
// partner, on now's day in each partner's time zone, and says how many
// requests it wrote. When the write fails the counts are put back for the
// next flush.
func (c *RequestCounter) Flush(ctx context.Context, db bun.IDB, now time.Time) (int64, error) {
	var ids []uuid.UUID
	var ns []int64
	var total int64
	c.counts.Range(func(k, v any) bool {
		n := v.(*atomic.Int64).Swap(0)
		if n == 0 {
			return true
		}
		id, err := uuid.Parse(k.(string))
		if err != nil {
			return true // not a partner id: never counted by the server
		}
		ids, ns = append(ids, id), append(ns, n)
		total += n
		return true
	})
	if len(ids) == 0 {
		return 0, nil
	}
	_, err := db.NewRaw(`INSERT INTO report_deltas (partner_id, day, kind, points, entries)
		SELECT p.id, (?::timestamptz AT TIME ZONE p.timezone)::date, ?, v.n, v.n
		FROM unnest(?::uuid[], ?::bigint[]) AS v (id, n) JOIN partners p ON p.id = v.id`,
		now.UTC(), KindRequests, pgdialect.Array(ids), pgdialect.Array(ns)).Exec(ctx)
	if err != nil {
		for i, id := range ids {
			v, _ := c.counts.LoadOrStore(id.String(), new(atomic.Int64))
			v.(*atomic.Int64).Add(ns[i])
		}
		return 0, fmt.Errorf("flush request counts: %w", err)
	}
	return total, nil
}

// UsageDay is one day of a partner's usage, as the console charts it.
type UsageDay struct {
	Day string `json:"day"`
	// Requests authenticated as the partner, its users or its merchants.
	Requests int64 `json:"requests"`
	// Earns: earn entries written (held earns included).
	Earns int64 `json:"earns"`
	// ActiveUsers: users who earned or spent.
	ActiveUsers int64 `json:"activeUsers"`
}

// Usage gives a partner's requests, earns and active users for every day of
// the range, from the rollup (folded days and deltas not yet folded).
func Usage(ctx context.Context, db bun.IDB, partnerID uuid.UUID, r Range) ([]UsageDay, error) {
	var rows []struct {
		Day     time.Time `bun:"day"`
		Kind    string    `bun:"kind"`
		Points  int64     `bun:"points"`
		Entries int64     `bun:"entries"`
	}
	err := db.NewRaw(`SELECT day, kind, sum(points)::bigint AS points, sum(entries)::bigint AS entries FROM (
		SELECT day, kind, points, entries FROM report_days WHERE partner_id = ?0 AND day BETWEEN ?1 AND ?2 AND kind IN (?3)
		UNION ALL
		SELECT day, kind, points, entries FROM report_deltas WHERE partner_id = ?0 AND day BETWEEN ?1 AND ?2 AND kind IN (?3)
	) x GROUP BY 1, 2`, partnerID, r.From, r.To, bun.List([]string{KindRequests, "earn", "pending", "active"})).Scan(ctx, &rows)
	if err != nil {
		return nil, fmt.Errorf("read usage: %w", err)
	}
	out := make([]UsageDay, r.Days())
	for i := range out {
		out[i].Day = r.day(i).Format(dayLayout)
	}
	for _, s := range rows {
		i := index(r, s.Day)
		if i < 0 || i >= len(out) {
			continue
		}
		switch s.Kind {
		case KindRequests:
			out[i].Requests += s.Points
		case "earn", "pending":
			out[i].Earns += s.Entries
		case "active":
			out[i].ActiveUsers += s.Points
		}
	}
	return out, nil
}

// UsageCharts renders a partner's usage as the console shows it: requests,
// earns and active users per day.
func UsageCharts(days []UsageDay, timezone string) []Chart {
	labels := make([]string, len(days))
	var req, earns, active []float64
	for i, d := range days {
		labels[i] = d.Day
		req = append(req, float64(d.Requests))
		earns = append(earns, float64(d.Earns))
		active = append(active, float64(d.ActiveUsers))
	}
	period := fmt.Sprintf("Days in %s", timezone)
	return []Chart{
		{Name: KindRequests, Title: "Requests per day", SVG: LineChartSVG(LineChart{ID: "chart-requests", Title: "Requests per day",
			Desc: "API requests made by the partner's back end, its users and its merchants each day", XLabel: period, YLabel: "Requests",
			Labels: labels, Series: []Series{{"Requests", req}}})},
		{Name: "earns", Title: "Earns per day", SVG: LineChartSVG(LineChart{ID: "chart-earns", Title: "Earns per day",
			Desc: "Earns recorded each day, held earns included", XLabel: period, YLabel: "Earns", Labels: labels,
			Series: []Series{{"Earns", earns}}})},
		{Name: NameActiveUsers, Title: "Active users", SVG: LineChartSVG(LineChart{ID: "chart-active", Title: "Active users",
			Desc: "Users who earned or spent points each day", XLabel: period, YLabel: "Users", Labels: labels,
			Series: []Series{{"Active users", active}}})},
	}
}

// PartnerWebhooks is one partner's webhook delivery attempts over a period,
// for the console's health page.
type PartnerWebhooks struct {
	PartnerID uuid.UUID `bun:"partner_id"`
	Slug      string    `bun:"slug"`
	Status    string    `bun:"status"`
	Attempts  int64     `bun:"attempts"`
	Failed    int64     `bun:"failed"`
}

// FailureRate is Failed / Attempts (0 without attempts).
func (p PartnerWebhooks) FailureRate() float64 {
	if p.Attempts == 0 {
		return 0
	}
	return float64(p.Failed) / float64(p.Attempts)
}

// WebhookFailures gives every partner's webhook delivery attempts and
// failures on the days of r (each partner's own calendar days), partners
// with the most failures first, from the rollup.
func WebhookFailures(ctx context.Context, db bun.IDB, r Range) ([]PartnerWebhooks, error) {
	var out []PartnerWebhooks
	err := db.NewRaw(`WITH x AS (
		SELECT partner_id, kind, points FROM report_days WHERE day BETWEEN ?0 AND ?1 AND kind IN ('webhook_succeeded', 'webhook_failed')
		UNION ALL
		SELECT partner_id, kind, points FROM report_deltas WHERE day BETWEEN ?0 AND ?1 AND kind IN ('webhook_succeeded', 'webhook_failed')
	)
	SELECT p.id AS partner_id, p.slug, p.status,
		coalesce(sum(x.points), 0)::bigint AS attempts,
		coalesce(sum(x.points) FILTER (WHERE x.kind = 'webhook_failed'), 0)::bigint AS failed
	FROM partners p LEFT JOIN x ON x.partner_id = p.id
	GROUP BY p.id, p.slug, p.status
	ORDER BY failed DESC, attempts DESC, p.slug`, r.From, r.To).Scan(ctx, &out)
	if err != nil {
		return nil, fmt.Errorf("read webhook failures: %w", err)
	}
	return out, nil
}
