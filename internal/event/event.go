// Package event records domain events in the events table, inside the
// transaction of the change they describe (a transactional outbox). Delivery
// (webhooks) hangs off the Outbox hook, which writes the events with their
// deliveries and River jobs in the same transaction, so there is never an
// event without its jobs or a job without its committed event.
package event

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// Event types. Payload `data` of each is documented in docs/webhooks.md.
const (
	UserCreated      = "user.created"
	UserUpdated      = "user.updated"
	UserAnonymised   = "user.anonymised"
	UserErased       = "user.erased"
	PointsEarned     = "points.earned"
	PointsAdjusted   = "points.adjusted"
	PointsReversed   = "points.reversed"
	PointsExpired    = "points.expired"
	PointsExpiring   = "points.expiring"
	VoucherClaimed   = "voucher.claimed"
	VoucherRedeemed  = "voucher.redeemed"
	VoucherExpired   = "voucher.expired"
	VoucherCancelled = "voucher.cancelled"
	BulkJobCompleted = "bulk_job.completed"
	// TierChanged: a user moved between tiers (internal/tier).
	TierChanged = "tier.changed"
)

// Pending points (docs/points.md, "Pending points: hold, confirm, cancel"):
// an earn held pending, its points becoming available (on their date or
// confirmed by the partner), a held earn cancelled.
const (
	PointsPending   = "points.pending"
	PointsActivated = "points.activated"
	PointsCancelled = "points.cancelled"
)

// Referrals (docs/referrals.md): a user attributed to a referrer, the
// referral qualifying (its rewards pending for the hold period), the
// rewards becoming available, a pending reward cancelled (its qualifying
// earn reversed or cancelled), and a referrer attributing many users in a
// short time (a fraud signal for the partner to review).
const (
	ReferralCreated   = "referral.created"
	ReferralQualified = "referral.qualified"
	ReferralRewarded  = "referral.rewarded"
	ReferralCancelled = "referral.cancelled"
	ReferralVelocity  = "referral.velocity_exceeded"
)

// Types is every event type. Webhook endpoints can subscribe only to these,
// and docs/webhooks.md documents each one (a test checks): add new types here.
var Types = []string{
	UserCreated, UserUpdated, UserAnonymised, UserErased, PointsEarned, PointsAdjusted, PointsReversed,
	VoucherClaimed, VoucherRedeemed, VoucherExpired, VoucherCancelled, BulkJobCompleted,
	PointsPending, PointsActivated, PointsCancelled,
	TierChanged,
	PointsExpired, PointsExpiring,
	ReferralCreated, ReferralQualified, ReferralRewarded, ReferralCancelled, ReferralVelocity,
}

// Event is one row of the outbox. Data carries ids and non-personal facts
// only: personal data is read at delivery time, so anonymisation never has
// to rewrite history.
type Event struct {
	bun.BaseModel `bun:"table:events"`

	PartnerID uuid.UUID       `bun:"partner_id,pk,type:uuid"`
	ID        uuid.UUID       `bun:"id,pk,type:uuid"`
	Type      string          `bun:"type"`
	UserID    *uuid.UUID      `bun:"user_id,type:uuid"`
	Data      json.RawMessage `bun:"data,type:jsonb"`
	CreatedAt time.Time       `bun:"created_at"`
}

// Outbox writes events itself, together with what follows from them (the
// webhook package writes their deliveries and River jobs), in the writing
// transaction: no event without its deliveries, no delivery without its
// committed event, and one statement for both on hot paths.
type Outbox interface {
	RecordTx(ctx context.Context, tx bun.Tx, events []*Event) error
}

// Recorder writes events, through the Outbox when there is one.
type Recorder struct {
	Outbox Outbox
	Now    func() time.Time
}

// NewRecorder returns a Recorder without an outbox (events are stored
// only) using the wall clock.
func NewRecorder() *Recorder { return &Recorder{Now: time.Now} }

// New builds an event with a fresh id; data is marshalled to JSON.
func (r *Recorder) New(partnerID uuid.UUID, typ string, userID *uuid.UUID, data any) (*Event, error) {
	b, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("marshal %s event: %w", typ, err)
	}
	return &Event{PartnerID: partnerID, ID: uuid.New(), Type: typ, UserID: userID, Data: b, CreatedAt: r.Now().UTC()}, nil
}

// RecordTx records the events in tx: through the Outbox, or with one insert.
func (r *Recorder) RecordTx(ctx context.Context, tx bun.Tx, events ...*Event) error {
	if len(events) == 0 {
		return nil
	}
	if r.Outbox != nil {
		if err := r.Outbox.RecordTx(ctx, tx, events); err != nil {
			return fmt.Errorf("record %d events: %w", len(events), err)
		}
		return nil
	}
	if _, err := tx.NewInsert().Model(&events).Exec(ctx); err != nil {
		return fmt.Errorf("insert %d events: %w", len(events), err)
	}
	return nil
}

// Emit is New followed by RecordTx for a single event.
func (r *Recorder) EmitTx(ctx context.Context, tx bun.Tx, partnerID uuid.UUID, typ string, userID *uuid.UUID, data any) (*Event, error) {
	e, err := r.New(partnerID, typ, userID, data)
	if err != nil {
		return nil, err
	}
	return e, r.RecordTx(ctx, tx, e)
}
