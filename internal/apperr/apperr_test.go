package apperr_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apperr"
)

// TestErrorsDocIsCurrent: docs/errors.md is exactly what the catalog renders.
func TestErrorsDocIsCurrent(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../docs/errors.md")
	require.NoError(t, err)
	require.Equal(t, apperr.Markdown(), string(b), "run `make generate`")
}

func TestEveryCodeHasStatusAndAction(t *testing.T) {
	t.Parallel()
	for code, info := range apperr.Codes() {
		require.GreaterOrEqual(t, info.Status, 400, code)
		require.NotEmpty(t, info.Title, code)
		require.NotEmpty(t, info.Action, code)
	}
}

func TestAsAndCodeOf(t *testing.T) {
	t.Parallel()
	base := apperr.Field(apperr.CodeInvalidField, "email", "bad")
	wrapped := fmt.Errorf("upsert: %w", base)
	require.Same(t, base, apperr.As(wrapped))
	require.Equal(t, apperr.CodeInvalidField, apperr.CodeOf(wrapped))
	require.Equal(t, apperr.CodeInternal, apperr.CodeOf(fmt.Errorf("boom")))
	require.Equal(t, apperr.Code(""), apperr.CodeOf(nil))
	require.Equal(t, 500, apperr.Lookup("NOPE").Status)
}
