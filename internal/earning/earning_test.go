package earning_test

import (
	"context"
	"encoding/json"
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
	"github.com/perkshq/perks/internal/user"
)

// bundle is one test's partner, services and clock, on a transaction that
// is rolled back when the test ends.
type bundle struct {
	ctx     context.Context
	tx      bun.Tx
	now     time.Time // the services' clock; advance it, never sleep
	earning *earning.Service
	users   *user.Service
	partner *partner.Partner
}

func setup(t *testing.T) *bundle {
	t.Helper()
	ctx := context.Background()
	tx := dbtest.Tx(t)
	keys, err := keyring.New(make([]byte, keyring.KeySize))
	require.NoError(t, err)
	b := &bundle{ctx: ctx, tx: tx, now: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}
	clock := func() time.Time { return b.now }
	events := &event.Recorder{Now: clock}
	b.users = &user.Service{Keys: keys, Events: events, Now: clock}
	b.earning = &earning.Service{Ledger: &ledger.Service{Events: events, Now: clock}, Users: b.users, Now: clock}
	b.partner, err = partner.NewService(keys).Upsert(ctx, tx, partner.CreateParams{Slug: "e-" + uuid.NewString()[:8], Name: "E"})
	require.NoError(t, err)
	return b
}

func (b *bundle) advance(d time.Duration) { b.now = b.now.Add(d) }

func (b *bundle) rule(t *testing.T, code string, in earning.RuleInput) {
	t.Helper()
	in.Enabled = true
	if in.Name == "" {
		in.Name = code
	}
	_, _, err := b.earning.PutRule(b.ctx, b.tx, b.partner.ID, code, in)
	require.NoError(t, err)
}

func (b *bundle) user(t *testing.T, ext string) uuid.UUID {
	t.Helper()
	res, err := b.users.UpsertTx(b.ctx, b.tx, b.partner.ID, ext, user.Profile{})
	require.NoError(t, err)
	return res.User.ID
}

func (b *bundle) earn(ep earning.EarnParams) (*ledger.Entry, error) {
	return b.earning.EarnTx(b.ctx, b.tx, b.partner, ep)
}

// inSavepoint runs fn in a savepoint rolled back afterwards: for an earn
// whose failure aborts the transaction (a reference's unique index).
func (b *bundle) inSavepoint(t *testing.T, fn func(tx bun.Tx) error) error {
	t.Helper()
	sp, err := b.tx.BeginTx(b.ctx, nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, sp.Rollback()) }()
	return fn(sp)
}

func requireCode(t *testing.T, err error, code apperr.Code, field string) {
	t.Helper()
	e := apperr.As(err)
	require.NotNil(t, e, "want %s, got %v", code, err)
	require.Equal(t, code, e.Code, "%v", err)
	require.Equal(t, field, e.Field, "%v", err)
}

func ptr[T any](v T) *T { return &v }

