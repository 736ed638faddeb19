package webhook

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/perkshq/perks/internal/event"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/user"
)

// Queue is the River queue of deliveries, apart from other jobs so that slow
// receivers cannot hold up bulk jobs and maintenance.
const Queue = "webhook"

// RetrySchedule is the delay before each retry, after the first attempt
// fails: about three days in all. Each delay gets ±20% jitter so that
// deliveries that failed together (a receiver outage) do not come back
// together. docs/webhooks.md publishes it (a test checks).
var RetrySchedule = []time.Duration{
	5 * time.Second,
	30 * time.Second,
	2 * time.Minute,
	10 * time.Minute,
	30 * time.Minute,
	1 * time.Hour,
	2 * time.Hour,
	4 * time.Hour,
	8 * time.Hour,
	12 * time.Hour,
	12 * time.Hour,
	12 * time.Hour,
	12 * time.Hour,
	12 * time.Hour,
}

// MaxAttempts is the first attempt plus one per retry. It is set on every
// delivery job explicitly: River's default (25 attempts over three weeks) is
// not what partners are promised.
var MaxAttempts = len(RetrySchedule) + 1

// RetryDelay is the delay after failed attempt number attempt (1-based),
// before jitter.
func RetryDelay(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	if attempt > len(RetrySchedule) {
		return RetrySchedule[len(RetrySchedule)-1]
	}
	return RetrySchedule[attempt-1]
}

func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// DeliverArgs is a delivery job: ids only, never personal data (job rows
// outlive anonymisation). Generation ties the job to one replay of the
// delivery.
type DeliverArgs struct {
	PartnerID  uuid.UUID `json:"partnerId"`
	EventID    uuid.UUID `json:"eventId"`
	EndpointID uuid.UUID `json:"endpointId"`
	Generation int       `json:"generation,omitempty"`
	// Prior is the attempts already made before this job (by a batch job
	// that handed the delivery over, fanout.go): the job's attempt n is
	// the delivery's attempt Prior + n, of Prior + the job's MaxAttempts.
	Prior int `json:"prior,omitempty"`
}

// Kind implements river.JobArgs.
func (DeliverArgs) Kind() string { return "webhook_deliver" }

// InsertOpts puts deliveries on their queue with the promised attempts.
func (DeliverArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: Queue, MaxAttempts: MaxAttempts}
}

// Outcome is what an attempt leads to.
type Outcome struct {
	// Retry is set when the attempt failed and another one is due at
	// NextAttempt; Err then describes the failure for River's job record.
	Retry       bool
	NextAttempt time.Time
	Err         error
	// Hold is set when nothing was sent because the partner is not active
	// (onboarding pending, or suspended in the console): the delivery stays
	// pending and the job is snoozed for Hold, without using an attempt.
	Hold time.Duration
}

// HoldFor is how long a delivery of a partner that is not active waits
// before it looks again (resuming the partner delivers within that time;
// a replay from the partner portal delivers at once).
var HoldFor = time.Hour

// target is everything an attempt needs, read in one query: the delivery,
// its event, endpoint and partner and, for an event about a user, the user
// (the payload carries their current external id and, for user.* events,
// profile).
type target struct {
	Ord                     int        `bun:"ord"`
	DeliveryID              uuid.UUID  `bun:"delivery_id"`
	Status                  string     `bun:"status"`
	Generation              int        `bun:"generation"`
	AttemptCount            int        `bun:"attempt_count"`
	NextAttemptAt           *time.Time `bun:"next_attempt_at"`
	PartnerSlug             string     `bun:"partner_slug"`
	PartnerSandbox          bool       `bun:"partner_sandbox"`
	PartnerStatus           string     `bun:"partner_status"`
	EventType               string     `bun:"event_type"`
	EventData               []byte     `bun:"event_data"`
	EventUserID             *uuid.UUID `bun:"event_user_id"`
	EventCreatedAt          time.Time  `bun:"event_created_at"`
	URL                     string     `bun:"url"`
	Enabled                 bool       `bun:"enabled"`
	SecretSealed            []byte     `bun:"secret_sealed"`
	PreviousSecretSealed    []byte     `bun:"previous_secret_sealed"`
	PreviousSecretExpiresAt *time.Time `bun:"previous_secret_expires_at"`

	UserFound        bool       `bun:"user_found"`
	UserExternalID   *string    `bun:"user_external_id"`
	UserEmail        *string    `bun:"user_email"`
	UserDisplayName  *string    `bun:"user_display_name"`
	UserFirstName    *string    `bun:"user_first_name"`
	UserLastName     *string    `bun:"user_last_name"`
	UserLocale       *string    `bun:"user_locale"`
	UserCountryCode  *string    `bun:"user_country_code"`
	UserAnonymisedAt *time.Time `bun:"user_anonymised_at"`
}

