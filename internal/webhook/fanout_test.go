package webhook_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/rivertest"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/event"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/webhook"
)

// fanoutReceiver answers each event by its data's n: 500 for the ns in
// fail, 200 otherwise; it verifies every signature and counts requests per
// event.
type fanoutReceiver struct {
	*httptest.Server
	mu   sync.Mutex
	got  map[uuid.UUID]int
	bad  int
	fail map[int]bool
}

func newFanoutReceiver(t *testing.T, secret *string, fail ...int) *fanoutReceiver {
	t.Helper()
	r := &fanoutReceiver{got: map[uuid.UUID]int{}, fail: map[int]bool{}}
	for _, n := range fail {
		r.fail[n] = true
	}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var p struct {
			ID   uuid.UUID
			Data struct{ N int }
		}
		_ = json.Unmarshal(body, &p)
		r.mu.Lock()
		r.got[p.ID]++
		if verifyStandard(*secret, req.Header, body, time.Now()) != nil {
			r.bad++
		}
		failing := r.fail[p.Data.N]
		r.mu.Unlock()
		if failing {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *fanoutReceiver) count() (requests, bad int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.got {
		requests += n
	}
	return requests, r.bad
}

// recordMany records n events in one call, as a bulk operation does.
func (b *bundle) recordMany(t *testing.T, n int) []*event.Event {
	t.Helper()
	evs := make([]*event.Event, n)
	for i := range evs {
		ev, err := b.events.New(b.partner.ID, event.BulkJobCompleted, nil, map[string]int{"n": i})
		require.NoError(t, err)
		evs[i] = ev
	}
	require.NoError(t, b.events.RecordTx(b.ctx, b.tx, evs...))
	return evs
}

// jobRows returns the transaction's jobs of kind, oldest first.
func (b *bundle) jobRows(t *testing.T, kind string) []*rivertype.JobRow {
	t.Helper()
	res, err := b.jobs.Insert.JobListTx(b.ctx, b.tx.Tx, river.NewJobListParams().Kinds(kind).First(1000))
	require.NoError(t, err)
	return res.Jobs
}

// TestBatchJobDeliversTransaction: a transaction's deliveries go in one
// batch job, which sends them all (signed) and records them; a failed one
// is handed over to a job of its own, due on the delivery's retry schedule
// and counting the attempt made; the batch job run again (as after a crash)
// sends nothing twice, and the hand-over job makes attempt 2.
func TestBatchJobDeliversTransaction(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var secret string
	rcv := newFanoutReceiver(t, &secret, 1)
	ep, s := b.endpoint(t, rcv.URL)
	secret = s
	evs := b.recordMany(t, 5)

	batches := b.jobRows(t, webhook.DeliverBatchArgs{}.Kind())
	require.Len(t, batches, 1, "one batch job for the transaction")
	require.Empty(t, b.jobRows(t, webhook.DeliverArgs{}.Kind()))
	require.Equal(t, webhook.MaxAttempts, batches[0].MaxAttempts)

	res, err := b.batchWorker.WorkJob(b.ctx, t, b.tx.Tx, batches[0])
	require.NoError(t, err)
	require.Equal(t, river.EventKindJobCompleted, res.EventKind)
	requests, bad := rcv.count()
	require.Equal(t, 5, requests)
	require.Zero(t, bad, "every signature verifies")

	now := b.clock.Now()
	for i, ev := range evs {
		d, atts := b.delivery(t, ev, ep)
		require.Len(t, atts, 1, "event %d", i)
		require.Equal(t, 1, atts[0].Attempt)
		require.Equal(t, 1, d.AttemptCount)
		if i != 1 {
			require.Equal(t, webhook.StatusSucceeded, d.Status, "event %d", i)
			require.Nil(t, d.NextAttemptAt)
			continue
		}
		require.Equal(t, webhook.StatusPending, d.Status)
		require.NotNil(t, d.NextAttemptAt)
		require.WithinDuration(t, now.Add(webhook.RetryDelay(1)), *d.NextAttemptAt, webhook.RetryDelay(1)/4+time.Second)
	}

	// The failed delivery's own job: due at its next attempt, with the
	// attempts left.
	singles := b.jobRows(t, webhook.DeliverArgs{}.Kind())
	require.Len(t, singles, 1)
	var args webhook.DeliverArgs
	require.NoError(t, json.Unmarshal(singles[0].EncodedArgs, &args))
	require.Equal(t, webhook.DeliverArgs{PartnerID: b.partner.ID, EventID: evs[1].ID, EndpointID: ep.ID, Prior: 1}, args)
	require.Equal(t, webhook.MaxAttempts-1, singles[0].MaxAttempts)
	d, _ := b.delivery(t, evs[1], ep)
	require.WithinDuration(t, *d.NextAttemptAt, singles[0].ScheduledAt, time.Millisecond)

	// River runs the batch job again (same arguments; as after its worker
	// died before completing it): nothing is sent twice.
	var batchArgs webhook.DeliverBatchArgs
	require.NoError(t, json.Unmarshal(batches[0].EncodedArgs, &batchArgs))
	_, err = b.batchWorker.Work(b.ctx, t, b.tx.Tx, batchArgs, nil)
	require.NoError(t, err)
	requests, _ = rcv.count()
	require.Equal(t, 5, requests, "done and handed-over deliveries are not sent again")

	// The hand-over job makes attempt 2, and fails it on its schedule.
	res = b.work(t, singles[0])
	require.Equal(t, river.EventKindJobFailed, res.EventKind)
	d, atts := b.delivery(t, evs[1], ep)
	require.Len(t, atts, 2)
	require.Equal(t, 2, d.AttemptCount)
	require.ElementsMatch(t, []int{1, 2}, []int{atts[0].Attempt, atts[1].Attempt})
	require.WithinDuration(t, now.Add(webhook.RetryDelay(2)), *d.NextAttemptAt, webhook.RetryDelay(2)/4+time.Second,
		"the second retry's delay: the batch's attempt counts")
}

// TestBatchJobHandsOverHeldAndReplayed: a batch job of a partner that is
// not active sends nothing and hands each delivery over to a job due
// HoldFor later, without using an attempt; a delivery replayed meanwhile
// is left to the replay's job.
func TestBatchJobHandsOverHeldAndReplayed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var secret string
	rcv := newFanoutReceiver(t, &secret)
	ep, s := b.endpoint(t, rcv.URL)
	secret = s
	evs := b.recordMany(t, 3)
	batch := b.jobRows(t, webhook.DeliverBatchArgs{}.Kind())[0]

	// A replay of event 0 before the batch runs: a new generation, its
	// own job.
	_, err := b.svc.ReplayEventTx(b.ctx, b.tx, b.partner.ID, evs[0].ID, &ep.ID)
	require.NoError(t, err)
	_, err = b.tx.NewUpdate().Table("partners").Set("status = ?", partner.StatusSuspended).Where("id = ?", b.partner.ID).Exec(b.ctx)
	require.NoError(t, err)

	res, err := b.batchWorker.WorkJob(b.ctx, t, b.tx.Tx, batch)
	require.NoError(t, err)
	require.Equal(t, river.EventKindJobCompleted, res.EventKind)
	requests, _ := rcv.count()
	require.Zero(t, requests, "nothing is sent for a partner that is not active")

	singles := b.jobRows(t, webhook.DeliverArgs{}.Kind())
	got := map[uuid.UUID]webhook.DeliverArgs{}
	for _, j := range singles {
		var args webhook.DeliverArgs
		require.NoError(t, json.Unmarshal(j.EncodedArgs, &args))
		got[args.EventID] = args
		if args.Generation == 0 {
			require.WithinDuration(t, b.clock.Now().Add(webhook.HoldFor), j.ScheduledAt, time.Second, "held for HoldFor")
			require.Equal(t, webhook.MaxAttempts, j.MaxAttempts, "a hold uses no attempt")
		}
	}
	require.Len(t, singles, 3, "the replay's job and two hand-overs")
	require.Equal(t, 1, got[evs[0].ID].Generation, "the replayed delivery is left to the replay's job")
	for _, ev := range evs[1:] {
		require.Equal(t, webhook.DeliverArgs{PartnerID: b.partner.ID, EventID: ev.ID, EndpointID: ep.ID}, got[ev.ID])
		d, atts := b.delivery(t, ev, ep)
		require.Equal(t, webhook.StatusPending, d.Status)
		require.Empty(t, atts)
		require.NotNil(t, d.NextAttemptAt)
	}
}

