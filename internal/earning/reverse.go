package earning

import (
	"context"
	"strings"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/idempotency"
	"github.com/perkshq/perks/internal/ledger"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/program"
	"github.com/perkshq/perks/internal/textcheck"
)

// MaxReasonLen bounds a reversal's reason (bytes), like an adjustment's.
const MaxReasonLen = 500

// ReverseParams is one reversal request: the earn's partner reference, the
// points to take back (nil: all that remains) and why (required; shown in
// the user's history, so never personal data).
type ReverseParams struct {
	Reference string
	Points    *int64
	Reason    string
}

// Validate checks every field; the error names the field. The reason is
// trimmed first.
func (rp *ReverseParams) Validate() error {
	if err := idempotency.ValidateKey("reference", rp.Reference); err != nil {
		return apperr.Field(apperr.CodeInvalidField, "reference", "reference must be 1 to %d printable ASCII characters", idempotency.MaxKeyLen)
	}
	if rp.Points != nil {
		if err := ledger.ValidatePoints("points", *rp.Points); err != nil {
			return err
		}
	}
	rp.Reason = strings.TrimSpace(rp.Reason)
	if rp.Reason == "" {
		return apperr.Field(apperr.CodeMissingField, "reason", "reason is required")
	}
	if len(rp.Reason) > MaxReasonLen {
		return apperr.Field(apperr.CodeInvalidField, "reason", "reason must be at most %d characters", MaxReasonLen)
	}
	return textcheck.Line("reason", rp.Reason)
}

// ReverseTx reverses (part of) the partner's earn recorded with
// rp.Reference, inside tx, under the partner's program policy
// (negativeBalance): ledger.ReverseTx has the rules.
func (s *Service) ReverseTx(ctx context.Context, tx bun.Tx, p *partner.Partner, rp ReverseParams) (*ledger.Reversed, error) {
	if err := rp.Validate(); err != nil {
		return nil, err
	}
	pol, err := s.policy(ctx, tx, p.ID)
	if err != nil {
		return nil, err
	}
	out, err := s.Ledger.ReverseTx(ctx, tx, p.ID, ledger.Reversal{
		Reference: rp.Reference, Points: rp.Points, Reason: rp.Reason,
		AllowNegative: pol.NegativeBalance == program.NegativeAllow,
	})
	if err != nil {
		return out, err
	}
	// A referral this earn qualified loses its rewards still on hold,
	// even when this reversal could take nothing (forbid, balance 0): the
	// qualifying purchase was refunded all the same.
	if s.Referrals != nil {
		if err := s.Referrals.EarnUndoneTx(ctx, tx, p, out.EarnEntryID); err != nil {
			return nil, err
		}
	}
	if out.Entry == nil {
		return out, nil
	}
	// Reversed points stop qualifying (the entry's trigger subtracted
	// them): under the tier policy's immediate downgrade the user moves
	// down in the reversal's own transaction.
	if err := s.evaluateTier(ctx, tx, p, out.UserID); err != nil {
		return nil, err
	}
	return out, nil
}

// evaluateTier re-places a user on the partner's tiers after a write that
// changed their qualifying points (tier.EvaluateTx); nothing without tiers.
func (s *Service) evaluateTier(ctx context.Context, tx bun.Tx, p *partner.Partner, userID uuid.UUID) error {
	if s.Tiers == nil {
		return nil
	}
	_, err := s.Tiers.EvaluateTx(ctx, tx, p.ID, userID)
	return err
}