// user returns the event's user as loaded with the target, nil when the
// event is about nobody or the user was erased.
func (t *target) user() *user.User {
	if !t.UserFound || t.EventUserID == nil {
		return nil
	}
	return &user.User{
		ID: *t.EventUserID, ExternalID: t.UserExternalID, Email: t.UserEmail, DisplayName: t.UserDisplayName,
		FirstName: t.UserFirstName, LastName: t.UserLastName, Locale: t.UserLocale, CountryCode: t.UserCountryCode,
		AnonymisedAt: t.UserAnonymisedAt,
	}
}

// loadTargets reads the targets of many delivery jobs in one query, in the
// order of keys; a nil entry is a delivery that no longer exists (endpoint
// deleted, log pruned).
//
// Each table is a LATERAL subquery fenced with OFFSET 0, looked up by its
// key for each delivery: as one six-way join, planning the statement (bun
// inlines the arrays, so every call is planned) cost 1.3-3 ms, ten times
// running it for a batch; fenced, the planner has no join order to search
// (0.3-0.6 ms).
func loadTargets(ctx context.Context, db bun.IDB, keys []DeliverArgs) ([]*target, error) {
	partners, events, endpoints := make([]uuid.UUID, len(keys)), make([]uuid.UUID, len(keys)), make([]uuid.UUID, len(keys))
	for i, k := range keys {
		partners[i], events[i], endpoints[i] = k.PartnerID, k.EventID, k.EndpointID
	}
	var rows []target
	err := db.NewRaw(`
		SELECT k.ord, d.id AS delivery_id, d.status, d.generation, d.attempt_count, d.next_attempt_at, p.slug AS partner_slug,
			p.sandbox_of IS NOT NULL AS partner_sandbox, p.status AS partner_status,
			e.type AS event_type, e.data AS event_data, e.user_id AS event_user_id, e.created_at AS event_created_at,
			ep.url, ep.enabled, ep.secret_sealed, ep.previous_secret_sealed, ep.previous_secret_expires_at,
			u.id IS NOT NULL AS user_found, u.external_id AS user_external_id, u.email AS user_email,
			u.display_name AS user_display_name, u.first_name AS user_first_name, u.last_name AS user_last_name,
			u.locale AS user_locale, u.country_code AS user_country_code, u.anonymised_at AS user_anonymised_at
		FROM unnest(?::uuid[], ?::uuid[], ?::uuid[]) WITH ORDINALITY AS k (partner_id, event_id, endpoint_id, ord)
		CROSS JOIN LATERAL (SELECT * FROM webhook_deliveries d
			WHERE d.partner_id = k.partner_id AND d.event_id = k.event_id AND d.endpoint_id = k.endpoint_id OFFSET 0) d
		CROSS JOIN LATERAL (SELECT * FROM webhook_endpoints ep WHERE ep.partner_id = d.partner_id AND ep.id = d.endpoint_id OFFSET 0) ep
		CROSS JOIN LATERAL (SELECT * FROM events e WHERE e.partner_id = d.partner_id AND e.id = d.event_id OFFSET 0) e
		CROSS JOIN LATERAL (SELECT * FROM partners p WHERE p.id = d.partner_id OFFSET 0) p
		LEFT JOIN LATERAL (SELECT * FROM users u WHERE u.partner_id = e.partner_id AND u.id = e.user_id OFFSET 0) u ON true`,
		pgdialect.Array(partners), pgdialect.Array(events), pgdialect.Array(endpoints)).Scan(ctx, &rows)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("load %d webhook deliveries: %w", len(keys), err)
	}
	out := make([]*target, len(keys))
	for i := range rows {
		out[rows[i].Ord-1] = &rows[i]
	}
	return out, nil
}

// Deliver makes attempt number attempt (River's count, 1-based) of a
// delivery job; after a failed attempt number maxAttempts no retry follows
// and the delivery is failed. It returns an error only when the attempt could
// not be made or recorded (the database failed); River then retries the job
// on the same schedule.
func (s *Service) Deliver(ctx context.Context, db bun.IDB, args DeliverArgs, attempt, maxAttempts int) (Outcome, error) {
	return s.deliver(ctx, db, nil, args, attempt, maxAttempts)
}

