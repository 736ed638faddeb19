package campaign_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/campaign"
	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/keyring"
	"github.com/perkshq/perks/internal/partner"
)

type bundle struct {
	ctx     context.Context
	db      bun.IDB
	svc     *campaign.Service
	now     time.Time
	partner uuid.UUID
	other   uuid.UUID
}

func newPartner(t *testing.T, ctx context.Context, db bun.IDB) uuid.UUID {
	return newPartnerTB(t, ctx, db)
}

func newPartnerTB(t testing.TB, ctx context.Context, db bun.IDB) uuid.UUID {
	t.Helper()
	keys, err := keyring.New(make([]byte, keyring.KeySize))
	require.NoError(t, err)
	p, err := partner.NewService(keys).Upsert(ctx, db, partner.CreateParams{Slug: "p-" + uuid.NewString()[:8], Name: "P"})
	require.NoError(t, err)
	for _, code := range []string{"purchase", "refill", "checkin"} {
		_, err = db.NewRaw("INSERT INTO earning_rules (partner_id, code, name, points, enabled) VALUES (?, ?, ?, 10, true)", p.ID, code, code).Exec(ctx)
		require.NoError(t, err)
	}
	return p.ID
}

func newUser(t *testing.T, ctx context.Context, db bun.IDB, partnerID uuid.UUID, country string, attrs string) uuid.UUID {
	return newUserTB(t, ctx, db, partnerID, country, attrs)
}

func newUserTB(t testing.TB, ctx context.Context, db bun.IDB, partnerID uuid.UUID, country string, attrs string) uuid.UUID {
	t.Helper()
	id := uuid.New()
	var cc any
	if country != "" {
		cc = country
	}
	if attrs == "" {
		attrs = "{}"
	}
	_, err := db.NewRaw("INSERT INTO users (partner_id, id, external_id_hash, country_code, attributes) VALUES (?, ?, ?, ?, ?::jsonb)",
		partnerID, id, []byte(id.String()), cc, attrs).Exec(ctx)
	require.NoError(t, err)
	return id
}

// setup works in a rolled-back transaction with a clock the test moves.
func setup(t *testing.T) *bundle {
	t.Helper()
	b := &bundle{ctx: context.Background(), now: time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)}
	b.db = dbtest.Tx(t)
	b.svc = &campaign.Service{Now: func() time.Time { return b.now }}
	b.partner = newPartner(t, b.ctx, b.db)
	b.other = newPartner(t, b.ctx, b.db)
	return b
}

func (b *bundle) put(t *testing.T, code string, in campaign.Input) *campaign.Campaign {
	t.Helper()
	if in.Name == "" {
		in.Name = code
	}
	if in.Stacking == "" {
		in.Stacking = campaign.StackAdditive
	}
	in.Enabled = true
	c, _, err := b.svc.PutTx(b.ctx, b.db, b.partner, code, in)
	require.NoError(t, err)
	return c
}

func (b *bundle) apply(t *testing.T, userID uuid.UUID, f campaign.Facts) []campaign.Award {
	t.Helper()
	awards, err := b.svc.ApplyTx(b.ctx, b.db, b.partner, userID, f)
	require.NoError(t, err)
	return awards
}

func points(awards []campaign.Award) map[string]int64 {
	out := map[string]int64{}
	for _, a := range awards {
		out[a.Code] = a.Points
	}
	return out
}

