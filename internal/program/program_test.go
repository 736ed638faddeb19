package program_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/keyring"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/program"
)

func ptr[T any](v T) *T { return &v }

func utc(y int, m time.Month, d, h, min int) time.Time {
	return time.Date(y, m, d, h, min, 0, 0, time.UTC)
}

func TestResolve(t *testing.T) {
	t.Parallel()
	paris, err := time.LoadLocation("Europe/Paris")
	require.NoError(t, err)
	rolling := func(days int, round bool) program.Policy {
		p := program.Default(uuid.Nil)
		p.ExpiryMode, p.ExpiryDays, p.ExpiryRoundToMonthEnd = program.ExpiryRolling, &days, round
		return p
	}
	fixed := func(dates ...string) program.Policy {
		p := program.Default(uuid.Nil)
		p.ExpiryMode, p.ExpiryDates = program.ExpiryFixed, dates
		return p
	}
	withPending := func(p program.Policy, days int) program.Policy { p.PendingDays = days; return p }

	tests := []struct {
		name      string
		policy    program.Policy
		o         program.Overrides
		earned    time.Time
		loc       *time.Location
		available time.Time
		expires   *time.Time // nil: never
	}{
		{name: "default: available at once, never expires", policy: program.Default(uuid.Nil),
			earned: utc(2026, 3, 10, 9, 30), available: utc(2026, 3, 10, 9, 30)},
		{name: "none with pending days", policy: withPending(program.Default(uuid.Nil), 14),
			earned: utc(2026, 3, 10, 9, 30), available: utc(2026, 3, 24, 9, 30)},
		{name: "rolling 365 days", policy: rolling(365, false),
			earned: utc(2026, 3, 10, 9, 30), available: utc(2026, 3, 10, 9, 30), expires: ptr(utc(2027, 3, 10, 9, 30))},
		{name: "rolling counts from availability", policy: withPending(rolling(30, false), 10),
			earned: utc(2026, 3, 1, 8, 0), available: utc(2026, 3, 11, 8, 0), expires: ptr(utc(2026, 4, 10, 8, 0))},
		{name: "rolling rounded to end of month", policy: rolling(30, true),
			earned: utc(2026, 1, 31, 12, 0), available: utc(2026, 1, 31, 12, 0), expires: ptr(utc(2026, 4, 1, 0, 0))},
		{name: "rounded lands in February of a common year", policy: rolling(30, true),
			earned: utc(2027, 1, 15, 12, 0), available: utc(2027, 1, 15, 12, 0), expires: ptr(utc(2027, 3, 1, 0, 0))},
		{name: "rounded lands on 29 February of a leap year", policy: rolling(29, true),
			earned: utc(2028, 1, 31, 12, 0), available: utc(2028, 1, 31, 12, 0), expires: ptr(utc(2028, 3, 1, 0, 0))},
		{name: "rolling one year from 29 February", policy: rolling(365, false),
			earned: utc(2028, 2, 29, 12, 0), available: utc(2028, 2, 29, 12, 0), expires: ptr(utc(2029, 2, 28, 12, 0))},
		{name: "rounded in the partner's zone", policy: rolling(10, true), loc: paris,
			// 21 Mar 23:30 UTC is 22 Mar in Paris; +10 days is 1 Apr: end of April in Paris.
			earned: utc(2026, 3, 21, 23, 30), available: utc(2026, 3, 21, 23, 30),
			expires: ptr(time.Date(2026, 5, 1, 0, 0, 0, 0, paris).UTC())},
		{name: "rolling keeps the local hour across DST", policy: rolling(30, false), loc: paris,
			earned: time.Date(2026, 3, 10, 9, 0, 0, 0, paris), available: time.Date(2026, 3, 10, 9, 0, 0, 0, paris).UTC(),
			expires: ptr(time.Date(2026, 4, 9, 9, 0, 0, 0, paris).UTC())},
		{name: "pending days are calendar days across DST", policy: withPending(program.Default(uuid.Nil), 14), loc: paris,
			earned: time.Date(2026, 3, 20, 9, 0, 0, 0, paris), available: time.Date(2026, 4, 3, 9, 0, 0, 0, paris).UTC()},
		{name: "fixed: next date this year", policy: fixed("12-31"),
			earned: utc(2026, 3, 10, 9, 30), available: utc(2026, 3, 10, 9, 30), expires: ptr(utc(2027, 1, 1, 0, 0))},
		{name: "fixed: earned on the date expires that night", policy: fixed("12-31"),
			earned: utc(2026, 12, 31, 22, 0), available: utc(2026, 12, 31, 22, 0), expires: ptr(utc(2027, 1, 1, 0, 0))},
		{name: "fixed: date passed, next year", policy: fixed("06-30"),
			earned: utc(2026, 12, 31, 22, 0), available: utc(2026, 12, 31, 22, 0), expires: ptr(utc(2027, 7, 1, 0, 0))},
		{name: "fixed: the nearest of several dates", policy: fixed("03-31", "06-30", "09-30", "12-31"),
			earned: utc(2026, 7, 1, 0, 0), available: utc(2026, 7, 1, 0, 0), expires: ptr(utc(2026, 10, 1, 0, 0))},
		{name: "fixed: wraps to the first date of next year", policy: fixed("03-31", "06-30"),
			earned: utc(2026, 7, 1, 0, 0), available: utc(2026, 7, 1, 0, 0), expires: ptr(utc(2027, 4, 1, 0, 0))},
		{name: "fixed: pending days move past the date", policy: withPending(fixed("12-31"), 5),
			earned: utc(2026, 12, 29, 10, 0), available: utc(2027, 1, 3, 10, 0), expires: ptr(utc(2028, 1, 1, 0, 0))},
		{name: "fixed: end of the date in the partner's zone", policy: fixed("12-31"), loc: paris,
			// 31 Dec 23:30 UTC is already 1 Jan in Paris.
			earned: utc(2026, 12, 31, 23, 30), available: utc(2026, 12, 31, 23, 30),
			expires: ptr(time.Date(2028, 1, 1, 0, 0, 0, 0, paris).UTC())},
		{name: "rule pending overrides the policy", policy: withPending(rolling(30, false), 10),
			o:      program.Overrides{PendingDays: ptr(0)},
			earned: utc(2026, 3, 1, 8, 0), available: utc(2026, 3, 1, 8, 0), expires: ptr(utc(2026, 3, 31, 8, 0))},
		{name: "rule expiry overrides none", policy: program.Default(uuid.Nil),
			o:      program.Overrides{ExpiryDays: ptr(7), PendingDays: ptr(2)},
			earned: utc(2026, 3, 1, 8, 0), available: utc(2026, 3, 3, 8, 0), expires: ptr(utc(2026, 3, 10, 8, 0))},
		{name: "rule expiry overrides fixed dates", policy: fixed("12-31"),
			o:      program.Overrides{ExpiryDays: ptr(90)},
			earned: utc(2026, 11, 1, 8, 0), available: utc(2026, 11, 1, 8, 0), expires: ptr(utc(2027, 1, 30, 8, 0))},
		{name: "rule expiry is rounded when the policy rounds", policy: rolling(365, true),
			o:      program.Overrides{ExpiryDays: ptr(10)},
			earned: utc(2026, 2, 25, 8, 0), available: utc(2026, 2, 25, 8, 0), expires: ptr(utc(2026, 4, 1, 0, 0))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			available, expires := program.Resolve(tt.policy, tt.o, tt.earned, tt.loc)
			require.True(t, tt.available.Equal(available), "availableAt %s, want %s", available, tt.available)
			require.Equal(t, time.UTC, available.Location())
			if tt.expires == nil {
				require.Nil(t, expires)
				return
			}
			require.NotNil(t, expires)
			require.True(t, tt.expires.Equal(*expires), "expiresAt %s, want %s", expires, tt.expires)
			require.True(t, expires.After(available), "a lot must be spendable before it expires")
		})
	}
}