// deliver is Deliver, loading and recording through group, when given,
// in one statement with the other workers' deliveries of the moment.
func (s *Service) deliver(ctx context.Context, db bun.IDB, group *deliveryBatches, args DeliverArgs, attempt, maxAttempts int) (Outcome, error) {
	var t *target
	var err error
	if group != nil {
		t, err = group.load.do(ctx, args)
	} else {
		var ts []*target
		ts, err = loadTargets(ctx, db, []DeliverArgs{args})
		if err == nil {
			t = ts[0]
		}
	}
	if err != nil {
		return Outcome{}, fmt.Errorf("load delivery of event %s to endpoint %s: %w", args.EventID, args.EndpointID, err)
	}
	rec, out, err := s.attempt(ctx, db, args, t, attempt, maxAttempts)
	if err != nil || rec == nil {
		return out, err
	}
	// The receiver has answered: record that even if the job is being
	// cancelled (a graceful shutdown), or it would be sent again.
	if group != nil && rec.DisabledReason == nil {
		var recErr error
		recErr, err = group.record.do(ctx, *rec)
		if err == nil {
			err = recErr
		}
	} else {
		err = recordAlone(ctx, db, rec)
	}
	if err != nil {
		return Outcome{}, err
	}
	s.recorded(rec, out)
	return out, nil
}

// recordAlone records one attempt in a statement of its own. Disabling an
// endpoint (after a 410) is rare and locks it: alone, so a batch never
// locks endpoints in an order another batch could reverse.
func recordAlone(ctx context.Context, db bun.IDB, rec *attemptRecord) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	return recordAttempts(rctx, db, []attemptRecord{*rec})
}

// recorded observes a recorded attempt (metrics, and the log line of an
// endpoint disabled by its receiver).
func (s *Service) recorded(rec *attemptRecord, out Outcome) {
	s.Metrics.observe(rec.slug, rec.Status, out.Retry, rec.latency)
	if rec.DisabledReason != nil {
		s.log().Warn("webhook endpoint disabled", "partner", rec.PartnerID, "endpoint", rec.EndpointID, "reason", *rec.DisabledReason)
	}
}

// attempt makes attempt number attempt of the delivery loaded as t, up to
// the receiver's answer, and returns what to record with the outcome. It
// returns a nil record when nothing was sent: the delivery is gone, done or
// superseded by a replay, its partner is not active (Outcome.Hold), or its
// endpoint is disabled (the delivery is marked disabled here).
func (s *Service) attempt(ctx context.Context, db bun.IDB, args DeliverArgs, t *target, attempt, maxAttempts int) (*attemptRecord, Outcome, error) {
	if t == nil {
		return nil, Outcome{}, nil // endpoint deleted or log pruned: nothing to send
	}
	if t.Generation != args.Generation || t.Status != StatusPending {
		return nil, Outcome{}, nil // superseded by a replay, or already done
	}
	if t.PartnerStatus != "" && t.PartnerStatus != partner.StatusActive {
		return nil, Outcome{Hold: HoldFor}, nil // never sent, never counted
	}
	now := s.now()
	if !t.Enabled {
		_, err := db.NewRaw(`UPDATE webhook_deliveries SET status = ?, updated_at = ?, completed_at = ?, next_attempt_at = NULL
			WHERE partner_id = ? AND id = ? AND generation = ? AND status = ?`,
			StatusDisabled, now, now, args.PartnerID, t.DeliveryID, args.Generation, StatusPending).Exec(ctx)
		if err != nil {
			return nil, Outcome{}, fmt.Errorf("mark delivery %s disabled: %w", t.DeliveryID, err)
		}
		return nil, Outcome{}, nil
	}

	ev := &event.Event{PartnerID: args.PartnerID, ID: args.EventID, Type: t.EventType, UserID: t.EventUserID, Data: t.EventData, CreatedAt: t.EventCreatedAt}
	body, err := s.payloadFor(ev, t.PartnerSlug, t.PartnerSandbox, t.user())
	if err != nil {
		return nil, Outcome{}, fmt.Errorf("build payload of event %s: %w", args.EventID, err)
	}
	keys, err := s.signingKeys(&Endpoint{
		PartnerID: args.PartnerID, ID: args.EndpointID, SecretSealed: t.SecretSealed,
		PreviousSecretSealed: t.PreviousSecretSealed, PreviousSecretExpiresAt: t.PreviousSecretExpiresAt,
	}, now)
	if err != nil {
		return nil, Outcome{}, err
	}
	res := s.Sender.Send(ctx, Message{URL: t.URL, ID: args.EventID.String(), Timestamp: now, Body: body, Keys: keys})
	if s.afterSend != nil {
		if err := s.afterSend(); err != nil {
			return nil, Outcome{}, err
		}
	}

	var out Outcome
	status, reason := StatusPending, ""
	switch {
	case res.Succeeded():
		status = StatusSucceeded
	case res.StatusCode == 410:
		status, reason = StatusDisabled, "the receiver answered 410 Gone"
	default:
		out.Err = fmt.Errorf("deliver event %s to endpoint %s: %s", args.EventID, args.EndpointID, failure(&res))
		if attempt >= maxAttempts {
			status = StatusFailed
		} else {
			out.Retry = true
			out.NextAttempt = now.Add(max(jitter(RetryDelay(attempt)), res.RetryAfter))
		}
	}
	rec := newAttemptRecord(args, t, now, &res, status, reason, out.NextAttempt)
	return &rec, out, nil
}

