package account_test

import (
	"context"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/account"
	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/audit"
	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/keyring"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// fastArgon keeps tests quick; production uses DefaultArgon2.
var fastArgon = &account.Argon2Params{Memory: 64, Time: 1, Threads: 1}

const password = "correct horse battery staple"

type bundle struct {
	ctx      context.Context
	tx       bun.Tx
	svc      *account.Service
	clock    *clock
	partner  uuid.UUID
	operator audit.Actor
}

func setup(t *testing.T) *bundle {
	t.Helper()
	master := make([]byte, keyring.KeySize)
	_, _ = rand.Read(master)
	keys, err := keyring.New(master)
	require.NoError(t, err)
	c := &clock{now: time.Date(2026, 11, 25, 12, 0, 10, 0, time.UTC)}
	return &bundle{
		ctx: context.Background(), tx: dbtest.Tx(t), clock: c, partner: uuid.New(),
		svc:      &account.Service{Keys: keys, Audit: &audit.Log{Now: c.Now}, Now: c.Now, Argon2: fastArgon},
		operator: audit.Actor{Kind: audit.ActorOperator, Label: "cli"},
	}
}

// code returns the TOTP code of secret at the bundle's clock.
func (b *bundle) code(t *testing.T, secret string) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, b.clock.Now(), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	require.NoError(t, err)
	return c
}

// activeOwner invites and activates an account and returns it with its
// TOTP secret; the clock then moves to the next TOTP step.
func (b *bundle) active(t *testing.T, email, role string) (*account.Account, string) {
	t.Helper()
	inv, err := b.svc.InviteTx(b.ctx, b.tx, account.InviteParams{Realm: account.RealmPartner, RealmID: b.partner, Email: email, Role: role, Actor: b.operator})
	require.NoError(t, err)
	_, enr, err := b.svc.ActivationOffer(b.ctx, b.tx, inv.Token)
	require.NoError(t, err)
	a, err := b.svc.Activate(b.ctx, b.tx, inv.Token, password, b.code(t, enr.Secret))
	require.NoError(t, err)
	b.clock.Advance(30 * time.Second)
	return a, enr.Secret
}

func requireCode(t *testing.T, err error, code apperr.Code) {
	t.Helper()
	e := apperr.As(err)
	require.NotNil(t, e, "%v", err)
	require.Equal(t, code, e.Code, "%v", err)
}

func TestPasswordHash(t *testing.T) {
	t.Parallel()
	h, err := account.HashPassword("s3cret password", *fastArgon)
	require.NoError(t, err)
	require.Regexp(t, `^\$argon2id\$v=19\$m=64,t=1,p=1\$`, h)
	ok, err := account.CheckPassword("s3cret password", h)
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = account.CheckPassword("s3cret passworD", h)
	require.NoError(t, err)
	require.False(t, ok)
	h2, err := account.HashPassword("s3cret password", *fastArgon)
	require.NoError(t, err)
	require.NotEqual(t, h, h2, "salted")
}

