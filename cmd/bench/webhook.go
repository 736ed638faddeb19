package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/event"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/webhook"
)

func init() {
	register(Scenario{Name: "webhook-fanout", Run: runWebhookFanout})
}

const (
	fanoutEvents   = 20_000
	fanoutBatch    = 50 // events per transaction in the throughput phase
	dispatchEvents = 3_000
	pacedEvents    = 2_000
	producers      = 8
)

// runWebhookFanout measures webhooks end to end on a partner of its own with
// one endpoint on a local receiver that answers 200 and verifies every
// signature: what dispatching costs the writing transaction, deliveries/s and
// lag from event commit to receipt for 20,000 events, the lag of a steady
// stream below capacity, and, as the baseline in the same run, River working
// no-op jobs inserted the same way with the same fetch settings.
func runWebhookFanout(ctx context.Context, b *Bench) ([]Row, error) {
	a, db := b.App, b.DB
	cfg := a.Config
	rcv, err := newBenchReceiver()
	if err != nil {
		return nil, err
	}
	defer rcv.close()

	p, err := a.Partners.Upsert(ctx, db.Bun, partner.CreateParams{Slug: "bench-webhooks", Name: "Bench webhooks"})
	if err != nil {
		return nil, err
	}
	var ep *webhook.Endpoint
	err = db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		ep, rcv.secret, err = a.Webhooks.CreateEndpointTx(ctx, tx, p.ID, webhook.EndpointParams{URL: rcv.url, Enabled: true})
		return err
	})
	if err != nil {
		return nil, err
	}
	setEnabled := func(on bool) error {
		return db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			_, _, _, err := a.Webhooks.PutEndpointTx(ctx, tx, p.ID, ep.ID, webhook.EndpointParams{URL: ep.URL, Enabled: on})
			return err
		})
	}
	// emit records n events in the transaction, as a bulk operation would
	// (n = 1: a single change).
	emit := func(n int) func(ctx context.Context, tx bun.Tx, i int) ([]uuid.UUID, error) {
		return func(ctx context.Context, tx bun.Tx, i int) ([]uuid.UUID, error) {
			evs := make([]*event.Event, n)
			ids := make([]uuid.UUID, n)
			for j := range evs {
				ev, err := a.Events.New(p.ID, event.BulkJobCompleted, nil, map[string]int{"n": i*n + j})
				if err != nil {
					return nil, err
				}
				evs[j], ids[j] = ev, ev.ID
			}
			return ids, a.Events.RecordTx(ctx, tx, evs...)
		}
	}
	row := func(variant string, rate float64, unit string, p50, p99 time.Duration, note string) Row {
		return Row{Scenario: "webhook-fanout", Variant: variant, Clients: producers, Rate: rate, Unit: unit, P50: p50, P99: p99, Note: note}
	}
	var rows []Row

	// 1. What dispatching costs the writing transaction: the same event
	// transaction with a subscribed endpoint (a delivery row and a River job)
	// and with none (the lookup only). The webhook queue is paused so that
	// delivery work does not compete; the jobs are thrown away afterwards.
	if err := retry(ctx, func() error { return a.Jobs.Work.QueuePause(ctx, webhook.Queue, nil) }); err != nil {
		return nil, fmt.Errorf("pause webhook queue: %w", err)
	}
	withSub, err := produce(ctx, db, dispatchEvents, 0, emit(1), nil)
	if err != nil {
		return nil, err
	}
	if err := setEnabled(false); err != nil {
		return nil, err
	}
	noSub, err := produce(ctx, db, dispatchEvents, 0, emit(1), nil)
	if err != nil {
		return nil, err
	}
	if _, err := db.Bun.NewRaw("DELETE FROM river_job WHERE queue = ?", webhook.Queue).Exec(ctx); err != nil {
		return nil, err
	}
	if err := setEnabled(true); err != nil {
		return nil, err
	}
	if err := a.Jobs.Work.QueueResume(ctx, webhook.Queue, nil); err != nil {
		return nil, fmt.Errorf("resume webhook queue: %w", err)
	}
	rows = append(rows,
		row("event tx, nothing subscribed", float64(dispatchEvents)/noSub.Seconds(), "tx/s", 0, 0, "1 event per tx: the endpoint lookup only"),
		row("event tx, 1 endpoint subscribed", float64(dispatchEvents)/withSub.Seconds(), "tx/s", 0, 0, "+ a delivery row and a River job in the tx"))

	// 2. Fan-out: producers commit events in batches, faster than they can
	// be delivered, so that River's side is what is measured.
	commits := &sync.Map{}
	onCommit := func(id uuid.UUID, at time.Time) { commits.Store(id.String(), at) }
	base := rcv.count()
	start := time.Now()
	took, err := produce(ctx, db, fanoutEvents/fanoutBatch, 0, emit(fanoutBatch), onCommit)
	if err != nil {
		return nil, err
	}
	last, err := rcv.wait(ctx, base+fanoutEvents, 3*time.Minute)
	if err != nil {
		return nil, err
	}
	deliveriesPerSec := float64(fanoutEvents) / last.Sub(start).Seconds()
	lags := rcv.lags(commits)
	burst := row("deliveries, burst of 20,000", deliveriesPerSec, "del/s", Percentile(lags, 0.5), Percentile(lags, 0.99),
		fmt.Sprintf("first commit to last receipt; lag includes the backlog (events committed at %.0f/s, %d per tx)", float64(fanoutEvents)/took.Seconds(), fanoutBatch))

	// 3. Lag of single-event transactions at a steady rate below capacity.
	commits = &sync.Map{}
	rate := min(deliveriesPerSec, float64(dispatchEvents)/withSub.Seconds()) / 2
	base = rcv.count()
	if _, err := produce(ctx, db, pacedEvents, rate, emit(1), func(id uuid.UUID, at time.Time) { commits.Store(id.String(), at) }); err != nil {
		return nil, err
	}
	if _, err := rcv.wait(ctx, base+pacedEvents, time.Minute); err != nil {
		return nil, err
	}
	lags = rcv.lags(commits)
	paced := row("deliveries, steady stream", rate, "ev/s", Percentile(lags, 0.5), Percentile(lags, 0.99), "1 event per tx at half the capacity; p50/p99 = lag from commit to receipt")
	if n, m := rcv.duplicates.Load(), rcv.invalid.Load(); n+m > 0 {
		return nil, fmt.Errorf("%d duplicate deliveries and %d invalid signatures", n, m)
	}

	// 4. The baseline: River alone, no-op jobs inserted in the same batches
	// through the same insert-only client, worked with the same settings.
	noop, err := riverNoop(ctx, db, b.Log, cfg.WebhookWorkers, cfg.FetchCooldown, cfg.FetchPollInt)
	if err != nil {
		return nil, err
	}
	burst.Note = fmt.Sprintf("%.2f x River no-op; ", deliveriesPerSec/noop) + burst.Note
	rows = append(rows, burst, paced,
		row("River no-op jobs (baseline)", noop, "jobs/s", 0, 0, fmt.Sprintf("same batches and db; %d workers, FetchCooldown %s, FetchPollInterval %s", cfg.WebhookWorkers, cfg.FetchCooldown, cfg.FetchPollInt)))
	return rows, nil
}

