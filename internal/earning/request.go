package earning

import (
	"bytes"
	"context"
	"encoding/json"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/idempotency"
	"github.com/perkshq/perks/internal/ledger"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/program"
	"github.com/perkshq/perks/internal/textcheck"
	"github.com/perkshq/perks/internal/user"
)

// MaxMetadataBytes bounds the partner metadata stored on a ledger entry.
const MaxMetadataBytes = 4096

// MaxOccurredAtSkew is how far in the future an earn's occurredAt may be:
// the partner's clock may run a little ahead of ours, no more.
const MaxOccurredAtSkew = 5 * time.Minute

// EarnParams is one earn as any caller asks for it: the partner API (one
// earn, or each multistore item), the app (GraphQL triggerAction) and
// tests. Validate holds every rule about its fields; EarnTx and
// EarnManyTx resolve its user and apply it. Field names in errors are the
// partner API's (externalUserId, action, points, amount, reference,
// occurredAt, metadata).
type EarnParams struct {
	// UserID names a user the caller already holds: the app's
	// authenticated consumer, whom authentication refuses once anonymised.
	// Otherwise ExternalUserID, the partner's id of the user, names them.
	UserID         uuid.UUID
	ExternalUserID string
	// CreateUser creates an unknown ExternalUserID with an empty profile
	// instead of refusing USER_NOT_FOUND (one earn only; not in batches).
	CreateUser bool

	Code string
	// Points overrides the rule's amount; only for variable-points rules.
	Points *int64
	// Amount is what the user spent, in minor units of the program's
	// currency (0..MaxAmount). A per-amount rule requires it and computes
	// the points from it; any other rule keeps it in the breakdown (for the
	// record and campaign conditions) without changing its points.
	Amount *int64
	// Reference, when set, makes the earn exactly-once per partner: 1 to
	// 255 printable ASCII characters, no spaces.
	Reference *string
	// OccurredAt is when the action happened; zero means now.
	OccurredAt time.Time
	// Metadata is a JSON object stored on the entry (partner API only).
	Metadata json.RawMessage
	// ByClient is true when the user triggered the action from the app.
	ByClient bool
	// PendingUntil holds the points pending until then (in the future, at
	// most MaxPendingDays away); Hold holds them until the partner
	// confirms (or cancels) the earn by its reference. At most one of
	// them; either overrides the rule's and the policy's pending days.
	// Partner API only.
	PendingUntil *time.Time
	Hold         bool
}

// MaxPendingDays bounds how far away an earn's pendingUntil may be, as the
// policy's and rules' pending days are.
const MaxPendingDays = 3650

// Validate checks the request's own fields, before anything is read, so
// bad input is refused with its field named and changes nothing. The
// rule-dependent checks (active, client-triggerable, variable points,
// caps) are EarnTx's. now bounds occurredAt.
func (ep *EarnParams) Validate(now time.Time) error {
	if ep.UserID == uuid.Nil {
		if err := user.ValidateExternalID("externalUserId", ep.ExternalUserID); err != nil {
			return err
		}
	}
	if err := ValidateCode("action", ep.Code); err != nil {
		return err
	}
	if ep.Points != nil {
		if err := ledger.ValidatePoints("points", *ep.Points); err != nil {
			return err
		}
	}
	if ep.Amount != nil && (*ep.Amount < 0 || *ep.Amount > MaxAmount) {
		return apperr.Field(apperr.CodeInvalidField, "amount", "amount must be a whole number of minor units from 0 to %d", MaxAmount)
	}
	if ep.Reference != nil {
		if err := idempotency.ValidateKey("reference", *ep.Reference); err != nil {
			return apperr.Field(apperr.CodeInvalidField, "reference", "reference must be 1 to %d printable ASCII characters", idempotency.MaxKeyLen)
		}
	}
	if err := ep.validatePending(now); err != nil {
		return err
	}
	if ep.OccurredAt.After(now.Add(MaxOccurredAtSkew)) {
		return apperr.Field(apperr.CodeInvalidField, "occurredAt", "occurredAt must not be in the future")
	}
	if len(ep.Metadata) > 0 {
		if len(ep.Metadata) > MaxMetadataBytes || !bytes.HasPrefix(bytes.TrimSpace(ep.Metadata), []byte("{")) {
			return apperr.Field(apperr.CodeInvalidField, "metadata", "metadata must be a JSON object of at most %d bytes (no personal data)", MaxMetadataBytes)
		}
	}
	return checkText(ep.reference(), ep.Metadata)
}