func TestActivationLink(t *testing.T) {
	t.Parallel()

	t.Run("SingleUse", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		inv, err := b.svc.InviteTx(b.ctx, b.tx, account.InviteParams{Realm: account.RealmPartner, RealmID: b.partner, Email: "Ana@example.com", Role: account.RoleOwner, Actor: b.operator})
		require.NoError(t, err)
		a, enr, err := b.svc.ActivationOffer(b.ctx, b.tx, inv.Token)
		require.NoError(t, err)
		require.Equal(t, account.StatusInvited, a.Status)
		require.NotEmpty(t, enr.QRPNG)
		require.Contains(t, enr.URI, "otpauth://totp/")
		// The page shows the same secret until it is used.
		_, again, err := b.svc.ActivationOffer(b.ctx, b.tx, inv.Token)
		require.NoError(t, err)
		require.Equal(t, enr.Secret, again.Secret)

		// Bad input changes nothing.
		_, err = b.svc.Activate(b.ctx, b.tx, inv.Token, "short", b.code(t, enr.Secret))
		requireCode(t, err, apperr.CodeInvalidField)
		_, err = b.svc.Activate(b.ctx, b.tx, inv.Token, password, "000000")
		requireCode(t, err, apperr.CodeInvalidField)

		a, err = b.svc.Activate(b.ctx, b.tx, inv.Token, password, b.code(t, enr.Secret))
		require.NoError(t, err)
		require.Equal(t, account.StatusActive, a.Status)
		_, _, err = b.svc.ActivationOffer(b.ctx, b.tx, inv.Token)
		requireCode(t, err, apperr.CodeTokenInvalid)
		b.clock.Advance(30 * time.Second)
		_, err = b.svc.Activate(b.ctx, b.tx, inv.Token, password, b.code(t, enr.Secret))
		requireCode(t, err, apperr.CodeTokenInvalid)

		// An active account is not invited again.
		_, err = b.svc.InviteTx(b.ctx, b.tx, account.InviteParams{Realm: account.RealmPartner, RealmID: b.partner, Email: "ana@example.com", Role: account.RoleViewer, Actor: b.operator})
		requireCode(t, err, apperr.CodeConflict)
	})

	t.Run("ExpiresAndIsReissued", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.svc.ActivationTTL = time.Hour
		p := account.InviteParams{Realm: account.RealmPartner, RealmID: b.partner, Email: "bo@example.com", Role: account.RoleDeveloper, Actor: b.operator}
		first, err := b.svc.InviteTx(b.ctx, b.tx, p)
		require.NoError(t, err)
		b.clock.Advance(time.Hour)
		_, _, err = b.svc.ActivationOffer(b.ctx, b.tx, first.Token)
		requireCode(t, err, apperr.CodeTokenInvalid)

		second, err := b.svc.InviteTx(b.ctx, b.tx, p)
		require.NoError(t, err)
		require.Equal(t, first.Account.ID, second.Account.ID)
		_, _, err = b.svc.ActivationOffer(b.ctx, b.tx, second.Token)
		require.NoError(t, err)
		// A third link retires the second.
		third, err := b.svc.InviteTx(b.ctx, b.tx, p)
		require.NoError(t, err)
		_, _, err = b.svc.ActivationOffer(b.ctx, b.tx, second.Token)
		requireCode(t, err, apperr.CodeTokenInvalid)
		_, _, err = b.svc.ActivationOffer(b.ctx, b.tx, third.Token)
		require.NoError(t, err)

		// Only hashes are stored.
		n, err := b.tx.NewSelect().Table("account_activations").Where("token_hash = ?", []byte(third.Token)).Count(b.ctx)
		require.NoError(t, err)
		require.Zero(t, n)
	})

	t.Run("AddressOfAnotherPartner", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, err := b.svc.InviteTx(b.ctx, b.tx, account.InviteParams{Realm: account.RealmPartner, RealmID: b.partner, Email: "cy@example.com", Role: account.RoleOwner, Actor: b.operator})
		require.NoError(t, err)
		_, err = b.svc.InviteTx(b.ctx, b.tx, account.InviteParams{Realm: account.RealmPartner, RealmID: uuid.New(), Email: "CY@example.com", Role: account.RoleOwner, Actor: b.operator})
		requireCode(t, err, apperr.CodeConflict)
	})
}

