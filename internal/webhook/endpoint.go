package webhook

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/event"
	"github.com/perkshq/perks/internal/textcheck"
)

// MaxEndpoints bounds a partner's endpoints: every event is fanned out to
// each of them inside the partner's write transactions.
const MaxEndpoints = 20

// MaxGracePeriod bounds how long a rotated-out secret keeps signing.
const MaxGracePeriod = 7 * 24 * time.Hour

// DefaultGracePeriod is the rotation grace period when none is given.
const DefaultGracePeriod = 24 * time.Hour

// EndpointParams describe an endpoint; PutEndpoint replaces every field.
type EndpointParams struct {
	URL         string
	Description string
	// EventTypes to subscribe to; empty subscribes to every type,
	// including types added later.
	EventTypes []string
	Enabled    bool
}

func (s *Service) validate(ctx context.Context, p *EndpointParams) error {
	if err := s.Policy.CheckURL(ctx, "url", p.URL); err != nil {
		return err
	}
	p.Description = strings.TrimSpace(p.Description)
	if !utf8.ValidString(p.Description) || utf8.RuneCountInString(p.Description) > 500 {
		return apperr.Field(apperr.CodeInvalidField, "description", "description must be at most 500 characters")
	}
	if err := textcheck.Multiline("description", p.Description); err != nil {
		return err
	}
	types := make([]string, 0, len(p.EventTypes))
	for _, t := range p.EventTypes {
		if !slices.Contains(event.Types, t) {
			return apperr.Field(apperr.CodeInvalidField, "eventTypes", "unknown event type %q; see docs/webhooks.md for the catalog", t)
		}
		if !slices.Contains(types, t) {
			types = append(types, t)
		}
	}
	sort.Strings(types)
	p.EventTypes = types
	return nil
}

func secretAAD(partnerID, endpointID uuid.UUID) []byte {
	return []byte("webhook-secret:" + partnerID.String() + ":" + endpointID.String())
}

// PutEndpoint creates the endpoint with the caller's id, or replaces its
// settings. Creating generates the signing secret and returns it: this is
// the only time it is shown. Enabling an endpoint that Perks disabled after
// a 410 clears the reason; deliveries it missed are replayed explicitly.
func (s *Service) PutEndpointTx(ctx context.Context, tx bun.Tx, partnerID, id uuid.UUID, p EndpointParams) (ep *Endpoint, secret string, created bool, err error) {
	if err := s.validate(ctx, &p); err != nil {
		return nil, "", false, err
	}
	if err := lockPartner(ctx, tx, partnerID); err != nil {
		return nil, "", false, err
	}
	now := s.now()
	ep = new(Endpoint)
	err = tx.NewSelect().Model(ep).Where("partner_id = ? AND id = ?", partnerID, id).For("UPDATE").Scan(ctx)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return s.createTx(ctx, tx, partnerID, id, p)
	case err != nil:
		return nil, "", false, fmt.Errorf("load webhook endpoint: %w", err)
	}
	ep.URL, ep.Description, ep.EventTypes, ep.UpdatedAt = p.URL, p.Description, p.EventTypes, now
	if p.Enabled || ep.Enabled {
		// Only an endpoint that stays disabled keeps the reason Perks gave.
		ep.DisabledReason = nil
	}
	ep.Enabled = p.Enabled
	_, err = tx.NewUpdate().Model(ep).
		Column("url", "description", "event_types", "enabled", "disabled_reason", "updated_at").
		Where("partner_id = ? AND id = ?", partnerID, id).Exec(ctx)
	if err != nil {
		return nil, "", false, fmt.Errorf("update webhook endpoint %s: %w", id, err)
	}
	return ep, "", false, nil
}

