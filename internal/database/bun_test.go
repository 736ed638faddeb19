package database_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/dbtest"
)

// TestBunRefusesNULInsteadOfStrippingIt: bun inlines query arguments into
// the SQL text. Up to v1.2 it silently dropped NUL bytes from strings
// ("ac\x00me" matched "acme"); since v1.3 it writes an error marker instead,
// which PostgreSQL refuses as a syntax error. Our edges refuse control
// characters before any query (docs/errors.md, "Bad input is refused, never
// altered"); this pins the storage layer's backstop: a NUL that slips
// through fails the statement (an internal error), it is never altered.
// Not covered by bun: pgdialect.Array still drops NUL from its elements
// (see docs/dependencies.md), so array values rely on the edge checks alone.
func TestBunRefusesNULInsteadOfStrippingIt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	nul := "ac\x00me"
	for _, tc := range []struct {
		name string
		arg  any
	}{
		{name: "string", arg: nul},
		{name: "string pointer", arg: &nul},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got string
			err := dbtest.Tx(t).NewRaw("SELECT ?::text", tc.arg).Scan(ctx, &got)
			require.Error(t, err, "bun sent %q", got)
			require.Empty(t, got)
		})
	}
	var got string
	require.NoError(t, dbtest.Tx(t).NewRaw("SELECT ?::text", "acme").Scan(ctx, &got))
	require.Equal(t, "acme", got)
}
