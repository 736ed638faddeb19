package referral_test

import (
	"context"
	"strings"
	"sync"
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
	"github.com/perkshq/perks/internal/ratelimit"
	"github.com/perkshq/perks/internal/referral"
	"github.com/perkshq/perks/internal/user"
)

// bundle is the earn pipeline wired as app.NewServices wires it (the
// referral hook on the earning service), at a clock the test moves.
type bundle struct {
	ctx     context.Context
	now     time.Time
	events  *event.Recorder
	users   *user.Service
	earning *earning.Service
	ref     *referral.Service
	partner *partner.Partner
}

func newBundle(t *testing.T) *bundle {
	t.Helper()
	keys, err := keyring.New(make([]byte, keyring.KeySize))
	require.NoError(t, err)
	b := &bundle{ctx: context.Background(), now: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return b.now }
	b.events = &event.Recorder{Now: clock}
	b.users = &user.Service{Keys: keys, Events: b.events, Now: clock}
	l := &ledger.Service{Events: b.events, Now: clock}
	b.earning = &earning.Service{Ledger: l, Users: b.users, Now: clock}
	b.ref = &referral.Service{Ledger: l, Events: b.events, Keys: keys, Limiter: &ratelimit.Limiter{Now: clock}, Now: clock}
	b.earning.Referrals = b.ref
	return b
}

// setup is a bundle on a rolled-back transaction with one partner and a
// "buy" per-amount rule (1 point per 100) and a "visit" rule.
func setup(t *testing.T) (*bundle, bun.Tx) {
	t.Helper()
	b := newBundle(t)
	tx := dbtest.Tx(t)
	b.init(t, tx)
	return b, tx
}

func (b *bundle) init(t *testing.T, db bun.IDB) {
	t.Helper()
	keys, err := keyring.New(make([]byte, keyring.KeySize))
	require.NoError(t, err)
	b.partner, err = partner.NewService(keys).Upsert(b.ctx, db, partner.CreateParams{Slug: "r-" + uuid.NewString()[:8], Name: "R"})
	require.NoError(t, err)
	per := int64(100)
	_, _, err = b.earning.PutRule(b.ctx, db, b.partner.ID, "buy", earning.RuleInput{Name: "Buy", Points: 1, PointsPerAmount: &per, Enabled: true})
	require.NoError(t, err)
	_, _, err = b.earning.PutRule(b.ctx, db, b.partner.ID, "visit", earning.RuleInput{Name: "Visit", Points: 5, Enabled: true})
	require.NoError(t, err)
}

func (b *bundle) advance(d time.Duration) { b.now = b.now.Add(d) }

func (b *bundle) user(t *testing.T, tx bun.Tx, ext string, email string) *user.User {
	t.Helper()
	p := user.Profile{}
	if email != "" {
		p.Email = &email
	}
	res, err := b.users.UpsertTx(b.ctx, tx, b.partner.ID, ext, p)
	require.NoError(t, err)
	return res.User
}

func (b *bundle) code(t *testing.T, db bun.IDB, u *user.User) string {
	t.Helper()
	c, err := b.ref.EnsureCode(b.ctx, db, b.partner.ID, u.ID)
	require.NoError(t, err)
	return c
}

func (b *bundle) policy(t *testing.T, db bun.IDB, p referral.Policy) {
	t.Helper()
	def := referral.DefaultPolicy(b.partner.ID)
	p.Enabled = true
	if p.CodePattern == "" {
		p.CodePattern = def.CodePattern
	}
	if p.AttributionWindowDays == 0 {
		p.AttributionWindowDays = def.AttributionWindowDays
	}
	if p.VelocityWindowMinutes == 0 {
		p.VelocityWindowMinutes = def.VelocityWindowMinutes
	}
	if p.QualifyAction == "" {
		p.QualifyAction = "buy"
	}
	_, err := b.ref.PutPolicy(b.ctx, db, b.partner.ID, p)
	require.NoError(t, err)
}

func (b *bundle) buy(tx bun.Tx, ext string, amount int64, ref string) (*ledger.Entry, error) {
	return b.earning.EarnTx(b.ctx, tx, b.partner, earning.EarnParams{ExternalUserID: ext, Code: "buy", Amount: &amount, Reference: &ref})
}

func (b *bundle) referralOf(t *testing.T, db bun.IDB, referee uuid.UUID) *referral.Referral {
	t.Helper()
	r, err := b.ref.ReferredBy(b.ctx, db, b.partner.ID, referee)
	require.NoError(t, err)
	return r
}

func (b *bundle) balance(t *testing.T, db bun.IDB, u uuid.UUID) (available, pending int64) {
	t.Helper()
	bal, err := b.earning.Ledger.BalanceOf(b.ctx, db, b.partner.ID, u)
	require.NoError(t, err)
	return bal.Points, bal.PendingPoints
}

func (b *bundle) eventCount(t *testing.T, db bun.IDB, typ string) int {
	t.Helper()
	n, err := db.NewSelect().Table("events").Where("partner_id = ? AND type = ?", b.partner.ID, typ).Count(b.ctx)
	require.NoError(t, err)
	return int(n)
}

