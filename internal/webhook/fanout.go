package webhook

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// A transaction that writes many events (a bulk operation, a window
// replay) gets one delivery job per batchJobSize deliveries instead of one
// job each: the job loads its deliveries in one statement, sends them
// concurrently and records their attempts in one statement. River's own
// cost (the job row inserted, fetched and completed) was most of what a
// delivery cost the database beyond its attempt (docs/benchmarks.md,
// "Issue 18, session 6: webhook-fanout").
//
// The batch job makes every delivery's attempt of its own run only. A
// delivery that needs another attempt is handed over to a delivery job of
// its own (DeliverArgs, with Prior attempts already made), inserted in the
// transaction that records the attempt, so retries keep their own schedule
// (backoff, jitter, Retry-After) and count: a receiver that fails gets
// exactly the attempts and delays it would have had with a job per
// delivery. The hand-over sets the delivery's next_attempt_at, which is how
// the batch job, when River runs it again (its own attempt failed to record
// some deliveries, or its worker died), knows to leave that delivery to the
// job that now owns it: a delivery is never attempted by two jobs at once.
// A partner that is not active hands its deliveries over to jobs scheduled
// HoldFor later (what the single job's snooze does), and deliveries that
// cannot start within batchStartWithin, because every sending slot is busy
// with slow receivers, are handed over to jobs due at once, so a batch job
// stays within its timeout.
//
// One job per transaction keeps the outbox's guarantee: the job is
// inserted in the writing transaction, with the deliveries.

// batchJobSize bounds the deliveries of one batch job.
const batchJobSize = 64

// batchStartWithin is how long a batch job's delivery may wait for a
// sending slot before it is handed over to a job of its own.
const batchStartWithin = 10 * time.Second

// DefaultBatchSends is how many requests the batch jobs of one process send
// at once when DeliverBatchWorker.Sends is not set.
const DefaultBatchSends = 50

// DeliverBatchArgs is a job delivering several deliveries, each as
// DeliverArgs would (ids and generation only, never personal data).
type DeliverBatchArgs struct {
	Deliveries []DeliverArgs `json:"deliveries"`
}

// Kind implements river.JobArgs.
func (DeliverBatchArgs) Kind() string { return "webhook_deliver_batch" }

// InsertOpts puts batches on the delivery queue, with as many attempts as a
// delivery job: an attempt of the batch job is an attempt of each delivery
// it makes.
func (DeliverBatchArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: Queue, MaxAttempts: MaxAttempts}
}

// deliveryJobs returns the jobs delivering rows: one DeliverArgs job for a
// single delivery, else batch jobs of up to batchJobSize deliveries.
func deliveryJobs(rows []DeliverArgs) []river.InsertManyParams {
	if len(rows) == 1 {
		return []river.InsertManyParams{{Args: rows[0]}}
	}
	params := make([]river.InsertManyParams, 0, (len(rows)+batchJobSize-1)/batchJobSize)
	for start := 0; start < len(rows); start += batchJobSize {
		params = append(params, river.InsertManyParams{Args: DeliverBatchArgs{Deliveries: rows[start:min(start+batchJobSize, len(rows))]}})
	}
	return params
}

// handOver is a delivery of a batch job given to a job of its own.
type handOver struct {
	args  DeliverArgs
	id    uuid.UUID // the delivery's
	at    time.Time // when its job is due
	prior int       // attempts made
}

// batchResult is what happened to one delivery of a batch job.
type batchResult struct {
	rec  *attemptRecord
	out  Outcome
	hand *handOver
	err  error
}