// TestEarnParamsValidate is every field rule of an earn request, checked
// before anything is read.
func TestEarnParamsValidate(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	valid := func() earning.EarnParams {
		return earning.EarnParams{ExternalUserID: "alice", Code: "purchase"}
	}
	cases := []struct {
		name  string
		edit  func(ep *earning.EarnParams)
		code  apperr.Code
		field string
	}{
		{"minimal", func(*earning.EarnParams) {}, "", ""},
		{"everything", func(ep *earning.EarnParams) {
			ep.Points, ep.Reference, ep.OccurredAt = ptr(int64(5)), ptr("order-1"), now.Add(-time.Hour)
			ep.Metadata = json.RawMessage(` {"store":"s1","note":"tab\tok"}`)
		}, "", ""},
		{"occurredAt within the clock skew", func(ep *earning.EarnParams) { ep.OccurredAt = now.Add(earning.MaxOccurredAtSkew) }, "", ""},
		{"user by id needs no external id", func(ep *earning.EarnParams) { ep.ExternalUserID, ep.UserID = "", uuid.New() }, "", ""},
		{"no user", func(ep *earning.EarnParams) { ep.ExternalUserID = "" }, apperr.CodeMissingField, "externalUserId"},
		{"external id with a control character", func(ep *earning.EarnParams) { ep.ExternalUserID = "a\x00b" }, apperr.CodeInvalidField, "externalUserId"},
		{"external id too long", func(ep *earning.EarnParams) { ep.ExternalUserID = strings.Repeat("a", user.MaxExternalIDLen+1) }, apperr.CodeInvalidField, "externalUserId"},
		{"empty action", func(ep *earning.EarnParams) { ep.Code = "" }, apperr.CodeInvalidField, "action"},
		{"action with spaces", func(ep *earning.EarnParams) { ep.Code = "Bad Code" }, apperr.CodeInvalidField, "action"},
		{"zero points", func(ep *earning.EarnParams) { ep.Points = ptr(int64(0)) }, apperr.CodePointsOutOfRange, "points"},
		{"negative points", func(ep *earning.EarnParams) { ep.Points = ptr(int64(-5)) }, apperr.CodePointsOutOfRange, "points"},
		{"points over the maximum", func(ep *earning.EarnParams) { ep.Points = ptr(ledger.MaxPoints + 1) }, apperr.CodePointsOutOfRange, "points"},
		{"empty reference", func(ep *earning.EarnParams) { ep.Reference = ptr("") }, apperr.CodeInvalidField, "reference"},
		{"reference with a space", func(ep *earning.EarnParams) { ep.Reference = ptr("a b") }, apperr.CodeInvalidField, "reference"},
		{"reference with a NUL", func(ep *earning.EarnParams) { ep.Reference = ptr("a\x00") }, apperr.CodeInvalidField, "reference"},
		{"reference too long", func(ep *earning.EarnParams) { ep.Reference = ptr(strings.Repeat("r", 256)) }, apperr.CodeInvalidField, "reference"},
		{"occurredAt in the future", func(ep *earning.EarnParams) { ep.OccurredAt = now.Add(earning.MaxOccurredAtSkew + time.Second) }, apperr.CodeInvalidField, "occurredAt"},
		{"amount zero", func(ep *earning.EarnParams) { ep.Amount = ptr(int64(0)) }, "", ""},
		{"amount at the bound", func(ep *earning.EarnParams) { ep.Amount = ptr(earning.MaxAmount) }, "", ""},
		{"negative amount", func(ep *earning.EarnParams) { ep.Amount = ptr(int64(-1)) }, apperr.CodeInvalidField, "amount"},
		{"amount above the bound", func(ep *earning.EarnParams) { ep.Amount = ptr(earning.MaxAmount + 1) }, apperr.CodeInvalidField, "amount"},
		{"metadata an array", func(ep *earning.EarnParams) { ep.Metadata = json.RawMessage(`[1]`) }, apperr.CodeInvalidField, "metadata"},
		{"metadata a string", func(ep *earning.EarnParams) { ep.Metadata = json.RawMessage(`"x"`) }, apperr.CodeInvalidField, "metadata"},
		{"metadata too large", func(ep *earning.EarnParams) {
			ep.Metadata = json.RawMessage(`{"a":"` + strings.Repeat("x", earning.MaxMetadataBytes) + `"}`)
		}, apperr.CodeInvalidField, "metadata"},
		{"metadata not UTF-8", func(ep *earning.EarnParams) { ep.Metadata = json.RawMessage("{\"a\":\"\xff\"}") }, apperr.CodeInvalidField, "metadata"},
		{"metadata with an escaped NUL", func(ep *earning.EarnParams) { ep.Metadata = json.RawMessage(`{"a":"\u0000"}`) }, apperr.CodeInvalidField, "metadata.a"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ep := valid()
			c.edit(&ep)
			err := ep.Validate(now)
			if c.code == "" {
				require.NoError(t, err)
				return
			}
			requireCode(t, err, c.code, c.field)
		})
	}
}

