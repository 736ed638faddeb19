package tier_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/earning"
	"github.com/perkshq/perks/internal/event"
	"github.com/perkshq/perks/internal/keyring"
	"github.com/perkshq/perks/internal/ledger"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/program"
	"github.com/perkshq/perks/internal/tier"
	"github.com/perkshq/perks/internal/user"
)

// TestParseMultiplier: two decimals at most, 1.00 to 10.00, exact.
func TestParseMultiplier(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want int // 0: refused
	}{
		{"1", 100}, {"1.5", 150}, {"1.25", 125}, {"10", 1000}, {"10.00", 1000}, {"2.05", 205}, {"1.10", 110},
		{"1.255", 0}, {"0.99", 0}, {"10.01", 0}, {"1e0", 0}, {"-1", 0}, {"1.", 0}, {".5", 0}, {"100", 0}, {"", 0},
	}
	for _, c := range cases {
		got, err := tier.ParseMultiplier("m", json.Number(c.in))
		if c.want == 0 {
			require.Equal(t, apperr.CodeInvalidField, apperr.CodeOf(err), c.in)
			continue
		}
		require.NoError(t, err, c.in)
		require.Equal(t, c.want, got, c.in)
	}
	require.Equal(t, json.Number("1.5"), tier.FormatMultiplier(150))
	require.Equal(t, json.Number("2"), tier.FormatMultiplier(200))
	require.Equal(t, json.Number("1.05"), tier.FormatMultiplier(105))
}

func in(code string, threshold int64) tier.Input {
	return tier.Input{Code: code, Name: strings.ToUpper(code), Threshold: threshold, Multiplier: 100}
}

// TestValidate: one bad list per row, each naming its field.
func TestValidate(t *testing.T) {
	t.Parallel()
	many := make([]tier.Input, tier.MaxTiers+1)
	for i := range many {
		many[i] = in(fmt.Sprintf("t%d", i), int64(i*10))
	}
	cases := []struct {
		name  string
		list  []tier.Input
		field string
	}{
		{"ok", []tier.Input{in("base", 0), in("silver", 100), in("gold", 1000)}, ""},
		{"empty is ok", nil, ""},
		{"first not zero", []tier.Input{in("base", 5)}, "tiers[0].threshold"},
		{"not increasing", []tier.Input{in("base", 0), in("silver", 100), in("gold", 100)}, "tiers[2].threshold"},
		{"decreasing", []tier.Input{in("base", 0), in("silver", 100), in("gold", 50)}, "tiers[2].threshold"},
		{"duplicate code", []tier.Input{in("base", 0), in("base", 100)}, "tiers[1].code"},
		{"bad code", []tier.Input{in("Base", 0)}, "tiers[0].code"},
		{"no name", []tier.Input{{Code: "base", Multiplier: 100}}, "tiers[0].name"},
		{"control char in name", []tier.Input{{Code: "base", Name: "a\x00b", Multiplier: 100}}, "tiers[0].name"},
		{"long benefits", []tier.Input{{Code: "base", Name: "B", Multiplier: 100, Benefits: strings.Repeat("x", 2001)}}, "tiers[0].benefits"},
		{"multiplier low", []tier.Input{{Code: "base", Name: "B", Multiplier: 99}}, "tiers[0].multiplier"},
		{"multiplier high", []tier.Input{{Code: "base", Name: "B", Multiplier: 1001}}, "tiers[0].multiplier"},
		{"threshold too high", []tier.Input{in("base", 0), in("x", tier.MaxThreshold+1)}, "tiers[1].threshold"},
		{"too many", many, "tiers"},
	}
	for _, c := range cases {
		err := tier.Validate(c.list)
		if c.field == "" {
			require.NoError(t, err, c.name)
			continue
		}
		e := apperr.As(err)
		require.NotNil(t, e, c.name)
		require.Equal(t, apperr.CodeInvalidField, e.Code, c.name)
		require.Equal(t, c.field, e.Field, c.name)
	}
	for _, c := range []struct {
		basis, down string
		grace       int
		ok          bool
	}{
		{"lifetime", "never", 0, true}, {"rolling12", "periodEnd", 30, true}, {"calendarYear", "immediate", 0, true},
		{"monthly", "never", 0, false}, {"lifetime", "sometimes", 0, false}, {"rolling12", "periodEnd", 366, false},
		{"rolling12", "immediate", 5, false}, {"rolling12", "periodEnd", -1, false},
	} {
		err := tier.ValidatePolicy(c.basis, c.down, c.grace)
		require.Equal(t, c.ok, err == nil, "%+v: %v", c, err)
	}
}

