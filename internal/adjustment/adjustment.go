// Package adjustment is a support correction of an end user's points: a
// signed number of points with a reason, never below zero. It is the one
// rule behind POST /integrations/users/{externalUserId}/adjustments and
// the portal's Users page, so both refuse the same inputs with the same
// codes.
package adjustment

import (
	"context"
	"strings"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/ledger"
	"github.com/perkshq/perks/internal/textcheck"
	"github.com/perkshq/perks/internal/user"
)

// MaxReasonLen bounds a reason, in bytes.
const MaxReasonLen = 500

// Params is one adjustment.
type Params struct {
	ExternalUserID string
	// Points is signed: positive credits, negative debits; never zero.
	Points int64
	// Reason is required; surrounding spaces are trimmed.
	Reason string
}

// Validate checks p and trims its reason. Errors name the field (points,
// reason) with a stable code: POINTS_OUT_OF_RANGE for zero or beyond
// ±ledger.MaxPoints, MISSING_FIELD for an empty reason, INVALID_FIELD for
// a reason with control characters or longer than MaxReasonLen.
func Validate(p *Params) error {
	if err := user.ValidateExternalID("externalUserId", p.ExternalUserID); err != nil {
		return err
	}
	if p.Points == 0 || p.Points > ledger.MaxPoints || p.Points < -ledger.MaxPoints {
		return apperr.Field(apperr.CodePointsOutOfRange, "points", "points must be a non-zero whole number between -%d and %d", ledger.MaxPoints, ledger.MaxPoints)
	}
	p.Reason = strings.TrimSpace(p.Reason)
	if p.Reason == "" {
		return apperr.Field(apperr.CodeMissingField, "reason", "reason is required")
	}
	if err := textcheck.Line("reason", p.Reason); err != nil {
		return err
	}
	if len(p.Reason) > MaxReasonLen {
		return apperr.Field(apperr.CodeInvalidField, "reason", "reason must be at most %d characters", MaxReasonLen)
	}
	return nil
}

// Service applies adjustments.
type Service struct {
	Users  *user.Service
	Ledger *ledger.Service
}

// Result is an applied adjustment.
type Result struct {
	UserID uuid.UUID
	Entry  *ledger.Entry
}

// ApplyTx validates p and writes the adjust entry in tx. An unknown user
// is NOT_FOUND, an anonymised one USER_ANONYMISED; a debit beyond the
// available balance is the ledger's INSUFFICIENT_POINTS. Nothing is
// written when it fails.
func (s *Service) ApplyTx(ctx context.Context, tx bun.Tx, partnerID uuid.UUID, p Params) (*Result, error) {
	if err := Validate(&p); err != nil {
		return nil, err
	}
	u, err := s.Users.Get(ctx, tx, partnerID, p.ExternalUserID)
	if err != nil {
		return nil, err
	}
	if u.Anonymised() {
		return nil, apperr.New(apperr.CodeUserAnonymised, "the user was anonymised")
	}
	e, err := s.Ledger.ApplyTx(ctx, tx, partnerID, ledger.Change{UserID: u.ID, Kind: ledger.KindAdjust, Points: p.Points, Reason: p.Reason})
	if err != nil {
		return nil, err
	}
	return &Result{UserID: u.ID, Entry: e}, nil
}