// TestEarnTx: the one entry point resolves the user by external id (or
// takes the given id), creates them only when asked, applies the rule and
// records the entry and its event in the caller's transaction.
func TestEarnTx(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.rule(t, "purchase", earning.RuleInput{Points: 10, VariablePoints: true, MaxPoints: ptr(int64(100))})
	b.rule(t, "login", earning.RuleInput{Points: 3, ClientTriggerable: true})
	alice := b.user(t, "alice")

	occurred := b.now.Add(-time.Hour)
	e, err := b.earn(earning.EarnParams{ExternalUserID: "alice", Code: "purchase", Points: ptr(int64(42)),
		Reference: ptr("order-1"), OccurredAt: occurred, Metadata: json.RawMessage(`{"store":"s1"}`)})
	require.NoError(t, err)
	require.Equal(t, alice, e.UserID)
	require.Equal(t, int64(42), e.Points)
	require.Equal(t, int64(42), e.BalanceAfter)
	require.Equal(t, "order-1", *e.Reference)
	require.True(t, occurred.Equal(e.OccurredAt))
	require.JSONEq(t, `{"store":"s1"}`, string(e.Metadata))

	// By id (the app's consumer), the rule's own amount.
	e, err = b.earn(earning.EarnParams{UserID: alice, Code: "login", ByClient: true})
	require.NoError(t, err)
	require.Equal(t, int64(3), e.Points)
	require.Equal(t, int64(45), e.BalanceAfter)

	var events int
	require.NoError(t, b.tx.NewRaw("SELECT count(*) FROM events WHERE partner_id = ? AND type = ?", b.partner.ID, event.PointsEarned).Scan(b.ctx, &events))
	require.Equal(t, 2, events)

	// An unknown user is refused, or created when asked.
	_, err = b.earn(earning.EarnParams{ExternalUserID: "bob", Code: "login"})
	requireCode(t, err, apperr.CodeUserNotFound, "")
	e, err = b.earn(earning.EarnParams{ExternalUserID: "bob", Code: "login", CreateUser: true})
	require.NoError(t, err)
	bob, err := b.users.Get(b.ctx, b.tx, b.partner.ID, "bob")
	require.NoError(t, err)
	require.Equal(t, bob.ID, e.UserID)

	// The rule's own checks, in EarnTx's order after the input's.
	for _, c := range []struct {
		name  string
		ep    earning.EarnParams
		code  apperr.Code
		field string
	}{
		{"bad input first", earning.EarnParams{ExternalUserID: "nobody", Code: "nope", Points: ptr(int64(0))}, apperr.CodePointsOutOfRange, "points"},
		{"then the user", earning.EarnParams{ExternalUserID: "nobody", Code: "nope"}, apperr.CodeUserNotFound, ""},
		{"then the rule", earning.EarnParams{ExternalUserID: "alice", Code: "nope"}, apperr.CodeActionNotFound, ""},
		{"the rule of a user the earn would create", earning.EarnParams{ExternalUserID: "carol", Code: "nope", CreateUser: true}, apperr.CodeActionNotFound, ""},
		{"the rule of a user named by id", earning.EarnParams{UserID: alice, Code: "nope"}, apperr.CodeActionNotFound, ""},
		{"server-only from the app", earning.EarnParams{UserID: alice, Code: "purchase", ByClient: true}, apperr.CodeActionNotAllowed, ""},
		{"points on a fixed rule", earning.EarnParams{UserID: alice, Code: "login", Points: ptr(int64(5))}, apperr.CodeVariablePointsDenied, "points"},
		{"points over the rule's maximum", earning.EarnParams{UserID: alice, Code: "purchase", Points: ptr(int64(101))}, apperr.CodePointsOutOfRange, "points"},
	} {
		_, err := b.earn(c.ep)
		requireCode(t, err, c.code, c.field)
	}
	require.NoError(t, b.earning.DisableRule(b.ctx, b.tx, b.partner.ID, "login"))
	_, err = b.earn(earning.EarnParams{UserID: alice, Code: "login"})
	requireCode(t, err, apperr.CodeActionInactive, "")

	require.NoError(t, ledger.CheckInvariants(b.ctx, b.tx))
}

// TestEarnTxCapsAndCooldown: each limit refuses with its code (the
// cooldown with the seconds to wait), and a new day in the partner's time
// zone resets the daily cap.
func TestEarnTxCapsAndCooldown(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.rule(t, "daily", earning.RuleInput{Points: 1, DailyCap: ptr(2)})
	b.rule(t, "once", earning.RuleInput{Points: 1, LifetimeCap: ptr(1)})
	b.rule(t, "video", earning.RuleInput{Points: 1, CooldownSeconds: ptr(60)})
	u := b.user(t, "capped")
	earn := func(code string) error {
		_, err := b.earn(earning.EarnParams{UserID: u, Code: code})
		return err
	}

	require.NoError(t, earn("daily"))
	require.NoError(t, earn("daily"))
	requireCode(t, earn("daily"), apperr.CodeDailyCapReached, "")
	b.advance(12 * time.Hour) // 00:00 the next day, UTC
	require.NoError(t, earn("daily"))

	require.NoError(t, earn("once"))
	b.advance(48 * time.Hour)
	requireCode(t, earn("once"), apperr.CodeLifetimeCapReached, "")

	require.NoError(t, earn("video"))
	b.advance(20 * time.Second)
	err := earn("video")
	requireCode(t, err, apperr.CodeCooldown, "")
	require.Equal(t, 40, apperr.As(err).RetryAfterSeconds)
	b.advance(40 * time.Second)
	require.NoError(t, earn("video"))

	avail, err := b.earning.AvailabilityFor(b.ctx, b.tx, b.partner, u, mustRules(t, b))
	require.NoError(t, err)
	require.Equal(t, 2, *avail["daily"].RemainingToday, "two days later")
	require.Equal(t, 0, *avail["once"].RemainingLifetime)
	require.WithinDuration(t, b.now.Add(time.Minute), *avail["video"].AvailableAt, 0)
}