func TestPutGetListDelete(t *testing.T) {
	t.Parallel()
	b := setup(t)
	from, until := b.now, b.now.Add(48*time.Hour)
	in := campaign.Input{
		Name: "Double weekend", StartsAt: &from, EndsAt: &until, Actions: []string{"refill", "purchase"},
		MultiplierHundredths: ptr(200), Condition: "user.tier == 'gold'", BudgetPoints: ptr(int64(10_000)),
		UserCapPoints: ptr(int64(500)), Stacking: campaign.StackBestOf, Enabled: true,
	}
	c, created, err := b.svc.PutTx(b.ctx, b.db, b.partner, "double", in)
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, 1, c.Version)
	require.Equal(t, []string{"purchase", "refill"}, c.Actions)
	require.Equal(t, "2", c.Multiplier())

	// Spend some budget, then replace: the version moves, spent stays.
	u := newUser(t, b.ctx, b.db, b.partner, "SG", "")
	require.Equal(t, map[string]int64{"double": 100}, points(b.apply(t, u, campaign.Facts{Action: "purchase", BasePoints: 100, User: &campaign.UserFacts{Tier: "gold"}})))
	in.BonusPoints, in.MultiplierHundredths = ptr(int64(50)), nil
	c, created, err = b.svc.PutTx(b.ctx, b.db, b.partner, "double", in)
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, 2, c.Version)
	require.Equal(t, int64(100), c.SpentPoints)
	require.Equal(t, "", c.Multiplier())

	got, err := b.svc.Get(b.ctx, b.db, b.partner, "double")
	require.NoError(t, err)
	require.Equal(t, int64(50), *got.BonusPoints)
	list, err := b.svc.List(b.ctx, b.db, b.partner)
	require.NoError(t, err)
	require.Len(t, list, 1)

	// Tenant isolation: the other partner sees nothing and deletes nothing.
	_, err = b.svc.Get(b.ctx, b.db, b.other, "double")
	require.Equal(t, apperr.CodeNotFound, apperr.CodeOf(err))
	list, err = b.svc.List(b.ctx, b.db, b.other)
	require.NoError(t, err)
	require.Empty(t, list)
	require.Equal(t, apperr.CodeNotFound, apperr.CodeOf(b.svc.DeleteTx(b.ctx, b.db, b.other, "double")))
	ou := newUser(t, b.ctx, b.db, b.other, "SG", "")
	awards, err := b.svc.ApplyTx(b.ctx, b.db, b.other, ou, campaign.Facts{Action: "purchase", BasePoints: 100, User: &campaign.UserFacts{Tier: "gold"}})
	require.NoError(t, err)
	require.Empty(t, awards)

	require.NoError(t, b.svc.DeleteTx(b.ctx, b.db, b.partner, "double"))
	_, err = b.svc.Get(b.ctx, b.db, b.partner, "double")
	require.Equal(t, apperr.CodeNotFound, apperr.CodeOf(err))
	require.Equal(t, apperr.CodeNotFound, apperr.CodeOf(b.svc.DeleteTx(b.ctx, b.db, b.partner, "double")))
}