// bundle is one test's partner, services and clock on a rolled-back tx.
type bundle struct {
	ctx     context.Context
	tx      bun.Tx
	now     time.Time
	earning *earning.Service
	tiers   *tier.Service
	users   *user.Service
	partner *partner.Partner
	keys    *keyring.Keyring
}

func setup(t *testing.T) *bundle {
	t.Helper()
	tx := dbtest.Tx(t)
	return setupOn(t, tx)
}

func setupOn(t testing.TB, tx bun.Tx) *bundle {
	t.Helper()
	ctx := context.Background()
	keys, err := keyring.New(make([]byte, keyring.KeySize))
	require.NoError(t, err)
	b := &bundle{ctx: ctx, tx: tx, now: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC), keys: keys}
	clock := func() time.Time { return b.now }
	events := &event.Recorder{Now: clock}
	b.users = &user.Service{Keys: keys, Events: events, Now: clock}
	b.tiers = &tier.Service{Events: events, Now: clock}
	b.earning = &earning.Service{Ledger: &ledger.Service{Events: events, Now: clock}, Users: b.users, Tiers: b.tiers, Now: clock}
	b.partner, err = partner.NewService(keys).Upsert(ctx, tx, partner.CreateParams{Slug: "t-" + uuid.NewString()[:8], Name: "T"})
	require.NoError(t, err)
	_, _, err = b.earning.PutRule(ctx, tx, b.partner.ID, "buy", earning.RuleInput{Name: "buy", Points: 1, VariablePoints: true, Enabled: true})
	require.NoError(t, err)
	return b
}

// standard tiers: base 0, silver 100, gold 1000.
func (b *bundle) putTiers(t testing.TB) {
	t.Helper()
	_, err := b.tiers.PutTx(b.ctx, b.tx, b.partner.ID, []tier.Input{in("base", 0), in("silver", 100), {Code: "gold", Name: "Gold", Threshold: 1000, Multiplier: 150}})
	require.NoError(t, err)
}

func (b *bundle) policy(t testing.TB, basis, down string, grace, pendingDays int) {
	t.Helper()
	_, err := (&program.Service{}).Put(b.ctx, b.tx, b.partner.ID, program.Input{
		ExpiryMode: program.ExpiryNone, PendingDays: pendingDays, NegativeBalance: program.NegativeForbid, ExpiryWarningDays: 30,
		TierBasis: basis, TierDowngrade: down, TierGraceDays: grace,
	})
	require.NoError(t, err)
}

func (b *bundle) user(t testing.TB, ext string) uuid.UUID {
	t.Helper()
	u, err := b.users.UpsertTx(b.ctx, b.tx, b.partner.ID, ext, user.Profile{})
	require.NoError(t, err)
	return u.User.ID
}

func (b *bundle) earn(t testing.TB, ext string, points int64) {
	t.Helper()
	_, err := b.earning.EarnTx(b.ctx, b.tx, b.partner, earning.EarnParams{ExternalUserID: ext, Code: "buy", Points: &points})
	require.NoError(t, err)
	b.now = b.now.Add(time.Second) // events in order
}

// reverse writes a reverse entry of points (the reversal work writes them
// through its own path; only the entry matters to tiers).
func (b *bundle) reverse(t testing.TB, u uuid.UUID, points int64) {
	t.Helper()
	_, err := b.tx.ExecContext(b.ctx, `INSERT INTO ledger_entries (partner_id, user_id, kind, points, balance_after, occurred_at, created_at)
		VALUES (?, ?, 'reverse', ?, 0, ?, ?)`, b.partner.ID, u, -points, b.now, b.now)
	require.NoError(t, err)
	b.now = b.now.Add(time.Second)
}

func (b *bundle) code(t testing.TB, u uuid.UUID) string {
	t.Helper()
	c, _, err := tier.CurrentTx(b.ctx, b.tx, b.partner.ID, u)
	require.NoError(t, err)
	return c.Code
}

func (b *bundle) qualifying(t testing.TB, u uuid.UUID) int64 {
	t.Helper()
	n, err := b.tiers.QualifyingTx(b.ctx, b.tx, b.partner.ID, u)
	require.NoError(t, err)
	return n
}

// changes lists the user's tier.changed events as "from>to".
func (b *bundle) changes(t testing.TB, u uuid.UUID) []string {
	t.Helper()
	var evs []event.Event
	require.NoError(t, b.tx.NewSelect().Model(&evs).Where("partner_id = ? AND user_id = ? AND type = ?", b.partner.ID, u, event.TierChanged).
		OrderExpr("created_at, id").Scan(b.ctx))
	out := []string{}
	for _, e := range evs {
		var d struct{ From, To, Direction string }
		require.NoError(t, json.Unmarshal(e.Data, &d))
		out = append(out, d.From+">"+d.To)
	}
	return out
}