func mustRules(t *testing.T, b *bundle) []earning.Rule {
	t.Helper()
	rules, err := b.earning.Rules(b.ctx, b.tx, b.partner.ID, false)
	require.NoError(t, err)
	return rules
}

// TestEarnTxDuplicateReference: a reference earns once per partner; using
// it again fails on the ledger's unique index (the partner API then
// answers with the first earn's stored response), for the same user or
// another one.
func TestEarnTxDuplicateReference(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.rule(t, "purchase", earning.RuleInput{Points: 5})
	b.user(t, "alice")
	b.user(t, "bob")

	first, err := b.earn(earning.EarnParams{ExternalUserID: "alice", Code: "purchase", Reference: ptr("order-9")})
	require.NoError(t, err)
	for _, ext := range []string{"alice", "bob"} {
		err := b.inSavepoint(t, func(tx bun.Tx) error {
			_, err := b.earning.EarnTx(b.ctx, tx, b.partner, earning.EarnParams{ExternalUserID: ext, Code: "purchase", Reference: ptr("order-9")})
			return err
		})
		requireCode(t, err, apperr.CodeConflict, "reference")
	}
	bal, err := b.earning.Ledger.BalanceOf(b.ctx, b.tx, b.partner.ID, first.UserID)
	require.NoError(t, err)
	require.Equal(t, int64(5), bal.Points, "earned once")

	// In a batch: the ledger's reference is a duplicate for its user and a
	// conflict for another; a reference repeated within the batch too.
	alice, bob := first.UserID, b.user(t, "carol")
	res, err := b.earning.EarnManyTx(b.ctx, b.tx, b.partner, []earning.ManyItem{
		{EarnParams: earning.EarnParams{UserID: alice, Code: "purchase", Reference: ptr("order-9")}},
		{EarnParams: earning.EarnParams{UserID: bob, Code: "purchase", Reference: ptr("order-9")}},
		{EarnParams: earning.EarnParams{UserID: alice, Code: "purchase", Reference: ptr("order-10")}},
		{EarnParams: earning.EarnParams{UserID: alice, Code: "purchase", Reference: ptr("order-10")}},
		{EarnParams: earning.EarnParams{UserID: bob, Code: "purchase", Reference: ptr("order-10")}},
	})
	require.NoError(t, err)
	require.True(t, res[0].Duplicate)
	require.Equal(t, first.ID, *res[0].EntryID)
	require.Equal(t, apperr.CodeConflict, res[1].Err.Code)
	require.Nil(t, res[2].Err)
	require.True(t, res[3].Duplicate)
	require.Equal(t, *res[2].EntryID, *res[3].EntryID)
	require.Equal(t, apperr.CodeConflict, res[4].Err.Code)
	require.NoError(t, ledger.CheckInvariants(b.ctx, b.tx))
}