func requireCode(t *testing.T, err error, code apperr.Code) {
	t.Helper()
	e := apperr.As(err)
	require.NotNil(t, e, "want %s, got %v", code, err)
	require.Equal(t, code, e.Code, "%v", err)
}

// TestCodes: drawn codes follow the partner's pattern in the readable
// alphabet, are stable, unique per partner and case-insensitive; a
// partner's own code (seed 003's referralCode) replaces a drawn one and is
// refused when another user has it.
func TestCodes(t *testing.T) {
	t.Parallel()
	b, tx := setup(t)
	b.policy(t, tx, referral.Policy{CodePattern: "PK-######"})
	seen := map[string]bool{}
	for i := range 200 {
		u := b.user(t, tx, "u"+string(rune('a'+i%26))+uuid.NewString()[:6], "")
		c := b.code(t, tx, u)
		require.Regexp(t, `^PK-[`+referral.Alphabet+`]{6}$`, c)
		require.False(t, strings.ContainsAny(c[3:], "01OIL"), c)
		require.False(t, seen[c], "codes are unique")
		seen[c] = true
		require.Equal(t, c, b.code(t, tx, u), "a user keeps their code")
	}

	joe := b.user(t, tx, "joe@example.com", "")
	got, err := b.ref.SetCodeTx(b.ctx, tx, b.partner.ID, joe.ID, "referralCode", " joetesterson ")
	require.NoError(t, err)
	require.Equal(t, "JOETESTERSON", got)
	require.Equal(t, "JOETESTERSON", b.code(t, tx, joe))

	_, err = b.ref.SetCodeTx(b.ctx, tx, b.partner.ID, joe.ID, "referralCode", "no spaces")
	requireCode(t, err, apperr.CodeInvalidField)

	other := b.user(t, tx, "other", "")
	sp, err := tx.BeginTx(b.ctx, nil)
	require.NoError(t, err)
	_, err = b.ref.SetCodeTx(b.ctx, sp, b.partner.ID, other.ID, "referralCode", "JoeTesterson")
	requireCode(t, err, apperr.CodeReferralCodeTaken)
	require.NoError(t, sp.Rollback())
}

// TestAttributionGuards: each fraud guard and rule of an attribution
// refuses with its code and writes nothing; a retry with the same referrer
// is answered Already.
func TestAttributionGuards(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		run  func(t *testing.T, b *bundle, tx bun.Tx) error
		code apperr.Code
	}{
		{"own code", func(t *testing.T, b *bundle, tx bun.Tx) error {
			a := b.user(t, tx, "a", "")
			_, err := b.ref.AttributeTx(b.ctx, tx, b.partner.ID, a, "code", b.code(t, tx, a), referral.SourceApp)
			return err
		}, apperr.CodeSelfReferral},
		{"same email, other case and +tag", func(t *testing.T, b *bundle, tx bun.Tx) error {
			a := b.user(t, tx, "a", "jo.doe@example.com")
			c := b.user(t, tx, "c", "Jo.Doe+second@Example.com")
			_, err := b.ref.AttributeTx(b.ctx, tx, b.partner.ID, c, "code", b.code(t, tx, a), referral.SourceApp)
			return err
		}, apperr.CodeSelfReferral},
		{"loop of three", func(t *testing.T, b *bundle, tx bun.Tx) error {
			a, c, d := b.user(t, tx, "a", ""), b.user(t, tx, "c", ""), b.user(t, tx, "d", "")
			_, err := b.ref.AttributeTx(b.ctx, tx, b.partner.ID, c, "code", b.code(t, tx, a), referral.SourceApp) // a → c
			require.NoError(t, err)
			_, err = b.ref.AttributeTx(b.ctx, tx, b.partner.ID, d, "code", b.code(t, tx, c), referral.SourceApp) // c → d
			require.NoError(t, err)
			_, err = b.ref.AttributeTx(b.ctx, tx, b.partner.ID, a, "code", b.code(t, tx, d), referral.SourceApp) // d → a: a loop
			return err
		}, apperr.CodeReferralLoop},
		{"window closed", func(t *testing.T, b *bundle, tx bun.Tx) error {
			a, c := b.user(t, tx, "a", ""), b.user(t, tx, "c", "")
			b.advance(31 * 24 * time.Hour)
			_, err := b.ref.AttributeTx(b.ctx, tx, b.partner.ID, c, "code", b.code(t, tx, a), referral.SourceApp)
			return err
		}, apperr.CodeReferralWindowClosed},
		{"unknown code", func(t *testing.T, b *bundle, tx bun.Tx) error {
			c := b.user(t, tx, "c", "")
			_, err := b.ref.AttributeTx(b.ctx, tx, b.partner.ID, c, "code", "NOSUCHCODE", referral.SourceApp)
			return err
		}, apperr.CodeReferralCodeNotFound},
		{"not a code", func(t *testing.T, b *bundle, tx bun.Tx) error {
			c := b.user(t, tx, "c", "")
			_, err := b.ref.AttributeTx(b.ctx, tx, b.partner.ID, c, "code", "a b", referral.SourceApp)
			return err
		}, apperr.CodeInvalidField},
		{"second referrer", func(t *testing.T, b *bundle, tx bun.Tx) error {
			a, a2, c := b.user(t, tx, "a", ""), b.user(t, tx, "a2", ""), b.user(t, tx, "c", "")
			_, err := b.ref.AttributeTx(b.ctx, tx, b.partner.ID, c, "code", b.code(t, tx, a), referral.SourceApp)
			require.NoError(t, err)
			again, err := b.ref.AttributeTx(b.ctx, tx, b.partner.ID, c, "code", strings.ToLower(b.code(t, tx, a)), referral.SourceApp)
			require.NoError(t, err)
			require.True(t, again.Already, "the same referrer again changes nothing")
			_, err = b.ref.AttributeTx(b.ctx, tx, b.partner.ID, c, "code", b.code(t, tx, a2), referral.SourceApp)
			return err
		}, apperr.CodeReferralAlreadyAttributed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, tx := setup(t)
			before := b.eventCount(t, tx, event.ReferralCreated)
			requireCode(t, tc.run(t, b, tx), tc.code)
			n, err := tx.NewSelect().Table("referrals").Where("partner_id = ?", b.partner.ID).Count(b.ctx)
			require.NoError(t, err)
			require.Equal(t, before+int(n), b.eventCount(t, tx, event.ReferralCreated), "one event per referral written, none for the refusal")
		})
	}
}

