package webhook_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/event"
	"github.com/perkshq/perks/internal/keyring"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/user"
	"github.com/perkshq/perks/internal/webhook"
)

type batchBundle struct {
	db      *bun.DB
	svc     *webhook.Service
	worker  *webhook.DeliverWorker
	partner *partner.Partner
	events  *event.Recorder
	users   *user.Service
}

func setupBatch(t *testing.T) *batchBundle {
	t.Helper()
	ctx := context.Background()
	shared := dbtest.NewDB(t)
	db := bun.NewDB(shared.SQL, pgdialect.New())
	keys, err := keyring.New(make([]byte, keyring.KeySize))
	require.NoError(t, err)
	p, err := partner.NewService(keys).Upsert(ctx, db, partner.CreateParams{Slug: "batch", Name: "Batch"})
	require.NoError(t, err)
	policy := &webhook.URLPolicy{AllowPrivate: true}
	svc := &webhook.Service{Keys: keys, Policy: policy, Sender: webhook.NewSender(policy), Jobs: noJobs{}}
	rec := &event.Recorder{Outbox: svc, Now: time.Now}
	svc.Users = &user.Service{Keys: keys, Events: rec, Now: time.Now}
	return &batchBundle{db: db, svc: svc, worker: &webhook.DeliverWorker{DB: db, Webhooks: svc}, partner: p, events: rec, users: svc.Users}
}