// retry calls f until it succeeds for up to 5 s: the queue rows exist only
// once River's producers have started.
func retry(ctx context.Context, f func() error) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// produce commits n transactions from the producers, each calling write
// once; with rate > 0 the commits are paced to rate per second overall.
// onCommit gets the ids write returned, with the commit time.
func produce(ctx context.Context, db *database.DB, n int, rate float64, write func(context.Context, bun.Tx, int) ([]uuid.UUID, error), onCommit func(uuid.UUID, time.Time)) (time.Duration, error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, producers)
	start := time.Now()
	for w := 0; w < producers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				if rate > 0 {
					if d := time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))); d > 0 {
						time.Sleep(d)
					}
				}
				var ids []uuid.UUID
				err := db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
					var err error
					ids, err = write(ctx, tx, i)
					return err
				})
				if err != nil {
					errs <- err
					return
				}
				if onCommit != nil {
					now := time.Now()
					for _, id := range ids {
						onCommit(id, now)
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return time.Since(start), ctx.Err()
}

// benchReceiver answers 200 to every delivery, verifies its signature and
// remembers when each event first arrived.
type benchReceiver struct {
	srv        *http.Server
	url        string
	secret     string
	mu         sync.Mutex
	at         map[string]time.Time
	last       time.Time
	duplicates atomic.Int64
	invalid    atomic.Int64
}

func newBenchReceiver() (*benchReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &benchReceiver{at: map[string]time.Time{}, url: "http://" + ln.Addr().String() + "/hooks"}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	go r.srv.Serve(ln) //nolint:errcheck // ends with close
	return r, nil
}

func (r *benchReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	now := time.Now()
	id := req.Header.Get(webhook.HeaderID)
	if err := webhook.Verify(r.secret, id, req.Header.Get(webhook.HeaderTimestamp), req.Header.Get(webhook.HeaderSignature), body, now, 5*time.Minute); err != nil {
		r.invalid.Add(1)
	}
	r.mu.Lock()
	if _, dup := r.at[id]; dup {
		r.duplicates.Add(1)
	} else {
		r.at[id] = now
		r.last = now
	}
	r.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (r *benchReceiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.at)
}

// wait returns the time of the last first-receipt once n events arrived.
func (r *benchReceiver) wait(ctx context.Context, n int, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		r.mu.Lock()
		got, last := len(r.at), r.last
		r.mu.Unlock()
		if got >= n {
			return last, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return time.Time{}, fmt.Errorf("only %d of %d deliveries arrived", got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// lags returns receipt minus commit for every committed event.
func (r *benchReceiver) lags(commits *sync.Map) []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []time.Duration
	commits.Range(func(k, v any) bool {
		if at, ok := r.at[k.(string)]; ok {
			out = append(out, max(0, at.Sub(v.(time.Time))))
		}
		return true
	})
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func (r *benchReceiver) close() { _ = r.srv.Close() }

type noopArgs struct {
	N int `json:"n"`
}

func (noopArgs) Kind() string { return "bench_noop" }

type noopWorker struct {
	river.WorkerDefaults[noopArgs]
	done atomic.Int64
	last atomic.Int64
}

func (w *noopWorker) Work(context.Context, *river.Job[noopArgs]) error {
	w.last.Store(time.Now().UnixNano())
	w.done.Add(1)
	return nil
}

// riverNoop measures River alone on db: fanoutEvents no-op jobs inserted in
// the same batches as the events (InsertManyTx through the insert-only
// database/sql client, the path the app uses), worked by a pgx client with
// the app's fetch settings and concurrency, on a queue of their own.
func riverNoop(ctx context.Context, db *database.DB, log *slog.Logger, workers int, cooldown, poll time.Duration) (float64, error) {
	const queue = "bench_noop"
	w := &noopWorker{}
	ws := river.NewWorkers()
	river.AddWorker(ws, w)
	work, err := river.NewClient(riverpgxv5.New(db.Pool), &river.Config{
		Logger: log, Workers: ws, FetchCooldown: cooldown, FetchPollInterval: poll,
		Queues: map[string]river.QueueConfig{queue: {MaxWorkers: workers}},
	})
	if err != nil {
		return 0, err
	}
	insert, err := river.NewClient(riverdatabasesql.New(db.SQL), &river.Config{Logger: log, Workers: ws, FetchCooldown: cooldown})
	if err != nil {
		return 0, err
	}
	if err := work.Start(ctx); err != nil {
		return 0, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = work.Stop(sctx)
	}()
	start := time.Now()
	_, err = produce(ctx, db, fanoutEvents/fanoutBatch, 0, func(ctx context.Context, tx bun.Tx, i int) ([]uuid.UUID, error) {
		params := make([]river.InsertManyParams, fanoutBatch)
		for j := range params {
			params[j] = river.InsertManyParams{Args: noopArgs{N: i*fanoutBatch + j}, InsertOpts: &river.InsertOpts{Queue: queue}}
		}
		_, err := insert.InsertManyTx(ctx, tx.Tx, params)
		return nil, err
	}, nil)
	if err != nil {
		return 0, err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for w.done.Load() < fanoutEvents {
		if time.Now().After(deadline) {
			return 0, errors.New("no-op jobs did not finish")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return float64(fanoutEvents) / time.Unix(0, w.last.Load()).Sub(start).Seconds(), nil
}
