package webhook_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/event"
	"github.com/perkshq/perks/internal/webhook"
)

// TestRecordTxIsOneStatement: recording a batch of events through the
// webhook outbox writes the events and a delivery per subscribed endpoint
// with one statement (and one batch job for them with one more, River's), in the
// caller's transaction, whatever the number of events and endpoints. The
// statements are counted on a pool of the test's own (every statement sent,
// prepared or not).
func TestRecordTxIsOneStatement(t *testing.T) {
	t.Parallel()
	b := setup(t)
	db := dbtest.NewDB(t)
	tx, err := db.Bun.BeginTx(b.ctx, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback() })
	// A partner of its own: the bundle's is in another database.
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
	n := db.Statements.Count(func() { require.NoError(t, rec.RecordTx(b.ctx, tx, evs...)) })
	var ours int64
	for _, text := range strings.Split(db.Statements.Texts(), "\n") {
		// River's statements (its version probe, the job insert and its
		// wake-up notification) are named by sqlc.
		if !strings.HasPrefix(text, "-- name: ") {
			ours++
		}
	}
	require.EqualValues(t, 1, ours, "events and deliveries in one statement:\n%s", db.Statements.Texts())
	require.LessOrEqual(t, n, int64(4), "and River's job insert:\n%s", db.Statements.Texts())
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