// giveUp marks a delivery failed when its last attempt could not even be
// made (River discards the job next), so the log does not show it pending
// forever. Best effort: the database may be what failed.
func (s *Service) giveUp(ctx context.Context, db bun.IDB, args DeliverArgs) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	now := s.now()
	_, err := db.NewRaw(`UPDATE webhook_deliveries SET status = ?, last_error = ?, next_attempt_at = NULL, updated_at = ?, completed_at = ?
		WHERE partner_id = ? AND event_id = ? AND endpoint_id = ? AND generation = ? AND status = ?`,
		StatusFailed, "Perks could not make the last attempt; replay the event", now, now,
		args.PartnerID, args.EventID, args.EndpointID, args.Generation, StatusPending).Exec(ctx)
	if err != nil {
		s.log().Error("mark webhook delivery failed", "partner", args.PartnerID, "event", args.EventID, "endpoint", args.EndpointID, "error", err.Error())
	}
}

func failure(r *Result) string {
	if r.StatusCode != 0 {
		return fmt.Sprintf("receiver answered %d", r.StatusCode)
	}
	return r.Err
}

// recordTimeout bounds recording attempts, which runs detached from the
// job's context.
const recordTimeout = 5 * time.Second

// attemptRecord is what recordAttempts writes for one attempt.
type attemptRecord struct {
	PartnerID      uuid.UUID
	DeliveryID     uuid.UUID
	EndpointID     uuid.UUID
	Generation     int
	Attempt        int
	At             time.Time
	StatusCode     *int
	LatencyMS      int
	Body           *string
	Err            *string
	SubjectUserID  *uuid.UUID // set when Body must be dropped if the user is gone or anonymised
	Status         string
	LastError      *string
	NextAttemptAt  *time.Time
	CompletedAt    *time.Time
	DisabledReason *string

	slug    string        // the partner's, for metrics
	latency time.Duration // the receiver's, for metrics
}

func newAttemptRecord(args DeliverArgs, t *target, now time.Time, res *Result, status, reason string, next time.Time) attemptRecord {
	r := attemptRecord{
		PartnerID: args.PartnerID, DeliveryID: t.DeliveryID, EndpointID: args.EndpointID, Generation: args.Generation,
		Attempt: t.AttemptCount + 1, At: now, LatencyMS: int(res.Latency / time.Millisecond), Status: status,
		slug: t.PartnerSlug, latency: res.Latency,
	}
	if res.StatusCode != 0 {
		code, body := res.StatusCode, res.Body
		r.StatusCode, r.Body = &code, &body
	}
	if res.Err != "" {
		e := res.Err
		r.Err = &e
	}
	if !res.Succeeded() {
		msg := failure(res)
		r.LastError = &msg
	}
	if reason != "" {
		r.DisabledReason = &reason
	}
	if !next.IsZero() {
		r.NextAttemptAt = &next
	}
	if status != StatusPending {
		r.CompletedAt = &now
	}
	if r.Body != nil && t.EventUserID != nil {
		r.SubjectUserID = t.EventUserID
	}
	return r
}

