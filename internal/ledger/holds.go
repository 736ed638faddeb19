package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/event"
)

// PendingUntil is when a pending earn's points become available, for
// answers and events: nil for an earn held until the partner confirms it.
func PendingUntil(held bool, availableAt time.Time) *time.Time {
	if held || availableAt.IsZero() {
		return nil
	}
	t := availableAt.UTC()
	return &t
}

// HoldResult is the outcome of ConfirmTx or CancelTx on a pending earn.
type HoldResult struct {
	// Earn is the earn's own entry (kind pending) and Lot its lot, as it is
	// after the call.
	Earn *Entry
	Lot  *Lot
	// Entry is the activate (confirm) or cancel entry.
	Entry *Entry
	// Balance and PendingPoints are the user's, after the call.
	Balance       int64
	PendingPoints int64
	// Already is true when the earn was confirmed (or cancelled) before:
	// nothing changed and Entry is the earlier activate (cancel) entry.
	Already bool
}

// HeldExpiry dates the expiry of a held earn's lot when it is confirmed
// (a held lot has none until then: its points are not available, so no
// policy can count from a date): the earning service resolves the program
// policy and the earn's rule at now. nil: the lot never expires.
type HeldExpiry func(ctx context.Context, tx bun.Tx, earn *Entry, now time.Time) (*time.Time, error)

// ConfirmTx makes the points of the pending earn with the partner's
// reference available at once: an activate entry of the lot's points (the
// available balance and the lifetime total count them, pending_points no
// longer), exactly like ActivateDueTx for one lot, and a points.activated
// event. It works for held earns (pending: true, dated by expiry) and for
// earns pending until a date (an early confirm; their expiry stays).
//
// Exactly once: the user's balance row is locked before the lot is read,
// which serialises ConfirmTx, CancelTx, ActivateDueTx and every other
// writer of the user's lots; an index refuses a second activate entry of a
// lot. Confirming an earn whose points are already available (confirmed,
// or activated on their date) changes nothing and answers Already with the
// activate entry. Refusals: EARN_NOT_FOUND (no earn with this reference,
// for this partner), EARN_NOT_PENDING (an earn that was never pending),
// EARN_CANCELLED (cancelled before).
func (s *Service) ConfirmTx(ctx context.Context, tx bun.Tx, partnerID uuid.UUID, reference string, expiry HeldExpiry) (*HoldResult, error) {
	now := s.Now().UTC()
	h, err := s.lockHold(ctx, tx, partnerID, reference)
	if err != nil {
		return nil, err
	}
	if !h.Lot.Pending {
		done, err := s.settledBy(ctx, tx, h)
		if err != nil {
			return nil, err
		}
		if done.Kind == KindCancel {
			return nil, apperr.New(apperr.CodeEarnCancelled, "the pending earn was cancelled")
		}
		h.Entry, h.Already = done, true
		return h, nil
	}
	held := h.Lot.AvailableAt.IsZero()
	expiresAt := h.Lot.ExpiresAt
	if held && expiry != nil {
		if expiresAt, err = expiry(ctx, tx, h.Earn, now); err != nil {
			return nil, err
		}
	}
	lotID := strconv.FormatInt(h.Lot.ID, 10)
	e := &Entry{
		PartnerID: partnerID, UserID: h.Earn.UserID, Kind: KindActivate, Points: h.Lot.Points,
		Reason: "pending points confirmed", SourceType: opt("lot"), SourceID: &lotID, OccurredAt: now, CreatedAt: now,
	}
	row, err := database.QueryRow(ctx, tx, confirmSQL, partnerID, h.Earn.UserID, h.Lot.Points, now, e.Reason, lotID, h.Lot.ID, expiresAt)
	if err == nil {
		err = row.Scan(&e.ID, &e.BalanceAfter, &h.PendingPoints)
	}
	switch {
	case err == nil:
	case isCheckViolation(err, "balances_points_max") || isCheckViolation(err, "balances_lifetime_max"):
		return nil, apperr.New(apperr.CodePointsOutOfRange, "the balance would exceed the maximum of %d points", MaxBalance)
	default:
		return nil, fmt.Errorf("confirm lot %d: %w", h.Lot.ID, err)
	}
	h.Entry, h.Balance = e, e.BalanceAfter
	h.Lot.Pending, h.Lot.AvailableAt, h.Lot.ExpiresAt = false, now, expiresAt
	if err := s.emitHold(ctx, tx, partnerID, event.PointsActivated, h); err != nil {
		return nil, err
	}
	return h, nil
}

