package webhook

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/event"
)

// Page sizes of the delivery log.
const (
	DefaultPageSize = 50
	MaxPageSize     = 200
)

// DeliveryFilter selects deliveries of the log; zero fields match all.
type DeliveryFilter struct {
	EventID    *uuid.UUID
	EndpointID *uuid.UUID
	Status     string
	// EventType keeps one event type (event.Types).
	EventType string
	// From and To keep deliveries created in [From, To); zero is open.
	From, To time.Time
	Limit    int
	// Cursor is the NextCursor of the previous page.
	Cursor string
}

// Deliveries lists the partner's deliveries, newest event first, a page at
// a time. It returns the cursor of the next page, or "" on the last one.
func (s *Service) Deliveries(ctx context.Context, db bun.IDB, partnerID uuid.UUID, f DeliveryFilter) ([]Delivery, string, error) {
	if f.Status != "" && !slices.Contains(Statuses, f.Status) {
		return nil, "", apperr.Field(apperr.CodeInvalidField, "status", "status must be one of pending, succeeded, failed, disabled")
	}
	if f.EventType != "" && !slices.Contains(event.Types, f.EventType) {
		return nil, "", apperr.Field(apperr.CodeInvalidField, "eventType", "unknown event type; see docs/webhooks.md for the catalog")
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.To.After(f.From) {
		return nil, "", apperr.Field(apperr.CodeInvalidField, "to", "to must be after from")
	}
	switch {
	case f.Limit == 0:
		f.Limit = DefaultPageSize
	case f.Limit < 0 || f.Limit > MaxPageSize:
		return nil, "", apperr.Field(apperr.CodeInvalidField, "limit", "limit must be between 1 and %d", MaxPageSize)
	}
	q := db.NewSelect().Model((*Delivery)(nil)).
		Where("partner_id = ?", partnerID).
		OrderExpr("created_at DESC, id DESC").
		Limit(int64(f.Limit) + 1)
	if f.Cursor != "" {
		at, id, err := decodeCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		q = q.Where("(created_at, id) < (?, ?)", at, id)
	}
	if f.EventID != nil {
		q = q.Where("event_id = ?", *f.EventID)
	}
	if f.EndpointID != nil {
		q = q.Where("endpoint_id = ?", *f.EndpointID)
	}
	if f.Status != "" {
		q = q.Where("status = ?", f.Status)
	}
	if f.EventType != "" {
		q = q.Where("event_type = ?", f.EventType)
	}
	if !f.From.IsZero() {
		q = q.Where("created_at >= ?", f.From.UTC())
	}
	if !f.To.IsZero() {
		q = q.Where("created_at < ?", f.To.UTC())
	}
	var ds []Delivery
	if err := q.Scan(ctx, &ds); err != nil {
		return nil, "", fmt.Errorf("list webhook deliveries: %w", err)
	}
	next := ""
	if len(ds) > f.Limit {
		ds = ds[:f.Limit]
		last := ds[len(ds)-1]
		next = encodeCursor(last.CreatedAt, last.ID)
	}
	return ds, next, nil
}

// Delivery loads one delivery with its attempts, oldest first.
func (s *Service) Delivery(ctx context.Context, db bun.IDB, partnerID, id uuid.UUID) (*Delivery, []Attempt, error) {
	d := new(Delivery)
	err := db.NewSelect().Model(d).Where("partner_id = ? AND id = ?", partnerID, id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, apperr.New(apperr.CodeNotFound, "webhook delivery %s not found", id)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("load webhook delivery %s: %w", id, err)
	}
	var atts []Attempt
	err = db.NewSelect().Model(&atts).Where("partner_id = ? AND delivery_id = ?", partnerID, id).OrderExpr("id").Scan(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("load attempts of delivery %s: %w", id, err)
	}
	return d, atts, nil
}

// The cursor is the last row's (created_at, id). It is not signed: every
// query is scoped to the caller's partner, so a forged cursor only moves the
// caller within its own log.
func encodeCursor(at time.Time, id uuid.UUID) string {
	return base64.RawURLEncoding.EncodeToString([]byte(at.UTC().Format(time.RFC3339Nano) + "|" + id.String()))
}

func decodeCursor(c string) (time.Time, uuid.UUID, error) {
	bad := apperr.Field(apperr.CodeInvalidField, "cursor", "cursor is not one this API returned")
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, uuid.Nil, bad
	}
	ts, idStr, ok := strings.Cut(string(b), "|")
	if !ok {
		return time.Time{}, uuid.Nil, bad
	}
	at, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return time.Time{}, uuid.Nil, bad
	}
	id, err := uuid.Parse(idStr)
	if err != nil {
		return time.Time{}, uuid.Nil, bad
	}
	return at, id, nil
}