// TestEarnRefusesAnonymisedUser: an anonymised user's row stays, but no
// earn reaches them, one or in a batch, even when asked to create the user.
func TestEarnRefusesAnonymisedUser(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.rule(t, "purchase", earning.RuleInput{Points: 5})
	b.user(t, "gone")
	b.user(t, "here")
	_, err := b.users.AnonymiseTx(b.ctx, b.tx, b.partner.ID, "gone")
	require.NoError(t, err)

	for _, create := range []bool{false, true} {
		_, err := b.earn(earning.EarnParams{ExternalUserID: "gone", Code: "purchase", CreateUser: create})
		requireCode(t, err, apperr.CodeUserAnonymised, "")
		// The user is refused before the rule, read in the same query.
		_, err = b.earn(earning.EarnParams{ExternalUserID: "gone", Code: "nope", CreateUser: create})
		requireCode(t, err, apperr.CodeUserAnonymised, "")
	}
	res, err := b.earning.EarnManyTx(b.ctx, b.tx, b.partner, []earning.ManyItem{
		{EarnParams: earning.EarnParams{ExternalUserID: "gone", Code: "purchase"}},
		{EarnParams: earning.EarnParams{ExternalUserID: "here", Code: "purchase"}},
		{EarnParams: earning.EarnParams{ExternalUserID: "nobody", Code: "purchase"}},
		{UserHash: b.users.ExternalIDHash(b.partner.ID, "gone"), EarnParams: earning.EarnParams{Code: "purchase"}},
	})
	require.NoError(t, err)
	require.Equal(t, apperr.CodeUserAnonymised, res[0].Err.Code)
	require.Nil(t, res[1].Err)
	require.Equal(t, int64(5), *res[1].Balance)
	require.Equal(t, apperr.CodeUserNotFound, res[2].Err.Code)
	require.Equal(t, apperr.CodeUserAnonymised, res[3].Err.Code, "a stored item names its user by hash")

	var entries int
	require.NoError(t, b.tx.NewRaw("SELECT count(*) FROM ledger_entries WHERE partner_id = ?", b.partner.ID).Scan(b.ctx, &entries))
	require.Equal(t, 1, entries)
}

// TestEarnManyTx: a batch applies the same rules as single earns, decided
// in input order against one another (caps within the batch), and one
// item's failure leaves the others.
func TestEarnManyTx(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.rule(t, "daily", earning.RuleInput{Points: 2, DailyCap: ptr(2)})
	b.rule(t, "purchase", earning.RuleInput{Points: 1, VariablePoints: true})
	u := b.user(t, "many")
	item := func(code string, points *int64) earning.ManyItem {
		return earning.ManyItem{EarnParams: earning.EarnParams{ExternalUserID: "many", Code: code, Points: points}}
	}
	bad := apperr.Field(apperr.CodeInvalidField, "action", "bad")
	res, err := b.earning.EarnManyTx(b.ctx, b.tx, b.partner, []earning.ManyItem{
		item("daily", nil),
		{Err: bad},
		item("daily", nil),
		item("daily", nil),
		item("nope", nil),
		item("purchase", ptr(int64(7))),
		item("daily", ptr(int64(7))),
	})
	require.NoError(t, err)
	codes := make([]apperr.Code, len(res))
	for i, r := range res {
		if r.Err != nil {
			codes[i] = r.Err.Code
		}
	}
	require.Equal(t, []apperr.Code{"", apperr.CodeInvalidField, "", apperr.CodeDailyCapReached, apperr.CodeActionNotFound, "", apperr.CodeVariablePointsDenied}, codes)
	require.Equal(t, int64(2), *res[0].Balance)
	require.Equal(t, int64(4), *res[2].Balance)
	require.Equal(t, int64(11), *res[5].Balance)
	bal, err := b.earning.Ledger.BalanceOf(b.ctx, b.tx, b.partner.ID, u)
	require.NoError(t, err)
	require.Equal(t, int64(11), bal.Points)

	// The counter the batch wrote refuses a single earn the same day.
	_, err = b.earn(earning.EarnParams{UserID: u, Code: "daily"})
	requireCode(t, err, apperr.CodeDailyCapReached, "")
	require.NoError(t, ledger.CheckInvariants(b.ctx, b.tx))
}

