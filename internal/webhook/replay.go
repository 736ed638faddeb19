package webhook

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/event"
	"github.com/perkshq/perks/internal/jobs"
)

// pair is one (event, endpoint) to (re)send.
type pair struct {
	EventID    uuid.UUID `bun:"event_id"`
	EndpointID uuid.UUID `bun:"endpoint_id"`
}

// resendTx makes each pair's delivery pending again in a new generation
// (creating it when the endpoint never had the event) and inserts its job.
// Jobs of earlier generations still scheduled stand down when they run.
func (s *Service) resendTx(ctx context.Context, tx bun.Tx, partnerID uuid.UUID, pairs []pair) ([]DeliverArgs, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	evs := make([]string, len(pairs))
	eps := make([]string, len(pairs))
	for i, p := range pairs {
		evs[i], eps[i] = p.EventID.String(), p.EndpointID.String()
	}
	now := s.now()
	var rows []DeliverArgs
	err := tx.NewRaw(`
		INSERT INTO webhook_deliveries (partner_id, event_id, endpoint_id, event_type, created_at, updated_at)
		SELECT e.partner_id, e.id, p.endpoint_id, e.type, e.created_at, ?
		FROM unnest(?::uuid[], ?::uuid[]) AS p (event_id, endpoint_id)
		JOIN events e ON e.partner_id = ? AND e.id = p.event_id
		ON CONFLICT (partner_id, event_id, endpoint_id) DO UPDATE SET
			status = 'pending', generation = webhook_deliveries.generation + 1,
			next_attempt_at = NULL, completed_at = NULL, updated_at = EXCLUDED.updated_at
		RETURNING partner_id, event_id, endpoint_id, generation`,
		now, pgdialect.Array(evs), pgdialect.Array(eps), partnerID).Scan(ctx, &rows)
	if err != nil {
		return nil, fmt.Errorf("reset %d webhook deliveries: %w", len(pairs), err)
	}
	return rows, s.insertJobsTx(ctx, tx, rows)
}

// ReplayEventTx re-sends an event to one endpoint (enabled, subscribed or
// not: the partner asked for it), or to every enabled endpoint subscribed to
// its type now, including endpoints created after the event.
func (s *Service) ReplayEventTx(ctx context.Context, tx bun.Tx, partnerID, eventID uuid.UUID, endpointID *uuid.UUID) ([]DeliverArgs, error) {
	ev := new(event.Event)
	err := tx.NewSelect().Model(ev).Where("partner_id = ? AND id = ?", partnerID, eventID).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.New(apperr.CodeNotFound, "event %s not found", eventID)
	}
	if err != nil {
		return nil, fmt.Errorf("load event %s: %w", eventID, err)
	}
	var pairs []pair
	if endpointID != nil {
		ep, err := s.Endpoint(ctx, tx, partnerID, *endpointID)
		if err != nil {
			return nil, err
		}
		if !ep.Enabled {
			return nil, apperr.Field(apperr.CodeWebhookEndpointDisabled, "endpointId", "webhook endpoint %s is disabled", ep.ID)
		}
		pairs = append(pairs, pair{EventID: eventID, EndpointID: ep.ID})
	} else {
		eps, err := s.Endpoints(ctx, tx, partnerID)
		if err != nil {
			return nil, err
		}
		for _, ep := range eps {
			if ep.Enabled && ep.Subscribes(ev.Type) {
				pairs = append(pairs, pair{EventID: eventID, EndpointID: ep.ID})
			}
		}
	}
	return s.resendTx(ctx, tx, partnerID, pairs)
}

// MaxReplayWindow bounds a window replay.
const MaxReplayWindow = 31 * 24 * time.Hour

// ReplayFilter selects what a window replay re-sends: events created in
// [From, To), optionally only their deliveries in Status, to one endpoint,
// of one type. Without Status every event in the window goes to every
// enabled endpoint subscribed to it (a backfill); with it, only deliveries
// in that status are re-sent, to their own endpoint if it is enabled.
type ReplayFilter struct {
	From       time.Time  `json:"from"`
	To         time.Time  `json:"to"`
	Status     string     `json:"status,omitempty"`
	EndpointID *uuid.UUID `json:"endpointId,omitempty"`
	EventType  string     `json:"eventType,omitempty"`
}

// Validate checks the filter; errors name the request fields.
func (f *ReplayFilter) Validate() error {
	switch {
	case f.From.IsZero():
		return apperr.Field(apperr.CodeMissingField, "from", "from is required (RFC 3339)")
	case f.To.IsZero():
		return apperr.Field(apperr.CodeMissingField, "to", "to is required (RFC 3339)")
	case !f.To.After(f.From):
		return apperr.Field(apperr.CodeInvalidField, "to", "to must be after from")
	case f.To.Sub(f.From) > MaxReplayWindow:
		return apperr.Field(apperr.CodeInvalidField, "to", "a replay window is at most %d days", int(MaxReplayWindow/(24*time.Hour)))
	case f.Status != "" && !slices.Contains(Statuses, f.Status):
		return apperr.Field(apperr.CodeInvalidField, "status", "status must be one of pending, succeeded, failed, disabled")
	case f.EventType != "" && !slices.Contains(event.Types, f.EventType):
		return apperr.Field(apperr.CodeInvalidField, "eventType", "unknown event type %q", f.EventType)
	}
	return nil
}