func TestInputValidate(t *testing.T) {
	t.Parallel()
	valid := func() program.Input {
		return program.Input{ExpiryMode: program.ExpiryNone, NegativeBalance: program.NegativeForbid, ExpiryWarningDays: 30}
	}
	tests := []struct {
		name   string
		change func(*program.Input)
		field  string // "" valid
	}{
		{"defaults", func(*program.Input) {}, ""},
		{"rolling", func(in *program.Input) { in.ExpiryMode, in.ExpiryDays = "rolling", ptr(3650) }, ""},
		{"rolling rounded", func(in *program.Input) {
			in.ExpiryMode, in.ExpiryDays, in.ExpiryRoundToMonthEnd = "rolling", ptr(1), true
		}, ""},
		{"fixed twelve dates", func(in *program.Input) {
			in.ExpiryMode = "fixed"
			in.ExpiryDates = []string{"01-31", "02-28", "03-31", "04-30", "05-31", "06-30", "07-31", "08-31", "09-30", "10-31", "11-30", "12-31"}
		}, ""},
		{"bounds", func(in *program.Input) { in.PendingDays, in.ExpiryWarningDays = 3650, 365 }, ""},
		{"unknown mode", func(in *program.Input) { in.ExpiryMode = "monthly" }, "expiryMode"},
		{"rolling without days", func(in *program.Input) { in.ExpiryMode = "rolling" }, "expiryDays"},
		{"rolling zero days", func(in *program.Input) { in.ExpiryMode, in.ExpiryDays = "rolling", ptr(0) }, "expiryDays"},
		{"rolling too many days", func(in *program.Input) { in.ExpiryMode, in.ExpiryDays = "rolling", ptr(3651) }, "expiryDays"},
		{"days without rolling", func(in *program.Input) { in.ExpiryDays = ptr(30) }, "expiryDays"},
		{"rounding without rolling", func(in *program.Input) { in.ExpiryRoundToMonthEnd = true }, "expiryRoundToMonthEnd"},
		{"fixed without dates", func(in *program.Input) { in.ExpiryMode = "fixed" }, "expiryDates"},
		{"dates without fixed", func(in *program.Input) { in.ExpiryDates = []string{"12-31"} }, "expiryDates"},
		{"thirteen dates", func(in *program.Input) {
			in.ExpiryMode = "fixed"
			for m := 1; m <= 12; m++ {
				in.ExpiryDates = append(in.ExpiryDates, time.Date(2001, time.Month(m), 1, 0, 0, 0, 0, time.UTC).Format("01-02"))
			}
			in.ExpiryDates = append(in.ExpiryDates, "12-31")
		}, "expiryDates"},
		{"duplicate date", func(in *program.Input) { in.ExpiryMode, in.ExpiryDates = "fixed", []string{"12-31", "12-31"} }, "expiryDates"},
		{"31 April", func(in *program.Input) { in.ExpiryMode, in.ExpiryDates = "fixed", []string{"04-31"} }, "expiryDates"},
		{"29 February", func(in *program.Input) { in.ExpiryMode, in.ExpiryDates = "fixed", []string{"02-29"} }, "expiryDates"},
		{"month 13", func(in *program.Input) { in.ExpiryMode, in.ExpiryDates = "fixed", []string{"13-01"} }, "expiryDates"},
		{"day 0", func(in *program.Input) { in.ExpiryMode, in.ExpiryDates = "fixed", []string{"01-00"} }, "expiryDates"},
		{"not MM-DD", func(in *program.Input) { in.ExpiryMode, in.ExpiryDates = "fixed", []string{"2026-12-31"} }, "expiryDates"},
		{"signs", func(in *program.Input) { in.ExpiryMode, in.ExpiryDates = "fixed", []string{"+1-01"} }, "expiryDates"},
		{"negative pending", func(in *program.Input) { in.PendingDays = -1 }, "pendingDays"},
		{"pending too long", func(in *program.Input) { in.PendingDays = 3651 }, "pendingDays"},
		{"negative balance mode", func(in *program.Input) { in.NegativeBalance = "sometimes" }, "negativeBalance"},
		{"negative warning", func(in *program.Input) { in.ExpiryWarningDays = -1 }, "expiryWarningDays"},
		{"warning too long", func(in *program.Input) { in.ExpiryWarningDays = 366 }, "expiryWarningDays"},
		{"currency EUR", func(in *program.Input) { in.Currency = ptr("EUR") }, ""},
		{"currency lower case", func(in *program.Input) { in.Currency = ptr("eur") }, "currency"},
		{"currency unknown", func(in *program.Input) { in.Currency = ptr("EUE") }, "currency"},
		{"currency too long", func(in *program.Input) { in.Currency = ptr("EURO") }, "currency"},
		{"currency empty", func(in *program.Input) { in.Currency = ptr("") }, "currency"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := valid()
			tt.change(&in)
			err := in.Validate()
			if tt.field == "" {
				require.NoError(t, err)
				return
			}
			var ae *apperr.Error
			require.True(t, errors.As(err, &ae), "%v", err)
			require.Equal(t, tt.field, ae.Field, "%v", err)
		})
	}
}