func TestSignIn(t *testing.T) {
	t.Parallel()

	t.Run("PasswordAndCode", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, secret := b.active(t, "dee@example.com", account.RoleOwner)
		code := b.code(t, secret)
		_, _, err := b.svc.SignIn(b.ctx, b.tx, account.RealmPartner, "dee@example.com", "wrong password!!", code, "")
		requireCode(t, err, apperr.CodeUnauthenticated)
		_, _, err = b.svc.SignIn(b.ctx, b.tx, account.RealmPartner, "dee@example.com", password, "123456", "")
		requireCode(t, err, apperr.CodeUnauthenticated)
		_, _, err = b.svc.SignIn(b.ctx, b.tx, account.RealmPartner, "nobody@example.com", password, code, "")
		requireCode(t, err, apperr.CodeUnauthenticated)
		_, _, err = b.svc.SignIn(b.ctx, b.tx, account.RealmMerchant, "dee@example.com", password, code, "")
		requireCode(t, err, apperr.CodeUnauthenticated)

		sess, a, err := b.svc.SignIn(b.ctx, b.tx, account.RealmPartner, "DEE@example.com", password, code, "")
		require.NoError(t, err)
		require.NotEmpty(t, sess.Token)
		require.Equal(t, b.partner, a.Scope())
		// The same code is not accepted twice.
		_, _, err = b.svc.SignIn(b.ctx, b.tx, account.RealmPartner, "dee@example.com", password, code, "")
		requireCode(t, err, apperr.CodeUnauthenticated)

		got, ga, err := b.svc.Session(b.ctx, b.tx, sess.Token)
		require.NoError(t, err)
		require.NotNil(t, got)
		require.Equal(t, a.ID, ga.ID)
		require.Equal(t, sess.CSRFToken, got.CSRFToken)
	})

	t.Run("Lockout", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.svc.LockFor = 10 * time.Minute
		_, secret := b.active(t, "eve@example.com", account.RoleViewer)
		for range 5 {
			_, _, err := b.svc.SignIn(b.ctx, b.tx, account.RealmPartner, "eve@example.com", "guess guess guess", b.code(t, secret), "")
			requireCode(t, err, apperr.CodeUnauthenticated)
		}
		// Locked: even the right password and code fail, with the same answer.
		_, _, err := b.svc.SignIn(b.ctx, b.tx, account.RealmPartner, "eve@example.com", password, b.code(t, secret), "")
		requireCode(t, err, apperr.CodeUnauthenticated)
		b.clock.Advance(10 * time.Minute)
		_, _, err = b.svc.SignIn(b.ctx, b.tx, account.RealmPartner, "eve@example.com", password, b.code(t, secret), "")
		require.NoError(t, err)
	})

	t.Run("RotatesTheBroughtSession", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, s1 := b.active(t, "fay@example.com", account.RoleOwner)
		_, s2 := b.active(t, "gus@example.com", account.RoleViewer)
		// gus's session is planted in fay's browser, then fay signs in.
		planted, _, err := b.svc.SignIn(b.ctx, b.tx, account.RealmPartner, "gus@example.com", password, b.code(t, s2), "")
		require.NoError(t, err)
		fresh, _, err := b.svc.SignIn(b.ctx, b.tx, account.RealmPartner, "fay@example.com", password, b.code(t, s1), planted.Token)
		require.NoError(t, err)
		require.NotEqual(t, planted.Token, fresh.Token)
		old, _, err := b.svc.Session(b.ctx, b.tx, planted.Token)
		require.NoError(t, err)
		require.Nil(t, old, "the token brought to sign-in is dead")
	})

	t.Run("Timeouts", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.svc.IdleTimeout, b.svc.AbsoluteTimeout = 10*time.Minute, time.Hour
		_, secret := b.active(t, "hal@example.com", account.RoleOwner)
		signIn := func() string {
			s, _, err := b.svc.SignIn(b.ctx, b.tx, account.RealmPartner, "hal@example.com", password, b.code(t, secret), "")
			require.NoError(t, err)
			b.clock.Advance(30 * time.Second)
			return s.Token
		}
		alive := func(tok string) bool {
			s, _, err := b.svc.Session(b.ctx, b.tx, tok)
			require.NoError(t, err)
			return s != nil
		}
		idle := signIn()
		b.clock.Advance(9 * time.Minute)
		require.True(t, alive(idle))
		b.clock.Advance(9 * time.Minute) // used 9 minutes ago
		require.True(t, alive(idle))
		b.clock.Advance(10 * time.Minute)
		require.False(t, alive(idle), "idle timeout")

		busy := signIn()
		for range 6 { // 54.5 minutes old, used every 9
			b.clock.Advance(9 * time.Minute)
			require.True(t, alive(busy))
		}
		b.clock.Advance(6 * time.Minute) // used 6 minutes ago, 60.5 minutes old
		require.False(t, alive(busy), "absolute timeout")

		a1, a2 := signIn(), signIn()
		acc := func() uuid.UUID { _, a, err := b.svc.Session(b.ctx, b.tx, a1); require.NoError(t, err); return a.ID }()
		n, err := b.svc.SignOutEverywhere(b.ctx, b.tx, acc)
		require.NoError(t, err)
		require.EqualValues(t, 2, n)
		require.False(t, alive(a1))
		require.False(t, alive(a2))
	})
}