// TestApplyRateLimit: five attempts at once, then one a minute, per user.
func TestApplyRateLimit(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	u, v := uuid.New(), uuid.New()
	for range 5 {
		require.NoError(t, b.ref.AllowApply(u))
	}
	err := b.ref.AllowApply(u)
	requireCode(t, err, apperr.CodeRateLimited)
	require.Positive(t, apperr.As(err).RetryAfterSeconds)
	require.NoError(t, b.ref.AllowApply(v), "another user has their own bucket")
	b.advance(time.Minute)
	require.NoError(t, b.ref.AllowApply(u))
	requireCode(t, b.ref.AllowApply(u), apperr.CodeRateLimited)
}

// TestVelocityAlert: the attribution that takes a referrer past the
// limit within the window emits one referral.velocity_exceeded; later ones
// in the window do not; another referrer is unaffected.
func TestVelocityAlert(t *testing.T) {
	t.Parallel()
	b, tx := setup(t)
	limit := 2
	b.policy(t, tx, referral.Policy{VelocityLimit: &limit, VelocityWindowMinutes: 60})
	a := b.user(t, tx, "a", "")
	code := b.code(t, tx, a)
	for i, want := range []int{0, 0, 1, 1} {
		c := b.user(t, tx, "c"+string(rune('0'+i)), "")
		_, err := b.ref.AttributeTx(b.ctx, tx, b.partner.ID, c, "code", code, referral.SourceApp)
		require.NoError(t, err)
		require.Equal(t, want, b.eventCount(t, tx, event.ReferralVelocity), "after referral %d", i+1)
		b.advance(time.Minute)
	}
	b.advance(2 * time.Hour)
	for i, want := range []int{1, 1, 2} {
		c := b.user(t, tx, "d"+string(rune('0'+i)), "")
		_, err := b.ref.AttributeTx(b.ctx, tx, b.partner.ID, c, "code", code, referral.SourceApp)
		require.NoError(t, err)
		require.Equal(t, want, b.eventCount(t, tx, event.ReferralVelocity), "a new window alerts again")
	}
}

// TestAnonymiseForgetsTheCode: anonymising a referrer removes their code
// (a partner's code may spell their name) and its copies on their
// referrals; the referrals stay; a revived user draws a new code.
func TestAnonymiseForgetsTheCode(t *testing.T) {
	t.Parallel()
	b, tx := setup(t)
	joe := b.user(t, tx, "joe", "")
	_, err := b.ref.SetCodeTx(b.ctx, tx, b.partner.ID, joe.ID, "referralCode", "JOETESTERSON")
	require.NoError(t, err)
	amy := b.user(t, tx, "amy", "")
	_, err = b.ref.AttributeTx(b.ctx, tx, b.partner.ID, amy, "code", "JOETESTERSON", referral.SourceAPI)
	require.NoError(t, err)

	require.NoError(t, b.users.AnonymiseUserTx(b.ctx, tx, joe))
	code, err := b.ref.CodeOf(b.ctx, tx, b.partner.ID, joe.ID)
	require.NoError(t, err)
	require.Empty(t, code)
	r := b.referralOf(t, tx, amy.ID)
	require.Equal(t, joe.ID, r.ReferrerID, "the referral stays")
	require.Equal(t, "-", r.Code)
	_, err = b.ref.AttributeTx(b.ctx, tx, b.partner.ID, b.user(t, tx, "cat", ""), "code", "JOETESTERSON", referral.SourceAPI)
	requireCode(t, err, apperr.CodeReferralCodeNotFound)
	require.NotEqual(t, "JOETESTERSON", b.code(t, tx, joe))
}
