package partner

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apperr"
)

// TestCheckEnabled: a switched-off partner is refused for every audience
// with PARTNER_DISABLED, in the audience's words; a partner that is on is
// never refused.
func TestCheckEnabled(t *testing.T) {
	t.Parallel()
	on := &Partner{APIEnabled: true}
	off := &Partner{APIEnabled: false}
	for _, c := range []struct {
		name     string
		audience Audience
		message  string
	}{
		{"operator", AudienceOperator, "API access is disabled for this partner"},
		{"consumer", AudienceConsumer, "this partner's program is switched off"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			require.NoError(t, on.CheckEnabled(c.audience))
			err := off.CheckEnabled(c.audience)
			require.Equal(t, apperr.CodePartnerDisabled, apperr.CodeOf(err))
			require.Equal(t, c.message, apperr.As(err).Message)
		})
	}
}

func TestProgramTitle(t *testing.T) {
	t.Parallel()
	require.Equal(t, "Acme Rewards", (&Partner{ProgramName: "Acme Rewards", DisplayName: "Acme"}).ProgramTitle())
	require.Equal(t, "Acme", (&Partner{DisplayName: "Acme"}).ProgramTitle(), "falls back to the display name")
}
