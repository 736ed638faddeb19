package report_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/event"
	"github.com/perkshq/perks/internal/keyring"
	"github.com/perkshq/perks/internal/ledger"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/report"
	"github.com/perkshq/perks/internal/user"
)

type bundle struct {
	db      bun.IDB
	ctx     context.Context
	ledger  *ledger.Service
	users   *user.Service
	partner uuid.UUID
	now     time.Time
	loc     *time.Location
}

// setup makes a partner in New York (UTC-5 in March, before DST) whose
// ledger writes at b.now; db is a rolled-back transaction unless a database
// is given (for tests that commit).
func setup(t testing.TB, db bun.IDB) *bundle {
	t.Helper()
	ctx := context.Background()
	if db == nil {
		db = dbtest.Tx(t)
	}
	keys, err := keyring.New(make([]byte, keyring.KeySize))
	require.NoError(t, err)
	ev := event.NewRecorder()
	p, err := partner.NewService(keys).Upsert(ctx, db, partner.CreateParams{Slug: "rep" + uuid.NewString()[:8], Name: "Reports"})
	require.NoError(t, err)
	_, err = db.NewRaw("UPDATE partners SET timezone = 'America/New_York' WHERE id = ?", p.ID).Exec(ctx)
	require.NoError(t, err)
	loc, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	b := &bundle{db: db, ctx: ctx, ledger: ledger.NewService(ev), users: user.NewService(keys, ev), partner: p.ID, loc: loc}
	b.ledger.Now = func() time.Time { return b.now }
	return b
}

// at sets the clock to a local time of the partner.
func (b *bundle) at(day string, hour, minute int) {
	d, err := time.ParseInLocation("2006-01-02", day, b.loc)
	if err != nil {
		panic(err)
	}
	b.now = d.Add(time.Duration(hour)*time.Hour + time.Duration(minute)*time.Minute)
}

func (b *bundle) tx(t testing.TB, fn func(tx bun.Tx) error) {
	t.Helper()
	require.NoError(t, b.db.RunInTx(b.ctx, nil, func(ctx context.Context, tx bun.Tx) error { return fn(tx) }))
}

func (b *bundle) user(t testing.TB, ext string) uuid.UUID {
	t.Helper()
	var id uuid.UUID
	b.tx(t, func(tx bun.Tx) error {
		res, err := b.users.UpsertTx(b.ctx, tx, b.partner, ext, user.Profile{})
		if err == nil {
			id = res.User.ID
		}
		return err
	})
	return id
}

func (b *bundle) apply(t testing.TB, c ledger.Change) {
	t.Helper()
	b.tx(t, func(tx bun.Tx) error { _, err := b.ledger.ApplyTx(b.ctx, tx, b.partner, c); return err })
}

func day(s string) time.Time { d, _ := time.Parse("2006-01-02", s); return d }

func rng(from, to string) report.Range { return report.Range{From: day(from), To: day(to)} }

func fold(t *testing.T, db bun.IDB, now time.Time) int64 {
	t.Helper()
	var n int64
	require.NoError(t, db.RunInTx(context.Background(), nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		n, err = report.FoldTx(ctx, tx, now)
		return err
	}))
	return n
}