// validatePending checks pending and pendingUntil. A held earn needs a
// reference: it is how the partner confirms or cancels it.
func (ep *EarnParams) validatePending(now time.Time) error {
	switch {
	case ep.Hold && ep.PendingUntil != nil:
		return apperr.Field(apperr.CodeInvalidField, "pending", "send either pending: true (held until confirmed) or pendingUntil, not both")
	case ep.Hold && ep.Reference == nil:
		return apperr.Field(apperr.CodeMissingField, "reference", "a held earn (pending: true) needs a reference: it is confirmed or cancelled by it")
	case ep.PendingUntil == nil:
		return nil
	case !ep.PendingUntil.After(now):
		return apperr.Field(apperr.CodeInvalidField, "pendingUntil", "pendingUntil must be in the future")
	case ep.PendingUntil.After(now.AddDate(0, 0, MaxPendingDays)):
		return apperr.Field(apperr.CodeInvalidField, "pendingUntil", "pendingUntil must be at most %d days away", MaxPendingDays)
	}
	return nil
}

// lotDates dates the earn's lot: by the program policy and the rule's
// overrides (program.Resolve), unless the earn holds its points itself.
// pendingUntil dates the lot like pending days would (expiry counts from
// it); a held lot has no dates until it is confirmed (earning.ConfirmTx).
func (ep *EarnParams) lotDates(pol program.Policy, o program.Overrides, now time.Time, loc *time.Location) (availableAt time.Time, expiresAt *time.Time, held bool) {
	switch {
	case ep.Hold:
		return time.Time{}, nil, true
	case ep.PendingUntil != nil:
		zero := 0
		o.PendingDays = &zero
		availableAt, expiresAt = program.Resolve(pol, o, ep.PendingUntil.UTC(), loc)
		return availableAt, expiresAt, false
	}
	availableAt, expiresAt = program.Resolve(pol, o, now, loc)
	return availableAt, expiresAt, false
}

// reference is the reference, "" for none.
func (ep *EarnParams) reference() string {
	if ep.Reference == nil {
		return ""
	}
	return *ep.Reference
}

// checkText refuses a reference or metadata PostgreSQL would not store as
// sent: a reference with any control character, metadata that is not
// valid UTF-8 or whose strings hold a control character other than tab,
// line feed and carriage return (jsonb refuses \u0000: it was a 500).
func checkText(reference string, metadata json.RawMessage) error {
	if err := textcheck.Line("reference", reference); err != nil {
		return err
	}
	if len(metadata) == 0 {
		return nil
	}
	if !utf8.Valid(metadata) {
		return apperr.Field(apperr.CodeInvalidField, "metadata", "metadata is not valid UTF-8")
	}
	return textcheck.JSON("metadata", metadata)
}

