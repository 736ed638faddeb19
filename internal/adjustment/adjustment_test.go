package adjustment_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/adjustment"
	"github.com/perkshq/perks/internal/apperr"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		p      adjustment.Params
		code   apperr.Code
		field  string
		reason string
	}{
		{"credit", adjustment.Params{ExternalUserID: "u", Points: 5, Reason: "  goodwill "}, "", "", "goodwill"},
		{"debit", adjustment.Params{ExternalUserID: "u", Points: -5, Reason: "fix"}, "", "", "fix"},
		{"largest", adjustment.Params{ExternalUserID: "u", Points: 1_000_000_000, Reason: "r"}, "", "", "r"},
		{"zero", adjustment.Params{ExternalUserID: "u", Points: 0, Reason: "r"}, apperr.CodePointsOutOfRange, "points", ""},
		{"too large", adjustment.Params{ExternalUserID: "u", Points: 1_000_000_001, Reason: "r"}, apperr.CodePointsOutOfRange, "points", ""},
		{"too small", adjustment.Params{ExternalUserID: "u", Points: -1_000_000_001, Reason: "r"}, apperr.CodePointsOutOfRange, "points", ""},
		{"no reason", adjustment.Params{ExternalUserID: "u", Points: 5, Reason: " \t "}, apperr.CodeMissingField, "reason", ""},
		{"long reason", adjustment.Params{ExternalUserID: "u", Points: 5, Reason: strings.Repeat("x", 501)}, apperr.CodeInvalidField, "reason", ""},
		{"control character", adjustment.Params{ExternalUserID: "u", Points: 5, Reason: "a\x00b"}, apperr.CodeInvalidField, "reason", ""},
		{"no user", adjustment.Params{Points: 5, Reason: "r"}, apperr.CodeMissingField, "externalUserId", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := tt.p
			err := adjustment.Validate(&p)
			if tt.code == "" {
				require.NoError(t, err)
				require.Equal(t, tt.reason, p.Reason)
				return
			}
			require.True(t, apperr.Is(err, tt.code), "%v", err)
			require.Equal(t, tt.field, apperr.As(err).Field)
		})
	}
}
