package earning

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/partner"
)

// OfferedToClients reports whether the app may show the rule at t: a user
// can trigger it themself (client-triggerable) and it is enabled and
// within its active window. It is the rule behind both the program's list
// of actions and an ad's action, so the app never shows an action that
// triggerAction would refuse as not allowed or inactive.
func (r *Rule) OfferedToClients(t time.Time) bool {
	return r.ClientTriggerable && r.Active(t)
}

// Offer is an action as the app may show it: the rule, and what the user
// may still earn from it (zero Availability without a user).
type Offer struct {
	Rule         *Rule
	Availability Availability
}

// ClientOffers lists, by code, the partner's actions the app may show
// (OfferedToClients), with userID's remaining caps; uuid.Nil lists them
// without (the public program page).
func (s *Service) ClientOffers(ctx context.Context, db bun.IDB, p *partner.Partner, userID uuid.UUID) ([]Offer, error) {
	rules, err := s.Rules(ctx, db, p.ID, false)
	if err != nil {
		return nil, err
	}
	now := s.Now()
	visible := rules[:0]
	for _, r := range rules {
		if r.OfferedToClients(now) {
			visible = append(visible, r)
		}
	}
	return s.offers(ctx, db, p, userID, visible)
}

// ClientOffer is the action an ad links to, as the app may show it, or nil
// when the app may not offer it (unknown, disabled, server-only or outside
// its window): the ad still shows, without its action.
func (s *Service) ClientOffer(ctx context.Context, db bun.IDB, p *partner.Partner, userID uuid.UUID, code string) (*Offer, error) {
	r, err := s.Rule(ctx, db, p.ID, code)
	if apperr.Is(err, apperr.CodeActionNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !r.OfferedToClients(s.Now()) {
		return nil, nil
	}
	out, err := s.offers(ctx, db, p, userID, []Rule{*r})
	if err != nil {
		return nil, err
	}
	return &out[0], nil
}

// offers pairs rules with userID's availability (one query), none for
// uuid.Nil.
func (s *Service) offers(ctx context.Context, db bun.IDB, p *partner.Partner, userID uuid.UUID, rules []Rule) ([]Offer, error) {
	var avail map[string]Availability
	if userID != uuid.Nil {
		var err error
		if avail, err = s.AvailabilityFor(ctx, db, p, userID, rules); err != nil {
			return nil, err
		}
	}
	out := make([]Offer, len(rules))
	for i := range rules {
		out[i] = Offer{Rule: &rules[i], Availability: avail[rules[i].Code]}
	}
	return out, nil
}