type bundle struct {
	ctx     context.Context
	tx      bun.Tx
	svc     *program.Service
	now     time.Time
	partner *partner.Partner
}

func setup(t *testing.T) *bundle {
	t.Helper()
	keys, err := keyring.New(make([]byte, keyring.KeySize))
	require.NoError(t, err)
	b := &bundle{ctx: context.Background(), tx: dbtest.Tx(t), now: utc(2026, 11, 25, 12, 0)}
	b.svc = &program.Service{Now: func() time.Time { return b.now }}
	b.partner, err = partner.NewService(keys).Upsert(b.ctx, b.tx, partner.CreateParams{Slug: "p-" + uuid.NewString()[:8], Name: "P"})
	require.NoError(t, err)
	return b
}

func TestGetPut(t *testing.T) {
	t.Parallel()

	t.Run("DefaultsWhenNeverSet", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p, err := b.svc.Get(b.ctx, b.tx, b.partner.ID)
		require.NoError(t, err)
		require.Equal(t, program.Default(b.partner.ID), p)
		require.Equal(t, "none", p.ExpiryMode)
		require.Equal(t, 0, p.PendingDays)
		require.Equal(t, "forbid", p.NegativeBalance)
		require.Equal(t, 30, p.ExpiryWarningDays)
	})

	t.Run("PutReplacesAndKeepsCreatedAt", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		put, err := b.svc.Put(b.ctx, b.tx, b.partner.ID, program.Input{
			ExpiryMode: "fixed", ExpiryDates: []string{"12-31", "06-30"}, PendingDays: 14, NegativeBalance: "allow", ExpiryWarningDays: 7,
		})
		require.NoError(t, err)
		require.Equal(t, []string{"06-30", "12-31"}, put.ExpiryDates, "dates are stored sorted")
		got, err := b.svc.Get(b.ctx, b.tx, b.partner.ID)
		require.NoError(t, err)
		require.Equal(t, put.ExpiryDates, got.ExpiryDates)
		require.Equal(t, 14, got.PendingDays)
		require.Equal(t, "allow", got.NegativeBalance)
		require.True(t, b.now.Equal(got.CreatedAt))

		created := b.now
		b.now = b.now.Add(time.Hour)
		put, err = b.svc.Put(b.ctx, b.tx, b.partner.ID, program.Input{
			ExpiryMode: "rolling", ExpiryDays: ptr(365), ExpiryRoundToMonthEnd: true, NegativeBalance: "forbid",
		})
		require.NoError(t, err)
		require.True(t, created.Equal(put.CreatedAt), "created_at is kept on replace: %s", put.CreatedAt)
		got, err = b.svc.Get(b.ctx, b.tx, b.partner.ID)
		require.NoError(t, err)
		require.Equal(t, "rolling", got.ExpiryMode)
		require.Equal(t, 365, *got.ExpiryDays)
		require.True(t, got.ExpiryRoundToMonthEnd)
		require.Empty(t, got.ExpiryDates)
		require.Equal(t, 0, got.PendingDays)
		require.Equal(t, 0, got.ExpiryWarningDays)
		require.True(t, b.now.Equal(got.UpdatedAt))
		require.Nil(t, got.Currency)
	})

	t.Run("CurrencyRoundTrip", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, err := b.svc.Put(b.ctx, b.tx, b.partner.ID, program.Input{ExpiryMode: "none", NegativeBalance: "forbid", Currency: ptr("SGD")})
		require.NoError(t, err)
		got, err := b.svc.Get(b.ctx, b.tx, b.partner.ID)
		require.NoError(t, err)
		require.Equal(t, "SGD", *got.Currency)
		// Replace means replace: no currency sent, none kept.
		_, err = b.svc.Put(b.ctx, b.tx, b.partner.ID, program.Input{ExpiryMode: "none", NegativeBalance: "forbid"})
		require.NoError(t, err)
		got, err = b.svc.Get(b.ctx, b.tx, b.partner.ID)
		require.NoError(t, err)
		require.Nil(t, got.Currency)
	})

	t.Run("RefusedChangesNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, err := b.svc.Put(b.ctx, b.tx, b.partner.ID, program.Input{ExpiryMode: "none", NegativeBalance: "allow", ExpiryWarningDays: 5})
		require.NoError(t, err)
		before := dbtest.Snapshot(t, b.tx)
		_, err = b.svc.Put(b.ctx, b.tx, b.partner.ID, program.Input{ExpiryMode: "fixed", ExpiryDates: []string{"02-30"}, NegativeBalance: "forbid"})
		require.Equal(t, apperr.CodeInvalidField, apperr.CodeOf(err))
		require.Equal(t, before, dbtest.Snapshot(t, b.tx))
	})
}
