package graph

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/stretchr/testify/require"
)

// TestPersistedQueriesCacheIsBounded: the cache keeps the most recently
// used queries up to its size and forgets the rest, so hashes sent by
// anyone cannot grow the server's memory.
func TestPersistedQueriesCacheIsBounded(t *testing.T) {
	t.Parallel()
	p := newPersistedQueries(2)
	ctx := graphql.WithOperationContext(context.Background(), &graphql.OperationContext{})
	hashOf := func(q string) string { s := sha256.Sum256([]byte(q)); return hex.EncodeToString(s[:]) }
	send := func(q string, withQuery bool) error {
		raw := &graphql.RawParams{Extensions: map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hashOf(q)}}}
		if withQuery {
			raw.Query = q
		}
		if err := p.MutateOperationParameters(ctx, raw); err != nil {
			return err
		}
		require.Equal(t, q, raw.Query)
		return nil
	}
	for i := range 3 {
		require.NoError(t, send(fmt.Sprintf("{ q%d: me { id } }", i), true))
	}
	require.Error(t, send("{ q0: me { id } }", false), "the least recently used was forgotten")
	require.NoError(t, send("{ q1: me { id } }", false))
	require.NoError(t, send("{ q2: me { id } }", false))
}