// deliverBatch makes attempt number attempt of each of a batch job's
// deliveries (see DeliverBatchArgs) and records them. It returns an error
// when some delivery could not be attempted or recorded; River then runs
// the job again, and only those deliveries are attempted again.
func (s *Service) deliverBatch(ctx context.Context, db bun.IDB, slots chan struct{}, startWithin time.Duration, keys []DeliverArgs, attempt, maxAttempts int) error {
	ts, err := loadTargets(ctx, db, keys)
	if err != nil {
		return err
	}
	results := make([]batchResult, len(keys))
	expired := make(chan struct{})
	expiry := time.AfterFunc(startWithin, func() { close(expired) })
	defer expiry.Stop()
	done := make(chan struct{}, len(keys))
	started := 0
	for i, k := range keys {
		t := ts[i]
		if t != nil && t.NextAttemptAt != nil && t.Generation == k.Generation {
			continue // handed over to a job of its own
		}
		started++
		go func() {
			defer func() { done <- struct{}{} }()
			r := &results[i]
			select {
			case slots <- struct{}{}:
				defer func() { <-slots }()
			case <-expired:
				if t != nil {
					r.hand = &handOver{args: k, id: t.DeliveryID, at: s.now(), prior: attempt - 1}
				}
				return
			case <-ctx.Done():
				r.err = ctx.Err()
				return
			}
			r.rec, r.out, r.err = s.attempt(ctx, db, k, t, attempt, maxAttempts)
			if r.err == nil && r.out.Hold > 0 {
				r.hand = &handOver{args: k, id: t.DeliveryID, at: s.now().Add(r.out.Hold), prior: attempt - 1}
			}
		}()
	}
	for range started {
		<-done
	}

	// Record, detached from the job's context: the receivers have
	// answered.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	var batch []int
	for i := range results {
		r := &results[i]
		switch {
		case r.err != nil:
		case r.rec != nil && r.rec.DisabledReason != nil:
			r.err = recordAlone(rctx, db, r.rec)
		case r.rec != nil && r.out.Retry:
			r.hand = &handOver{args: keys[i], id: r.rec.DeliveryID, at: r.out.NextAttempt, prior: attempt}
			batch = append(batch, i)
		case r.rec != nil || r.hand != nil:
			batch = append(batch, i)
		}
	}
	if err := s.commitBatch(rctx, db, results, batch, maxAttempts); err != nil {
		// One at a time, so that one delivery that cannot be recorded
		// (deleted meanwhile) does not make the others be sent again.
		for _, i := range batch {
			results[i].err = s.commitBatch(rctx, db, results, []int{i}, maxAttempts)
		}
	}

	var errs []error
	for i := range results {
		r := &results[i]
		if r.err != nil {
			errs = append(errs, r.err)
			if attempt >= maxAttempts {
				s.giveUp(ctx, db, keys[i])
			}
			continue
		}
		if r.rec != nil {
			s.recorded(r.rec, r.out)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%d of %d webhook deliveries not made: %w", len(errs), len(keys), errors.Join(errs...))
	}
	return nil
}

// commitBatch records the attempts of results[which] and hands their
// deliveries over where needed, atomically: a hand-over's job exists if and
// only if its delivery says so.
func (s *Service) commitBatch(ctx context.Context, db bun.IDB, results []batchResult, which []int, maxAttempts int) error {
	var recs []attemptRecord
	var hands []*handOver
	for _, i := range which {
		if r := results[i]; r.rec != nil {
			recs = append(recs, *r.rec)
		}
		if h := results[i].hand; h != nil {
			hands = append(hands, h)
		}
	}
	if len(hands) == 0 {
		if len(recs) == 0 {
			return nil
		}
		return recordAttempts(ctx, db, recs) // one statement: no transaction needed
	}
	if s.Jobs == nil {
		return fmt.Errorf("webhook service has no job client")
	}
	return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if len(recs) > 0 {
			if err := recordAttempts(ctx, tx, recs); err != nil {
				return err
			}
		}
		n := len(hands)
		partners, ids, generations, ats := make([]uuid.UUID, n), make([]uuid.UUID, n), make([]int, n), make([]time.Time, n)
		params := make([]river.InsertManyParams, n)
		for i, h := range hands {
			partners[i], ids[i], generations[i], ats[i] = h.args.PartnerID, h.id, h.args.Generation, h.at
			args := h.args
			args.Prior = h.prior
			params[i] = river.InsertManyParams{Args: args, InsertOpts: &river.InsertOpts{
				Queue: Queue, MaxAttempts: max(1, maxAttempts-h.prior), ScheduledAt: h.at,
			}}
		}
		// A retry's next_attempt_at is already recorded; this also covers
		// holds and deliveries that did not start. Conditional like every
		// update: a replay meanwhile owns the delivery.
		_, err := tx.NewRaw(`UPDATE webhook_deliveries d SET next_attempt_at = h.at
			FROM unnest(?::uuid[], ?::uuid[], ?::int[], ?::timestamptz[]) AS h (partner_id, id, generation, at)
			WHERE d.partner_id = h.partner_id AND d.id = h.id AND d.generation = h.generation AND d.status = ?`,
			pgdialect.Array(partners), pgdialect.Array(ids), pgdialect.Array(generations), pgdialect.Array(ats), StatusPending).Exec(ctx)
		if err != nil {
			return fmt.Errorf("hand %d webhook deliveries over: %w", n, err)
		}
		return s.Jobs.InsertManyTx(ctx, tx, params)
	})
}

// DeliverBatchWorker works batch delivery jobs (DeliverBatchArgs).
type DeliverBatchWorker struct {
	river.WorkerDefaults[DeliverBatchArgs]
	DB       bun.IDB
	Webhooks *Service
	// Sends bounds the requests this process's batch jobs send at once
	// (DefaultBatchSends when zero).
	Sends int
	// StartWithin is how long a delivery may wait for a sending slot
	// before it is handed over to a job of its own (batchStartWithin when
	// zero).
	StartWithin time.Duration

	slotsOnce sync.Once
	slots     chan struct{}
}

// Work implements river.Worker.
func (w *DeliverBatchWorker) Work(ctx context.Context, job *river.Job[DeliverBatchArgs]) error {
	w.slotsOnce.Do(func() {
		n := w.Sends
		if n <= 0 {
			n = DefaultBatchSends
		}
		w.slots = make(chan struct{}, n)
	})
	startWithin := w.StartWithin
	if startWithin <= 0 {
		startWithin = batchStartWithin
	}
	return w.Webhooks.deliverBatch(ctx, w.DB, w.slots, startWithin, job.Args.Deliveries, job.Attempt, job.MaxAttempts)
}

// NextRetry implements river.Worker: the first retry's delay. Only
// deliveries that could not be attempted or recorded are left to the job
// (the others were handed over or are done).
func (w *DeliverBatchWorker) NextRetry(job *river.Job[DeliverBatchArgs]) time.Time {
	return w.Webhooks.now().Add(jitter(RetryDelay(job.Attempt)))
}

// Timeout implements river.Worker: waiting for a slot, the HTTP timeout,
// and room to load and record.
func (w *DeliverBatchWorker) Timeout(*river.Job[DeliverBatchArgs]) time.Duration {
	return max(w.StartWithin, batchStartWithin) + Timeout + 20*time.Second
}
