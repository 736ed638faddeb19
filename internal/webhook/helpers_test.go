package webhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/rivertest"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/app"
	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/event"
	"github.com/perkshq/perks/internal/jobs"
	"github.com/perkshq/perks/internal/keyring"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/user"
	"github.com/perkshq/perks/internal/webhook"
)

// clock is a settable clock that is also River's time generator, so job
// timestamps and the delivery log share one timeline.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) NowOrNil() *time.Time {
	t := c.Now()
	return &t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// bundle is a webhook service on a rolled-back transaction, with a River
// test worker that works delivery jobs in that transaction.
type bundle struct {
	ctx     context.Context
	tx      bun.Tx
	clock   *clock
	svc     *webhook.Service
	jobs    *jobs.Clients
	events  *event.Recorder
	users   *user.Service
	partner *partner.Partner
	worker  *rivertest.Worker[webhook.DeliverArgs, *sql.Tx]

	batchWorker *rivertest.Worker[webhook.DeliverBatchArgs, *sql.Tx]
}

func setup(t *testing.T) *bundle {
	t.Helper()
	ctx := context.Background()
	tx := dbtest.Tx(t)
	keys, err := keyring.New(make([]byte, keyring.KeySize))
	require.NoError(t, err)
	p, err := partner.NewService(keys).Upsert(ctx, tx, partner.CreateParams{Slug: "p-" + uuid.NewString()[:8], Name: "P"})
	require.NoError(t, err)

	clk := &clock{now: time.Now().UTC().Truncate(time.Second)}
	policy := &webhook.URLPolicy{AllowPrivate: true}
	svc := &webhook.Service{Keys: keys, Policy: policy, Sender: webhook.NewSender(policy), Now: clk.Now}
	rec := &event.Recorder{Outbox: svc, Now: clk.Now}
	svc.Users = &user.Service{Keys: keys, Events: rec, Now: clk.Now, Erase: app.EraseSteps()}

	dw := &webhook.DeliverWorker{DB: tx, Webhooks: svc}
	workers := river.NewWorkers()
	river.AddWorker(workers, dw)
	bw := &webhook.DeliverBatchWorker{DB: tx, Webhooks: svc}
	river.AddWorker(workers, bw)
	river.AddWorker(workers, &webhook.ReplayWorker{DB: tx, Webhooks: svc})
	clients, err := jobs.New(dbtest.Shared(t), workers, jobs.Options{Log: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	svc.Jobs = clients

	cfg := &river.Config{Logger: slog.New(slog.DiscardHandler), Test: river.TestConfig{Time: clk}}
	return &bundle{
		ctx: ctx, tx: tx, clock: clk, svc: svc, jobs: clients, events: rec, users: svc.Users, partner: p,
		worker:      rivertest.NewWorker(t, riverdatabasesql.New(nil), cfg, dw),
		batchWorker: rivertest.NewWorker(t, riverdatabasesql.New(nil), cfg, bw),
	}
}

// endpoint creates an enabled endpoint for url and returns it with its
// secret.
func (b *bundle) endpoint(t *testing.T, url string, types ...string) (*webhook.Endpoint, string) {
	t.Helper()
	ep, secret, err := b.svc.CreateEndpointTx(b.ctx, b.tx, b.partner.ID, webhook.EndpointParams{URL: url, EventTypes: types, Enabled: true})
	require.NoError(t, err)
	return ep, secret
}

// emit records an event of the bundle's partner in a savepoint, as a
// service would in its transaction.
func (b *bundle) emit(t *testing.T, typ string, data any) *event.Event {
	t.Helper()
	ev, err := b.events.EmitTx(b.ctx, b.tx, b.partner.ID, typ, nil, data)
	require.NoError(t, err)
	return ev
}

// deliveryJobs returns the delivery jobs in the transaction, oldest first.
func (b *bundle) deliveryJobs(t *testing.T) []*river.Job[webhook.DeliverArgs] {
	t.Helper()
	res, err := b.jobs.Insert.JobListTx(b.ctx, b.tx.Tx, river.NewJobListParams().Kinds(webhook.DeliverArgs{}.Kind()).First(1000))
	require.NoError(t, err)
	var out []*river.Job[webhook.DeliverArgs]
	for _, row := range res.Jobs {
		var args webhook.DeliverArgs
		require.NoError(t, json.Unmarshal(row.EncodedArgs, &args))
		out = append(out, &river.Job[webhook.DeliverArgs]{JobRow: row, Args: args})
	}
	return out
}

// deliveryKeys returns the deliveries of every delivery job in the
// transaction, single or batch (a transaction with several deliveries
// gets batch jobs), in the order the jobs were inserted.
func (b *bundle) deliveryKeys(t *testing.T) []webhook.DeliverArgs {
	t.Helper()
	res, err := b.jobs.Insert.JobListTx(b.ctx, b.tx.Tx, river.NewJobListParams().
		Kinds(webhook.DeliverArgs{}.Kind(), webhook.DeliverBatchArgs{}.Kind()).First(1000))
	require.NoError(t, err)
	var out []webhook.DeliverArgs
	for _, row := range res.Jobs {
		if row.Kind == (webhook.DeliverArgs{}).Kind() {
			var args webhook.DeliverArgs
			require.NoError(t, json.Unmarshal(row.EncodedArgs, &args))
			out = append(out, args)
			continue
		}
		var args webhook.DeliverBatchArgs
		require.NoError(t, json.Unmarshal(row.EncodedArgs, &args))
		out = append(out, args.Deliveries...)
	}
	return out
}

// work works a job once, as River would, and returns the result: the job
// row after the attempt and the kind of completion.
func (b *bundle) work(t *testing.T, job *rivertype.JobRow) *rivertest.WorkResult {
	t.Helper()
	res, err := b.worker.WorkJob(b.ctx, t, b.tx.Tx, job)
	if err != nil {
		// A failed attempt is River's ordinary error path: the result
		// tells what happened to the job.
		t.Logf("attempt %d: %v", res.Job.Attempt, err)
	}
	return res
}

// delivery loads the delivery of ev to ep with its attempts.
func (b *bundle) delivery(t *testing.T, ev *event.Event, ep *webhook.Endpoint) (*webhook.Delivery, []webhook.Attempt) {
	t.Helper()
	ds, _, err := b.svc.Deliveries(b.ctx, b.tx, b.partner.ID, webhook.DeliveryFilter{EventID: &ev.ID, EndpointID: &ep.ID})
	require.NoError(t, err)
	require.Len(t, ds, 1)
	d, atts, err := b.svc.Delivery(b.ctx, b.tx, b.partner.ID, ds[0].ID)
	require.NoError(t, err)
	return d, atts
}

// received is one request a receiver got.
type received struct {
	Header http.Header
	Body   []byte
}

// receiver is a local HTTP server answering with the statuses in order
// (the last one repeats) and recording every request.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	got      []received
	statuses []int
	header   http.Header
	ch       chan received
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	t.Helper()
	if len(statuses) == 0 {
		statuses = []int{http.StatusOK}
	}
	r := &receiver{statuses: statuses, header: http.Header{}, ch: make(chan received, 1000)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		rec := received{Header: req.Header.Clone(), Body: body}
		r.got = append(r.got, rec)
		status := r.statuses[min(len(r.got), len(r.statuses))-1]
		for k, v := range r.header {
			w.Header()[k] = v
		}
		r.mu.Unlock()
		r.ch <- rec
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) setHeader(k, v string) {
	r.mu.Lock()
	r.header.Set(k, v)
	r.mu.Unlock()
}

// newEchoReceiver answers 200 with the request body, as a careless
// receiver might.
func newEchoReceiver(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// verifyStandard checks a delivery with the Standard Webhooks algorithm,
// written out independently of the package under test: base64-decode the
// secret after whsec_, HMAC-SHA256 over id.timestamp.body, compare with
// any v1 entry of the space-separated signature list; reject timestamps more
// than five minutes off.
func verifyStandard(secret string, h http.Header, body []byte, now time.Time) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	id, ts := h.Get("webhook-id"), h.Get("webhook-timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return err
	}
	if d := now.Sub(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return errors.New("timestamp too old or too new")
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "." + string(body)))
	want := base64.StdEncoding.EncodeToString(m.Sum(nil))
	for _, sig := range strings.Split(h.Get("webhook-signature"), " ") {
		if v, s, ok := strings.Cut(sig, ","); ok && v == "v1" && hmac.Equal([]byte(s), []byte(want)) {
			return nil
		}
	}
	return errors.New("no signature matches")
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	require.NoError(t, err)
	return n
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}