// TestQualifyingWindows: points earned in different months count per the
// basis; reversed points never count, pending ones only once activated.
func TestQualifyingWindows(t *testing.T) {
	t.Parallel()
	// Earns (month offsets from 2025-01-10), then the reading date.
	cases := []struct {
		basis string
		want  int64
	}{
		// Earned: 2025-01 100, 2025-06 20, 2025-12 3, 2026-02 4000 (-1000 reversed), read 2026-03-10.
		{tier.BasisLifetime, 100 + 20 + 3 + 4000 - 1000},
		{tier.BasisRolling12, 20 + 3 + 4000 - 1000}, // 2025-04 .. 2026-03
		{tier.BasisCalendarYear, 4000 - 1000},
	}
	for _, c := range cases {
		t.Run(c.basis, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.policy(t, c.basis, tier.DowngradeNever, 0, 0)
			u := b.user(t, "alice")
			b.now = time.Date(2025, 1, 10, 0, 0, 0, 0, time.UTC)
			b.earn(t, "alice", 100)
			b.now = time.Date(2025, 6, 30, 23, 59, 0, 0, time.UTC)
			b.earn(t, "alice", 20)
			b.now = time.Date(2025, 12, 31, 23, 59, 0, 0, time.UTC)
			b.earn(t, "alice", 3)
			b.now = time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
			b.earn(t, "alice", 4000)
			b.reverse(t, u, 1000)
			b.now = time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
			require.Equal(t, c.want, b.qualifying(t, u))
		})
	}
}

// TestPendingCountsWhenActivated: a held earn does not qualify until the
// lots job activates it (the trigger sees the activate entry).
func TestPendingCountsWhenActivated(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.policy(t, tier.BasisLifetime, tier.DowngradeNever, 0, 7)
	u := b.user(t, "alice")
	b.earn(t, "alice", 500)
	require.Equal(t, int64(0), b.qualifying(t, u))
	b.now = b.now.AddDate(0, 0, 8)
	job := &ledger.LotsWorker{DB: b.tx, Now: func() time.Time { return b.now }}
	a, _, err := job.Run(b.ctx)
	require.NoError(t, err)
	require.Equal(t, 1, a)
	require.Equal(t, int64(500), b.qualifying(t, u))
}

// TestPendingReversalDoesNotLowerQualifying: reversing part of an earn
// while it is still pending takes points that never qualified, so the
// qualifying points stay; what activates later counts, and a reversal
// after activation lowers them.
func TestPendingReversalDoesNotLowerQualifying(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.policy(t, tier.BasisLifetime, tier.DowngradeNever, 0, 7)
	u := b.user(t, "alice")
	pts, thirty := int64(500), int64(300)
	_, err := b.earning.EarnTx(b.ctx, b.tx, b.partner, earning.EarnParams{ExternalUserID: "alice", Code: "buy", Points: &pts, Reference: ptr("order-p")})
	require.NoError(t, err)
	_, err = b.earning.ReverseTx(b.ctx, b.tx, b.partner, earning.ReverseParams{Reference: "order-p", Points: &thirty, Reason: "partial refund"})
	require.NoError(t, err)
	require.Equal(t, int64(0), b.qualifying(t, u), "pending points never qualified, nor does their reversal")
	b.now = b.now.AddDate(0, 0, 8)
	_, _, err = (&ledger.LotsWorker{DB: b.tx, Now: func() time.Time { return b.now }}).Run(b.ctx)
	require.NoError(t, err)
	require.Equal(t, int64(200), b.qualifying(t, u), "the 200 left activate")
	fifty := int64(50)
	_, err = b.earning.ReverseTx(b.ctx, b.tx, b.partner, earning.ReverseParams{Reference: "order-p", Points: &fifty, Reason: "refund"})
	require.NoError(t, err)
	require.Equal(t, int64(150), b.qualifying(t, u))
}