// TestPutRefuses: each bad input is refused with its code and field and
// changes nothing.
func TestPutRefuses(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.put(t, "spent", campaign.Input{BonusPoints: ptr(int64(300)), BudgetPoints: ptr(int64(1000))})
	u := newUser(t, b.ctx, b.db, b.partner, "", "")
	b.apply(t, u, campaign.Facts{Action: "purchase", BasePoints: 10})
	from := b.now
	ok := func() campaign.Input {
		return campaign.Input{Name: "X", BonusPoints: ptr(int64(5)), Stacking: campaign.StackAdditive, Enabled: true}
	}
	tests := []struct {
		name  string
		code  string
		edit  func(*campaign.Input)
		err   apperr.Code
		field string
	}{
		{"bad code", "Bad Code", func(*campaign.Input) {}, apperr.CodeInvalidField, "code"},
		{"no name", "x", func(in *campaign.Input) { in.Name = " " }, apperr.CodeInvalidField, "name"},
		{"until before from", "x", func(in *campaign.Input) { in.StartsAt, in.EndsAt = &from, ptr(from.Add(-time.Second)) }, apperr.CodeInvalidField, "until"},
		{"until equals from", "x", func(in *campaign.Input) { in.StartsAt, in.EndsAt = &from, &from }, apperr.CodeInvalidField, "until"},
		{"bad action code", "x", func(in *campaign.Input) { in.Actions = []string{"Nope!"} }, apperr.CodeInvalidField, "actions[0]"},
		{"unknown action", "x", func(in *campaign.Input) { in.Actions = []string{"purchase", "ghost"} }, apperr.CodeInvalidField, "actions[1]"},
		{"other partner's rule only", "x", func(in *campaign.Input) { in.Actions = []string{"nothere"} }, apperr.CodeInvalidField, "actions[0]"},
		{"repeated action", "x", func(in *campaign.Input) { in.Actions = []string{"purchase", "purchase"} }, apperr.CodeInvalidField, "actions"},
		{"neither multiplier nor bonus", "x", func(in *campaign.Input) { in.BonusPoints = nil }, apperr.CodeMissingField, "multiplier"},
		{"both", "x", func(in *campaign.Input) { in.MultiplierHundredths = ptr(200) }, apperr.CodeInvalidField, "bonus"},
		{"multiplier 1", "x", func(in *campaign.Input) { in.BonusPoints, in.MultiplierHundredths = nil, ptr(100) }, apperr.CodeInvalidField, "multiplier"},
		{"bonus 0", "x", func(in *campaign.Input) { in.BonusPoints = ptr(int64(0)) }, apperr.CodeInvalidField, "bonus"},
		{"budget 0", "x", func(in *campaign.Input) { in.BudgetPoints = ptr(int64(0)) }, apperr.CodeInvalidField, "budget"},
		{"budget below spent", "spent", func(in *campaign.Input) { in.BudgetPoints = ptr(int64(299)) }, apperr.CodeInvalidField, "budget"},
		{"cap 0", "x", func(in *campaign.Input) { in.UserCapPoints = ptr(int64(0)) }, apperr.CodeInvalidField, "perUserCap"},
		{"stacking", "x", func(in *campaign.Input) { in.Stacking = "max" }, apperr.CodeInvalidField, "stacking"},
		{"condition syntax", "x", func(in *campaign.Input) { in.Condition = "user.tier ==" }, apperr.CodeInvalidCondition, "condition"},
		{"condition cost", "spent", func(in *campaign.Input) {
			in.Condition = "earn.metadata.a.all(x, earn.metadata.b.all(y, earn.metadata.c.all(z, x == y)))"
		}, apperr.CodeConditionTooCostly, "condition"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := dbtest.Snapshot(t, b.db)
			in := ok()
			tc.edit(&in)
			_, _, err := b.svc.PutTx(b.ctx, b.db, b.partner, tc.code, in)
			e := apperr.As(err)
			require.NotNil(t, e, "%v", err)
			require.Equal(t, tc.err, e.Code, e.Message)
			require.Equal(t, tc.field, e.Field, e.Message)
			require.Equal(t, before, dbtest.Snapshot(t, b.db))
		})
	}
	// "nothere" exists for the other partner only.
	_, err := b.db.NewRaw("INSERT INTO earning_rules (partner_id, code, name, points, enabled) VALUES (?, 'nothere', 'n', 1, true)", b.other).Exec(b.ctx)
	require.NoError(t, err)
	in := ok()
	in.Actions = []string{"nothere"}
	_, _, err = b.svc.PutTx(b.ctx, b.db, b.partner, "x", in)
	require.Equal(t, apperr.CodeInvalidField, apperr.CodeOf(err))
}

// TestApplyWindow: the window holds from `from` (inclusive) until `until`
// (exclusive), by the service's clock or the earn's instant.
func TestApplyWindow(t *testing.T) {
	t.Parallel()
	b := setup(t)
	from := b.now.Add(time.Hour)
	until := from.Add(24 * time.Hour)
	b.put(t, "window", campaign.Input{StartsAt: &from, EndsAt: &until, BonusPoints: ptr(int64(7))})
	u := newUser(t, b.ctx, b.db, b.partner, "", "")
	f := campaign.Facts{Action: "purchase", BasePoints: 10}
	for _, tc := range []struct {
		at   time.Time
		want int
	}{
		{from.Add(-time.Nanosecond), 0},
		{from, 1},
		{until.Add(-time.Nanosecond), 1},
		{until, 0},
	} {
		b.now = tc.at
		require.Len(t, b.apply(t, u, f), tc.want, "at %s", tc.at)
		// Facts.At wins over the clock.
		b.now = from.Add(-time.Hour)
		g := f
		g.At = tc.at
		require.Len(t, b.apply(t, u, g), tc.want, "facts at %s", tc.at)
	}
	// Disabled: never.
	b.now = from
	c, err := b.svc.Get(b.ctx, b.db, b.partner, "window")
	require.NoError(t, err)
	_, _, err = b.svc.PutTx(b.ctx, b.db, b.partner, "window", campaign.Input{Name: c.Name, StartsAt: &from, EndsAt: &until, BonusPoints: ptr(int64(7)), Stacking: campaign.StackAdditive, Enabled: false})
	require.NoError(t, err)
	require.Empty(t, b.apply(t, u, f))
}