// TestClientOffers: the app is offered exactly the actions triggerAction
// would accept from it (client-triggerable, enabled, in their window),
// with the user's remaining caps when there is a user.
func TestClientOffers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	later := b.now.Add(time.Hour)
	b.rule(t, "login", earning.RuleInput{Points: 1, ClientTriggerable: true, DailyCap: ptr(3)})
	b.rule(t, "video", earning.RuleInput{Points: 1, ClientTriggerable: true})
	b.rule(t, "purchase", earning.RuleInput{Points: 1})
	b.rule(t, "soon", earning.RuleInput{Points: 1, ClientTriggerable: true, ActiveFrom: &later})
	b.rule(t, "off", earning.RuleInput{Points: 1, ClientTriggerable: true})
	require.NoError(t, b.earning.DisableRule(b.ctx, b.tx, b.partner.ID, "off"))
	u := b.user(t, "viewer")
	_, err := b.earn(earning.EarnParams{UserID: u, Code: "login", ByClient: true})
	require.NoError(t, err)

	codes := func(offers []earning.Offer) []string {
		var out []string
		for _, o := range offers {
			out = append(out, o.Rule.Code)
		}
		return out
	}
	public, err := b.earning.ClientOffers(b.ctx, b.tx, b.partner, uuid.Nil)
	require.NoError(t, err)
	require.Equal(t, []string{"login", "video"}, codes(public))
	require.Nil(t, public[0].Availability.RemainingToday, "no user, no remaining caps")

	mine, err := b.earning.ClientOffers(b.ctx, b.tx, b.partner, u)
	require.NoError(t, err)
	require.Equal(t, []string{"login", "video"}, codes(mine))
	require.Equal(t, 2, *mine[0].Availability.RemainingToday)

	for code, offered := range map[string]bool{"login": true, "video": true, "purchase": false, "soon": false, "off": false, "nope": false} {
		o, err := b.earning.ClientOffer(b.ctx, b.tx, b.partner, u, code)
		require.NoError(t, err, code)
		require.Equal(t, offered, o != nil, code)
		if offered {
			_, err := b.earn(earning.EarnParams{UserID: u, Code: code, ByClient: true})
			require.NoError(t, err, "an offered action can be triggered: %s", code)
		}
	}
	b.advance(time.Hour)
	o, err := b.earning.ClientOffer(b.ctx, b.tx, b.partner, u, "soon")
	require.NoError(t, err)
	require.NotNil(t, o, "offered once its window opens")
}

// TestRuleOverrides: a rule's pendingDays and expiryDays are stored, read
// back, unset by a replace without them, and refused out of bounds without
// changing the rule.
func TestRuleOverrides(t *testing.T) {
	t.Parallel()

	t.Run("RoundTrip", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		r, created, err := b.earning.PutRule(b.ctx, b.tx, b.partner.ID, "purchase",
			earning.RuleInput{Name: "Purchase", Points: 10, Enabled: true, PendingDays: ptr(0), ExpiryDays: ptr(3650)})
		require.NoError(t, err)
		require.True(t, created)
		require.Equal(t, 0, *r.PendingDays)
		require.Equal(t, 3650, *r.ExpiryDays)
		got, err := b.earning.Rule(b.ctx, b.tx, b.partner.ID, "purchase")
		require.NoError(t, err)
		require.Equal(t, ptr(0), got.PendingDays)
		require.Equal(t, ptr(3650), got.ExpiryDays)

		_, _, err = b.earning.PutRule(b.ctx, b.tx, b.partner.ID, "purchase", earning.RuleInput{Name: "Purchase", Points: 10, Enabled: true})
		require.NoError(t, err)
		got, err = b.earning.Rule(b.ctx, b.tx, b.partner.ID, "purchase")
		require.NoError(t, err)
		require.Nil(t, got.PendingDays)
		require.Nil(t, got.ExpiryDays)
	})

	t.Run("Bounds", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.rule(t, "purchase", earning.RuleInput{Points: 10, PendingDays: ptr(7)})
		for _, c := range []struct {
			name    string
			pending *int
			expiry  *int
			field   string
		}{
			{"pending -1", ptr(-1), nil, "pendingDays"},
			{"pending 3651", ptr(3651), nil, "pendingDays"},
			{"expiry 0", nil, ptr(0), "expiryDays"},
			{"expiry 3651", nil, ptr(3651), "expiryDays"},
		} {
			_, _, err := b.earning.PutRule(b.ctx, b.tx, b.partner.ID, "purchase",
				earning.RuleInput{Name: "P", Points: 10, Enabled: true, PendingDays: c.pending, ExpiryDays: c.expiry})
			ae := apperr.As(err)
			require.NotNil(t, ae, "%s: %v", c.name, err)
			require.Equal(t, apperr.CodeInvalidField, ae.Code, c.name)
			require.Equal(t, c.field, ae.Field, c.name)
		}
		got, err := b.earning.Rule(b.ctx, b.tx, b.partner.ID, "purchase")
		require.NoError(t, err)
		require.Equal(t, ptr(7), got.PendingDays, "refused puts changed nothing")
	})
}