// TestActivationUpgrades: pending points that the lots job activates
// move the user up in the activation's transaction (LotsWorker.Activated,
// which the app wires to EvaluateTx), not at the user's next earn.
func TestActivationUpgrades(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.policy(t, tier.BasisLifetime, tier.DowngradeNever, 0, 7)
	b.putTiers(t)
	u := b.user(t, "alice")
	b.earn(t, "alice", 500)
	require.Equal(t, "base", b.code(t, u))
	b.now = b.now.AddDate(0, 0, 8)
	job := &ledger.LotsWorker{DB: b.tx, Now: func() time.Time { return b.now },
		Activated: func(ctx context.Context, tx bun.Tx, partnerID uuid.UUID, users []uuid.UUID) error {
			_, err := b.tiers.EvaluateTx(ctx, tx, partnerID, users...)
			return err
		}}
	a, _, err := job.Run(b.ctx)
	require.NoError(t, err)
	require.Equal(t, 1, a)
	require.Equal(t, "silver", b.code(t, u))
	require.Equal(t, []string{"base>silver"}, b.changes(t, u))
}

// TestUpgradeInEarnTx: the earn that crosses a threshold moves the user up
// in its transaction, with one tier.changed event per move; the multiplier
// follows.
func TestUpgradeInEarnTx(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.putTiers(t)
	u := b.user(t, "alice")
	c, ok, err := tier.CurrentTx(b.ctx, b.tx, b.partner.ID, u)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, tier.Current{Code: "base", Name: "BASE", Multiplier: 100}, c)

	b.earn(t, "alice", 99)
	require.Equal(t, "base", b.code(t, u))
	require.Empty(t, b.changes(t, u))
	b.earn(t, "alice", 1)
	require.Equal(t, "silver", b.code(t, u))
	b.earn(t, "alice", 5000) // skips straight past gold's threshold
	c, _, err = tier.CurrentTx(b.ctx, b.tx, b.partner.ID, u)
	require.NoError(t, err)
	require.Equal(t, tier.Current{Code: "gold", Name: "Gold", Multiplier: 150}, c)
	require.Equal(t, []string{"base>silver", "silver>gold"}, b.changes(t, u))

	// A reversal under never does not lower; the batch variant reads many.
	b.reverse(t, u, 5000)
	_, err = b.tiers.EvaluateTx(b.ctx, b.tx, b.partner.ID, u)
	require.NoError(t, err)
	require.Equal(t, "gold", b.code(t, u))
	v := b.user(t, "bob")
	m, err := tier.CurrentManyTx(b.ctx, b.tx, b.partner.ID, []uuid.UUID{u, v})
	require.NoError(t, err)
	require.Equal(t, "gold", m[u].Code)
	require.Equal(t, "base", m[v].Code)
}

// TestNoTiers: a partner without tiers has multiplier 1 and no rows.
func TestNoTiers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	u := b.user(t, "alice")
	b.earn(t, "alice", 5000)
	c, ok, err := tier.CurrentTx(b.ctx, b.tx, b.partner.ID, u)
	require.NoError(t, err)
	require.False(t, ok)
	require.Equal(t, 100, c.Multiplier)
	n, err := b.tx.NewSelect().TableExpr("user_tiers").Where("partner_id = ?", b.partner.ID).Count(b.ctx)
	require.NoError(t, err)
	require.Zero(t, n)
}

// TestImmediateDowngradeOnReversal: under immediate, evaluating after a
// reversal lowers the tier at once.
func TestImmediateDowngradeOnReversal(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.putTiers(t)
	b.policy(t, tier.BasisLifetime, tier.DowngradeImmediate, 0, 0)
	u := b.user(t, "alice")
	b.earn(t, "alice", 1200)
	require.Equal(t, "gold", b.code(t, u))
	b.reverse(t, u, 1150)
	_, err := b.tiers.EvaluateTx(b.ctx, b.tx, b.partner.ID, u)
	require.NoError(t, err)
	require.Equal(t, "base", b.code(t, u))
	require.Equal(t, []string{"base>gold", "gold>base"}, b.changes(t, u))
}

// TestEarnManyUpgrades: the batch path upgrades its users in its
// transaction.
func TestEarnManyUpgrades(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.putTiers(t)
	u, v := b.user(t, "alice"), b.user(t, "bob")
	p := func(n int64) *int64 { return &n }
	res, err := b.earning.EarnManyTx(b.ctx, b.tx, b.partner, []earning.ManyItem{
		{EarnParams: earning.EarnParams{ExternalUserID: "alice", Code: "buy", Points: p(60)}},
		{EarnParams: earning.EarnParams{ExternalUserID: "alice", Code: "buy", Points: p(60)}},
		{EarnParams: earning.EarnParams{ExternalUserID: "bob", Code: "buy", Points: p(10)}},
	})
	require.NoError(t, err)
	for _, r := range res {
		require.Nil(t, r.Err)
	}
	require.Equal(t, "silver", b.code(t, u))
	require.Equal(t, "base", b.code(t, v))
	require.Equal(t, int64(120), b.qualifying(t, u))
}

func ptr[T any](v T) *T { return &v }