// TestApplyStacking: additive campaigns add up, bestOf ones compete (the
// best pays, after caps), rules and conditions select, multipliers round
// down.
func TestApplyStacking(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.put(t, "a-double", campaign.Input{MultiplierHundredths: ptr(200)})                                   // +base
	b.put(t, "b-bonus", campaign.Input{BonusPoints: ptr(int64(25)), Actions: []string{"purchase"}})        // +25 on purchase
	b.put(t, "c-best-150", campaign.Input{MultiplierHundredths: ptr(150), Stacking: campaign.StackBestOf}) // +base/2
	b.put(t, "d-best-bonus", campaign.Input{BonusPoints: ptr(int64(40)), Stacking: campaign.StackBestOf, UserCapPoints: ptr(int64(60))})
	b.put(t, "e-gold-sg", campaign.Input{MultiplierHundredths: ptr(125), Condition: "user.tier == 'gold' && user.country == 'SG'"})
	u := newUser(t, b.ctx, b.db, b.partner, "SG", `{"segment":"vip"}`)

	// base 101: double +101, bonus +25, best of (+50 [50.5 rounded down], +40) = +50.
	require.Equal(t, map[string]int64{"a-double": 101, "b-bonus": 25, "c-best-150": 50},
		points(b.apply(t, u, campaign.Facts{Action: "purchase", BasePoints: 101})))
	// base 60 on refill: double +60, best of (+30, +40) = +40 (d's cap: 60 left).
	require.Equal(t, map[string]int64{"a-double": 60, "d-best-bonus": 40},
		points(b.apply(t, u, campaign.Facts{Action: "refill", BasePoints: 60})))
	// Again: d's cap has 20 left, so c (+30) is now the best.
	require.Equal(t, map[string]int64{"a-double": 60, "c-best-150": 30},
		points(b.apply(t, u, campaign.Facts{Action: "refill", BasePoints: 60})))
	// A gold user in SG: +25% (2.5 rounded down); d's last 20 beat c's 5.
	got := b.apply(t, u, campaign.Facts{Action: "checkin", BasePoints: 10, User: &campaign.UserFacts{Country: "SG", Tier: "gold"}})
	require.Equal(t, map[string]int64{"a-double": 10, "d-best-bonus": 20, "e-gold-sg": 2}, points(got))
	require.Equal(t, 125, *got[2].MultiplierHundredths)
	require.Equal(t, "e-gold-sg", got[2].Name)
}

// TestApplyUserCap: a per-user cap pays partially, then nothing, and only
// for that user.
func TestApplyUserCap(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.put(t, "capped", campaign.Input{BonusPoints: ptr(int64(40)), UserCapPoints: ptr(int64(100))})
	u1 := newUser(t, b.ctx, b.db, b.partner, "", "")
	u2 := newUser(t, b.ctx, b.db, b.partner, "", "")
	f := campaign.Facts{Action: "purchase", BasePoints: 10}
	var got []int64
	for range 4 {
		a := b.apply(t, u1, f)
		if len(a) == 0 {
			got = append(got, 0)
			continue
		}
		got = append(got, a[0].Points)
		require.Equal(t, a[0].Points < 40, a[0].Limited)
	}
	require.Equal(t, []int64{40, 40, 20, 0}, got)
	require.Equal(t, map[string]int64{"capped": 40}, points(b.apply(t, u2, f)))
}

