package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/event"
)

// Source types of a reverse entry; its source_id is the earn's entry id.
// They say where the points were when they were taken back, which decides
// whether the entry is part of the available balance's running sum:
//   - SourceEarn: the points were available (in the running sum; the
//     reversal lowers the balance and lifetime_earned);
//   - SourcePendingEarn: the earn was still pending, so the reversal shrank
//     (or removed) its pending lot and lowered pending_points; like the
//     pending entry it undoes, it is outside the running sum and its
//     balance_after is the unchanged available balance.
const (
	SourceEarn        = "earn"
	SourcePendingEarn = "pending_earn"
)

// Reversal takes back points of one earn (a refund of its order), found by
// the partner reference the earn was recorded with.
type Reversal struct {
	Reference string
	// Points to take back; nil takes all that remains of the earn (its
	// points less its earlier reversals).
	Points *int64
	Reason string
	// AllowNegative is the program policy negativeBalance = allow: points
	// the user already spent are taken anyway and the balance goes below
	// zero. Otherwise (forbid) the reversal takes what the balance holds
	// and reports the rest as Shortfall.
	AllowNegative bool
}

// Reversed is the outcome of ReverseTx.
type Reversed struct {
	// Entry is the reverse entry; nil when nothing could be taken (forbid
	// and a balance of 0): nothing was written.
	Entry       *Entry
	UserID      uuid.UUID
	EarnEntryID int64
	Reference   string
	// Requested is what the reversal asked for (Points, or what remained).
	Requested int64
	// Reversed is what it took back (the entry's points, negated);
	// Shortfall = Requested - Reversed, non-zero only under forbid.
	Reversed  int64
	Shortfall int64
	// Pending: the earn's points were still pending.
	Pending bool
	// TakenFromLots is how much of Reversed came from lots (the earn's
	// own first, then the others FIFO by expiry); the rest is debt.
	TakenFromLots int64
	// Balance and PendingPoints are the user's after the reversal.
	Balance       int64
	PendingPoints int64
	// Remaining is what of the earn may still be reversed.
	Remaining int64
}