// ReplayArgs is a window replay job: the partner and the filter, no
// personal data.
type ReplayArgs struct {
	PartnerID uuid.UUID    `json:"partnerId"`
	Filter    ReplayFilter `json:"filter"`
}

// Kind implements river.JobArgs.
func (ReplayArgs) Kind() string { return "webhook_replay" }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (ReplayArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueDefault, MaxAttempts: 3}
}

// ScheduleReplayTx validates the filter and inserts the replay job; it
// returns the job id.
func (s *Service) ScheduleReplayTx(ctx context.Context, tx bun.Tx, partnerID uuid.UUID, f ReplayFilter) (int64, error) {
	if err := f.Validate(); err != nil {
		return 0, err
	}
	if f.EndpointID != nil {
		if _, err := s.Endpoint(ctx, tx, partnerID, *f.EndpointID); err != nil {
			return 0, err
		}
	}
	if s.Jobs == nil {
		return 0, fmt.Errorf("webhook service has no job client")
	}
	id, err := s.Jobs.InsertIDTx(ctx, tx, ReplayArgs{PartnerID: partnerID, Filter: f}, nil)
	if err != nil {
		return 0, fmt.Errorf("insert replay job: %w", err)
	}
	return id, nil
}

// replayBatch is how many deliveries one transaction of a window replay
// resets.
const replayBatch = 500

// ReplayWindow re-sends what f selects, in batches of one transaction each,
// walking the window in (event time, event id, endpoint id) order so it ends
// even while new events arrive. It returns how many deliveries it queued.
// A retried job may re-send a batch that had committed: delivery is at least
// once anyway.
func (s *Service) ReplayWindow(ctx context.Context, db bun.IDB, partnerID uuid.UUID, f ReplayFilter) (int, error) {
	if err := f.Validate(); err != nil {
		return 0, err
	}
	type row struct {
		CreatedAt  time.Time `bun:"created_at"`
		EventID    uuid.UUID `bun:"event_id"`
		EndpointID uuid.UUID `bun:"endpoint_id"`
	}
	cursor := row{CreatedAt: f.From.Add(-time.Microsecond)}
	total := 0
	for {
		var rows []row
		q := db.NewSelect().
			ColumnExpr("e.created_at, e.id AS event_id, ep.id AS endpoint_id").
			TableExpr("events AS e").
			Where("e.partner_id = ?", partnerID).
			Where("e.created_at >= ? AND e.created_at < ?", f.From, f.To).
			Where("(e.created_at, e.id, ep.id) > (?, ?, ?)", cursor.CreatedAt, cursor.EventID, cursor.EndpointID).
			OrderExpr("e.created_at, e.id, ep.id").
			Limit(replayBatch)
		if f.Status != "" {
			q = q.Join("JOIN webhook_deliveries AS d ON d.partner_id = e.partner_id AND d.event_id = e.id AND d.status = ?", f.Status).
				Join("JOIN webhook_endpoints AS ep ON ep.partner_id = d.partner_id AND ep.id = d.endpoint_id AND ep.enabled")
		} else {
			q = q.Join("JOIN webhook_endpoints AS ep ON ep.partner_id = e.partner_id AND ep.enabled").
				Where("(cardinality(ep.event_types) = 0 OR e.type = ANY (ep.event_types))")
		}
		if f.EndpointID != nil {
			q = q.Where("ep.id = ?", *f.EndpointID)
		}
		if f.EventType != "" {
			q = q.Where("e.type = ?", f.EventType)
		}
		if err := q.Scan(ctx, &rows); err != nil {
			return total, fmt.Errorf("select deliveries to replay: %w", err)
		}
		if len(rows) == 0 {
			return total, nil
		}
		pairs := make([]pair, len(rows))
		for i, r := range rows {
			pairs[i] = pair{EventID: r.EventID, EndpointID: r.EndpointID}
		}
		err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			_, err := s.resendTx(ctx, tx, partnerID, pairs)
			return err
		})
		if err != nil {
			return total, err
		}
		total += len(rows)
		cursor = rows[len(rows)-1]
		if len(rows) < replayBatch {
			return total, nil
		}
	}
}

// ReplayWorker works window replays.
type ReplayWorker struct {
	river.WorkerDefaults[ReplayArgs]
	DB       bun.IDB
	Webhooks *Service
}

// Work implements river.Worker.
func (w *ReplayWorker) Work(ctx context.Context, job *river.Job[ReplayArgs]) error {
	n, err := w.Webhooks.ReplayWindow(ctx, w.DB, job.Args.PartnerID, job.Args.Filter)
	w.Webhooks.log().Info("webhook replay", "job_id", job.ID, "partner", job.Args.PartnerID, "deliveries", n, "error", errString(err))
	if apperr.As(err) != nil {
		return river.JobCancel(err) // the filter is invalid: retrying will not help
	}
	return err
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
