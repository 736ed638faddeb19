package user_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/app"
	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/event"
	"github.com/perkshq/perks/internal/keyring"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/user"
)

type bundle struct {
	now     time.Time
	tx      bun.Tx
	users   *user.Service
	partner *partner.Partner
}

func setup(t *testing.T) *bundle {
	t.Helper()
	tx := dbtest.Tx(t)
	keys, err := keyring.New(make([]byte, keyring.KeySize))
	require.NoError(t, err)
	p, err := partner.NewService(keys).Upsert(context.Background(), tx, partner.CreateParams{Slug: "p-" + uuid.NewString()[:8], Name: "P"})
	require.NoError(t, err)
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	return &bundle{now: now, tx: tx, partner: p, users: &user.Service{Keys: keys, Events: &event.Recorder{Now: func() time.Time { return now }}, Now: func() time.Time { return now }, Erase: app.EraseSteps()}}
}

func str(s string) *string { return &s }

func TestNormalize(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		in    user.Profile
		field string
		check func(t *testing.T, p user.Profile)
	}{
		{"locale underscore", user.Profile{Locale: str("en_US")}, "", func(t *testing.T, p user.Profile) { require.Equal(t, "en-US", *p.Locale) }},
		{"country lower case", user.Profile{CountryCode: str("sg")}, "", func(t *testing.T, p user.Profile) { require.Equal(t, "SG", *p.CountryCode) }},
		{"trimmed name", user.Profile{DisplayName: str("  Ann ")}, "", func(t *testing.T, p user.Profile) { require.Equal(t, "Ann", *p.DisplayName) }},
		{"email without domain dot", user.Profile{Email: str("a@localhost")}, "email", nil},
		{"email with spaces", user.Profile{Email: str("a b@example.com")}, "email", nil},
		{"region not a country", user.Profile{CountryCode: str("EU")}, "countryCode", nil},
		{"locale garbage", user.Profile{Locale: str("!!")}, "locale", nil},
		{"control char", user.Profile{FirstName: str("a\nb")}, "firstName", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p, err := user.Normalize(c.in)
			if c.field != "" {
				e := apperr.As(err)
				require.NotNil(t, e, "want an error for %s", c.field)
				require.Equal(t, c.field, e.Field)
				return
			}
			require.NoError(t, err)
			c.check(t, p)
		})
	}
}

// TestEventsShareTheTransaction: the user.created event exists only if the
// user does.
func TestEventsShareTheTransaction(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	sp, err := b.tx.BeginTx(ctx, nil) // a savepoint inside the test's transaction
	require.NoError(t, err)
	_, err = b.users.UpsertTx(ctx, sp, b.partner.ID, "ghost", user.Profile{})
	require.NoError(t, err)
	require.NoError(t, sp.Rollback())

	var users, events int
	require.NoError(t, b.tx.NewRaw("SELECT count(*) FROM users WHERE partner_id = ?", b.partner.ID).Scan(ctx, &users))
	require.NoError(t, b.tx.NewRaw("SELECT count(*) FROM events WHERE partner_id = ?", b.partner.ID).Scan(ctx, &events))
	require.Zero(t, users)
	require.Zero(t, events)

	res, err := b.users.UpsertTx(ctx, b.tx, b.partner.ID, "real", user.Profile{})
	require.NoError(t, err)
	var typ string
	require.NoError(t, b.tx.NewRaw("SELECT type FROM events WHERE partner_id = ? AND user_id = ?", b.partner.ID, res.User.ID).Scan(ctx, &typ))
	require.Equal(t, event.UserCreated, typ)
}

