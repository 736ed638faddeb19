// Package report computes a partner's program figures per day (points
// issued, spent, expired and reversed; outstanding points; active users;
// top gifts; webhook success) for the partner API's
// GET /integrations/reports/{name} and the portal's Overview, and renders
// them as accessible server-side SVG charts (svg.go).
//
// The ledger figures never scan ledger entries: statement-level triggers on
// ledger_entries (migration 20261127300000_reports) append per-day sums to
// report_deltas, FoldTx folds them into report_days (the
// FoldWorker, every minute), and the readers add the deltas not yet folded,
// so a report is exact and reads at most a few thousand rows per year of
// history; webhook delivery attempts (a trigger on webhook_attempts) and
// gift claims and redemptions (triggers on vouchers) are counted the same
// way. Days are the partner's calendar days (see docs/reports.md).
package report

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/partner"
)

// Report names, as in GET /integrations/reports/{name}.
const (
	NamePoints      = "points"
	NameLiability   = "liability"
	NameActiveUsers = "active-users"
	NameTopGifts    = "top-gifts"
	NameWebhooks    = "webhooks"
)

// Names lists every report, in the order of docs/reports.md.
var Names = []string{NamePoints, NameLiability, NameActiveUsers, NameTopGifts, NameWebhooks}

// MaxDays is the longest period a report covers (a leap year).
const MaxDays = 366

// DefaultDays is the period when neither end is given: the last 30 days.
const DefaultDays = 30

// TopGiftsLimit is how many gifts top-gifts lists.
const TopGiftsLimit = 10

const dayLayout = "2006-01-02"

// Range is a period of whole calendar days, both ends included, in the
// partner's time zone. From and To are dates at midnight UTC (only the date
// counts).
type Range struct {
	From, To time.Time
}

// Days is how many days the range covers.
func (r Range) Days() int { return int(r.To.Sub(r.From).Hours()/24) + 1 }

func (r Range) day(i int) time.Time { return r.From.AddDate(0, 0, i) }

// ParseRange reads the query parameters from and to (YYYY-MM-DD), both
// included. Omitted, to is today (the partner's current date) and from is
// DefaultDays-1 days before to. Refused: a malformed or impossible date
// (INVALID_FIELD naming the parameter), from after to or a period longer
// than MaxDays (INVALID_DATE_RANGE). Dates before 2000 or after 9999 are
// malformed.
func ParseRange(from, to string, today time.Time) (Range, error) {
	today = dateOf(today)
	var r Range
	var err error
	if to == "" {
		r.To = today
	} else if r.To, err = parseDay("to", to); err != nil {
		return Range{}, err
	}
	if from == "" {
		r.From = r.To.AddDate(0, 0, -(DefaultDays - 1))
	} else if r.From, err = parseDay("from", from); err != nil {
		return Range{}, err
	}
	if r.From.After(r.To) {
		return Range{}, apperr.Field(apperr.CodeInvalidDateRange, "from", "from (%s) is after to (%s)", r.From.Format(dayLayout), r.To.Format(dayLayout))
	}
	if r.Days() > MaxDays {
		return Range{}, apperr.Field(apperr.CodeInvalidDateRange, "from", "the period covers %d days; at most %d", r.Days(), MaxDays)
	}
	return r, nil
}

func parseDay(field, v string) (time.Time, error) {
	d, err := time.Parse(dayLayout, v)
	if err != nil || len(v) != len(dayLayout) || d.Year() < 2000 {
		return time.Time{}, apperr.Field(apperr.CodeInvalidField, field, "%s must be a date as YYYY-MM-DD (from 2000-01-01)", field)
	}
	return d, nil
}