// SetEndpointEnabled enables or disables an endpoint and changes nothing
// else (URL, description, subscriptions and secrets stay). Enabling checks
// the stored URL against the URL policy again: deliveries must not resume
// to a destination the policy now forbids. Enabling, or disabling an
// enabled endpoint, clears the reason Perks gave for disabling it; an
// endpoint that stays disabled keeps it (as PutEndpoint).
func (s *Service) SetEndpointEnabledTx(ctx context.Context, tx bun.Tx, partnerID, id uuid.UUID, enabled bool) (*Endpoint, error) {
	ep := new(Endpoint)
	err := tx.NewSelect().Model(ep).Where("partner_id = ? AND id = ?", partnerID, id).For("UPDATE").Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.New(apperr.CodeNotFound, "webhook endpoint %s not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("load webhook endpoint: %w", err)
	}
	if enabled {
		if err := s.Policy.CheckURL(ctx, "url", ep.URL); err != nil {
			return nil, err
		}
	}
	if enabled || ep.Enabled {
		ep.DisabledReason = nil
	}
	ep.Enabled, ep.UpdatedAt = enabled, s.now()
	_, err = tx.NewUpdate().Model(ep).Column("enabled", "disabled_reason", "updated_at").
		Where("partner_id = ? AND id = ?", partnerID, id).Exec(ctx)
	if err != nil {
		return nil, fmt.Errorf("update webhook endpoint %s: %w", id, err)
	}
	return ep, nil
}

// CreateEndpoint creates an endpoint with a new id and returns its secret.
func (s *Service) CreateEndpointTx(ctx context.Context, tx bun.Tx, partnerID uuid.UUID, p EndpointParams) (*Endpoint, string, error) {
	if err := s.validate(ctx, &p); err != nil {
		return nil, "", err
	}
	ep, secret, _, err := s.createTx(ctx, tx, partnerID, uuid.New(), p)
	return ep, secret, err
}

// lockPartner serialises endpoint creation per partner, so concurrent
// requests can neither pass the limit together nor both create one id. NO
// KEY UPDATE does not block the foreign-key checks of inserts referencing
// the partner (its users, events, ...). Taking it again in one transaction
// is a no-op.
func lockPartner(ctx context.Context, tx bun.Tx, partnerID uuid.UUID) error {
	if _, err := tx.NewRaw("SELECT 1 FROM partners WHERE id = ? FOR NO KEY UPDATE", partnerID).Exec(ctx); err != nil {
		return fmt.Errorf("lock partner: %w", err)
	}
	return nil
}

func (s *Service) createTx(ctx context.Context, tx bun.Tx, partnerID, id uuid.UUID, p EndpointParams) (*Endpoint, string, bool, error) {
	if err := lockPartner(ctx, tx, partnerID); err != nil {
		return nil, "", false, err
	}
	n, err := tx.NewSelect().Model((*Endpoint)(nil)).Where("partner_id = ?", partnerID).Count(ctx)
	if err != nil {
		return nil, "", false, fmt.Errorf("count webhook endpoints: %w", err)
	}
	if n >= MaxEndpoints {
		return nil, "", false, apperr.New(apperr.CodeWebhookEndpointLimit, "a partner can have at most %d webhook endpoints", MaxEndpoints)
	}
	key := newSecret()
	sealed, err := s.Keys.Seal(key, secretAAD(partnerID, id))
	if err != nil {
		return nil, "", false, fmt.Errorf("seal webhook secret: %w", err)
	}
	now := s.now()
	ep := &Endpoint{
		PartnerID: partnerID, ID: id, URL: p.URL, Description: p.Description, EventTypes: p.EventTypes,
		Enabled: p.Enabled, SecretSealed: sealed, CreatedAt: now, UpdatedAt: now,
	}
	if _, err := tx.NewInsert().Model(ep).Exec(ctx); err != nil {
		return nil, "", false, fmt.Errorf("insert webhook endpoint: %w", err)
	}
	return ep, EncodeSecret(key), true, nil
}

// Endpoint loads one of the partner's endpoints.
func (s *Service) Endpoint(ctx context.Context, db bun.IDB, partnerID, id uuid.UUID) (*Endpoint, error) {
	ep := new(Endpoint)
	err := db.NewSelect().Model(ep).Where("partner_id = ? AND id = ?", partnerID, id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.New(apperr.CodeNotFound, "webhook endpoint %s not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("load webhook endpoint %s: %w", id, err)
	}
	return ep, nil
}

// Endpoints lists the partner's endpoints, oldest first.
func (s *Service) Endpoints(ctx context.Context, db bun.IDB, partnerID uuid.UUID) ([]Endpoint, error) {
	var eps []Endpoint
	err := db.NewSelect().Model(&eps).Where("partner_id = ?", partnerID).OrderExpr("created_at, id").Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("list webhook endpoints: %w", err)
	}
	return eps, nil
}