// TestFromToken: unknown subjects are created from claims; bad profile claims
// are dropped rather than failing the session; anonymised users are refused.
func TestFromToken(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	u, created, err := b.users.FromTokenTx(ctx, b.tx, b.partner.ID, "tok-user", b.now, user.Profile{Email: str("bad email"), DisplayName: str("Tok")})
	require.NoError(t, err)
	require.True(t, created)
	require.Nil(t, u.Email)
	require.Equal(t, "Tok", *u.DisplayName)

	u2, created, err := b.users.FromTokenTx(ctx, b.tx, b.partner.ID, "tok-user", b.now, user.Profile{DisplayName: str("Renamed")})
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, u.ID, u2.ID)
	require.Equal(t, "Renamed", *u2.DisplayName)

	_, err = b.users.AnonymiseTx(ctx, b.tx, b.partner.ID, "tok-user")
	require.NoError(t, err)
	_, _, err = b.users.FromTokenTx(ctx, b.tx, b.partner.ID, "tok-user", b.now, user.Profile{})
	require.True(t, apperr.Is(err, apperr.CodeUserAnonymised), "%v", err)

	_, _, err = b.users.FromTokenTx(ctx, b.tx, b.partner.ID, "", b.now, user.Profile{})
	require.True(t, apperr.Is(err, apperr.CodeTokenInvalid))
	require.False(t, errors.Is(err, context.Canceled))
}

// TestTokenWatermarks: anonymising and erasing refuse every token issued up
// to the second of the deletion, through a revival or a re-creation; a
// later logout never lowers that watermark; and a token from before an
// erasure never re-creates the user.
func TestTokenWatermarks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	type step func(t *testing.T, b *bundle, ext string)
	anonymise := func(t *testing.T, b *bundle, ext string) {
		_, err := b.users.AnonymiseTx(ctx, b.tx, b.partner.ID, ext)
		require.NoError(t, err)
	}
	erase := func(t *testing.T, b *bundle, ext string) {
		u, err := b.users.Get(ctx, b.tx, b.partner.ID, ext)
		require.NoError(t, err)
		require.NoError(t, b.users.EraseTx(ctx, b.tx, b.partner.ID, []uuid.UUID{u.ID}))
	}
	revive := func(t *testing.T, b *bundle, ext string) {
		_, err := b.users.UpsertTx(ctx, b.tx, b.partner.ID, ext, user.Profile{})
		require.NoError(t, err)
	}
	logout := func(t *testing.T, b *bundle, ext string) {
		require.NoError(t, b.users.LogoutExternalTx(ctx, b.tx, b.partner.ID, ext))
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"anonymise, revive", []step{anonymise, revive}},
		{"anonymise, revive, logout", []step{anonymise, revive, logout}},
		{"erase, re-create", []step{erase, revive}},
		{"erase, re-create, logout", []step{erase, revive, logout}},
		{"erase", []step{erase}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			ext := "wm-" + uuid.NewString()[:8]
			_, _, err := b.users.FromTokenTx(ctx, b.tx, b.partner.ID, ext, b.now.Add(-time.Minute), user.Profile{})
			require.NoError(t, err)
			for _, s := range c.steps {
				s(t, b, ext)
			}
			// Issued before, and in the very second of, the deletion.
			for _, iat := range []time.Time{b.now.Add(-time.Minute), b.now} {
				sp, err := b.tx.BeginTx(ctx, nil)
				require.NoError(t, err)
				_, _, err = b.users.FromTokenTx(ctx, sp, b.partner.ID, ext, iat, user.Profile{Email: str("back@example.com")})
				require.True(t, apperr.Is(err, apperr.CodeTokenRevoked), "iat %s: %v", iat, err)
				var n int
				require.NoError(t, sp.NewRaw("SELECT count(*) FROM users WHERE partner_id = ? AND email IS NOT NULL", b.partner.ID).Scan(ctx, &n))
				require.Zero(t, n, "a refused token writes nothing")
				require.NoError(t, sp.Rollback())
			}
			// Minted a second later: works (and creates the user if gone).
			u, _, err := b.users.FromTokenTx(ctx, b.tx, b.partner.ID, ext, b.now.Add(time.Second), user.Profile{})
			require.NoError(t, err)
			require.True(t, user.TokenWatermark(b.now).Equal(*u.TokensValidAfter), "%s", u.TokensValidAfter)
		})
	}
}