// TestLedgerReportsByDay walks a week of a program through every kind of
// entry and reads the daily figures, before and after folding: days are the
// partner's (an earn at 23:30 in New York, 04:30 UTC the next day, is of
// its New York day), a user is active once a day, and the liability ends at
// the sum of the balances.
func TestLedgerReportsByDay(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	u1, u2 := b.user(t, "u1"), b.user(t, "u2")

	b.at("2026-03-02", 10, 0)
	b.apply(t, ledger.Change{UserID: u2, Kind: ledger.KindEarn, Points: 50, Reason: "order"})
	b.apply(t, ledger.Change{UserID: u1, Kind: ledger.KindEarn, Points: 70, Reason: "order"})
	b.at("2026-03-02", 23, 30)
	b.apply(t, ledger.Change{UserID: u1, Kind: ledger.KindEarn, Points: 30, Reason: "order"})

	b.at("2026-03-03", 9, 0)
	b.apply(t, ledger.Change{UserID: u1, Kind: ledger.KindBurn, Points: 30, Reason: "gift"})
	b.apply(t, ledger.Change{UserID: u2, Kind: ledger.KindAdjust, Points: 20, Reason: "goodwill"})
	b.apply(t, ledger.Change{UserID: u2, Kind: ledger.KindAdjust, Points: -5, Reason: "correction"})
	b.apply(t, ledger.Change{UserID: u1, Kind: ledger.KindEarn, Points: 40, Reason: "order", AvailableAt: b.now.Add(48 * time.Hour)})

	b.at("2026-03-04", 12, 0)
	b.apply(t, ledger.Change{UserID: u2, Kind: ledger.KindEarn, Points: 60, Reason: "order", Reference: "o-1"})
	expires := b.now.Add(36 * time.Hour)
	b.apply(t, ledger.Change{UserID: u2, Kind: ledger.KindEarn, Points: 25, Reason: "promo", ExpiresAt: &expires})
	ten := int64(10)
	b.tx(t, func(tx bun.Tx) error {
		_, err := b.ledger.ReverseTx(b.ctx, tx, b.partner, ledger.Reversal{Reference: "o-1", Points: &ten, Reason: "refund"})
		return err
	})

	b.at("2026-03-06", 8, 0)
	b.tx(t, func(tx bun.Tx) error {
		if _, err := ledger.ActivateDueTx(b.ctx, tx, nil, b.now, 100); err != nil {
			return err
		}
		_, err := ledger.ExpireDueTx(b.ctx, tx, nil, b.now, 100)
		return err
	})

	r := rng("2026-03-01", "2026-03-06")
	check := func(t *testing.T) {
		pts, err := report.Points(b.ctx, b.db, b.partner, r)
		require.NoError(t, err)
		require.Equal(t, []report.PointsDay{
			{Day: "2026-03-01"},
			{Day: "2026-03-02", Issued: 150, Net: 150},
			{Day: "2026-03-03", Issued: 20, Pending: 40, Spent: 30, Adjusted: 5, Net: -15},
			{Day: "2026-03-04", Issued: 85, Reversed: 10, Net: 75},
			{Day: "2026-03-05"},
			{Day: "2026-03-06", Issued: 40, Expired: 25, Net: 15},
		}, pts)

		liab, err := report.Liability(b.ctx, b.db, b.partner, r)
		require.NoError(t, err)
		require.Equal(t, []report.LiabilityDay{
			{Day: "2026-03-01"}, {Day: "2026-03-02", Outstanding: 150}, {Day: "2026-03-03", Outstanding: 135, Pending: 40},
			{Day: "2026-03-04", Outstanding: 210, Pending: 40}, {Day: "2026-03-05", Outstanding: 210, Pending: 40},
			{Day: "2026-03-06", Outstanding: 225},
		}, liab)
		// A range starting later opens with what came before.
		later, err := report.Liability(b.ctx, b.db, b.partner, rng("2026-03-04", "2026-03-04"))
		require.NoError(t, err)
		require.Equal(t, []report.LiabilityDay{{Day: "2026-03-04", Outstanding: 210, Pending: 40}}, later)

		act, err := report.ActiveUsers(b.ctx, b.db, b.partner, r)
		require.NoError(t, err)
		require.Equal(t, []report.ActiveDay{{"2026-03-01", 0}, {"2026-03-02", 2}, {"2026-03-03", 1}, {"2026-03-04", 1}, {"2026-03-05", 0}, {"2026-03-06", 0}}, act)
		require.NoError(t, report.CheckInvariants(b.ctx, b.db))

		// The Overview reads the rollup once and gives the same figures.
		o, err := report.Overview(b.ctx, b.db, b.partner, r.From, r.To)
		require.NoError(t, err)
		require.Equal(t, pts, o.Points)
		require.Equal(t, liab, o.Liability)
		require.Equal(t, act, o.ActiveUsers)
		require.Len(t, o.Webhooks, r.Days())
		require.Equal(t, "2026-03-01", o.From)
	}
	t.Run("unfolded", check)
	require.Positive(t, fold(t, b.db, b.now))
	t.Run("folded", check)
	require.Zero(t, fold(t, b.db, b.now), "a second fold finds nothing")
}

