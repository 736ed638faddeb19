package webhook_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/event"
	"github.com/perkshq/perks/internal/keyring"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/webhook"
)

// TestReplaySupersedesScheduledRetries: replaying an event whose delivery is
// waiting for a retry sends it now, once: the older job stands down.
func TestReplaySupersedesScheduledRetries(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rcv := newReceiver(t, 500, 200)
	ep, _ := b.endpoint(t, rcv.URL)
	ev := b.emit(t, event.UserCreated, nil)
	old := b.deliveryJobs(t)[0]
	res := b.work(t, old.JobRow)
	require.Equal(t, river.EventKindJobFailed, res.EventKind)

	rows, err := b.svc.ReplayEventTx(b.ctx, b.tx, b.partner.ID, ev.ID, nil)
	require.NoError(t, err)
	require.Equal(t, []webhook.DeliverArgs{{PartnerID: b.partner.ID, EventID: ev.ID, EndpointID: ep.ID, Generation: 1}}, rows)
	d, _ := b.delivery(t, ev, ep)
	require.Equal(t, webhook.StatusPending, d.Status)
	require.Equal(t, 1, d.Generation)

	jobs := b.deliveryJobs(t)
	require.Len(t, jobs, 2)
	b.clock.Set(res.Job.ScheduledAt)
	require.Equal(t, river.EventKindJobCompleted, b.work(t, res.Job).EventKind)
	require.Len(t, rcv.requests(), 1, "the superseded retry did not send")
	require.Equal(t, river.EventKindJobCompleted, b.work(t, jobs[1].JobRow).EventKind)
	require.Len(t, rcv.requests(), 2)
	d, atts := b.delivery(t, ev, ep)
	require.Equal(t, webhook.StatusSucceeded, d.Status)
	require.Len(t, atts, 2)
}

func TestReplayEventTargets(t *testing.T) {
	t.Parallel()
	b := setup(t)
	subscribed, _ := b.endpoint(t, "http://127.0.0.1:1/a", event.UserCreated)
	other, _ := b.endpoint(t, "http://127.0.0.1:1/b", event.PointsEarned)
	off, _, err := b.svc.CreateEndpointTx(b.ctx, b.tx, b.partner.ID, webhook.EndpointParams{URL: "http://127.0.0.1:1/c", Enabled: false})
	require.NoError(t, err)
	ev := b.emit(t, event.UserCreated, nil)

	rows, err := b.svc.ReplayEventTx(b.ctx, b.tx, b.partner.ID, ev.ID, nil)
	require.NoError(t, err)
	require.Len(t, rows, 1)
	require.Equal(t, subscribed.ID, rows[0].EndpointID)

	// Named explicitly, an endpoint gets the event even if it does not
	// subscribe to its type (a backfill).
	rows, err = b.svc.ReplayEventTx(b.ctx, b.tx, b.partner.ID, ev.ID, &other.ID)
	require.NoError(t, err)
	require.Equal(t, []webhook.DeliverArgs{{PartnerID: b.partner.ID, EventID: ev.ID, EndpointID: other.ID}}, rows)

	_, err = b.svc.ReplayEventTx(b.ctx, b.tx, b.partner.ID, ev.ID, &off.ID)
	require.Equal(t, apperr.CodeWebhookEndpointDisabled, apperr.CodeOf(err))
	missing := uuid.New()
	_, err = b.svc.ReplayEventTx(b.ctx, b.tx, b.partner.ID, ev.ID, &missing)
	require.Equal(t, apperr.CodeNotFound, apperr.CodeOf(err))
	_, err = b.svc.ReplayEventTx(b.ctx, b.tx, b.partner.ID, uuid.New(), nil)
	require.Equal(t, apperr.CodeNotFound, apperr.CodeOf(err))
	_, err = b.svc.ReplayEventTx(b.ctx, b.tx, uuid.New(), ev.ID, nil)
	require.Equal(t, apperr.CodeNotFound, apperr.CodeOf(err), "another partner cannot replay the event")
}

