// Package webhook tells partners what happens to their users: every event the
// outbox records is POSTed, signed per the Standard Webhooks specification, to
// each of the partner's endpoints that subscribes to its type.
//
// Delivery is a transactional outbox on River. RecordTx runs inside the
// transaction that writes the events: in one statement it inserts them,
// finds the enabled, subscribed endpoints and writes a webhook_deliveries
// row for each pair, then
// inserts their River jobs with InsertManyTx: a job for a single delivery,
// one batch job per 64 deliveries for more (fanout.go). Nothing subscribes, nothing
// is inserted (River's job table is the expensive part of a hot transaction).
// The job carries ids only; the worker rebuilds the payload from current state
// at every attempt, so a user anonymised before a retry is sent without
// personal data. Every attempt is logged in webhook_attempts.
//
// Delivery is at least once: a worker that dies after the receiver answered
// but before the attempt is recorded sends again, with the same webhook-id
// (the event id), which is what receivers deduplicate on.
//
// This package owns its outbound HTTP transport (sender.go): it is the one
// domain package that speaks HTTP, as a client, behind the URL policy that
// keeps deliveries off private networks.
package webhook

import (
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/keyring"
	"github.com/perkshq/perks/internal/user"
)

// Delivery statuses.
const (
	StatusPending   = "pending"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	// StatusDisabled: the endpoint was disabled (by the partner, or by Perks
	// after a 410) before the delivery succeeded. Replay after re-enabling.
	StatusDisabled = "disabled"
)

// Statuses lists the delivery statuses, for validation.
var Statuses = []string{StatusPending, StatusSucceeded, StatusFailed, StatusDisabled}

// Endpoint is a partner's webhook receiver.
type Endpoint struct {
	bun.BaseModel `bun:"table:webhook_endpoints"`

	PartnerID               uuid.UUID  `bun:"partner_id,pk,type:uuid"`
	ID                      uuid.UUID  `bun:"id,pk,type:uuid"`
	URL                     string     `bun:"url"`
	Description             string     `bun:"description"`
	EventTypes              []string   `bun:"event_types,array"`
	Enabled                 bool       `bun:"enabled"`
	DisabledReason          *string    `bun:"disabled_reason"`
	SecretSealed            []byte     `bun:"secret_sealed"`
	PreviousSecretSealed    []byte     `bun:"previous_secret_sealed"`
	PreviousSecretExpiresAt *time.Time `bun:"previous_secret_expires_at"`
	CreatedAt               time.Time  `bun:"created_at"`
	UpdatedAt               time.Time  `bun:"updated_at"`
}

// Subscribes reports whether the endpoint wants events of type typ.
func (e *Endpoint) Subscribes(typ string) bool {
	if len(e.EventTypes) == 0 {
		return true
	}
	for _, t := range e.EventTypes {
		if t == typ {
			return true
		}
	}
	return false
}

// Delivery is the state of one event's delivery to one endpoint.
type Delivery struct {
	bun.BaseModel `bun:"table:webhook_deliveries"`

	PartnerID      uuid.UUID  `bun:"partner_id,pk,type:uuid"`
	ID             uuid.UUID  `bun:"id,pk,type:uuid"`
	EventID        uuid.UUID  `bun:"event_id,type:uuid"`
	EndpointID     uuid.UUID  `bun:"endpoint_id,type:uuid"`
	EventType      string     `bun:"event_type"`
	Status         string     `bun:"status"`
	Generation     int        `bun:"generation"`
	AttemptCount   int        `bun:"attempt_count"`
	LastAttemptAt  *time.Time `bun:"last_attempt_at"`
	LastStatusCode *int       `bun:"last_status_code"`
	LastError      *string    `bun:"last_error"`
	NextAttemptAt  *time.Time `bun:"next_attempt_at"`
	CreatedAt      time.Time  `bun:"created_at"`
	UpdatedAt      time.Time  `bun:"updated_at"`
	CompletedAt    *time.Time `bun:"completed_at"`
}

// Attempt is one try at sending a delivery.
type Attempt struct {
	bun.BaseModel `bun:"table:webhook_attempts"`

	PartnerID    uuid.UUID `bun:"partner_id,pk,type:uuid"`
	DeliveryID   uuid.UUID `bun:"delivery_id,pk,type:uuid"`
	ID           int64     `bun:"id,pk,autoincrement"`
	Attempt      int       `bun:"attempt"`
	AttemptedAt  time.Time `bun:"attempted_at"`
	StatusCode   *int      `bun:"status_code"`
	LatencyMS    int       `bun:"latency_ms"`
	ResponseBody *string   `bun:"response_body"`
	Error        *string   `bun:"error"`
}

// Inserter inserts River jobs inside a bun transaction; *jobs.Clients
// implements it. Defined here so that webhook depends on River's job types,
// not on the process's clients.
type Inserter interface {
	InsertIDTx(ctx context.Context, tx bun.Tx, args river.JobArgs, opts *river.InsertOpts) (int64, error)
	InsertManyTx(ctx context.Context, tx bun.Tx, params []river.InsertManyParams) error
}

// Service manages endpoints, dispatches events and delivers them. One value
// serves the REST handlers, the CLI, the River workers and the dispatcher.
type Service struct {
	Keys *keyring.Keyring
	// Jobs inserts delivery and replay jobs (a *jobs.Clients); it may be
	// nil where nothing is dispatched (the seed command).
	Jobs   Inserter
	Users  *user.Service
	Policy *URLPolicy
	Sender *Sender
	Log    *slog.Logger
	Now    func() time.Time
	// Metrics, when set, observes every recorded attempt.
	Metrics *Metrics

	// afterSend runs between the receiver's answer and recording the
	// attempt; tests use it to kill a worker at the worst moment.
	afterSend func() error
}

func (s *Service) now() time.Time {
	if s.Now == nil {
		return time.Now().UTC()
	}
	return s.Now().UTC()
}

func (s *Service) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}
