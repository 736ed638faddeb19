package webhook_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/event"
	"github.com/perkshq/perks/internal/webhook"
)

// statementCounter counts the statements bun runs.
type statementCounter struct{ n atomic.Int64 }

func (c *statementCounter) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context {
	c.n.Add(1)
	return ctx
}
func (c *statementCounter) AfterQuery(context.Context, *bun.QueryEvent) {}

// TestRecordTxIsOneStatement: recording a batch of events through the
// webhook outbox writes the events and a delivery per subscribed endpoint
// with one statement (and one batch job for them with one more, River's), in the
// caller's transaction, whatever the number of events and endpoints.
func TestRecordTxIsOneStatement(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// A bun handle of its own over the shared pool, so the hook counts this
	// test's statements only.
	counter := &statementCounter{}
	hooked := bun.NewDB(dbtest.Shared(t).Bun.DB, pgdialect.New()).WithQueryHook(counter)
	tx, err := hooked.BeginTx(b.ctx, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback() })
	// A partner of its own: the bundle's is uncommitted in another
	// transaction.
	p := uuid.New()
	slug := "ob-" + strings.ReplaceAll(p.String(), "-", "")[:20]
	_, err = tx.NewRaw("INSERT INTO partners (id, slug, name, display_name) VALUES (?, ?, ?, ?)", p, slug, slug, slug).Exec(b.ctx)
	require.NoError(t, err)
	for i, types := range [][]string{nil, {event.UserCreated}, {event.VoucherClaimed}} {
		_, _, err := b.svc.CreateEndpointTx(b.ctx, tx, p, webhook.EndpointParams{URL: fmt.Sprintf("http://127.0.0.1:1/%d", i), EventTypes: types, Enabled: true})
		require.NoError(t, err)
	}

	rec := &event.Recorder{Outbox: b.svc, Now: b.clock.Now}
	var evs []*event.Event
	for i := range 5 {
		typ := event.UserCreated
		if i%2 == 1 {
			typ = event.UserUpdated
		}
		e, err := rec.New(p, typ, nil, map[string]int{"i": i})
		require.NoError(t, err)
		evs = append(evs, e)
	}
	counter.n.Store(0)
	require.NoError(t, rec.RecordTx(b.ctx, tx, evs...))
	require.EqualValues(t, 1, counter.n.Load(), "events and deliveries in one statement")

	var stored, deliveries int
	require.NoError(t, tx.NewRaw("SELECT count(*) FROM events WHERE partner_id = ?", p).Scan(b.ctx, &stored))
	require.NoError(t, tx.NewRaw("SELECT count(*) FROM webhook_deliveries WHERE partner_id = ?", p).Scan(b.ctx, &deliveries))
	require.Equal(t, 5, stored)
	// The catch-all endpoint gets all 5, the user.created one the 3
	// user.created events, the voucher.claimed one none.
	require.Equal(t, 8, deliveries)
	var jobsInserted, jobDeliveries int
	require.NoError(t, tx.NewRaw(`SELECT count(*), sum(jsonb_array_length(args->'deliveries')) FROM river_job
		WHERE kind = ? AND args->'deliveries'->0->>'partnerId' = ?`, webhook.DeliverBatchArgs{}.Kind(), p.String()).Scan(b.ctx, &jobsInserted, &jobDeliveries))
	require.Equal(t, 1, jobsInserted, "one batch job for the transaction's deliveries, in the same transaction")
	require.Equal(t, 8, jobDeliveries)
}