// recordAttempts logs attempts, moves their deliveries on and, after a
// 410, disables the endpoint, in one statement for all of them (atomic, one
// round trip). Each delivery update is conditional on the generation, so a
// replay that happened meanwhile is not overwritten; the attempt is logged
// either way.
//
// The receiver's answer is kept only while the event's user is still there
// and not anonymised, checked in this very statement: a receiver may echo
// the payload (personal data) back, and the user may have been anonymised
// while the request was in flight, after the anonymisation scrubbed the log
// (scrubUserTx). FOR SHARE waits for an anonymisation or erasure in
// progress, then sees its outcome; one that starts after us waits for our
// row lock, then scrubs what we wrote. Only answers with a body about a
// user pay for the lock.
func recordAttempts(ctx context.Context, db bun.IDB, recs []attemptRecord) error {
	n := len(recs)
	// Nullable columns go as arrays of pointers: bun writes a nil element
	// as NULL (it cannot for sql.Null* values).
	var (
		partners, deliveries, endpoints  = make([]uuid.UUID, n), make([]uuid.UUID, n), make([]uuid.UUID, n)
		generations, attempts, latencies = make([]int, n), make([]int, n), make([]int, n)
		ats                              = make([]time.Time, n)
		codes                            = make([]*int, n)
		bodies, errs, lastErrs, reasons  = make([]*string, n), make([]*string, n), make([]*string, n), make([]*string, n)
		subjects                         = make([]*string, n)
		statuses                         = make([]string, n)
		nexts, completed                 = make([]*time.Time, n), make([]*time.Time, n)
	)
	for i, r := range recs {
		partners[i], deliveries[i], endpoints[i] = r.PartnerID, r.DeliveryID, r.EndpointID
		generations[i], attempts[i], latencies[i], ats[i], statuses[i] = r.Generation, r.Attempt, r.LatencyMS, r.At, r.Status
		codes[i], bodies[i], errs[i], lastErrs[i], reasons[i] = r.StatusCode, r.Body, r.Err, r.LastError, r.DisabledReason
		if r.SubjectUserID != nil {
			id := r.SubjectUserID.String()
			subjects[i] = &id
		}
		nexts[i], completed[i] = r.NextAttemptAt, r.CompletedAt
	}
	_, err := db.NewRaw(`
		WITH r AS MATERIALIZED (
			SELECT * FROM unnest(?::uuid[], ?::uuid[], ?::uuid[], ?::int[], ?::int[], ?::timestamptz[], ?::int[], ?::int[],
				?::text[], ?::text[], ?::uuid[], ?::text[], ?::text[], ?::timestamptz[], ?::timestamptz[], ?::text[])
				AS r (partner_id, delivery_id, endpoint_id, generation, attempt, at, status_code, latency_ms,
				body, err, user_id, status, last_error, next_at, completed_at, disabled_reason)
		), subject AS MATERIALIZED (
			SELECT u.partner_id, u.id FROM users u
			WHERE (u.partner_id, u.id) IN (SELECT partner_id, user_id FROM r WHERE user_id IS NOT NULL)
				AND u.anonymised_at IS NULL
			FOR SHARE
		), attempt AS (
			INSERT INTO webhook_attempts (partner_id, delivery_id, attempt, attempted_at, status_code, latency_ms, response_body, error)
			SELECT r.partner_id, r.delivery_id, r.attempt, r.at, r.status_code, r.latency_ms,
				CASE WHEN r.user_id IS NULL OR EXISTS (SELECT FROM subject s WHERE s.partner_id = r.partner_id AND s.id = r.user_id) THEN r.body END,
				r.err
			FROM r
		), endpoint AS (
			UPDATE webhook_endpoints ep SET enabled = false, disabled_reason = r.disabled_reason, updated_at = r.at
			FROM r WHERE r.disabled_reason IS NOT NULL AND ep.partner_id = r.partner_id AND ep.id = r.endpoint_id
		)
		UPDATE webhook_deliveries d SET status = r.status, attempt_count = d.attempt_count + 1,
			last_attempt_at = r.at, last_status_code = r.status_code, last_error = r.last_error, next_attempt_at = r.next_at,
			updated_at = r.at, completed_at = r.completed_at
		FROM r WHERE d.partner_id = r.partner_id AND d.id = r.delivery_id AND d.generation = r.generation`,
		pgdialect.Array(partners), pgdialect.Array(deliveries), pgdialect.Array(endpoints),
		pgdialect.Array(generations), pgdialect.Array(attempts), pgdialect.Array(ats), pgdialect.Array(codes), pgdialect.Array(latencies),
		pgdialect.Array(bodies), pgdialect.Array(errs), pgdialect.Array(subjects), pgdialect.Array(statuses), pgdialect.Array(lastErrs),
		pgdialect.Array(nexts), pgdialect.Array(completed), pgdialect.Array(reasons)).Exec(ctx)
	if err != nil {
		if n == 1 {
			return fmt.Errorf("record attempt of delivery %s: %w", recs[0].DeliveryID, err)
		}
		return fmt.Errorf("record %d webhook attempts: %w", n, err)
	}
	return nil
}

