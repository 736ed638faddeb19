package event_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/event"
)

type bundle struct {
	ctx     context.Context
	tx      bun.Tx
	partner uuid.UUID
	now     time.Time
	rec     *event.Recorder
}

// setup gives each test a rolled-back transaction with a partner of its own
// and a recorder on a fixed clock.
func setup(t *testing.T) *bundle {
	t.Helper()
	ctx := context.Background()
	tx := dbtest.Tx(t)
	slug := "ev-" + strings.ReplaceAll(uuid.NewString(), "-", "")[:20]
	var id uuid.UUID
	require.NoError(t, tx.NewRaw("INSERT INTO partners (slug, name, display_name) VALUES (?, ?, ?) RETURNING id", slug, slug, slug).Scan(ctx, &id))
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.FixedZone("X", 3600))
	return &bundle{ctx: ctx, tx: tx, partner: id, now: now, rec: &event.Recorder{Now: func() time.Time { return now }}}
}

func (b *bundle) stored(t *testing.T) []event.Event {
	t.Helper()
	var evs []event.Event
	require.NoError(t, b.tx.NewSelect().Model(&evs).Where("partner_id = ?", b.partner).Order("type").Scan(b.ctx))
	return evs
}

func TestNew(t *testing.T) {
	t.Parallel()
	b := setup(t)
	user := uuid.New()
	e1, err := b.rec.New(b.partner, event.UserCreated, &user, map[string]any{"userId": user})
	require.NoError(t, err)
	e2, err := b.rec.New(b.partner, event.UserCreated, nil, nil)
	require.NoError(t, err)
	require.NotEqual(t, e1.ID, e2.ID, "every event gets a fresh id")
	require.Equal(t, b.now.UTC(), e1.CreatedAt)
	require.Equal(t, time.UTC, e1.CreatedAt.Location(), "stored in UTC whatever the clock's zone")
	require.JSONEq(t, `{"userId":"`+user.String()+`"}`, string(e1.Data))
	require.Equal(t, &user, e1.UserID)

	_, err = b.rec.New(b.partner, event.UserCreated, nil, map[string]any{"bad": make(chan int)})
	require.ErrorContains(t, err, event.UserCreated, "an unmarshallable payload names the event type")
}

func TestRecordTx(t *testing.T) {
	t.Parallel()

	t.Run("without an outbox one insert stores every event", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		a, err := b.rec.New(b.partner, "a.type", nil, map[string]int{"n": 1})
		require.NoError(t, err)
		c, err := b.rec.New(b.partner, "c.type", nil, nil)
		require.NoError(t, err)
		require.NoError(t, b.rec.RecordTx(b.ctx, b.tx, a, c))
		got := b.stored(t)
		require.Len(t, got, 2)
		require.Equal(t, a.ID, got[0].ID)
		require.JSONEq(t, `{"n":1}`, string(got[0].Data))
		require.True(t, got[0].CreatedAt.Equal(b.now))
		require.Equal(t, "null", string(got[1].Data), "nil data is JSON null")
	})

	t.Run("no events writes nothing and does not call the outbox", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		out := &fakeOutbox{}
		b.rec.Outbox = out
		require.NoError(t, b.rec.RecordTx(b.ctx, b.tx))
		require.Zero(t, out.calls)
		require.Empty(t, b.stored(t))
	})

	t.Run("with an outbox the outbox writes, once, in the caller's transaction", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		out := &fakeOutbox{}
		b.rec.Outbox = out
		e, err := b.rec.EmitTx(b.ctx, b.tx, b.partner, event.UserUpdated, nil, map[string]any{})
		require.NoError(t, err)
		require.Equal(t, 1, out.calls)
		require.Equal(t, []*event.Event{e}, out.events)
		require.Equal(t, b.tx, out.tx)
		require.Empty(t, b.stored(t), "the recorder leaves the writing to the outbox")
	})

	t.Run("an outbox failure is wrapped and returned", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		boom := errors.New("boom")
		b.rec.Outbox = &fakeOutbox{err: boom}
		_, err := b.rec.EmitTx(b.ctx, b.tx, b.partner, event.UserUpdated, nil, nil)
		require.ErrorIs(t, err, boom)
		require.ErrorContains(t, err, "record 1 events")
	})

	t.Run("an insert failure is returned", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		e, err := b.rec.New(uuid.New(), event.UserCreated, nil, nil) // no such partner
		require.NoError(t, err)
		sp, err := b.tx.BeginTx(b.ctx, nil) // a savepoint keeps the test's transaction usable
		require.NoError(t, err)
		err = b.rec.RecordTx(b.ctx, sp, e)
		require.ErrorContains(t, err, "insert 1 events")
		require.NoError(t, sp.Rollback())
	})
}

type fakeOutbox struct {
	calls  int
	tx     bun.Tx
	events []*event.Event
	err    error
}

func (f *fakeOutbox) RecordTx(_ context.Context, tx bun.Tx, events []*event.Event) error {
	f.calls++
	f.tx, f.events = tx, events
	return f.err
}