func dateOf(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// Today is the current date in the time zone tz (UTC when tz is unknown).
func Today(now time.Time, tz string) time.Time { return dateOf(now.In(location(tz))) }

func location(tz string) *time.Location { return partner.Location(tz) }

// PointsDay is one day of points movements, each a positive number of
// points. Net is the change of the outstanding (spendable) points that day.
type PointsDay struct {
	Day string `json:"day"`
	// Issued: points that became spendable: earns, activations of held or
	// delayed earns, positive adjustments.
	Issued int64 `json:"issued"`
	// Pending: earns held or delayed (not yet issued).
	Pending int64 `json:"pending"`
	// Spent: burns (gift claims).
	Spent int64 `json:"spent"`
	// Refunded: burns given back (cancelled or expired vouchers).
	Refunded int64 `json:"refunded"`
	Expired  int64 `json:"expired"`
	// Reversed: points of earns taken back (refunded orders), pending ones
	// included; Cancelled: held earns cancelled before they activated.
	Reversed  int64 `json:"reversed"`
	Cancelled int64 `json:"cancelled"`
	// Adjusted: negative adjustments.
	Adjusted int64 `json:"adjusted"`
	// Erased: spendable points of users erased that day.
	Erased int64 `json:"erased"`
	Net    int64 `json:"net"`
}

// LiabilityDay is what users held at the end of a day: Outstanding
// spendable points (the partner's liability) and Pending points (held or
// delayed earns, not yet spendable).
type LiabilityDay struct {
	Day         string `json:"day"`
	Outstanding int64  `json:"outstanding"`
	Pending     int64  `json:"pending"`
}

// ActiveDay counts the users who earned (a held earn too) or spent on a day.
type ActiveDay struct {
	Day   string `json:"day"`
	Users int64  `json:"users"`
}

// GiftRow is one gift of top-gifts: claims (and the points they cost)
// made, and vouchers redeemed, in the period.
type GiftRow struct {
	SKU         string `json:"sku"`
	Title       string `json:"title"`
	Claims      int64  `json:"claims"`
	Points      int64  `json:"points"`
	Redemptions int64  `json:"redemptions"`
}

// WebhookDay counts the webhook delivery attempts made on a day: Succeeded
// when the endpoint answered 2xx, Failed otherwise (an error status, a
// timeout, a refused connection). SuccessRate is Succeeded / Attempts, nil
// on a day without attempts.
type WebhookDay struct {
	Day         string   `json:"day"`
	Attempts    int64    `json:"attempts"`
	Succeeded   int64    `json:"succeeded"`
	Failed      int64    `json:"failed"`
	SuccessRate *float64 `json:"successRate"`
}

// kinds that move the spendable balance, and those that move pending points.
var (
	availableKinds = map[string]bool{"earn": true, "activate": true, "adjust_up": true, "adjust_down": true, "burn": true,
		"refund": true, "expire": true, "reverse": true, "erased": true}
	pendingKinds = map[string]bool{"pending": true, "cancel": true, "reverse_pending": true, "erased_pending": true}
)

// Each pending lot that activates moves its points from pending to
// available: activate counts in both, negatively for pending.

type kindSum struct {
	Day    time.Time `bun:"day"`
	Kind   string    `bun:"kind"`
	Points int64     `bun:"points"`
}

// ledgerDays reads the rollup (folded days plus deltas not yet folded) of
// the range, per day and kind (ledger and webhook kinds).
func ledgerDays(ctx context.Context, db bun.IDB, partnerID uuid.UUID, r Range) ([]kindSum, error) {
	var rows []kindSum
	err := db.NewRaw(`SELECT day, kind, sum(points)::bigint AS points FROM (
		SELECT day, kind, points FROM report_days WHERE partner_id = ?0 AND day BETWEEN ?1 AND ?2
		UNION ALL
		SELECT day, kind, points FROM report_deltas WHERE partner_id = ?0 AND day BETWEEN ?1 AND ?2
	) x GROUP BY 1, 2`, partnerID, r.From, r.To).Scan(ctx, &rows)
	if err != nil {
		return nil, fmt.Errorf("read daily ledger figures: %w", err)
	}
	return rows, nil
}

func index(r Range, day time.Time) int { return int(dateOf(day).Sub(r.From).Hours() / 24) }

// Points gives the points movements of every day of the range.
func Points(ctx context.Context, db bun.IDB, partnerID uuid.UUID, r Range) ([]PointsDay, error) {
	rows, err := ledgerDays(ctx, db, partnerID, r)
	if err != nil {
		return nil, err
	}
	return pointsOf(rows, r), nil
}

func pointsOf(rows []kindSum, r Range) []PointsDay {
	out := make([]PointsDay, r.Days())
	for i := range out {
		out[i].Day = r.day(i).Format(dayLayout)
	}
	for _, s := range rows {
		i := index(r, s.Day)
		if i < 0 || i >= len(out) {
			continue
		}
		d := &out[i]
		switch s.Kind {
		case "earn", "activate", "adjust_up":
			d.Issued += s.Points
		case "pending":
			d.Pending += s.Points
		case "burn":
			d.Spent -= s.Points
		case "refund":
			d.Refunded += s.Points
		case "expire":
			d.Expired -= s.Points
		case "reverse", "reverse_pending":
			d.Reversed -= s.Points
		case "cancel":
			d.Cancelled -= s.Points
		case "adjust_down":
			d.Adjusted -= s.Points
		case "erased":
			d.Erased -= s.Points
		}
		if availableKinds[s.Kind] {
			d.Net += s.Points
		}
	}
	return out
}

// Liability gives the outstanding and pending points at the end of every day
// of the range: the sums of everything before the range, then day by day.
// With every delta folded or not, it ends at the sum of the balances
// (CheckInvariants).
func Liability(ctx context.Context, db bun.IDB, partnerID uuid.UUID, r Range) ([]LiabilityDay, error) {
	opening, err := openingSums(ctx, db, partnerID, r)
	if err != nil {
		return nil, err
	}
	rows, err := ledgerDays(ctx, db, partnerID, r)
	if err != nil {
		return nil, err
	}
	return liabilityOf(opening, rows, r), nil
}

// openingSums sums the rollup per kind before the range.
func openingSums(ctx context.Context, db bun.IDB, partnerID uuid.UUID, r Range) ([]kindSum, error) {
	var opening []kindSum
	err := db.NewRaw(`SELECT ?1::date AS day, kind, sum(points)::bigint AS points FROM (
		SELECT kind, points FROM report_days WHERE partner_id = ?0 AND day < ?1
		UNION ALL
		SELECT kind, points FROM report_deltas WHERE partner_id = ?0 AND day < ?1
	) x GROUP BY kind`, partnerID, r.From).Scan(ctx, &opening)
	if err != nil {
		return nil, fmt.Errorf("read opening ledger figures: %w", err)
	}
	return opening, nil
}

func liabilityOf(opening, rows []kindSum, r Range) []LiabilityDay {
	avail, pend := make([]int64, r.Days()), make([]int64, r.Days())
	var a0, p0 int64
	add := func(kind string, pts int64, a, p *int64) {
		if availableKinds[kind] {
			*a += pts
		}
		if pendingKinds[kind] {
			*p += pts
		}
		if kind == "activate" {
			*p -= pts
		}
	}
	for _, s := range opening {
		add(s.Kind, s.Points, &a0, &p0)
	}
	for _, s := range rows {
		if i := index(r, s.Day); i >= 0 && i < len(avail) {
			add(s.Kind, s.Points, &avail[i], &pend[i])
		}
	}
	out := make([]LiabilityDay, r.Days())
	for i := range out {
		a0 += avail[i]
		p0 += pend[i]
		out[i] = LiabilityDay{Day: r.day(i).Format(dayLayout), Outstanding: a0, Pending: p0}
	}
	return out
}

// ActiveUsers gives how many users earned or spent on every day of the range.
func ActiveUsers(ctx context.Context, db bun.IDB, partnerID uuid.UUID, r Range) ([]ActiveDay, error) {
	rows, err := ledgerDays(ctx, db, partnerID, r)
	if err != nil {
		return nil, err
	}
	return activeOf(rows, r), nil
}

func activeOf(rows []kindSum, r Range) []ActiveDay {
	out := make([]ActiveDay, r.Days())
	for i := range out {
		out[i].Day = r.day(i).Format(dayLayout)
	}
	for _, s := range rows {
		if i := index(r, s.Day); s.Kind == "active" && i >= 0 && i < len(out) {
			out[i].Users += s.Points
		}
	}
	return out
}

// TopGifts lists up to limit gifts by claims made in the range (then
// redemptions, then SKU), with the vouchers of each redeemed in the range.
// Gifts neither claimed nor redeemed are left out. It reads the gift rollup
// (folded and not), never the vouchers.
func TopGifts(ctx context.Context, db bun.IDB, partnerID uuid.UUID, r Range, limit int) ([]GiftRow, error) {
	out := []GiftRow{}
	err := db.NewRaw(`WITH x AS (
		SELECT gift_id, sum(claims) AS claims, sum(points) AS points, sum(redemptions) AS redemptions FROM (
			SELECT gift_id, claims, points, redemptions FROM report_gift_days WHERE partner_id = ?0 AND day BETWEEN ?1 AND ?2
			UNION ALL
			SELECT gift_id, claims, points, redemptions FROM report_gift_deltas WHERE partner_id = ?0 AND day BETWEEN ?1 AND ?2
		) d GROUP BY gift_id
	)
	SELECT g.sku, g.title, x.claims, x.points, x.redemptions
	FROM x JOIN gifts g ON g.partner_id = ?0 AND g.id = x.gift_id
	WHERE x.claims > 0 OR x.redemptions > 0
	ORDER BY x.claims DESC, x.redemptions DESC, g.sku LIMIT ?3`, partnerID, r.From, r.To, limit).Scan(ctx, &out)
	if err != nil {
		return nil, fmt.Errorf("read top gifts: %w", err)
	}
	return out, nil
}

// Webhooks counts the delivery attempts of every day of the range (from
// the rollup the trigger on webhook_attempts keeps).
func Webhooks(ctx context.Context, db bun.IDB, partnerID uuid.UUID, r Range) ([]WebhookDay, error) {
	rows, err := ledgerDays(ctx, db, partnerID, r)
	if err != nil {
		return nil, err
	}
	return webhooksOf(rows, r), nil
}

func webhooksOf(rows []kindSum, r Range) []WebhookDay {
	out := make([]WebhookDay, r.Days())
	for i := range out {
		out[i].Day = r.day(i).Format(dayLayout)
	}
	for _, s := range rows {
		i := index(r, s.Day)
		if i < 0 || i >= len(out) {
			continue
		}
		switch s.Kind {
		case "webhook_succeeded":
			out[i].Succeeded += s.Points
		case "webhook_failed":
			out[i].Failed += s.Points
		}
	}
	for i := range out {
		d := &out[i]
		d.Attempts = d.Succeeded + d.Failed
		if d.Attempts > 0 {
			rate := float64(d.Succeeded) / float64(d.Attempts)
			d.SuccessRate = &rate
		}
	}
	return out
}

// Result is one report as the partner API answers it.
type Result struct {
	Report   string `json:"report"`
	From     string `json:"from"`
	To       string `json:"to"`
	Timezone string `json:"timezone"`
	// Rows is a []PointsDay, []LiabilityDay, []ActiveDay, []GiftRow or
	// []WebhookDay, by report.
	Rows any `json:"rows"`
}

// Timezone reads the partner's time zone (UTC when unknown to Go).
func Timezone(ctx context.Context, db bun.IDB, partnerID uuid.UUID) (string, error) {
	var tz string
	if err := db.NewRaw("SELECT timezone FROM partners WHERE id = ?", partnerID).Scan(ctx, &tz); err != nil {
		return "", fmt.Errorf("read partner time zone: %w", err)
	}
	return location(tz).String(), nil
}

// Run computes the report called name (REPORT_NOT_FOUND for an unknown one).
func Run(ctx context.Context, db bun.IDB, partnerID uuid.UUID, name string, r Range) (*Result, error) {
	tz, err := Timezone(ctx, db, partnerID)
	if err != nil {
		return nil, err
	}
	res := &Result{Report: name, From: r.From.Format(dayLayout), To: r.To.Format(dayLayout), Timezone: tz}
	switch name {
	case NamePoints:
		res.Rows, err = Points(ctx, db, partnerID, r)
	case NameLiability:
		res.Rows, err = Liability(ctx, db, partnerID, r)
	case NameActiveUsers:
		res.Rows, err = ActiveUsers(ctx, db, partnerID, r)
	case NameTopGifts:
		res.Rows, err = TopGifts(ctx, db, partnerID, r, TopGiftsLimit)
	case NameWebhooks:
		res.Rows, err = Webhooks(ctx, db, partnerID, r)
	default:
		return nil, apperr.New(apperr.CodeReportNotFound, "no report is called %q", name)
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

// Table is a report as CSV records: a header, then one record per row,
// numbers in plain decimal (a missing success rate is empty). Free text (a
// gift's title) starting with =, +, -, @, tab or carriage return gets a
// leading single quote, so a spreadsheet shows it instead of running it as
// a formula (as the export's CSV does).
func (res *Result) Table() [][]string {
	i := strconv.FormatInt
	switch rows := res.Rows.(type) {
	case []PointsDay:
		out := [][]string{{"day", "issued", "pending", "spent", "refunded", "expired", "reversed", "cancelled", "adjusted", "erased", "net"}}
		for _, d := range rows {
			out = append(out, []string{d.Day, i(d.Issued, 10), i(d.Pending, 10), i(d.Spent, 10), i(d.Refunded, 10), i(d.Expired, 10),
				i(d.Reversed, 10), i(d.Cancelled, 10), i(d.Adjusted, 10), i(d.Erased, 10), i(d.Net, 10)})
		}
		return out
	case []LiabilityDay:
		out := [][]string{{"day", "outstanding", "pending"}}
		for _, d := range rows {
			out = append(out, []string{d.Day, i(d.Outstanding, 10), i(d.Pending, 10)})
		}
		return out
	case []ActiveDay:
		out := [][]string{{"day", "users"}}
		for _, d := range rows {
			out = append(out, []string{d.Day, i(d.Users, 10)})
		}
		return out
	case []GiftRow:
		out := [][]string{{"sku", "title", "claims", "points", "redemptions"}}
		for _, g := range rows {
			out = append(out, []string{csvText(g.SKU), csvText(g.Title), i(g.Claims, 10), i(g.Points, 10), i(g.Redemptions, 10)})
		}
		return out
	case []WebhookDay:
		out := [][]string{{"day", "attempts", "succeeded", "failed", "successRate"}}
		for _, d := range rows {
			rate := ""
			if d.SuccessRate != nil {
				rate = strconv.FormatFloat(*d.SuccessRate, 'f', 4, 64)
			}
			out = append(out, []string{d.Day, i(d.Attempts, 10), i(d.Succeeded, 10), i(d.Failed, 10), rate})
		}
		return out
	}
	return nil
}

// OverviewData is every figure of the portal's Overview page.
type OverviewData struct {
	From, To    string
	Timezone    string
	Points      []PointsDay
	Liability   []LiabilityDay
	ActiveUsers []ActiveDay
	TopGifts    []GiftRow
	Webhooks    []WebhookDay
}

// Overview computes every report of the period from..to (dates, only the
// day counts; refused as ParseRange refuses). The portal renders it with
// (*OverviewData).Charts.
func Overview(ctx context.Context, db bun.IDB, partnerID uuid.UUID, from, to time.Time) (*OverviewData, error) {
	r := Range{From: dateOf(from), To: dateOf(to)}
	if r.From.After(r.To) || r.Days() > MaxDays {
		return nil, apperr.New(apperr.CodeInvalidDateRange, "the period must run forward and cover at most %d days", MaxDays)
	}
	tz, err := Timezone(ctx, db, partnerID)
	if err != nil {
		return nil, err
	}
	o := &OverviewData{From: r.From.Format(dayLayout), To: r.To.Format(dayLayout), Timezone: tz}
	// One read of the day rollup serves four reports.
	rows, err := ledgerDays(ctx, db, partnerID, r)
	if err != nil {
		return nil, err
	}
	opening, err := openingSums(ctx, db, partnerID, r)
	if err != nil {
		return nil, err
	}
	o.Points, o.Liability, o.ActiveUsers, o.Webhooks = pointsOf(rows, r), liabilityOf(opening, rows, r), activeOf(rows, r), webhooksOf(rows, r)
	if o.TopGifts, err = TopGifts(ctx, db, partnerID, r, TopGiftsLimit); err != nil {
		return nil, err
	}
	return o, nil
}

func csvText(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}