func TestTeam(t *testing.T) {
	t.Parallel()
	b := setup(t)
	owner, _ := b.active(t, "ida@example.com", account.RoleOwner)
	dev, secret := b.active(t, "jo@example.com", account.RoleDeveloper)
	other := &account.Account{ID: uuid.New(), Realm: account.RealmPartner, RealmID: func() *uuid.UUID { u := uuid.New(); return &u }(), Email: "x@other.example", Role: account.RoleOwner}

	requireCode(t, b.svc.SetRole(b.ctx, b.tx, owner, owner.ID, account.RoleViewer), apperr.CodeConflict) // last owner
	requireCode(t, b.svc.Remove(b.ctx, b.tx, owner, owner.ID), apperr.CodeConflict)
	requireCode(t, b.svc.SetRole(b.ctx, b.tx, owner, dev.ID, "root"), apperr.CodeInvalidField)
	requireCode(t, b.svc.SetRole(b.ctx, b.tx, other, dev.ID, account.RoleViewer), apperr.CodeNotFound) // another partner's owner

	require.NoError(t, b.svc.SetRole(b.ctx, b.tx, owner, dev.ID, account.RoleViewer))
	sess, _, err := b.svc.SignIn(b.ctx, b.tx, account.RealmPartner, "jo@example.com", password, b.code(t, secret), "")
	require.NoError(t, err)
	require.NoError(t, b.svc.Remove(b.ctx, b.tx, owner, dev.ID))
	s, _, err := b.svc.Session(b.ctx, b.tx, sess.Token)
	require.NoError(t, err)
	require.Nil(t, s, "removing ends the sessions")
	b.clock.Advance(30 * time.Second)
	_, _, err = b.svc.SignIn(b.ctx, b.tx, account.RealmPartner, "jo@example.com", password, b.code(t, secret), "")
	requireCode(t, err, apperr.CodeUnauthenticated)

	list, err := b.svc.List(b.ctx, b.tx, account.RealmPartner, b.partner)
	require.NoError(t, err)
	require.Len(t, list, 2)
	require.Equal(t, account.StatusRemoved, list[1].Status)

	entries, err := b.svc.Audit.List(b.ctx, b.tx, audit.ListParams{Realm: audit.RealmPartner, RealmID: b.partner})
	require.NoError(t, err)
	var actions []string
	for _, e := range entries {
		actions = append(actions, e.Action)
	}
	require.Equal(t, []string{"account.remove", "account.role", "account.activate", "account.invite", "account.activate", "account.invite"}, actions)
	require.JSONEq(t, `{"role":"developer"}`, string(entries[1].Before))
}

func TestRoles(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		role string
		can  []account.Permission
		not  []account.Permission
	}{
		{account.RoleOwner, []account.Permission{account.PermTeam, account.PermAudit, account.PermCredentials}, nil},
		{account.RoleDeveloper, []account.Permission{account.PermCredentials, account.PermView}, []account.Permission{account.PermTeam, account.PermAudit, account.PermProgram}},
		{account.RoleManager, []account.Permission{account.PermProgram}, []account.Permission{account.PermCredentials, account.PermTeam}},
		{account.RoleSupport, []account.Permission{account.PermUsers}, []account.Permission{account.PermCredentials}},
		{account.RoleViewer, []account.Permission{account.PermView}, []account.Permission{account.PermCredentials, account.PermTeam, account.PermAudit, account.PermUsers, account.PermProgram}},
	} {
		a := &account.Account{Realm: account.RealmPartner, Role: tc.role}
		for _, p := range tc.can {
			require.True(t, a.Can(p), "%s %s", tc.role, p)
		}
		for _, p := range tc.not {
			require.False(t, a.Can(p), "%s %s", tc.role, p)
		}
	}
}