// TestApplyBudgetAndDryRun: the last award of a budget is partial; a dry
// run answers the same awards as a real apply would and changes nothing.
func TestApplyBudgetAndDryRun(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.put(t, "budget", campaign.Input{MultiplierHundredths: ptr(300), BudgetPoints: ptr(int64(500))})
	u := newUser(t, b.ctx, b.db, b.partner, "", "")
	f := campaign.Facts{Action: "purchase", BasePoints: 100} // +200
	dry := f
	dry.DryRun = true
	before := dbtest.Snapshot(t, b.db)
	require.Equal(t, map[string]int64{"budget": 200}, points(b.apply(t, u, dry)))
	require.Equal(t, before, dbtest.Snapshot(t, b.db))

	require.Equal(t, map[string]int64{"budget": 200}, points(b.apply(t, u, f)))
	require.Equal(t, map[string]int64{"budget": 200}, points(b.apply(t, u, f)))
	require.Equal(t, map[string]int64{"budget": 100}, points(b.apply(t, u, dry)))
	last := b.apply(t, u, f)
	require.Equal(t, map[string]int64{"budget": 100}, points(last))
	require.True(t, last[0].Limited)
	require.Empty(t, b.apply(t, u, f))
	c, err := b.svc.Get(b.ctx, b.db, b.partner, "budget")
	require.NoError(t, err)
	require.Equal(t, int64(500), c.SpentPoints)
}

// TestBudgetStorm: 50 goroutines earn concurrently, each in its own
// committed transaction, against a budget of 10,000 and a per-user cap;
// the campaign pays exactly its budget (the last award partial), every
// user exactly their cap at most, and spent equals the sum of the awards
// the committed transactions got.
func TestBudgetStorm(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.NewDB(t)
	svc := campaign.NewService()
	p := newPartner(t, ctx, db.Bun)
	in := campaign.Input{Name: "Storm", MultiplierHundredths: ptr(200), BudgetPoints: ptr(int64(10_000)), UserCapPoints: ptr(int64(700)), Stacking: campaign.StackAdditive, Enabled: true}
	_, _, err := svc.PutTx(ctx, db.Bun, p, "storm", in)
	require.NoError(t, err)
	users := make([]uuid.UUID, 25)
	for i := range users {
		users[i] = newUser(t, ctx, db.Bun, p, "", "")
	}

	const workers, earns = 50, 10
	var total atomic.Int64
	perUser := make([]atomic.Int64, len(users))
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ui := w % len(users) // two workers per user: the cap is contended too
			for range earns {
				err := db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
					awards, err := svc.ApplyTx(ctx, tx, p, users[ui], campaign.Facts{Action: "purchase", BasePoints: 70})
					if err != nil {
						return err
					}
					for _, a := range awards {
						defer total.Add(a.Points)
						defer perUser[ui].Add(a.Points)
					}
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	// 500 earns of +70 ask for 35,000; 25 users x 700 = 17,500 of caps.
	c, err := svc.Get(ctx, db.Bun, p, "storm")
	require.NoError(t, err)
	require.Equal(t, int64(10_000), c.SpentPoints)
	require.Equal(t, int64(10_000), total.Load())
	var sum int64
	for i := range perUser {
		require.LessOrEqual(t, perUser[i].Load(), int64(700))
		sum += perUser[i].Load()
	}
	require.Equal(t, int64(10_000), sum)
	var totals int64
	require.NoError(t, db.Bun.NewRaw("SELECT coalesce(sum(points), 0) FROM campaign_user_totals WHERE partner_id = ?", p).Scan(ctx, &totals))
	require.Equal(t, int64(10_000), totals)
	// The budget's slots: all there, each within its share, spent in all.
	rows := slotsOf(t, ctx, db.Bun, p, "storm")
	require.Len(t, rows, campaign.BudgetSlots)
	for _, r := range rows {
		require.LessOrEqual(t, r.Spent, r.Budget)
	}
	budget, spent := sumSlots(rows)
	require.Equal(t, int64(10_000), budget)
	require.Equal(t, int64(10_000), spent)
}

// TestUserCapStorm: one user, 40 concurrent earns, a cap of 250: exactly
// 250 is paid.
func TestUserCapStorm(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.NewDB(t)
	svc := campaign.NewService()
	p := newPartner(t, ctx, db.Bun)
	_, _, err := svc.PutTx(ctx, db.Bun, p, "cap", campaign.Input{Name: "Cap", BonusPoints: ptr(int64(30)), UserCapPoints: ptr(int64(250)), Stacking: campaign.StackAdditive, Enabled: true})
	require.NoError(t, err)
	u := newUser(t, ctx, db.Bun, p, "", "")
	var total atomic.Int64
	var wg sync.WaitGroup
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			assert := db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
				awards, err := svc.ApplyTx(ctx, tx, p, u, campaign.Facts{Action: "refill", BasePoints: 1})
				for _, a := range awards {
					defer total.Add(a.Points)
				}
				return err
			})
			if assert != nil {
				t.Error(assert)
			}
		}()
	}
	wg.Wait()
	require.Equal(t, int64(250), total.Load())
}