// confirmSQL activates one locked pending lot: $1 partner, $2 user, $3
// points, $4 now, $5 reason, $6 lot id as text, $7 lot id, $8 expires at
// (the lot's own, or the one a held lot gets now).
const confirmSQL = `WITH moved AS (
	UPDATE balances SET points = points + $3, pending_points = pending_points - $3,
	       lifetime_earned = lifetime_earned + $3, updated_at = $4
	WHERE partner_id = $1 AND user_id = $2
	RETURNING points, pending_points
), entry AS (
	INSERT INTO ledger_entries (partner_id, user_id, kind, points, balance_after, reason, source_type, source_id, occurred_at, created_at)
	SELECT $1, $2, 'activate', $3, moved.points, $5, 'lot', $6, $4, $4 FROM moved
	RETURNING id, balance_after
), lot AS (
	-- A debt (a balance below zero after a reversal) is paid first, as in
	-- ActivateDueTx: the lot keeps spendable only its part above zero.
	UPDATE point_lots SET pending = false, available_at = $4, expires_at = $8::timestamptz,
	       remaining = least($3, greatest(moved.points, 0)), debt_paid = $3 - least($3, greatest(moved.points, 0))
	FROM moved WHERE partner_id = $1 AND id = $7 AND pending
)
SELECT entry.id, entry.balance_after, moved.pending_points FROM entry, moved`

// CancelTx removes the pending earn with the partner's reference: a cancel
// entry of minus its points (outside the available balance's running sum,
// like the pending entry it undoes), pending_points drops by as much, and
// the lot is drained: remaining 0 through an allocation to the cancel
// entry (so a lot's remaining stays its points minus its allocations), no
// longer pending, never spendable. The lot row stays, for history; its
// cancel entry names it (source_type lot), once (a unique index). It emits
// points.cancelled.
//
// Exactly once like ConfirmTx. Cancelling a cancelled earn changes nothing
// and answers Already; refusals: EARN_NOT_FOUND, EARN_NOT_PENDING (never
// pending, or its points are available: confirmed or activated on their
// date; a reversal takes such points back).
func (s *Service) CancelTx(ctx context.Context, tx bun.Tx, partnerID uuid.UUID, reference, reason string) (*HoldResult, error) {
	now := s.Now().UTC()
	h, err := s.lockHold(ctx, tx, partnerID, reference)
	if err != nil {
		return nil, err
	}
	if !h.Lot.Pending {
		done, err := s.settledBy(ctx, tx, h)
		if err != nil {
			return nil, err
		}
		if done.Kind != KindCancel {
			return nil, apperr.New(apperr.CodeEarnNotPending, "the earn's points are already available; reverse it instead")
		}
		h.Entry, h.Already = done, true
		return h, nil
	}
	if reason == "" {
		reason = "pending points cancelled"
	}
	lotID := strconv.FormatInt(h.Lot.ID, 10)
	e := &Entry{
		PartnerID: partnerID, UserID: h.Earn.UserID, Kind: KindCancel, Points: -h.Lot.Points,
		Reason: reason, SourceType: opt("lot"), SourceID: &lotID, OccurredAt: now, CreatedAt: now,
	}
	row, err := database.QueryRow(ctx, tx, cancelSQL, partnerID, h.Earn.UserID, h.Lot.Points, now, reason, lotID, h.Lot.ID)
	if err == nil {
		err = row.Scan(&e.ID, &e.BalanceAfter, &h.PendingPoints)
	}
	if err != nil {
		return nil, fmt.Errorf("cancel lot %d: %w", h.Lot.ID, err)
	}
	h.Entry, h.Balance = e, e.BalanceAfter
	h.Lot.Pending, h.Lot.Remaining = false, 0
	if err := s.emitHold(ctx, tx, partnerID, event.PointsCancelled, h); err != nil {
		return nil, err
	}
	return h, nil
}