// ReverseTx takes back points of the earn recorded with r.Reference, inside
// tx. Rules (docs/points.md, "Reversals and refunds"):
//
//   - The earn is an entry of kind earn or pending of this partner with that
//     reference; none is EARN_NOT_FOUND (another partner's earn is not
//     found either).
//   - The sum of an earn's reversals never exceeds the earn: with nothing
//     left EARN_FULLY_REVERSED, asking for more than is left
//     REVERSAL_EXCEEDS_EARN (both 409). Under forbid a shortfall is not
//     reversed: what was not taken may be reversed later.
//   - Points still pending shrink the pending lot (removed when all of it
//     is reversed) and pending_points; lifetime_earned is unchanged since
//     it did not count them yet.
//   - Available points come from the earn's own lot first (its remaining),
//     then from the user's other lots, soonest expiry first
//     (ledger_consume_lots), then, under AllowNegative, from nowhere: the
//     balance goes below zero, a debt the next credits pay first. The entry
//     is kind reverse with the points it took back, lifetime_earned drops
//     by as much, and its allocations record what came from lots.
//
// Every step runs under the user's balance row lock, taken first, so a
// reversal serialises with burns, earns, expiry and the other reversals of
// the same earn. It writes a points.reversed event when it wrote an entry.
func (s *Service) ReverseTx(ctx context.Context, tx bun.Tx, partnerID uuid.UUID, r Reversal) (*Reversed, error) {
	if r.Points != nil {
		if err := ValidatePoints("points", *r.Points); err != nil {
			return nil, err
		}
	}
	var earn struct {
		ID     int64     `bun:"id"`
		UserID uuid.UUID `bun:"user_id"`
		Points int64     `bun:"points"`
	}
	err := tx.NewRaw(`SELECT id, user_id, points FROM ledger_entries
		WHERE partner_id = ? AND reference = ? AND kind IN ('earn', 'pending')`, partnerID, r.Reference).Scan(ctx, &earn)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.New(apperr.CodeEarnNotFound, "no earn with this reference")
	}
	if err != nil {
		return nil, fmt.Errorf("find earn to reverse: %w", err)
	}
	out := &Reversed{UserID: earn.UserID, EarnEntryID: earn.ID, Reference: r.Reference}

	// The balance row lock first (the order of every writer of the user's
	// lots); the reads after it take fresh snapshots and see everything
	// the writers before us committed.
	var bal struct {
		Points        int64 `bun:"points"`
		PendingPoints int64 `bun:"pending_points"`
	}
	if err := tx.NewRaw(`SELECT points, pending_points FROM balances WHERE partner_id = ? AND user_id = ? FOR UPDATE`,
		partnerID, earn.UserID).Scan(ctx, &bal); err != nil {
		return nil, fmt.Errorf("lock balance: %w", err)
	}
	var reversed int64
	if err := tx.NewRaw(`SELECT coalesce(sum(-points), 0) FROM ledger_entries
		WHERE partner_id = ? AND source_type IN (?, ?) AND source_id = ? AND kind IN ('reverse', 'cancel')`,
		partnerID, SourceEarn, SourcePendingEarn, strconv.FormatInt(earn.ID, 10)).Scan(ctx, &reversed); err != nil {
		return nil, fmt.Errorf("sum earlier reversals: %w", err)
	}
	left := earn.Points - reversed
	if left <= 0 {
		return nil, apperr.New(apperr.CodeEarnFullyReversed, "the earn's %d points were already reversed", earn.Points)
	}
	amount := left
	if r.Points != nil {
		amount = *r.Points
	}
	if amount > left {
		return nil, apperr.Field(apperr.CodeReversalExceedsEarn, "points", "%d of the earn's %d points remain to reverse", left, earn.Points)
	}
	out.Requested = amount

	var lot struct {
		ID        int64 `bun:"id"`
		Points    int64 `bun:"points"`
		Remaining int64 `bun:"remaining"`
		Pending   bool  `bun:"pending"`
	}
	found := true
	err = tx.NewRaw(`SELECT id, points, remaining, pending FROM point_lots WHERE partner_id = ? AND source_entry_id = ? FOR UPDATE`,
		partnerID, earn.ID).Scan(ctx, &lot)
	if errors.Is(err, sql.ErrNoRows) {
		// An earn from before lots (its points are in the migrated lot).
		found = false
	} else if err != nil {
		return nil, fmt.Errorf("load the earn's lot: %w", err)
	}

	if found && !lot.Pending && lot.Remaining == 0 {
		// A cancelled pending earn (CancelTx) never paid out: there is
		// nothing to take back, and taking it from the balance would
		// charge the user for points they never had.
		var cancelled bool
		if err := tx.NewRaw(`SELECT EXISTS (SELECT 1 FROM ledger_entries WHERE partner_id = ? AND kind = 'cancel' AND source_type = 'lot' AND source_id = ?)`,
			partnerID, strconv.FormatInt(lot.ID, 10)).Scan(ctx, &cancelled); err != nil {
			return nil, fmt.Errorf("check whether the earn was cancelled: %w", err)
		}
		if cancelled {
			return nil, apperr.New(apperr.CodeEarnCancelled, "the pending earn was cancelled: there is nothing to reverse")
		}
	}

	now := s.Now().UTC()
	e := &Entry{
		PartnerID: partnerID, UserID: earn.UserID, Kind: KindReverse, Reason: r.Reason,
		SourceType: opt(SourceEarn), SourceID: opt(strconv.FormatInt(earn.ID, 10)), OccurredAt: now, CreatedAt: now,
	}
	if found && lot.Pending {
		if lot.Points != left {
			return nil, fmt.Errorf("pending lot %d holds %d points but %d of earn %d remain: lot and entries disagree", lot.ID, lot.Points, left, earn.ID)
		}
		out.Pending = true
		e.SourceType = opt(SourcePendingEarn)
		q := `UPDATE point_lots SET points = points - ?, remaining = remaining - ? WHERE partner_id = ? AND id = ?`
		args := []any{amount, amount, partnerID, lot.ID}
		if amount == lot.Points {
			q, args = `DELETE FROM point_lots WHERE partner_id = ? AND id = ?`, []any{partnerID, lot.ID}
		}
		if _, err := tx.NewRaw(q, args...).Exec(ctx); err != nil {
			return nil, fmt.Errorf("shrink pending lot: %w", err)
		}
		e.Points, e.BalanceAfter = -amount, bal.Points
		if _, err := tx.NewRaw(`UPDATE balances SET pending_points = pending_points - ?, updated_at = ? WHERE partner_id = ? AND user_id = ?`,
			amount, now, partnerID, earn.UserID).Exec(ctx); err != nil {
			return nil, fmt.Errorf("lower pending points: %w", err)
		}
		if err := insertEntry(ctx, tx, e); err != nil {
			return nil, err
		}
		out.Reversed, out.Balance, out.PendingPoints = amount, bal.Points, bal.PendingPoints-amount
		out.Entry, out.Remaining = e, left-amount
		return out, s.emitReversed(ctx, tx, partnerID, out)
	}

	// Available points: the earn's lot, then the other lots (which hold
	// max(balance, 0) in all), then debt.
	own := int64(0)
	if found {
		own = min(amount, lot.Remaining)
	}
	others := min(amount-own, max(bal.Points, 0)-own)
	taken := own + others
	out.TakenFromLots = taken
	out.Reversed = taken
	if r.AllowNegative {
		out.Reversed = amount
	}
	out.Shortfall = amount - out.Reversed
	out.Remaining = left - out.Reversed
	out.Balance, out.PendingPoints = bal.Points-out.Reversed, bal.PendingPoints
	if out.Reversed == 0 {
		return out, nil
	}
	e.Points, e.BalanceAfter = -out.Reversed, out.Balance
	_, err = tx.NewRaw(`UPDATE balances SET points = points - ?, lifetime_earned = lifetime_earned - ?, updated_at = ?
		WHERE partner_id = ? AND user_id = ?`, out.Reversed, out.Reversed, now, partnerID, earn.UserID).Exec(ctx)
	if isCheckViolation(err, "balances_points_min") || isCheckViolation(err, "balances_lifetime_max") {
		return nil, apperr.New(apperr.CodePointsOutOfRange, "the balance would go below the minimum of -%d points", MaxBalance)
	}
	if err != nil {
		return nil, fmt.Errorf("lower balance: %w", err)
	}
	if err := insertEntry(ctx, tx, e); err != nil {
		return nil, err
	}
	if own > 0 {
		if _, err := tx.NewRaw(`WITH upd AS (
			UPDATE point_lots SET remaining = remaining - ? WHERE partner_id = ? AND id = ?
		) INSERT INTO lot_allocations (partner_id, entry_id, lot_id, points) VALUES (?, ?, ?, ?)`,
			own, partnerID, lot.ID, partnerID, e.ID, lot.ID, own).Exec(ctx); err != nil {
			return nil, fmt.Errorf("take from the earn's lot: %w", err)
		}
	}
	if others > 0 {
		// A statement after the one on the earn's lot, so the function's
		// fresh snapshot sees that lot drained and takes only from others.
		var got int64
		if err := tx.NewRaw(`SELECT ledger_consume_lots(?, ?, ?, ?)`, partnerID, earn.UserID, others, e.ID).Scan(ctx, &got); err != nil {
			return nil, fmt.Errorf("take from other lots: %w", err)
		}
		if got != others {
			return nil, fmt.Errorf("lots of the user cover %d of the %d points reversed: lots and balance disagree", got, others)
		}
	}
	out.Entry = e
	return out, s.emitReversed(ctx, tx, partnerID, out)
}

// insertEntry appends e and sets its id.
func insertEntry(ctx context.Context, tx bun.Tx, e *Entry) error {
	if _, err := tx.NewInsert().Model(e).ExcludeColumn("id").Returning("id").Exec(ctx, &e.ID); err != nil {
		return fmt.Errorf("append %s entry: %w", e.Kind, err)
	}
	return nil
}

// emitReversed writes points.reversed (docs/webhooks.md): ids and amounts,
// the partner's own reference, no personal data.
func (s *Service) emitReversed(ctx context.Context, tx bun.Tx, partnerID uuid.UUID, out *Reversed) error {
	data := map[string]any{
		"userId": out.UserID, "entryId": out.Entry.ID, "earnEntryId": out.EarnEntryID, "reference": out.Reference,
		"points": out.Reversed, "shortfall": out.Shortfall, "pending": out.Pending,
		"balance": out.Balance, "pendingPoints": out.PendingPoints,
	}
	_, err := s.Events.EmitTx(ctx, tx, partnerID, event.PointsReversed, &out.UserID, data)
	return err
}
