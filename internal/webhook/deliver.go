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

	"github.com/perkshq/perks/internal/event"
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
}

// target is everything an attempt needs, read in one query.
type target struct {
	DeliveryID              uuid.UUID  `bun:"delivery_id"`
	Status                  string     `bun:"status"`
	Generation              int        `bun:"generation"`
	AttemptCount            int        `bun:"attempt_count"`
	PartnerSlug             string     `bun:"partner_slug"`
	EventType               string     `bun:"event_type"`
	EventData               []byte     `bun:"event_data"`
	EventUserID             *uuid.UUID `bun:"event_user_id"`
	EventCreatedAt          time.Time  `bun:"event_created_at"`
	URL                     string     `bun:"url"`
	Enabled                 bool       `bun:"enabled"`
	SecretSealed            []byte     `bun:"secret_sealed"`
	PreviousSecretSealed    []byte     `bun:"previous_secret_sealed"`
	PreviousSecretExpiresAt *time.Time `bun:"previous_secret_expires_at"`
}

// Deliver makes attempt number attempt (River's count, 1-based) of a
// delivery job; after a failed attempt number maxAttempts no retry follows
// and the delivery is failed. It returns an error only when the attempt could
// not be made or recorded (the database failed); River then retries the job
// on the same schedule.
func (s *Service) Deliver(ctx context.Context, db bun.IDB, args DeliverArgs, attempt, maxAttempts int) (Outcome, error) {
	var t target
	err := db.NewRaw(`
		SELECT d.id AS delivery_id, d.status, d.generation, d.attempt_count, p.slug AS partner_slug,
			e.type AS event_type, e.data AS event_data, e.user_id AS event_user_id, e.created_at AS event_created_at,
			ep.url, ep.enabled, ep.secret_sealed, ep.previous_secret_sealed, ep.previous_secret_expires_at
		FROM webhook_deliveries d
		JOIN webhook_endpoints ep ON ep.partner_id = d.partner_id AND ep.id = d.endpoint_id
		JOIN events e ON e.partner_id = d.partner_id AND e.id = d.event_id
		JOIN partners p ON p.id = d.partner_id
		WHERE d.partner_id = ? AND d.event_id = ? AND d.endpoint_id = ?`,
		args.PartnerID, args.EventID, args.EndpointID).Scan(ctx, &t)
	if errors.Is(err, sql.ErrNoRows) {
		return Outcome{}, nil // endpoint deleted or log pruned: nothing to send
	}
	if err != nil {
		return Outcome{}, fmt.Errorf("load delivery of event %s to endpoint %s: %w", args.EventID, args.EndpointID, err)
	}
	if t.Generation != args.Generation || t.Status != StatusPending {
		return Outcome{}, nil // superseded by a replay, or already done
	}
	now := s.now()
	if !t.Enabled {
		_, err := db.NewRaw(`UPDATE webhook_deliveries SET status = ?, updated_at = ?, completed_at = ?, next_attempt_at = NULL
			WHERE partner_id = ? AND id = ? AND generation = ? AND status = ?`,
			StatusDisabled, now, now, args.PartnerID, t.DeliveryID, args.Generation, StatusPending).Exec(ctx)
		if err != nil {
			return Outcome{}, fmt.Errorf("mark delivery %s disabled: %w", t.DeliveryID, err)
		}
		return Outcome{}, nil
	}

	ev := &event.Event{PartnerID: args.PartnerID, ID: args.EventID, Type: t.EventType, UserID: t.EventUserID, Data: t.EventData, CreatedAt: t.EventCreatedAt}
	body, err := s.buildPayload(ctx, db, ev, t.PartnerSlug)
	if err != nil {
		return Outcome{}, fmt.Errorf("build payload of event %s: %w", args.EventID, err)
	}
	keys, err := s.signingKeys(&Endpoint{
		PartnerID: args.PartnerID, ID: args.EndpointID, SecretSealed: t.SecretSealed,
		PreviousSecretSealed: t.PreviousSecretSealed, PreviousSecretExpiresAt: t.PreviousSecretExpiresAt,
	}, now)
	if err != nil {
		return Outcome{}, err
	}
	res := s.Sender.Send(ctx, Message{URL: t.URL, ID: args.EventID.String(), Timestamp: now, Body: body, Keys: keys})
	if s.afterSend != nil {
		if err := s.afterSend(); err != nil {
			return Outcome{}, err
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
	// The receiver has answered: record that even if the job is being
	// cancelled (a graceful shutdown), or it would be sent again.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := s.record(rctx, db, args, &t, now, &res, status, reason, out.NextAttempt); err != nil {
		return Outcome{}, err
	}
	if reason != "" {
		s.log().Warn("webhook endpoint disabled", "partner", args.PartnerID, "endpoint", args.EndpointID, "reason", reason)
	}
	return out, nil
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

// record logs the attempt, moves the delivery on and, after a 410, disables
// the endpoint, in one statement (atomic, one round trip: this runs once per
// delivery). The delivery update is conditional on the generation, so a
// replay that happened meanwhile is not overwritten; the attempt is logged
// either way.
func (s *Service) record(ctx context.Context, db bun.IDB, args DeliverArgs, t *target, now time.Time, res *Result, status, reason string, next time.Time) error {
	latency := int(res.Latency / time.Millisecond)
	var statusCode *int
	var body, attErr, lastErr, disabledReason *string
	if res.StatusCode != 0 {
		statusCode, body = &res.StatusCode, &res.Body
	}
	if res.Err != "" {
		attErr = &res.Err
	}
	if !res.Succeeded() {
		msg := failure(res)
		lastErr = &msg
	}
	if reason != "" {
		disabledReason = &reason
	}
	var nextAt, completedAt *time.Time
	if !next.IsZero() {
		nextAt = &next
	}
	if status != StatusPending {
		completedAt = &now
	}
	// The receiver's answer is kept only while the event's user is still
	// there and not anonymised, checked in this very statement: a receiver
	// may echo the payload (personal data) back, and the user may have been
	// anonymised while the request was in flight, after the anonymisation
	// scrubbed the log (scrubUserTx). FOR SHARE waits for an anonymisation
	// or erasure in progress, then sees its outcome; one that starts after
	// us waits for our row lock, then scrubs what we wrote. Only answers with
	// a body about a user pay for the lock.
	var userID *uuid.UUID
	if body != nil && t.EventUserID != nil {
		userID = t.EventUserID
	}
	_, err := db.NewRaw(`
		WITH subject AS MATERIALIZED (
			SELECT 1 FROM users WHERE ?::uuid IS NOT NULL AND partner_id = ? AND id = ? AND anonymised_at IS NULL
			FOR SHARE
		), attempt AS (
			INSERT INTO webhook_attempts (partner_id, delivery_id, attempt, attempted_at, status_code, latency_ms, response_body, error)
			VALUES (?, ?, ?, ?, ?, ?, CASE WHEN ?::uuid IS NULL OR EXISTS (SELECT FROM subject) THEN ?::text END, ?)
		), endpoint AS (
			UPDATE webhook_endpoints SET enabled = false, disabled_reason = ?, updated_at = ?
			WHERE ?::text IS NOT NULL AND partner_id = ? AND id = ?
		)
		UPDATE webhook_deliveries SET status = ?, attempt_count = attempt_count + 1,
			last_attempt_at = ?, last_status_code = ?, last_error = ?, next_attempt_at = ?,
			updated_at = ?, completed_at = ?
		WHERE partner_id = ? AND id = ? AND generation = ?`,
		userID, args.PartnerID, userID,
		args.PartnerID, t.DeliveryID, t.AttemptCount+1, now, statusCode, latency, userID, body, attErr,
		disabledReason, now, disabledReason, args.PartnerID, args.EndpointID,
		status, now, statusCode, lastErr, nextAt, now, completedAt,
		args.PartnerID, t.DeliveryID, args.Generation).Exec(ctx)
	if err != nil {
		return fmt.Errorf("record attempt of delivery %s: %w", t.DeliveryID, err)
	}
	return nil
}

// DeliverWorker works delivery jobs. It is thin: Service.Deliver makes the
// attempt; the worker translates the outcome for River.
type DeliverWorker struct {
	river.WorkerDefaults[DeliverArgs]
	DB       bun.IDB
	Webhooks *Service

	// nextRetry hands the retry time chosen by Deliver (schedule, jitter,
	// Retry-After) to NextRetry, which River calls right after Work
	// returns, on the same worker, for the same job.
	nextRetry sync.Map // job id -> time.Time
}

// Work implements river.Worker.
func (w *DeliverWorker) Work(ctx context.Context, job *river.Job[DeliverArgs]) error {
	out, err := w.Webhooks.Deliver(ctx, w.DB, job.Args, job.Attempt, job.MaxAttempts)
	if err != nil {
		if job.Attempt >= job.MaxAttempts {
			w.Webhooks.giveUp(ctx, w.DB, job.Args)
		}
		return err
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
	return w.Webhooks.now().Add(jitter(RetryDelay(job.Attempt)))
}

// Timeout implements river.Worker: the HTTP timeout plus room to load and
// record the attempt.
func (w *DeliverWorker) Timeout(*river.Job[DeliverArgs]) time.Duration {
	return Timeout + 20*time.Second
}
