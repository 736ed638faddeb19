package webhook

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/event"
)

var _ event.Outbox = (*Service)(nil)

// RecordTx implements event.Outbox: one statement inserts the events and,
// for every enabled endpoint of each event's partner that subscribes to its
// type, a pending delivery; then one statement inserts their River jobs.
//
// The endpoint lookup is not cached: it is part of the insert statement, a
// newly saved endpoint gets the very next event, and it costs no extra round
// trip (`make bench` measures recording with and without a subscriber).
func (s *Service) RecordTx(ctx context.Context, tx bun.Tx, events []*event.Event) error {
	if err := s.scrubAnonymisedTx(ctx, tx, events); err != nil {
		return err
	}
	n := len(events)
	partners, ids, users := make([]uuid.UUID, n), make([]uuid.UUID, n), make([]string, n)
	types, data, created := make([]string, n), make([]string, n), make([]time.Time, n)
	for i, ev := range events {
		partners[i], ids[i], types[i], created[i] = ev.PartnerID, ev.ID, ev.Type, ev.CreatedAt
		if ev.UserID != nil {
			users[i] = ev.UserID.String()
		}
		data[i] = "{}"
		if len(ev.Data) > 0 {
			data[i] = string(ev.Data)
		}
	}
	var rows []DeliverArgs
	// Prepared (database.QueryModel): every earn, adjustment and claim
	// records its event here, and its text never changes (the events come
	// as arrays). The endpoints are joined by the events' partner, not by a
	// parameter, so a generic plan is as good as a custom one.
	err := database.QueryModel(ctx, tx, &rows, recordSQL, partners, ids, types, users, data, created)
	if err != nil {
		return fmt.Errorf("insert events and webhook deliveries: %w", err)
	}
	return s.insertJobsTx(ctx, tx, rows)
}

// recordSQL inserts events given as arrays and, in the same statement, a
// pending delivery for each enabled endpoint subscribed to each event.
const recordSQL = `WITH ev AS (
		INSERT INTO events (partner_id, id, type, user_id, data, created_at)
		SELECT p, i, t, NULLIF(u, '')::uuid, d::jsonb, c
		FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::timestamptz[]) AS x (p, i, t, u, d, c)
		RETURNING partner_id, id, type, created_at
	)
	INSERT INTO webhook_deliveries (partner_id, event_id, endpoint_id, event_type, created_at, updated_at)
	SELECT ev.partner_id, ev.id, ep.id, ev.type, ev.created_at, ev.created_at
	FROM ev
	JOIN webhook_endpoints ep ON ep.partner_id = ev.partner_id AND ep.enabled
		AND (cardinality(ep.event_types) = 0 OR ev.type = ANY (ep.event_types))
	RETURNING partner_id, event_id, endpoint_id, generation`

func (s *Service) scrubAnonymisedTx(ctx context.Context, tx bun.Tx, events []*event.Event) error {
	for _, ev := range events {
		if ev.Type == event.UserAnonymised && ev.UserID != nil {
			if err := s.scrubUserTx(ctx, tx, ev.PartnerID, *ev.UserID); err != nil {
				return err
			}
		}
	}
	return nil
}

// insertJobsTx inserts the jobs delivering rows in one statement: a job
// for a single delivery, batch jobs for more (fanout.go).
func (s *Service) insertJobsTx(ctx context.Context, tx bun.Tx, rows []DeliverArgs) error {
	if len(rows) == 0 {
		return nil
	}
	if s.Jobs == nil {
		return fmt.Errorf("webhook service has no job client")
	}
	return s.Jobs.InsertManyTx(ctx, tx, deliveryJobs(rows))
}

// scrubUserTx clears the logged receiver answers of deliveries about a user
// being anonymised: a receiver may have echoed personal data back.
func (s *Service) scrubUserTx(ctx context.Context, tx bun.Tx, partnerID, userID uuid.UUID) error {
	_, err := tx.NewRaw(`
		UPDATE webhook_attempts a SET response_body = NULL
		FROM webhook_deliveries d
		JOIN events e ON e.partner_id = d.partner_id AND e.id = d.event_id
		WHERE a.partner_id = ? AND d.partner_id = ? AND e.partner_id = ? AND e.user_id = ?
			AND a.delivery_id = d.id AND a.response_body IS NOT NULL`,
		partnerID, partnerID, partnerID, userID).Exec(ctx)
	if err != nil {
		return fmt.Errorf("scrub webhook log of user %s: %w", userID, err)
	}
	return nil
}