// TestActiveUserOncePerDayAcrossFolds: a user who earns again after the
// fold (and after the day's rows were folded) is still counted once, and
// the fold forgets who was active only on days that are over.
func TestActiveUserOncePerDayAcrossFolds(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	u := b.user(t, "u")
	b.at("2026-03-02", 9, 0)
	b.apply(t, ledger.Change{UserID: u, Kind: ledger.KindEarn, Points: 5, Reason: "visit"})
	fold(t, b.db, b.now)
	b.apply(t, ledger.Change{UserID: u, Kind: ledger.KindEarn, Points: 5, Reason: "visit"})
	b.apply(t, ledger.Change{UserID: u, Kind: ledger.KindBurn, Points: 3, Reason: "gift"})
	act, err := report.ActiveUsers(b.ctx, b.db, b.partner, rng("2026-03-02", "2026-03-02"))
	require.NoError(t, err)
	require.Equal(t, int64(1), act[0].Users)

	var kept int
	require.NoError(t, b.db.NewRaw("SELECT count(*) FROM report_user_days WHERE partner_id = ?", b.partner).Scan(b.ctx, &kept))
	require.Equal(t, 1, kept)
	fold(t, b.db, b.now.AddDate(0, 0, report.UserDaysKept+1))
	require.NoError(t, b.db.NewRaw("SELECT count(*) FROM report_user_days WHERE partner_id = ?", b.partner).Scan(b.ctx, &kept))
	require.Zero(t, kept, "days that are over are forgotten")
	act, err = report.ActiveUsers(b.ctx, b.db, b.partner, rng("2026-03-02", "2026-03-02"))
	require.NoError(t, err)
	require.Equal(t, int64(1), act[0].Users, "the count stays")
}

// TestReportsAreTenantScoped: another partner's entries never show.
func TestReportsAreTenantScoped(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	other := setup(t, b.db)
	b.at("2026-03-02", 9, 0)
	other.now = b.now
	other.apply(t, ledger.Change{UserID: other.user(t, "x"), Kind: ledger.KindEarn, Points: 99, Reason: "order"})
	b.apply(t, ledger.Change{UserID: b.user(t, "y"), Kind: ledger.KindEarn, Points: 1, Reason: "order"})
	o, err := report.Overview(b.ctx, b.db, b.partner, day("2026-03-02"), day("2026-03-02"))
	require.NoError(t, err)
	require.Equal(t, int64(1), o.Points[0].Issued)
	require.Equal(t, int64(1), o.Liability[0].Outstanding)
	require.Equal(t, int64(1), o.ActiveUsers[0].Users)
	require.Equal(t, "America/New_York", o.Timezone)
}

