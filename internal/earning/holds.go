package earning

import (
	"context"
	"time"

	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/idempotency"
	"github.com/perkshq/perks/internal/ledger"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/program"
	"github.com/perkshq/perks/internal/textcheck"
)

// MaxHoldReasonLen bounds the reason a partner gives for a cancel.
const MaxHoldReasonLen = 500

// ValidateHoldReference checks the reference of a confirm or cancel as an
// earn's reference is checked (EarnParams.Validate), so a reference no earn
// could have is refused as bad input, not looked up.
func ValidateHoldReference(reference string) error {
	if err := idempotency.ValidateKey("reference", reference); err != nil {
		return apperr.Field(apperr.CodeInvalidField, "reference", "reference must be 1 to %d printable ASCII characters", idempotency.MaxKeyLen)
	}
	return textcheck.Line("reference", reference)
}

// ConfirmTx makes the pending earn with the partner's reference available
// now (ledger.ConfirmTx). A held earn (pending: true) has no expiry until
// then: it gets one dated from now by the program policy and its rule's
// override in force now, as if it were earned now with no pending days;
// an earn pending until a date keeps the expiry it was given.
func (s *Service) ConfirmTx(ctx context.Context, tx bun.Tx, p *partner.Partner, reference string) (*ledger.HoldResult, error) {
	if err := ValidateHoldReference(reference); err != nil {
		return nil, err
	}
	h, err := s.Ledger.ConfirmTx(ctx, tx, p.ID, reference, func(ctx context.Context, tx bun.Tx, earn *ledger.Entry, now time.Time) (*time.Time, error) {
		return s.heldExpiry(ctx, tx, p, earn, now)
	})
	if err != nil || h.Already {
		return h, err
	}
	// The activation made the points qualify: a confirm that crosses a
	// threshold upgrades in its own transaction, like an earn.
	if err := s.evaluateTier(ctx, tx, p, h.Earn.UserID); err != nil {
		return nil, err
	}
	return h, nil
}

// heldExpiry dates the expiry of a held earn confirmed at now.
func (s *Service) heldExpiry(ctx context.Context, tx bun.Tx, p *partner.Partner, earn *ledger.Entry, now time.Time) (*time.Time, error) {
	none := 0
	o := program.Overrides{PendingDays: &none}
	var pol program.Policy
	r, rpol, _, _, err := s.ruleWithPolicy(ctx, tx, p.ID, deref(earn.ActionCode), earn.UserID, now, now)
	switch {
	case err == nil:
		pol, o.ExpiryDays = rpol, r.ExpiryDays
	case apperr.Is(err, apperr.CodeActionNotFound):
		// The rule is gone: the policy alone dates the points.
		if pol, err = s.policy(ctx, tx, p.ID); err != nil {
			return nil, err
		}
	default:
		return nil, err
	}
	_, exp := program.Resolve(pol, o, now, p.Location())
	return exp, nil
}

// CancelTx removes the pending earn with the partner's reference
// (ledger.CancelTx); reason, optional, is the cancel entry's (at most
// MaxHoldReasonLen characters, one line).
func (s *Service) CancelTx(ctx context.Context, tx bun.Tx, p *partner.Partner, reference, reason string) (*ledger.HoldResult, error) {
	if err := ValidateHoldReference(reference); err != nil {
		return nil, err
	}
	if err := ValidateHoldReason(reason); err != nil {
		return nil, err
	}
	h, err := s.Ledger.CancelTx(ctx, tx, p.ID, reference, reason)
	if err != nil || h.Already || s.Referrals == nil {
		return h, err
	}
	// A referral this earn qualified loses its rewards still on hold.
	if err := s.Referrals.EarnUndoneTx(ctx, tx, p, h.Earn.ID); err != nil {
		return nil, err
	}
	return h, nil
}

// ValidateHoldReason checks a cancel's optional reason.
func ValidateHoldReason(reason string) error {
	if len(reason) > MaxHoldReasonLen {
		return apperr.Field(apperr.CodeInvalidField, "reason", "reason must be at most %d characters", MaxHoldReasonLen)
	}
	return textcheck.Line("reason", reason)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
