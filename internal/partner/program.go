package partner

import "github.com/perkshq/perks/internal/apperr"

// Audience is who a request of the partner's comes from; it only chooses
// the wording of a refusal, never whether there is one.
type Audience int

const (
	// AudienceOperator is the partner's own back end and its merchants'
	// tills: they are told that API access is off.
	AudienceOperator Audience = iota
	// AudienceConsumer is the partner's users (the app, the webview, the
	// public program page): they are told that the program is off.
	AudienceConsumer
)

// CheckEnabled refuses every request of a partner the platform operator
// switched off (api_enabled = false, `--api-enabled=false` in the CLI):
// PARTNER_DISABLED, worded for the audience. Authentication calls it once
// the credential is verified, so an unauthenticated caller never learns
// whether a partner is switched off; the public program page (a slug, no
// credential) calls it too, as a switched-off program is not shown.
//
// A partner that is pending (onboarding not approved) or suspended is
// refused first, with PARTNER_PENDING or PARTNER_SUSPENDED (status.go).
func (p *Partner) CheckEnabled(a Audience) error {
	if err := p.checkStatus(a); err != nil {
		return err
	}
	if p.APIEnabled {
		return nil
	}
	if a == AudienceConsumer {
		return apperr.New(apperr.CodePartnerDisabled, "this partner's program is switched off")
	}
	return apperr.New(apperr.CodePartnerDisabled, "API access is disabled for this partner")
}

// ProgramTitle is the name the app shows for the loyalty program: the
// partner's program name, or its display name when it has none.
func (p *Partner) ProgramTitle() string {
	if p.ProgramName != "" {
		return p.ProgramName
	}
	return p.DisplayName
}
