package export_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/export"
)

// pageWriter collects a Stream's bytes and the page it announced.
type pageWriter struct {
	bytes.Buffer
	page export.Page
}

func (w *pageWriter) Begin(p export.Page) error { w.page = p; return nil }

// TestEncoderMatchesSQL: the feed encoded in Go from plain columns is byte
// for byte what PostgreSQL rendered when the feed was one SQL query
// (StreamSQL, the old Stream kept as the oracle), in NDJSON and CSV, for a
// first export (its big streams on lanes and as cursors), its pages and an
// incremental export, in UTC and in a session TimeZone with half-hour and
// historical offsets. The dataset exercises every field: profiles with
// unicode, control characters, quotes and spreadsheet formulas; earns with
// breakdowns, burns, adjustments; tiers (a row and the base tier);
// referral codes, referrers and referees; lots expiring on more days than
// the line lists and pending points; vouchers in several statuses; an
// anonymised user, an erased user, a user whose only change is a tier.
func TestEncoderMatchesSQL(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	ctx := context.Background()
	p := env.Acme.Partner
	a := env.App
	ok := func(res *apptest.Response, want int) {
		t.Helper()
		require.Equal(t, want, res.StatusCode, "%s", res.Body)
	}
	exec := func(q string, args ...any) {
		t.Helper()
		_, err := env.DB.Pool.Exec(ctx, q, args...)
		require.NoError(t, err)
	}
	ok(env.Partner("acme", http.MethodPut, "/integrations/tiers", []byte(`{"tiers":[{"code":"member","name":"Member"},{"code":"silver","name":"Silver","threshold":500}]}`)), http.StatusOK)
	ok(env.Partner("acme", http.MethodPut, "/integrations/referral-policy", []byte(`{"qualifyAction":"purchase","referrerPoints":50,"refereePoints":10}`)), http.StatusOK)
	ok(env.Partner("acme", http.MethodPut, "/integrations/program", []byte(`{"expiryMode":"rolling","expiryDays":365}`)), http.StatusOK)

	upsert := func(body string) {
		t.Helper()
		res := env.Partner("acme", http.MethodPost, "/integrations/users", []byte(body))
		require.Contains(t, []int{http.StatusCreated, http.StatusOK}, res.StatusCode, "%s", res.Body)
	}
	earn := func(ext string, pts int) {
		t.Helper()
		ok(env.Partner("acme", http.MethodPost, "/integrations/actions", []byte(fmt.Sprintf(`{"externalUserId":%q,"action":"purchase","points":%d,"createUser":true}`, ext, pts))), http.StatusCreated)
	}
	for i := 0; i < 14; i++ {
		upsert(fmt.Sprintf(`{"externalUserId":"d%02d","email":"d%02d@example.com","displayName":"Zoë \"%d\", ünïcode 😀","locale":"fr-FR","countryCode":"SG"}`, i, i, i))
		earn(fmt.Sprintf("d%02d", i), 100+i)
	}
	upsert(`{"externalUserId":"joe","referralCode":"JOETESTERSON"}`)
	upsert(`{"externalUserId":"amy","referredBy":"joetesterson"}`)
	earn("amy", 120) // qualifies and rewards the referral
	earn("d01", 600) // silver
	ok(env.Partner("acme", http.MethodPost, "/integrations/users/d02/adjustments", []byte(`{"points":-30,"reason":"correction \\ back\\slash"}`)), http.StatusCreated)
	// Text no API accepts, straight in the table: formulas for the CSV
	// guard, control characters and quotes for the JSON escapes.
	exec(`UPDATE users SET external_id = '=1+2', email = '+1@example.com', display_name = '-x "quoted", ' || chr(1) || chr(9) || chr(10) || chr(13) || chr(8) || chr(12) || chr(127) || '\end',
		first_name = '@SUM(A1)', last_name = chr(9) || 'tab', locale = chr(13) || 'cr' WHERE partner_id = $1 AND external_id = 'd03'`, p.ID)
	// Lots expiring on four days (the line lists three) and on the same
	// day twice, for d04.
	for _, days := range []int{10, 10, 20, 30, 40} {
		exec(`INSERT INTO point_lots (partner_id, user_id, points, remaining, available_at, expires_at)
			SELECT partner_id, id, 7, 7, now(), date_trunc('day', now()) + make_interval(days => $2) + interval '13 hours 30 minutes 0.25 seconds' FROM users WHERE partner_id = $1 AND external_id = 'd04'`, p.ID, days)
	}
	// Vouchers: claimed, redeemed, cancelled.
	coffee, err := a.Catalog.GiftBySKU(ctx, a.DB.Bun, p.ID, "coffee")
	require.NoError(t, err)
	for _, ext := range []string{"d06", "d06", "d07"} {
		earn(ext, 200)
		require.NoError(t, a.DB.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			u, err := a.Users.Get(ctx, tx, p.ID, ext)
			if err != nil {
				return err
			}
			_, err = a.Vouchers.ClaimTx(ctx, tx, p, u, coffee.ID)
			return err
		}))
	}
	exec(`UPDATE vouchers SET status = 'redeemed', redeemed_at = now() WHERE partner_id = $1 AND seq = (SELECT min(seq) FROM vouchers WHERE partner_id = $1)`, p.ID)
	exec(`UPDATE vouchers SET status = 'cancelled', cancelled_at = now(), cancel_reason = 'test' WHERE partner_id = $1 AND seq = (SELECT max(seq) FROM vouchers WHERE partner_id = $1)`, p.ID)
	// Pending points.
	ok(env.Partner("acme", http.MethodPut, "/integrations/program", []byte(`{"expiryMode":"rolling","expiryDays":365,"pendingDays":3}`)), http.StatusOK)
	earn("d05", 40)
	// Anonymised and erased users.
	ok(env.Partner("acme", http.MethodDelete, "/integrations/users/d08", nil), http.StatusNoContent)
	ok(env.Partner("acme", http.MethodDelete, "/integrations/users/d09?mode=erase", nil), http.StatusNoContent)
	env.WaitExportable()

	utc := env.App.Export
	cfg, err := pgxpool.ParseConfig(env.DBURL)
	require.NoError(t, err)
	cfg.ConnConfig.RuntimeParams["timezone"] = "America/St_Johns" // -03:30, and -03:30:52 before 1935
	cfg.MaxConns = 8
	zoned, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(zoned.Close)
	stJohns := &export.Service{Pool: zoned, Keys: utc.Keys}
	// A timestamp from before 1935 (an offset with seconds) and one with
	// microseconds.
	exec(`UPDATE users SET created_at = '1930-06-01 12:00:00.123456+00' WHERE partner_id = $1 AND external_id = 'd10'`, p.ID)
	env.WaitExportable()

	watermark := func() uint64 {
		var x string
		require.NoError(t, env.DB.Pool.QueryRow(ctx, "SELECT pg_snapshot_xmin(pg_current_snapshot())::text").Scan(&x))
		n, err := strconv.ParseUint(x, 10, 64)
		require.NoError(t, err)
		return n
	}
	// compare runs both feeds from cur (its To pinned, so both read the
	// same range) in every page of limit and returns the last cursor.
	compare := func(name string, s *export.Service, cur export.Cursor, limit int) export.Cursor {
		t.Helper()
		for _, format := range []export.Format{export.NDJSON, export.CSV} {
			c := cur
			for page := 0; ; page++ {
				var got, want pageWriter
				n, err := s.Stream(ctx, c, limit, format, &got)
				require.NoError(t, err, name)
				wn, err := s.StreamSQL(ctx, c, limit, format, &want)
				require.NoError(t, err, name)
				require.Equal(t, want.String(), got.String(), "%s, format %d, page %d", name, format, page)
				require.Equal(t, wn, n)
				require.Equal(t, want.page, got.page)
				if !got.page.HasMore {
					break
				}
				c = got.page.Next
			}
		}
		return export.Cursor{PartnerID: cur.PartnerID, From: cur.To}
	}
	first := export.Cursor{PartnerID: p.ID, To: watermark()}
	var all pageWriter
	_, err = utc.Stream(ctx, first, 0, export.NDJSON, &all)
	require.NoError(t, err)
	for _, want := range []string{`"erased" : true`, `"anonymised" : true`, `"tier" : "silver"`, `"tier" : "member"`, `"referredBy" : "JOETESTERSON"`,
		`"status" : "rewarded"`, `"status" : "redeemed"`, `"status" : "cancelled"`, `"status" : "claimed"`, `"expiringPoints" : [{"points" : 14`,
		`"breakdown" : {`, `\u0001\t\n\r\b\f`, `"pendingPoints" : 40`, `13:30:00.25+00:00`, `12:00:00.123456+00:00`} {
		require.Contains(t, all.String(), want, "the dataset covers it")
	}
	require.Equal(t, 17, strings.Count(all.String(), "\n"), "16 users, the cursor")

	compare("first, lanes", utc, first, 0)
	export.SetLanes(utc, false)
	compare("first, cursors", utc, first, 0)
	export.SetLanes(utc, true)
	compare("first, pages", utc, first, 5)
	compare("first, America/St_Johns", stJohns, first, 0)
	next := compare("first, pages, America/St_Johns", stJohns, first, 3)

	// Changes since: an earn, a profile, a tier alone (a replaced list
	// moves d01 down without an entry), a voucher's status, an erasure, a
	// new user, a referral code.
	earn("d11", 5)
	upsert(`{"externalUserId":"d12","displayName":"+renamed"}`)
	ok(env.Partner("acme", http.MethodPut, "/integrations/tiers", []byte(`{"tiers":[{"code":"member","name":"Member"},{"code":"gold","name":"Gold","threshold":5000}]}`)), http.StatusOK)
	exec(`UPDATE vouchers SET status = 'redeemed', redeemed_at = now() WHERE partner_id = $1 AND status = 'claimed'`, p.ID)
	ok(env.Partner("acme", http.MethodDelete, "/integrations/users/d13?mode=erase", nil), http.StatusNoContent)
	earn("new", 1)
	upsert(`{"externalUserId":"d00","referralCode":"ZERO"}`)
	env.WaitExportable()
	next.To = watermark()
	compare("incremental", utc, next, 0)
	compare("incremental, pages", utc, next, 2)
	compare("incremental, America/St_Johns", stJohns, next, 0)
	var inc pageWriter
	_, err = utc.Stream(ctx, next, 0, export.CSV, &inc)
	require.NoError(t, err)
	require.Contains(t, inc.String(), `"'+renamed"`, "the CSV guard")
	require.Equal(t, 1+7+1, strings.Count(inc.String(), "\n"), "header, d00 d01 d06 d11 d12 d13 new, cursor:\n%s", inc.String())

	// Nothing since: an empty export.
	compare("empty", utc, export.Cursor{PartnerID: p.ID, From: next.To, To: next.To}, 0)
}
