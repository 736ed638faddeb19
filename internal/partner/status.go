package partner

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/audit"
)

// Partner statuses: the onboarding state the platform operator sets in the
// console (/admin) or with `perks partner approve|suspend|resume`. Only an
// active partner is served: CheckEnabled refuses the others' REST calls,
// consumer tokens and merchant calls, and webhook deliveries wait (see
// docs/admin.md). The partner portal stays open to a pending partner's team,
// so the owner can set the integration up before approval.
const (
	StatusPending   = "pending"
	StatusActive    = "active"
	StatusSuspended = "suspended"
)

// Statuses lists every status.
var Statuses = []string{StatusPending, StatusActive, StatusSuspended}

func validStatus(s string) bool {
	return s == StatusPending || s == StatusActive || s == StatusSuspended
}

// Status transitions, named as the console's buttons and the CLI's
// commands.
const (
	ActionApprove = "approve" // pending -> active
	ActionSuspend = "suspend" // pending or active -> suspended
	ActionResume  = "resume"  // suspended -> active
)

// transitions maps an action to the statuses it may start from and the
// status it leads to.
var transitions = map[string]struct {
	from []string
	to   string
}{
	ActionApprove: {[]string{StatusPending}, StatusActive},
	ActionSuspend: {[]string{StatusPending, StatusActive}, StatusSuspended},
	ActionResume:  {[]string{StatusSuspended}, StatusActive},
}

// SetStatusTx applies an onboarding action to a partner and audits it in
// the platform realm (actor is the platform admin, or "cli"), in the
// caller's transaction. An action whose target status the partner already
// has changes nothing and records nothing (automation may repeat it); an
// action that does not apply (resume a pending partner: approve it) is a
// CONFLICT that says which does. The row is locked, so two admins acting at
// once apply one after the other.
func (s *Service) SetStatusTx(ctx context.Context, tx bun.IDB, log *audit.Log, actor audit.Actor, partnerID uuid.UUID, action string) (*Partner, error) {
	s.Changed()
	tr, ok := transitions[action]
	if !ok {
		return nil, apperr.Field(apperr.CodeInvalidField, "action", "action must be approve, suspend or resume")
	}
	p := new(Partner)
	err := tx.NewSelect().Model(p).Where("id = ?", partnerID).For("UPDATE").Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.New(apperr.CodeNotFound, "partner not found")
	}
	if err != nil {
		return nil, fmt.Errorf("load partner: %w", err)
	}
	if p.Status == tr.to {
		return p, nil
	}
	allowed := false
	for _, f := range tr.from {
		allowed = allowed || f == p.Status
	}
	if !allowed {
		hint := "approve it"
		if p.Status == StatusSuspended {
			hint = "resume it"
		}
		return nil, apperr.New(apperr.CodeConflict, "partner %s is %s and cannot be %s; %s instead", p.Slug, p.Status, pastTense(action), hint)
	}
	before := p.Status
	now := s.Now().UTC()
	if _, err := tx.NewUpdate().Model(p).Set("status = ?", tr.to).Set("status_changed_at = ?", now).Set("updated_at = now()").
		WherePK().Exec(ctx); err != nil {
		return nil, fmt.Errorf("set partner status: %w", err)
	}
	p.Status, p.StatusChangedAt = tr.to, &now
	if _, err := log.RecordTx(ctx, tx, audit.Change{
		Realm: audit.RealmPlatform, Actor: actor, Action: "partner." + action, Target: "partner " + p.Slug,
		Before: map[string]any{"status": before}, After: map[string]any{"status": tr.to, "partnerId": p.ID},
	}); err != nil {
		return nil, err
	}
	return p, nil
}

func pastTense(action string) string {
	switch action {
	case ActionApprove:
		return "approved"
	case ActionSuspend:
		return "suspended"
	}
	return "resumed"
}

// checkStatus is CheckEnabled's onboarding part: PARTNER_PENDING or
// PARTNER_SUSPENDED, worded for the audience. An empty status (a Partner
// built in memory) counts as active.
func (p *Partner) checkStatus(a Audience) error {
	switch p.Status {
	case StatusPending:
		if a == AudienceConsumer {
			return apperr.New(apperr.CodePartnerPending, "this partner's program has not started yet")
		}
		return apperr.New(apperr.CodePartnerPending, "this partner's onboarding is not approved yet: API access starts once the platform operator approves it")
	case StatusSuspended:
		if a == AudienceConsumer {
			return apperr.New(apperr.CodePartnerSuspended, "this partner's program is suspended")
		}
		return apperr.New(apperr.CodePartnerSuspended, "this partner is suspended: API access is stopped until the platform operator resumes it")
	}
	return nil
}