// DeleteEndpoint removes an endpoint with its delivery log; its pending jobs
// find nothing to deliver and stand down.
func (s *Service) DeleteEndpoint(ctx context.Context, db bun.IDB, partnerID, id uuid.UUID) error {
	res, err := db.NewDelete().Model((*Endpoint)(nil)).Where("partner_id = ? AND id = ?", partnerID, id).Exec(ctx)
	if err != nil {
		return fmt.Errorf("delete webhook endpoint %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return apperr.New(apperr.CodeNotFound, "webhook endpoint %s not found", id)
	}
	return nil
}

// RotateSecret gives the endpoint a new secret and returns it (shown once).
// The previous secret keeps signing, next to the new one, for grace, so the
// receiver can switch without losing deliveries; a grace of zero drops it at
// once (for a leaked secret). Rotating again within a grace period drops the
// oldest secret: at most two sign at any time.
func (s *Service) RotateSecretTx(ctx context.Context, tx bun.Tx, partnerID, id uuid.UUID, grace time.Duration) (string, *time.Time, error) {
	if grace < 0 || grace > MaxGracePeriod {
		return "", nil, apperr.Field(apperr.CodeInvalidField, "gracePeriodSeconds", "gracePeriodSeconds must be between 0 and %d", int(MaxGracePeriod/time.Second))
	}
	ep := new(Endpoint)
	err := tx.NewSelect().Model(ep).Where("partner_id = ? AND id = ?", partnerID, id).For("UPDATE").Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil, apperr.New(apperr.CodeNotFound, "webhook endpoint %s not found", id)
	}
	if err != nil {
		return "", nil, fmt.Errorf("load webhook endpoint %s: %w", id, err)
	}
	now := s.now()
	key := newSecret()
	sealed, err := s.Keys.Seal(key, secretAAD(partnerID, id))
	if err != nil {
		return "", nil, fmt.Errorf("seal webhook secret: %w", err)
	}
	var expires *time.Time
	ep.PreviousSecretSealed, ep.PreviousSecretExpiresAt = nil, nil
	if grace > 0 {
		t := now.Add(grace)
		expires = &t
		ep.PreviousSecretSealed, ep.PreviousSecretExpiresAt = ep.SecretSealed, expires
	}
	ep.SecretSealed, ep.UpdatedAt = sealed, now
	_, err = tx.NewUpdate().Model(ep).
		Column("secret_sealed", "previous_secret_sealed", "previous_secret_expires_at", "updated_at").
		Where("partner_id = ? AND id = ?", partnerID, id).Exec(ctx)
	if err != nil {
		return "", nil, fmt.Errorf("rotate webhook secret %s: %w", id, err)
	}
	return EncodeSecret(key), expires, nil
}

// signingKeys opens the secrets that sign at now: the current one first,
// then the previous one while its grace period lasts.
func (s *Service) signingKeys(ep *Endpoint, now time.Time) ([][]byte, error) {
	aad := secretAAD(ep.PartnerID, ep.ID)
	cur, err := s.Keys.Open(ep.SecretSealed, aad)
	if err != nil {
		return nil, fmt.Errorf("open webhook secret of endpoint %s: %w", ep.ID, err)
	}
	keys := [][]byte{cur}
	if ep.PreviousSecretSealed != nil && ep.PreviousSecretExpiresAt != nil && now.Before(*ep.PreviousSecretExpiresAt) {
		prev, err := s.Keys.Open(ep.PreviousSecretSealed, aad)
		if err != nil {
			return nil, fmt.Errorf("open previous webhook secret of endpoint %s: %w", ep.ID, err)
		}
		keys = append(keys, prev)
	}
	return keys, nil
}

// EnsureEndpointTx makes sure the partner has an enabled endpoint with url
// subscribed to everything (the demo seed), creating it when missing. The
// secret is returned only when the endpoint was created.
func (s *Service) EnsureEndpointTx(ctx context.Context, tx bun.Tx, partnerID uuid.UUID, url, description string) (*Endpoint, string, error) {
	ep := new(Endpoint)
	err := tx.NewSelect().Model(ep).Where("partner_id = ? AND url = ?", partnerID, url).OrderExpr("created_at").Limit(1).Scan(ctx)
	if err == nil {
		return ep, "", nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, "", fmt.Errorf("find webhook endpoint: %w", err)
	}
	return s.CreateEndpointTx(ctx, tx, partnerID, EndpointParams{URL: url, Description: description, Enabled: true})
}