// TestEarnFollowsPolicy: both earn paths date the lot with the partner's
// program policy and the rule's overrides: pending for the policy's days
// (not in the balance, kind pending), expiring N days after it becomes
// available; a partner without a policy earns available, never-expiring
// points.
func TestEarnFollowsPolicy(t *testing.T) {
	t.Parallel()
	earnOne := func(t *testing.T, b *bundle, code string) {
		t.Helper()
		_, err := b.earn(earning.EarnParams{ExternalUserID: "p", Code: code})
		require.NoError(t, err)
	}
	earnMany := func(t *testing.T, b *bundle, code string) {
		t.Helper()
		res, err := b.earning.EarnManyTx(b.ctx, b.tx, b.partner, []earning.ManyItem{
			{EarnParams: earning.EarnParams{ExternalUserID: "p", Code: code}},
		})
		require.NoError(t, err)
		require.Nil(t, res[0].Err)
	}
	for name, earn := range map[string]func(*testing.T, *bundle, string){"EarnTx": earnOne, "EarnManyTx": earnMany} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cases := []struct {
				name        string
				policy      *program.Input
				rule        earning.RuleInput
				pendingDays int
				expiryDays  int // 0: never
			}{
				{name: "no policy", rule: earning.RuleInput{Points: 10}},
				{name: "rolling 30 days, 7 pending", policy: &program.Input{ExpiryMode: program.ExpiryRolling, ExpiryDays: ptr(30), PendingDays: 7},
					rule: earning.RuleInput{Points: 10}, pendingDays: 7, expiryDays: 30},
				{name: "rule overrides", policy: &program.Input{ExpiryMode: program.ExpiryRolling, ExpiryDays: ptr(30), PendingDays: 7},
					rule: earning.RuleInput{Points: 10, PendingDays: ptr(0), ExpiryDays: ptr(90)}, expiryDays: 90},
				// The policy's dates travel as an array column of the
				// earn's (prepared) rule query.
				{name: "fixed dates", policy: &program.Input{ExpiryMode: program.ExpiryFixed, ExpiryDates: []string{"12-31", "06-30"}},
					rule: earning.RuleInput{Points: 10}, expiryDays: -1},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					b := setup(t)
					if tc.policy != nil {
						in := *tc.policy
						in.NegativeBalance, in.ExpiryWarningDays = program.NegativeForbid, 30
						_, err := (&program.Service{}).Put(b.ctx, b.tx, b.partner.ID, in)
						require.NoError(t, err)
					}
					b.rule(t, "buy", tc.rule)
					u := b.user(t, "p")
					earn(t, b, "buy")
					lots, err := b.earning.Ledger.Lots(b.ctx, b.tx, b.partner.ID, u)
					require.NoError(t, err)
					require.Len(t, lots, 1)
					bal, err := b.earning.Ledger.BalanceOf(b.ctx, b.tx, b.partner.ID, u)
					require.NoError(t, err)
					lot := lots[0]
					require.True(t, lot.AvailableAt.Equal(b.now.AddDate(0, 0, tc.pendingDays)), "available at %s", lot.AvailableAt)
					if tc.pendingDays > 0 {
						require.True(t, lot.Pending)
						require.Equal(t, int64(0), bal.Points)
						require.Equal(t, int64(10), bal.PendingPoints)
					} else {
						require.False(t, lot.Pending)
						require.Equal(t, int64(10), bal.Points)
						require.Equal(t, int64(0), bal.PendingPoints)
					}
					switch tc.expiryDays {
					case 0:
						require.Nil(t, lot.ExpiresAt)
					case -1: // the policy's next date
						pol, err := (&program.Service{}).Get(b.ctx, b.tx, b.partner.ID)
						require.NoError(t, err)
						_, want := program.Resolve(pol, program.Overrides{}, b.now, time.UTC)
						require.NotNil(t, want)
						require.NotNil(t, lot.ExpiresAt)
						require.True(t, lot.ExpiresAt.Equal(*want), "expires at %s, want %s", lot.ExpiresAt, want)
					default:
						require.NotNil(t, lot.ExpiresAt)
						require.True(t, lot.ExpiresAt.Equal(b.now.AddDate(0, 0, tc.pendingDays+tc.expiryDays)), "expires at %s", lot.ExpiresAt)
					}
					require.NoError(t, ledger.CheckInvariants(b.ctx, b.tx))
				})
			}
		})
	}
}
