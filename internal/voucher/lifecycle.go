package voucher

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/event"
	"github.com/perkshq/perks/internal/ledger"
	"github.com/perkshq/perks/internal/textcheck"
)

// MaxCancelReason bounds the partner's cancellation reason.
const MaxCancelReason = 500

// Cancelled is the outcome of a cancellation.
type Cancelled struct {
	Voucher *Voucher
	Refund  *ledger.Entry
}

// CancelTx cancels a claimed voucher for its partner and refunds its points
// in the same transaction. The conditional update on the status is the
// guard: of a cancellation and a redemption (or a second cancellation)
// racing on one voucher, exactly one moves it, so the refund happens at
// most once. Stock and the user's per-gift count are not given back: the
// code may have been seen, and the partner raises stock with PUT if it
// wants to. Errors: VOUCHER_NOT_FOUND, VOUCHER_NOT_ACTIVE.
func (s *Service) CancelTx(ctx context.Context, tx bun.Tx, partnerID, id uuid.UUID, reason string) (*Cancelled, error) {
	reason = strings.TrimSpace(reason)
	if !utf8.ValidString(reason) || utf8.RuneCountInString(reason) > MaxCancelReason {
		return nil, apperr.Field(apperr.CodeInvalidField, "reason", "reason must be at most %d characters", MaxCancelReason)
	}
	if err := textcheck.Line("reason", reason); err != nil {
		return nil, err
	}
	now := s.Now().UTC()
	v := new(Voucher)
	var reasonArg *string
	if reason != "" {
		reasonArg = &reason
	}
	err := tx.NewUpdate().Model(v).
		Set("status = 'cancelled', cancelled_at = ?, cancel_reason = ?", now, reasonArg).
		Set("otp_mac = NULL, otp_expires_at = NULL, updated_at = ?", now).
		Where("partner_id = ? AND id = ? AND status = 'claimed'", partnerID, id).
		Returning("*").Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		cur, err := s.ByID(ctx, tx, partnerID, id)
		if err != nil {
			return nil, err
		}
		return nil, notActive(cur, now)
	}
	if err != nil {
		return nil, fmt.Errorf("cancel voucher %s: %w", id, err)
	}
	refund, err := s.refundTx(ctx, tx, v, "Cancelled")
	if err != nil {
		return nil, err
	}
	if _, err := s.Events.EmitTx(ctx, tx, partnerID, event.VoucherCancelled, &v.UserID, map[string]any{
		"voucherId": v.ID, "userId": v.UserID, "giftId": v.GiftID, "pointsRefunded": v.CostPoints,
		"entryId": refund.ID, "balance": refund.BalanceAfter,
	}); err != nil {
		return nil, err
	}
	return &Cancelled{Voucher: v, Refund: refund}, nil
}

// refundTx credits the voucher's points back and records the entry on the
// voucher. The ledger's unique index on refunds per source refuses a
// second refund even if a future code path forgot the status guard.
func (s *Service) refundTx(ctx context.Context, tx bun.Tx, v *Voucher, why string) (*ledger.Entry, error) {
	e, err := s.Ledger.ApplyTx(ctx, tx, v.PartnerID, ledger.Change{
		UserID: v.UserID, Kind: ledger.KindRefund, Points: v.CostPoints, Reason: why + ": voucher refund",
		SourceType: SourceType, SourceID: v.ID.String(),
	})
	if err != nil {
		return nil, fmt.Errorf("refund voucher %s: %w", v.ID, err)
	}
	if _, err := tx.NewUpdate().Model(v).Set("refund_entry_id = ?", e.ID).WherePK().Returning("refund_entry_id").Exec(ctx); err != nil {
		return nil, fmt.Errorf("record refund of voucher %s: %w", v.ID, err)
	}
	return e, nil
}

// ExpireBatch is how many vouchers one expiry transaction handles.
const ExpireBatch = 500

// ExpireDue expires every claimed voucher whose expires_at has passed, in
// transactions of up to batch vouchers, and returns how many it expired.
// Rows are taken FOR UPDATE SKIP LOCKED, so a voucher being redeemed or
// cancelled right now is left for the next run (and the status guard would
// refuse it anyway), and two workers never expire the same voucher. Gifts
// with refundOnExpiry refund the points.
func (s *Service) ExpireDue(ctx context.Context, db bun.IDB, batch int) (int, error) {
	total := 0
	for {
		n, err := s.expireBatch(ctx, db, batch)
		total += n
		if err != nil {
			return total, err
		}
		if n < batch {
			return total, nil
		}
	}
}

func (s *Service) expireBatch(ctx context.Context, db bun.IDB, batch int) (int, error) {
	n := 0
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		now := s.Now().UTC()
		var due []struct {
			Voucher
			RefundOnExpiry bool `bun:"refund_on_expiry"`
		}
		err := tx.NewRaw(`SELECT v.*, g.refund_on_expiry FROM vouchers v
			JOIN gifts g ON g.partner_id = v.partner_id AND g.id = v.gift_id
			WHERE v.status = 'claimed' AND v.expires_at <= ?
			ORDER BY v.expires_at LIMIT ? FOR UPDATE OF v SKIP LOCKED`, now, batch).Scan(ctx, &due)
		if err != nil {
			return fmt.Errorf("select due vouchers: %w", err)
		}
		events := make([]*event.Event, 0, len(due))
		for i := range due {
			v := &due[i].Voucher
			if _, err := tx.NewUpdate().Model(v).
				Set("status = 'expired', expired_at = ?, otp_mac = NULL, otp_expires_at = NULL, updated_at = ?", now, now).
				WherePK().Returning("*").Exec(ctx); err != nil {
				return fmt.Errorf("expire voucher %s: %w", v.ID, err)
			}
			data := map[string]any{"voucherId": v.ID, "userId": v.UserID, "giftId": v.GiftID, "refunded": false, "pointsRefunded": 0}
			if due[i].RefundOnExpiry {
				e, err := s.refundTx(ctx, tx, v, "Expired")
				if err != nil {
					return err
				}
				data["refunded"], data["pointsRefunded"], data["entryId"] = true, v.CostPoints, e.ID
			}
			ev, err := s.Events.New(v.PartnerID, event.VoucherExpired, &v.UserID, data)
			if err != nil {
				return err
			}
			events = append(events, ev)
		}
		n = len(due)
		return s.Events.RecordTx(ctx, tx, events...)
	})
	return n, err
}

// DueBefore counts claimed vouchers already past expiry (for metrics and
// tests).
func DueBefore(ctx context.Context, db bun.IDB, t time.Time) (int, error) {
	n, err := db.NewSelect().Model((*Voucher)(nil)).Where("status = 'claimed' AND expires_at <= ?", t).Count(ctx)
	return int(n), err
}