// TestWorkedExample is docs/program.md's double-points weekend for gold
// members in Singapore, with a budget and a per-user cap.
func TestWorkedExample(t *testing.T) {
	t.Parallel()
	b := setup(t)
	sg, err := time.LoadLocation("Asia/Singapore")
	require.NoError(t, err)
	from := time.Date(2026, 12, 5, 0, 0, 0, 0, sg)
	until := time.Date(2026, 12, 7, 0, 0, 0, 0, sg)
	require.Equal(t, "2026-12-04T16:00:00Z", from.UTC().Format(time.RFC3339))
	b.put(t, "double-weekend", campaign.Input{Name: "Double points weekend", StartsAt: &from, EndsAt: &until,
		Actions: []string{"purchase"}, MultiplierHundredths: ptr(200), Condition: "user.tier == 'gold' && user.country == 'SG'",
		BudgetPoints: ptr(int64(10_000)), UserCapPoints: ptr(int64(500))})
	member := newUser(t, b.ctx, b.db, b.partner, "SG", "")
	gold := &campaign.UserFacts{Country: "SG", Tier: "gold"}
	b.now = time.Date(2026, 12, 5, 10, 0, 0, 0, sg)

	a := b.apply(t, member, campaign.Facts{Action: "purchase", BasePoints: 120, User: gold})
	require.Equal(t, []campaign.Award{{Code: "double-weekend", Name: "Double points weekend", MultiplierHundredths: ptr(200), Points: 120}}, a)
	a = b.apply(t, member, campaign.Facts{Action: "purchase", BasePoints: 400, User: gold})
	require.Equal(t, int64(380), a[0].Points)
	require.True(t, a[0].Limited)
	require.Empty(t, b.apply(t, member, campaign.Facts{Action: "purchase", BasePoints: 10, User: gold}))

	other := newUser(t, b.ctx, b.db, b.partner, "SG", "")
	require.Empty(t, b.apply(t, other, campaign.Facts{Action: "purchase", BasePoints: 100, User: &campaign.UserFacts{Country: "SG", Tier: "silver"}}))
	require.Empty(t, b.apply(t, other, campaign.Facts{Action: "purchase", BasePoints: 100, User: &campaign.UserFacts{Country: "MY", Tier: "gold"}}))
	require.Empty(t, b.apply(t, other, campaign.Facts{Action: "checkin", BasePoints: 100, User: gold}))
	b.now = until
	require.Empty(t, b.apply(t, other, campaign.Facts{Action: "purchase", BasePoints: 100, User: gold}))

	c, err := b.svc.Get(b.ctx, b.db, b.partner, "double-weekend")
	require.NoError(t, err)
	require.Equal(t, int64(500), c.SpentPoints)
}