// TestReplayWindow: "everything that failed yesterday" re-sends exactly the
// failed deliveries of events in the window; without a status, a window is
// backfilled to an endpoint created later.
func TestReplayWindow(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ep, _ := b.endpoint(t, "http://127.0.0.1:1/a")
	day := b.clock.Now().Truncate(24 * time.Hour).Add(-24 * time.Hour)
	var evs []*event.Event
	for _, at := range []time.Duration{-time.Hour, 2 * time.Hour, 5 * time.Hour, 9 * time.Hour, 26 * time.Hour} {
		b.clock.Set(day.Add(at))
		evs = append(evs, b.emit(t, event.UserCreated, nil))
	}
	for i, status := range []string{webhook.StatusFailed, webhook.StatusFailed, webhook.StatusSucceeded, webhook.StatusFailed, webhook.StatusFailed} {
		_, err := b.tx.NewRaw("UPDATE webhook_deliveries SET status = ? WHERE partner_id = ? AND event_id = ?", status, b.partner.ID, evs[i].ID).Exec(b.ctx)
		require.NoError(t, err)
	}
	before := len(b.deliveryKeys(t))

	n, err := b.svc.ReplayWindow(b.ctx, b.tx, b.partner.ID, webhook.ReplayFilter{From: day, To: day.Add(24 * time.Hour), Status: webhook.StatusFailed})
	require.NoError(t, err)
	require.Equal(t, 2, n, "the failed deliveries of yesterday's events")
	keys := b.deliveryKeys(t)[before:]
	require.Len(t, keys, 2)
	require.ElementsMatch(t, []uuid.UUID{evs[1].ID, evs[3].ID}, []uuid.UUID{keys[0].EventID, keys[1].EventID})
	for _, k := range keys {
		require.Equal(t, 1, k.Generation)
		require.Equal(t, ep.ID, k.EndpointID)
	}
	n, err = b.svc.ReplayWindow(b.ctx, b.tx, b.partner.ID, webhook.ReplayFilter{From: day, To: day.Add(24 * time.Hour), Status: webhook.StatusFailed})
	require.NoError(t, err)
	require.Zero(t, n, "replayed deliveries are pending again, not failed")

	late, _ := b.endpoint(t, "http://127.0.0.1:1/late")
	n, err = b.svc.ReplayWindow(b.ctx, b.tx, b.partner.ID, webhook.ReplayFilter{From: day, To: day.Add(24 * time.Hour), EndpointID: &late.ID})
	require.NoError(t, err)
	require.Equal(t, 3, n, "every event of the window, to the new endpoint")
	ds, _, err := b.svc.Deliveries(b.ctx, b.tx, b.partner.ID, webhook.DeliveryFilter{EndpointID: &late.ID})
	require.NoError(t, err)
	require.Len(t, ds, 3)

	for _, bad := range []struct {
		f     webhook.ReplayFilter
		field string
	}{
		{webhook.ReplayFilter{To: day}, "from"},
		{webhook.ReplayFilter{From: day}, "to"},
		{webhook.ReplayFilter{From: day, To: day}, "to"},
		{webhook.ReplayFilter{From: day, To: day.Add(40 * 24 * time.Hour)}, "to"},
		{webhook.ReplayFilter{From: day, To: day.Add(time.Hour), Status: "lost"}, "status"},
		{webhook.ReplayFilter{From: day, To: day.Add(time.Hour), EventType: "user.deleted"}, "eventType"},
	} {
		_, err := b.svc.ScheduleReplayTx(b.ctx, b.tx, b.partner.ID, bad.f)
		e := apperr.As(err)
		require.NotNil(t, e)
		require.Equal(t, bad.field, e.Field)
	}
	id, err := b.svc.ScheduleReplayTx(b.ctx, b.tx, b.partner.ID, webhook.ReplayFilter{From: day, To: day.Add(time.Hour), Status: webhook.StatusFailed})
	require.NoError(t, err)
	require.Positive(t, id)
}

// TestPruneDeliveries: finished deliveries past retention go with their
// attempts; pending ones and recent ones stay.
func TestPruneDeliveries(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rcv := newReceiver(t)
	b.endpoint(t, rcv.URL)
	now := b.clock.Now()
	b.clock.Set(now.Add(-40 * 24 * time.Hour))
	oldDone := b.emit(t, event.UserCreated, nil)
	oldPending := b.emit(t, event.UserCreated, nil)
	for _, j := range b.deliveryJobs(t) {
		if j.Args.EventID == oldDone.ID {
			b.work(t, j.JobRow)
		}
	}
	b.clock.Set(now.Add(-time.Hour))
	recent := b.emit(t, event.UserCreated, nil)
	for _, j := range b.deliveryJobs(t) {
		if j.Args.EventID == recent.ID {
			b.work(t, j.JobRow)
		}
	}

	n, err := b.svc.PruneDeliveries(b.ctx, b.tx, now, 30*24*time.Hour)
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	var left []uuid.UUID
	require.NoError(t, b.tx.NewRaw("SELECT event_id FROM webhook_deliveries WHERE partner_id = ? ORDER BY created_at", b.partner.ID).Scan(b.ctx, &left))
	require.Equal(t, []uuid.UUID{oldPending.ID, recent.ID}, left)
	var attempts int
	require.NoError(t, b.tx.NewRaw("SELECT count(*) FROM webhook_attempts WHERE partner_id = ?", b.partner.ID).Scan(b.ctx, &attempts))
	require.Equal(t, 1, attempts, "the pruned delivery's attempts went with it")

	opts := webhook.PruneArgs{}.InsertOpts()
	require.Equal(t, time.Hour, opts.UniqueOpts.ByPeriod, "one prune per period across replicas")
	require.Len(t, webhook.Periodic(), 1)
}

// TestConcurrentPutsCreateOneEndpoint: simultaneous first PUTs of one id
// (a client retrying) create it once; the others update it.
func TestConcurrentPutsCreateOneEndpoint(t *testing.T) {
	t.Parallel()
	db := dbtest.NewDB(t)
	keys, err := keyring.New(make([]byte, keyring.KeySize))
	require.NoError(t, err)
	ctx := context.Background()
	p, err := partner.NewService(keys).Upsert(ctx, db.Bun, partner.CreateParams{Slug: "race", Name: "Race"})
	require.NoError(t, err)
	svc := &webhook.Service{Keys: keys, Policy: &webhook.URLPolicy{AllowPrivate: true}}
	id := uuid.New()
	const n = 8
	created := make(chan bool, n)
	for i := 0; i < n; i++ {
		go func() {
			var c bool
			err := db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
				var err error
				_, _, c, err = svc.PutEndpointTx(ctx, tx, p.ID, id, webhook.EndpointParams{URL: "http://127.0.0.1:1/x", Enabled: true})
				return err
			})
			assert.NoError(t, err)
			created <- c
		}()
	}
	total := 0
	for i := 0; i < n; i++ {
		if <-created {
			total++
		}
	}
	require.Equal(t, 1, total)
}