// cancelSQL drains one locked pending lot: $1 partner, $2 user, $3 points,
// $4 now, $5 reason, $6 lot id as text, $7 lot id.
const cancelSQL = `WITH moved AS (
	UPDATE balances SET pending_points = pending_points - $3, updated_at = $4
	WHERE partner_id = $1 AND user_id = $2
	RETURNING points, pending_points
), entry AS (
	INSERT INTO ledger_entries (partner_id, user_id, kind, points, balance_after, reason, source_type, source_id, occurred_at, created_at)
	SELECT $1, $2, 'cancel', -$3, moved.points, $5, 'lot', $6, $4, $4 FROM moved
	RETURNING id, balance_after
), lot AS (
	UPDATE point_lots SET pending = false, remaining = 0 WHERE partner_id = $1 AND id = $7 AND pending
), alloc AS (
	INSERT INTO lot_allocations (partner_id, entry_id, lot_id, points) SELECT $1, entry.id, $7, $3 FROM entry
)
SELECT entry.id, entry.balance_after, moved.pending_points FROM entry, moved`

// lockHold finds the earn with the partner's reference and its lot, after
// locking the user's balance row (so the lot read is the latest committed
// and stays so until tx ends).
func (s *Service) lockHold(ctx context.Context, tx bun.Tx, partnerID uuid.UUID, reference string) (*HoldResult, error) {
	earn := new(Entry)
	err := tx.NewSelect().Model(earn).Where("partner_id = ? AND reference = ?", partnerID, reference).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && earn.Kind != KindPending && earn.Kind != KindEarn) {
		// Another partner's reference is not found either: the lookup is
		// by (partner, reference). A burn or adjustment with the
		// reference is not an earn.
		return nil, apperr.New(apperr.CodeEarnNotFound, "no earn has this reference")
	}
	if err != nil {
		return nil, fmt.Errorf("load earn by reference: %w", err)
	}
	if earn.Kind == KindEarn {
		return nil, apperr.New(apperr.CodeEarnNotPending, "the earn was never pending: its points were available at once")
	}
	h := &HoldResult{Earn: earn, Lot: new(Lot)}
	if err := tx.NewRaw(`SELECT points, pending_points FROM balances WHERE partner_id = ? AND user_id = ? FOR UPDATE`,
		partnerID, earn.UserID).Scan(ctx, &h.Balance, &h.PendingPoints); err != nil {
		return nil, fmt.Errorf("lock balance of a pending earn: %w", err)
	}
	err = tx.NewSelect().Model(h.Lot).Where("partner_id = ? AND source_entry_id = ?", partnerID, earn.ID).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		// A reversal of all of a pending earn removes its lot
		// (ReverseTx): nothing is left to confirm or cancel.
		return nil, apperr.New(apperr.CodeEarnFullyReversed, "every point of the pending earn was reversed")
	}
	if err != nil {
		return nil, fmt.Errorf("load lot of earn %d: %w", earn.ID, err)
	}
	return h, nil
}

// settledBy returns the entry that settled a lot no longer pending: its
// activation (on its date, or confirmed) or its cancellation.
func (s *Service) settledBy(ctx context.Context, tx bun.Tx, h *HoldResult) (*Entry, error) {
	e := new(Entry)
	lotID := strconv.FormatInt(h.Lot.ID, 10)
	// One branch per partial unique index, so each is an index lookup.
	err := tx.NewRaw(`(SELECT * FROM ledger_entries WHERE partner_id = ? AND kind = 'activate' AND source_type = 'lot' AND source_id = ?)
		UNION ALL (SELECT * FROM ledger_entries WHERE partner_id = ? AND kind = 'cancel' AND source_type = 'lot' AND source_id = ?)
		LIMIT 1`, h.Lot.PartnerID, lotID, h.Lot.PartnerID, lotID).Scan(ctx, e)
	if err != nil {
		return nil, fmt.Errorf("load what settled lot %d: %w", h.Lot.ID, err)
	}
	return e, nil
}

// emitHold writes the points.activated or points.cancelled event of a
// confirm or cancel: ids and amounts only.
func (s *Service) emitHold(ctx context.Context, tx bun.Tx, partnerID uuid.UUID, typ string, h *HoldResult) error {
	uid := h.Earn.UserID
	data := map[string]any{
		"userId": uid, "entryId": h.Entry.ID, "earnEntryId": h.Earn.ID, "lotId": h.Lot.ID,
		"reference": h.Earn.Reference, "points": h.Lot.Points, "balance": h.Balance,
	}
	if typ == event.PointsActivated {
		data["confirmed"] = true
	}
	_, err := s.Events.EmitTx(ctx, tx, partnerID, typ, &uid, data)
	return err
}