// TestConcurrentDeliveriesShareStatements: deliveries worked at the same
// time by the queue's workers are loaded and recorded in a few statements,
// not two each, and every one still gets its own outcome: a success with
// an answer full of quotes and backslashes, a failure retried later, a
// Retry-After honoured, a last attempt failed, an answer about an
// anonymised user not kept.
func TestConcurrentDeliveriesShareStatements(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const n = 40

	b := setupBatch(t)

	// The receiver holds every request until all n are in flight, so the
	// workers' attempts end together, as under load; its answer depends on
	// the event.
	var inFlight atomic.Int32
	var userID atomic.Value
	all := make(chan struct{})
	const answer = `{"ok":"a\"b\\c {x,y} 'z'"}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if inFlight.Add(1) == n {
			// Every answer comes after the user is anonymised: the echo
			// of their profile must not be kept.
			_, err := b.db.NewRaw("UPDATE users SET anonymised_at = now(), external_id = NULL, email = NULL, display_name = NULL, first_name = NULL, last_name = NULL, locale = NULL, country_code = NULL WHERE partner_id = ? AND id = ?",
				b.partner.ID, userID.Load()).Exec(ctx)
			if err != nil {
				t.Error(err)
			}
			close(all)
		}
		select {
		case <-all:
		case <-time.After(10 * time.Second):
		}
		var p struct {
			Type string
			Data struct{ N int }
		}
		_ = json.Unmarshal(body, &p)
		switch {
		case p.Type == event.UserUpdated:
			_, _ = w.Write(body) // an echo of personal data
		case p.Data.N%3 == 0:
			_, _ = w.Write([]byte(answer))
		case p.Data.N%3 == 1:
			w.WriteHeader(http.StatusInternalServerError)
		default:
			w.Header().Set("Retry-After", "7200")
			w.WriteHeader(http.StatusTooManyRequests)
		}
	}))
	t.Cleanup(srv.Close)
	tx := mustTx(t, b.db)
	ep, _, err := b.svc.CreateEndpointTx(ctx, tx, b.partner.ID, webhook.EndpointParams{URL: srv.URL, Enabled: true})
	require.NoError(t, err)
	require.NoError(t, tx.Commit())

	// n-1 events, and one about a user anonymised once the request is out.
	var jobs []*river.Job[webhook.DeliverArgs]
	var evs []*event.Event
	tx = mustTx(t, b.db)
	for i := 0; i < n-1; i++ {
		ev, err := b.events.EmitTx(ctx, tx, b.partner.ID, event.BulkJobCompleted, nil, map[string]int{"n": i})
		require.NoError(t, err)
		evs = append(evs, ev)
	}
	res, err := b.users.UpsertTx(ctx, tx, b.partner.ID, "u-1", user.Profile{Email: ptr("u1@example.com")})
	require.NoError(t, err)
	userEv, err := b.events.EmitTx(ctx, tx, b.partner.ID, event.UserUpdated, &res.User.ID, nil)
	require.NoError(t, err)
	evs = append(evs, userEv)
	userID.Store(res.User.ID)
	require.NoError(t, tx.Commit())
	for i, ev := range evs {
		attempt, maxAttempts := 1, webhook.MaxAttempts
		if i == 1 { // a failure on its last attempt
			attempt = maxAttempts
		}
		jobs = append(jobs, &river.Job[webhook.DeliverArgs]{
			JobRow: &rivertype.JobRow{ID: int64(i + 1), Attempt: attempt, MaxAttempts: maxAttempts},
			Args:   webhook.DeliverArgs{PartnerID: b.partner.ID, EventID: ev.ID, EndpointID: ep.ID},
		})
	}
	pages := deliveryPages(t, b.db, b.partner.ID)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, job := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = b.worker.Work(ctx, job)
		}()
	}
	wg.Wait()

	loads, records := webhook.BatchRuns(b.worker)
	t.Logf("%d deliveries: %d load statements, %d record statements in %s", n, loads, records, time.Since(start))
	require.LessOrEqual(t, loads, int64(n/4), "loads are batched")
	require.LessOrEqual(t, records, int64(n/4), "records are batched")

	// The status updates stay on their page (HOT: no new index entries),
	// thanks to the table's fillfactor.
	samePage := 0
	for id, page := range deliveryPages(t, b.db, b.partner.ID) {
		if pages[id] == page {
			samePage++
		}
	}
	t.Logf("%d of %d delivery updates stayed on their page", samePage, len(pages))
	require.GreaterOrEqual(t, samePage, len(pages)*3/4, "delivery updates stay on their page")

	for i, ev := range evs {
		d, atts, err := b.svc.Delivery(ctx, b.db, b.partner.ID, deliveryID(t, b.db, ev, ep))
		require.NoError(t, err)
		require.Len(t, atts, 1, "event %d: one attempt logged", i)
		require.Equal(t, 1, d.AttemptCount)
		switch {
		case ev == userEv:
			require.NoError(t, errs[i])
			require.Equal(t, webhook.StatusSucceeded, d.Status)
			require.Nil(t, atts[0].ResponseBody, "an echo about an anonymised user is not kept")
		case i == 1:
			require.Error(t, errs[i])
			require.Equal(t, webhook.StatusFailed, d.Status, "the last attempt failed")
			require.Nil(t, d.NextAttemptAt)
			require.NotNil(t, d.CompletedAt)
		case i%3 == 0:
			require.NoError(t, errs[i])
			require.Equal(t, webhook.StatusSucceeded, d.Status)
			require.NotNil(t, atts[0].ResponseBody)
			require.Equal(t, answer, *atts[0].ResponseBody, "the answer is kept as sent")
			require.Equal(t, 200, *atts[0].StatusCode)
		case i%3 == 1:
			require.Error(t, errs[i])
			require.Equal(t, webhook.StatusPending, d.Status)
			require.Equal(t, 500, *d.LastStatusCode)
			require.NotNil(t, d.NextAttemptAt)
			require.WithinDuration(t, time.Now().Add(webhook.RetryDelay(1)), *d.NextAttemptAt, 3*time.Second)
		default:
			require.Error(t, errs[i])
			require.Equal(t, webhook.StatusPending, d.Status)
			require.Equal(t, 429, *d.LastStatusCode)
			require.WithinDuration(t, time.Now().Add(2*time.Hour), *d.NextAttemptAt, 10*time.Second, "Retry-After honoured")
		}
	}
}

type noJobs struct{}

func (noJobs) InsertIDTx(context.Context, bun.Tx, river.JobArgs, *river.InsertOpts) (int64, error) {
	return 0, nil
}

func (noJobs) InsertManyTx(context.Context, bun.Tx, []river.InsertManyParams) error { return nil }

func mustTx(t *testing.T, db *bun.DB) bun.Tx {
	t.Helper()
	tx, err := db.BeginTx(context.Background(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback() })
	return tx
}

func ptr[T any](v T) *T { return &v }

func deliveryID(t *testing.T, db bun.IDB, ev *event.Event, ep *webhook.Endpoint) (id uuid.UUID) {
	t.Helper()
	require.NoError(t, db.NewRaw("SELECT id FROM webhook_deliveries WHERE partner_id = ? AND event_id = ? AND endpoint_id = ?",
		ev.PartnerID, ev.ID, ep.ID).Scan(context.Background(), &id))
	return id
}

// TestFailedBatchRecordsOneByOne: when a batch of records fails (here one
// delivery deleted while its request was out, so its attempt cannot be
// logged), the others are still recorded, one by one, and only the one
// that cannot be recorded fails its job: a receiver that answered is not
// sent the delivery again.
func TestFailedBatchRecordsOneByOne(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const n = 12
	b := setupBatch(t)

	var inFlight atomic.Int32
	all := make(chan struct{})
	var gone atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.ReadAll(req.Body)
		if inFlight.Add(1) == n {
			_, err := b.db.NewRaw("DELETE FROM webhook_deliveries WHERE partner_id = ? AND event_id = ?", b.partner.ID, gone.Load()).Exec(ctx)
			if err != nil {
				t.Error(err)
			}
			close(all)
		}
		select {
		case <-all:
		case <-time.After(10 * time.Second):
		}
	}))
	t.Cleanup(srv.Close)
	tx := mustTx(t, b.db)
	ep, _, err := b.svc.CreateEndpointTx(ctx, tx, b.partner.ID, webhook.EndpointParams{URL: srv.URL, Enabled: true})
	require.NoError(t, err)
	var evs []*event.Event
	for i := 0; i < n; i++ {
		ev, err := b.events.EmitTx(ctx, tx, b.partner.ID, event.BulkJobCompleted, nil, map[string]int{"n": i})
		require.NoError(t, err)
		evs = append(evs, ev)
	}
	require.NoError(t, tx.Commit())
	gone.Store(evs[3].ID)

	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, ev := range evs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = b.worker.Work(ctx, &river.Job[webhook.DeliverArgs]{
				JobRow: &rivertype.JobRow{ID: int64(i + 1), Attempt: 1, MaxAttempts: webhook.MaxAttempts},
				Args:   webhook.DeliverArgs{PartnerID: b.partner.ID, EventID: ev.ID, EndpointID: ep.ID},
			})
		}()
	}
	wg.Wait()
	for i, ev := range evs {
		if i == 3 {
			require.Error(t, errs[i], "the deleted delivery's attempt cannot be logged")
			continue
		}
		require.NoError(t, errs[i], "event %d", i)
		d, atts, err := b.svc.Delivery(ctx, b.db, b.partner.ID, deliveryID(t, b.db, ev, ep))
		require.NoError(t, err)
		require.Equal(t, webhook.StatusSucceeded, d.Status, "event %d", i)
		require.Len(t, atts, 1)
	}
}

// deliveryPages returns the heap page of each of a partner's deliveries.
func deliveryPages(t *testing.T, db bun.IDB, partnerID uuid.UUID) map[uuid.UUID]int {
	t.Helper()
	var rows []struct {
		ID   uuid.UUID `bun:"id"`
		Page int       `bun:"page"`
	}
	require.NoError(t, db.NewRaw("SELECT id, (ctid::text::point)[0]::int AS page FROM webhook_deliveries WHERE partner_id = ?", partnerID).
		Scan(context.Background(), &rows))
	out := make(map[uuid.UUID]int, len(rows))
	for _, r := range rows {
		out[r.ID] = r.Page
	}
	return out
}