// TestTopGiftsAndWebhooks reads claims, redemptions and webhook delivery
// attempts of the period in the partner's days.
func TestTopGiftsAndWebhooks(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	u := b.user(t, "u")
	b.at("2026-03-02", 9, 0)
	b.apply(t, ledger.Change{UserID: u, Kind: ledger.KindEarn, Points: 1000, Reason: "order"})
	var burn int64
	require.NoError(t, b.db.NewRaw("SELECT max(id) FROM ledger_entries WHERE partner_id = ?", b.partner).Scan(b.ctx, &burn))
	gift := func(sku, title string) uuid.UUID {
		var id uuid.UUID
		require.NoError(t, b.db.NewRaw(`INSERT INTO gifts (partner_id, sku, title, cost_points, code_source) VALUES (?, ?, ?, 10, 'none') RETURNING id`,
			b.partner, sku, title).Scan(b.ctx, &id))
		return id
	}
	g1, g2, g3 := gift("A", "=Coffee"), gift("B", "Tea"), gift("C", "Old")
	n := 0
	voucher := func(g uuid.UUID, claimed string, redeemed string) {
		n++
		c, err := time.ParseInLocation("2006-01-02 15:04", claimed, b.loc)
		require.NoError(t, err)
		var red *time.Time
		status := "claimed"
		if redeemed != "" {
			r, err := time.ParseInLocation("2006-01-02 15:04", redeemed, b.loc)
			require.NoError(t, err)
			red, status = &r, "redeemed"
		}
		_, err = b.db.NewRaw(`INSERT INTO vouchers (partner_id, id, gift_id, user_id, status, cost_points, burn_entry_id, claimed_at, redeemed_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, b.partner, uuid.New(), g, u, status, 10*n, burn, c, red).Exec(b.ctx)
		require.NoError(t, err)
	}
	voucher(g1, "2026-03-02 10:00", "")
	voucher(g1, "2026-03-02 23:59", "")
	// Redeemed later, as the merchant path does: an update of the voucher.
	redeemed, err := time.ParseInLocation("2006-01-02 15:04", "2026-03-03 08:00", b.loc)
	require.NoError(t, err)
	_, err = b.db.NewRaw(`UPDATE vouchers SET otp_attempts = 1 WHERE partner_id = ? AND cost_points = 20`, b.partner).Exec(b.ctx)
	require.NoError(t, err) // an update that is not a redemption counts nothing
	_, err = b.db.NewRaw(`UPDATE vouchers SET status = 'redeemed', redeemed_at = ? WHERE partner_id = ? AND cost_points = 20`, redeemed, b.partner).Exec(b.ctx)
	require.NoError(t, err)
	voucher(g2, "2026-03-03 12:00", "")
	voucher(g3, "2026-02-20 12:00", "2026-03-02 01:00") // claimed before, redeemed in the period
	voucher(g2, "2026-03-04 00:00", "")                 // the day after the period (New York)

	checkGifts := func(t *testing.T) {
		gifts, err := report.TopGifts(b.ctx, b.db, b.partner, rng("2026-03-02", "2026-03-03"), 10)
		require.NoError(t, err)
		require.Equal(t, []report.GiftRow{
			{SKU: "A", Title: "=Coffee", Claims: 2, Points: 30, Redemptions: 1},
			{SKU: "B", Title: "Tea", Claims: 1, Points: 30},
			{SKU: "C", Title: "Old", Redemptions: 1},
		}, gifts)
		res := &report.Result{Rows: gifts}
		require.Equal(t, []string{"A", "'=Coffee", "2", "30", "1"}, res.Table()[1], "a formula-like title is defused in CSV")
		top1, err := report.TopGifts(b.ctx, b.db, b.partner, rng("2026-03-02", "2026-03-03"), 1)
		require.NoError(t, err)
		require.Len(t, top1, 1)
		require.NoError(t, report.CheckInvariants(b.ctx, b.db))
	}
	t.Run("gifts unfolded", checkGifts)
	fold(t, b.db, time.Now())
	t.Run("gifts folded", checkGifts)

	var ep uuid.UUID
	require.NoError(t, b.db.NewRaw(`INSERT INTO webhook_endpoints (partner_id, url, secret_sealed) VALUES (?, 'https://example.com/h', '\x00') RETURNING id`,
		b.partner).Scan(b.ctx, &ep))
	var ev, dl uuid.UUID
	require.NoError(t, b.db.NewRaw(`INSERT INTO events (partner_id, type) VALUES (?, 'points.earned') RETURNING id`, b.partner).Scan(b.ctx, &ev))
	require.NoError(t, b.db.NewRaw(`INSERT INTO webhook_deliveries (partner_id, event_id, endpoint_id, event_type, created_at, updated_at)
		VALUES (?, ?, ?, 'points.earned', now(), now()) RETURNING id`, b.partner, ev, ep).Scan(b.ctx, &dl))
	attempt := func(at string, status *int, failure *string) {
		c, err := time.ParseInLocation("2006-01-02 15:04", at, b.loc)
		require.NoError(t, err)
		_, err = b.db.NewRaw(`INSERT INTO webhook_attempts (partner_id, delivery_id, attempt, attempted_at, status_code, latency_ms, error)
			VALUES (?, ?, 1, ?, ?, 5, ?)`, b.partner, dl, c, status, failure).Exec(b.ctx)
		require.NoError(t, err)
	}
	code := func(c int) *int { return &c }
	timeout := "timeout"
	attempt("2026-03-02 09:00", code(200), nil)
	attempt("2026-03-02 22:00", code(204), nil) // 03:00 UTC the next day
	attempt("2026-03-02 23:00", code(500), nil)
	attempt("2026-03-02 23:30", nil, &timeout)
	attempt("2026-03-03 10:00", code(410), nil)
	attempt("2026-03-05 10:00", code(200), nil) // after the period
	check := func(t *testing.T) {
		hooks, err := report.Webhooks(b.ctx, b.db, b.partner, rng("2026-03-02", "2026-03-04"))
		require.NoError(t, err)
		half, zero := 0.5, 0.0
		require.Equal(t, []report.WebhookDay{
			{Day: "2026-03-02", Attempts: 4, Succeeded: 2, Failed: 2, SuccessRate: &half},
			{Day: "2026-03-03", Attempts: 1, Failed: 1, SuccessRate: &zero},
			{Day: "2026-03-04"},
		}, hooks)
		require.NoError(t, report.CheckInvariants(b.ctx, b.db))
	}
	t.Run("unfolded", check)
	fold(t, b.db, time.Now())
	t.Run("folded", check)
}

func TestParseRange(t *testing.T) {
	t.Parallel()
	today := time.Date(2026, 11, 25, 23, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name, from, to string
		want           report.Range
		code           apperr.Code
		field          string
	}{
		{name: "defaults to the last 30 days", want: rng("2026-10-27", "2026-11-25")},
		{name: "to only", to: "2026-01-31", want: rng("2026-01-02", "2026-01-31")},
		{name: "one day", from: "2026-02-01", to: "2026-02-01", want: rng("2026-02-01", "2026-02-01")},
		{name: "a leap year", from: "2024-01-01", to: "2024-12-31", want: rng("2024-01-01", "2024-12-31")},
		{name: "367 days", from: "2024-01-01", to: "2025-01-01", code: apperr.CodeInvalidDateRange, field: "from"},
		{name: "backwards", from: "2026-02-02", to: "2026-02-01", code: apperr.CodeInvalidDateRange, field: "from"},
		{name: "from after today", from: "2026-12-01", code: apperr.CodeInvalidDateRange, field: "from"},
		{name: "not a date", from: "yesterday", code: apperr.CodeInvalidField, field: "from"},
		{name: "impossible date", to: "2026-02-30", code: apperr.CodeInvalidField, field: "to"},
		{name: "timestamp", to: "2026-02-01T00:00:00Z", code: apperr.CodeInvalidField, field: "to"},
		{name: "short", from: "2026-2-1", code: apperr.CodeInvalidField, field: "from"},
		{name: "before 2000", from: "1999-12-31", code: apperr.CodeInvalidField, field: "from"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := report.ParseRange(tc.from, tc.to, today)
			if tc.code != "" {
				require.Equal(t, tc.code, apperr.CodeOf(err), "%v", err)
				require.Equal(t, tc.field, apperr.As(err).Field)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
	_, err := report.Overview(context.Background(), nil, uuid.New(), day("2025-01-01"), day("2026-01-03"))
	require.Equal(t, apperr.CodeInvalidDateRange, apperr.CodeOf(err))
}

// TestFoldUnderConcurrentWriters: writers earning and spending while folds
// run lose nothing and count nothing twice (deltas are deleted and added in
// one statement).
func TestFoldUnderConcurrentWriters(t *testing.T) {
	t.Parallel()
	db := dbtest.NewDB(t)
	b := setup(t, db.Bun)
	b.at("2026-03-02", 12, 0)
	users := make([]uuid.UUID, 6)
	for i := range users {
		users[i] = b.user(t, fmt.Sprintf("u%d", i))
	}
	const rounds = 25
	var wg sync.WaitGroup
	errs := make(chan error, len(users)+1)
	for _, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				err := db.Bun.RunInTx(b.ctx, nil, func(ctx context.Context, tx bun.Tx) error {
					if _, err := b.ledger.ApplyTx(ctx, tx, b.partner, ledger.Change{UserID: u, Kind: ledger.KindEarn, Points: 3, Reason: "order"}); err != nil {
						return err
					}
					_, err := b.ledger.ApplyTx(ctx, tx, b.partner, ledger.Change{UserID: u, Kind: ledger.KindBurn, Points: 1, Reason: "gift"})
					return err
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	writersDone := make(chan struct{})
	folds := 0
	foldErr := make(chan error, 1)
	go func() {
		for {
			err := db.Bun.RunInTx(b.ctx, nil, func(ctx context.Context, tx bun.Tx) error { _, err := report.FoldTx(ctx, tx, b.now); return err })
			folds++
			select {
			case <-writersDone:
				foldErr <- err
				return
			default:
			}
			if err != nil {
				foldErr <- err
				return
			}
		}
	}()
	wg.Wait()
	close(writersDone)
	require.NoError(t, <-foldErr)
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	t.Logf("%d folds ran alongside the writers", folds)
	require.NoError(t, report.CheckInvariants(b.ctx, db.Bun))
	pts, err := report.Points(b.ctx, db.Bun, b.partner, rng("2026-03-02", "2026-03-02"))
	require.NoError(t, err)
	require.Equal(t, int64(3*rounds*len(users)), pts[0].Issued)
	require.Equal(t, int64(rounds*len(users)), pts[0].Spent)
	act, err := report.ActiveUsers(b.ctx, db.Bun, b.partner, rng("2026-03-02", "2026-03-02"))
	require.NoError(t, err)
	require.Equal(t, int64(len(users)), act[0].Users)
}