// TestBatchJobHandsOverWhatCannotStart: deliveries of a batch job that
// find no free sending slot in time (slow receivers hold them all) are
// handed over to jobs due at once, unsent and without using an attempt,
// so the batch job ends within its timeout and nothing is sent twice.
func TestBatchJobHandsOverWhatCannotStart(t *testing.T) {
	t.Parallel()
	b := setup(t)
	release := make(chan struct{})
	var mu sync.Mutex
	got := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.ReadAll(req.Body)
		mu.Lock()
		got++
		mu.Unlock()
		<-release // slow: holds the only slot
	}))
	t.Cleanup(srv.Close)
	ep, _ := b.endpoint(t, srv.URL)
	evs := b.recordMany(t, 3)
	batch := b.jobRows(t, webhook.DeliverBatchArgs{}.Kind())[0]

	bw := &webhook.DeliverBatchWorker{DB: b.tx, Webhooks: b.svc, Sends: 1, StartWithin: 200 * time.Millisecond}
	worker := rivertest.NewWorker(t, riverdatabasesql.New(nil), &river.Config{Test: river.TestConfig{Time: b.clock}}, bw)
	go func() {
		time.Sleep(time.Second)
		close(release)
	}()
	res, err := worker.WorkJob(b.ctx, t, b.tx.Tx, batch)
	require.NoError(t, err)
	require.Equal(t, river.EventKindJobCompleted, res.EventKind)
	mu.Lock()
	require.Equal(t, 1, got, "one delivery had the slot")
	mu.Unlock()

	singles := b.jobRows(t, webhook.DeliverArgs{}.Kind())
	require.Len(t, singles, 2, "the two others handed over")
	succeeded := 0
	for _, ev := range evs {
		d, atts := b.delivery(t, ev, ep)
		if d.Status == webhook.StatusSucceeded {
			succeeded++
			require.Len(t, atts, 1)
			continue
		}
		require.Equal(t, webhook.StatusPending, d.Status)
		require.Empty(t, atts, "handed over unsent")
		require.NotNil(t, d.NextAttemptAt)
	}
	require.Equal(t, 1, succeeded)
	for _, j := range singles {
		var args webhook.DeliverArgs
		require.NoError(t, json.Unmarshal(j.EncodedArgs, &args))
		require.Zero(t, args.Prior, "no attempt used")
		require.Equal(t, webhook.MaxAttempts, j.MaxAttempts)
		require.WithinDuration(t, b.clock.Now(), j.ScheduledAt, time.Second, "due at once")
	}
}