// maxBatch bounds the deliveries loaded or recorded in one statement.
const maxBatch = 256

// deliveryBatches group the loads and records of one worker set's
// concurrent deliveries (batcher).
type deliveryBatches struct {
	load   *batcher[DeliverArgs, *target]
	record *batcher[attemptRecord, error] // each record's own outcome
}

func newDeliveryBatches(db bun.IDB) *deliveryBatches {
	return &deliveryBatches{
		load: &batcher[DeliverArgs, *target]{
			max: maxBatch,
			timeout: func(ctx context.Context) (context.Context, context.CancelFunc) {
				return context.WithTimeout(ctx, Timeout)
			},
			run: func(ctx context.Context, keys []DeliverArgs) ([]*target, error) {
				return loadTargets(ctx, db, keys)
			},
		},
		record: &batcher[attemptRecord, error]{
			max: maxBatch,
			timeout: func(ctx context.Context) (context.Context, context.CancelFunc) {
				return context.WithTimeout(ctx, recordTimeout)
			},
			run: func(ctx context.Context, recs []attemptRecord) ([]error, error) {
				errs := make([]error, len(recs))
				if err := recordAttempts(ctx, db, recs); err == nil || len(recs) == 1 {
					for i := range errs {
						errs[i] = err
					}
					return errs, nil
				}
				// A batch fails whole (a deadlock with a replay that
				// updates the same deliveries in another order, a delivery
				// deleted meanwhile): the receivers have answered, so
				// record one by one rather than fail every job and send
				// them all again.
				for i := range recs {
					errs[i] = recordAttempts(ctx, db, recs[i:i+1])
				}
				return errs, nil
			},
		},
	}
}

// DeliverWorker works delivery jobs. It is thin: Service.Deliver makes the
// attempt; the worker translates the outcome for River.
type DeliverWorker struct {
	river.WorkerDefaults[DeliverArgs]
	DB       bun.IDB
	Webhooks *Service

	batchesOnce sync.Once
	batches     *deliveryBatches

	// nextRetry hands the retry time chosen by Deliver (schedule, jitter,
	// Retry-After) to NextRetry, which River calls right after Work
	// returns, on the same worker, for the same job.
	nextRetry sync.Map // job id -> time.Time
}

// Work implements river.Worker.
func (w *DeliverWorker) Work(ctx context.Context, job *river.Job[DeliverArgs]) error {
	w.batchesOnce.Do(func() { w.batches = newDeliveryBatches(w.DB) })
	prior := job.Args.Prior
	out, err := w.Webhooks.deliver(ctx, w.DB, w.batches, job.Args, prior+job.Attempt, prior+job.MaxAttempts)
	if err != nil {
		if job.Attempt >= job.MaxAttempts {
			w.Webhooks.giveUp(ctx, w.DB, job.Args)
		}
		return err
	}
	if out.Hold > 0 {
		return river.JobSnooze(out.Hold)
	}
	if out.Retry {
		w.nextRetry.Store(job.ID, out.NextAttempt)
	}
	return out.Err
}

// NextRetry implements river.Worker: the delivery's own schedule instead of
// River's client-wide policy.
func (w *DeliverWorker) NextRetry(job *river.Job[DeliverArgs]) time.Time {
	if t, ok := w.nextRetry.LoadAndDelete(job.ID); ok {
		return t.(time.Time)
	}
	// The attempt failed before reaching the receiver (the database was
	// unavailable): same schedule, by River's attempt count.
	return w.Webhooks.now().Add(jitter(RetryDelay(job.Args.Prior + job.Attempt)))
}

// Timeout implements river.Worker: the HTTP timeout plus room to load and
// record the attempt.
func (w *DeliverWorker) Timeout(*river.Job[DeliverArgs]) time.Duration {
	return Timeout + 20*time.Second
}