// EarnTx is the one entry point of an earn: it validates ep, resolves its
// user (creating them when asked, refusing an anonymised one) and applies
// the rule inside tx: active window, client-triggerable, variable points,
// caps and cooldown counted in the same transaction as the ledger entry.
// Refusals come in this order: bad input, unknown or anonymised user,
// unknown rule, then the rule's own checks. A reference used before fails
// the ledger insert with CONFLICT, which aborts tx; the partner API then
// answers with the first earn's stored response.
func (s *Service) EarnTx(ctx context.Context, tx bun.Tx, p *partner.Partner, ep EarnParams) (*ledger.Entry, error) {
	now := s.Now().UTC()
	if err := ep.Validate(now); err != nil {
		return nil, err
	}
	// The user, the rule, the policy that dates its lot and what the tier
	// and campaign steps need: one query.
	at := now
	if !ep.OccurredAt.IsZero() {
		at = ep.OccurredAt
	}
	l, err := s.userAndRuleTx(ctx, tx, p.ID, &ep, at, now)
	if err != nil {
		return nil, err
	}
	u, userID, r, pol, parts, prefetched := l.User, ep.UserID, l.Rule, l.Policy, l.Parts, l.Prefetched
	if u != nil {
		userID = u.ID
	}
	if err := r.decide(&ep, now); err != nil {
		return nil, err
	}
	if r.limited() {
		if err := s.count(ctx, tx, p, r, userID, now); err != nil {
			return nil, err
		}
	}
	earn := &Earn{Partner: p, UserID: userID, User: u, Rule: r, Params: &ep, Now: now, Parts: parts, PartsKnown: true, prefetched: prefetched}
	bd, err := s.breakdownTx(ctx, tx, earn, r.base(&ep, pol.Currency))
	if err != nil {
		return nil, err
	}
	raw, err := bd.encode()
	if err != nil {
		return nil, err
	}
	availableAt, expiresAt, held := ep.lotDates(pol, r.overrides(), now, p.Location())
	e, err := s.Ledger.ApplyTx(ctx, tx, p.ID, ledger.Change{
		UserID: userID, Kind: ledger.KindEarn, Points: bd.Total, Reason: r.Name, ActionCode: r.Code,
		Reference: ep.reference(), Metadata: ep.Metadata, OccurredAt: ep.OccurredAt,
		AvailableAt: availableAt, ExpiresAt: expiresAt, Held: held, Breakdown: raw,
	})
	if err != nil {
		return nil, err
	}
	// The entry's trigger counted its qualifying points: an earn that
	// crosses a threshold upgrades in its own transaction.
	// A partner without tiers has none to evaluate (a tier list PUT
	// concurrently with this earn places the user itself, from what is
	// committed; this earn's points count at the user's next earn), and an
	// earn that cannot have moved the user skips the evaluation
	// (tier.EarnState.MayChange).
	if s.Tiers != nil && parts.Tiers && e.Kind == ledger.KindEarn && earn.TierState.MayChange(e.LifetimeAfter, now) {
		if _, err := s.Tiers.EvaluateTx(ctx, tx, p.ID, userID); err != nil {
			return nil, err
		}
	}
	// The user's referral may qualify with this earn (its rewards are
	// written in this transaction); only partners with referrals ask.
	if s.Referrals != nil && parts.Referrals {
		if err := s.Referrals.EarnedTx(ctx, tx, p, e, ep.Amount); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// decide applies the rule's checks that need no lock to one earn; base
// then says how it computes. A per-amount rule requires an amount
// (AMOUNT_REQUIRED) and refuses points; an amount on any other rule is
// accepted and kept in the breakdown, never changing its points.
func (r *Rule) decide(ep *EarnParams, now time.Time) error {
	if ep.ByClient && !r.ClientTriggerable {
		return apperr.New(apperr.CodeActionNotAllowed, "action %q cannot be triggered from the app", ep.Code)
	}
	if !r.Active(now) {
		return apperr.New(apperr.CodeActionInactive, "action %q is not active", ep.Code)
	}
	if r.PointsPerAmount != nil {
		if ep.Points != nil {
			return apperr.Field(apperr.CodeVariablePointsDenied, "points", "action %q computes points from amount; omit points", ep.Code)
		}
		if ep.Amount == nil {
			return apperr.Field(apperr.CodeAmountRequired, "amount", "action %q awards points per amount spent: send amount in minor units", ep.Code)
		}
		return nil
	}
	if ep.Points == nil {
		return nil
	}
	if !r.VariablePoints {
		return apperr.Field(apperr.CodeVariablePointsDenied, "points", "action %q awards a fixed %d points; omit points", ep.Code, r.Points)
	}
	max := r.maxPoints()
	if *ep.Points < 1 || *ep.Points > max {
		return apperr.Field(apperr.CodePointsOutOfRange, "points", "points must be a whole number from 1 to %d for action %q", max, ep.Code)
	}
	return nil
}

// maxPoints is the most one earn of the rule may award: its maxPoints
// (variable-points and per-amount rules), else ledger.MaxPoints.
func (r *Rule) maxPoints() int64 {
	if r.MaxPoints != nil {
		return *r.MaxPoints
	}
	return ledger.MaxPoints
}

// userAndRuleTx resolves the user an earn names and reads its rule, in
// one round trip (lookup): UserID as given (no user row read, nil user),
// or the partner's ExternalUserID, created when CreateUser asks for it
// (the row read, handed to the modifiers as Earn.User; a created user
// costs a second lookup, for the prefetches of the new id). Refusals come
// in EarnTx's order: unknown or anonymised user, then unknown rule.
func (s *Service) userAndRuleTx(ctx context.Context, tx bun.Tx, partnerID uuid.UUID, ep *EarnParams, at, now time.Time) (*ruleLookup, error) {
	if ep.UserID != uuid.Nil {
		l, err := s.lookup(ctx, tx, partnerID, ep.Code, ep.UserID, nil, at, now)
		if err != nil {
			return nil, err
		}
		return l, ruleFound(l, ep.Code)
	}
	l, err := s.lookup(ctx, tx, partnerID, ep.Code, uuid.Nil, s.Users.ExternalIDHash(partnerID, ep.ExternalUserID), at, now)
	if err != nil {
		return nil, err
	}
	if !l.UserFound {
		if !ep.CreateUser {
			return nil, apperr.New(apperr.CodeUserNotFound, "user not found")
		}
		res, err := s.Users.UpsertTx(ctx, tx, partnerID, ep.ExternalUserID, user.Profile{})
		if err != nil {
			return nil, err
		}
		u := res.User
		if err := earnable(u); err != nil {
			return nil, err
		}
		if l, err = s.lookup(ctx, tx, partnerID, ep.Code, u.ID, nil, at, now); err != nil {
			return nil, err
		}
		l.User, l.UserFound = u, true
		return l, ruleFound(l, ep.Code)
	}
	if err := earnable(l.User); err != nil {
		return nil, err
	}
	return l, ruleFound(l, ep.Code)
}

// ruleFound refuses an earn whose rule the partner does not have.
func ruleFound(l *ruleLookup, code string) error {
	if l.Rule == nil {
		return apperr.New(apperr.CodeActionNotFound, "no earning rule %q", code)
	}
	return nil
}

// earnable refuses an anonymised user: their row and history stay, but
// they earn nothing until the partner provisions them again.
func earnable(u *user.User) error {
	if u.Anonymised() {
		return apperr.New(apperr.CodeUserAnonymised, "the user was anonymised; revive them with POST /integrations/users first")
	}
	return nil
}
