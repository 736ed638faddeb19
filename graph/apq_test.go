package graph_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
)

// TestAutomaticPersistedQueries: a hash-only request for an unknown hash
// answers PERSISTED_QUERY_NOT_FOUND (what APQ clients look for); once the
// query was sent with its hash, the hash alone runs it; a hash that does not
// match its query, or a bad extension, is the client's BAD_REQUEST (never
// INTERNAL) and stores nothing.
func TestAutomaticPersistedQueries(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	env.FundedUser("acme", "apq", "SG", 70)
	tok := env.Token("acme", "apq", nil)

	query := `query Balance { me { balance } }`
	sum := sha256.Sum256([]byte(query))
	hash := hex.EncodeToString(sum[:])
	post := func(body map[string]any) *apptest.GraphQLResult {
		t.Helper()
		b, err := json.Marshal(body)
		require.NoError(t, err)
		res := env.Consumer(tok, http.MethodPost, "/graphql", b)
		var out apptest.GraphQLResult
		require.NoError(t, json.Unmarshal(res.Body, &out), "%s", res.Body)
		out.Status = res.StatusCode
		return &out
	}
	pq := func(h string) map[string]any {
		return map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": h}}
	}

	miss := post(map[string]any{"extensions": pq(hash)})
	require.Equal(t, "PERSISTED_QUERY_NOT_FOUND", miss.ErrorCode())
	require.Equal(t, "PersistedQueryNotFound", miss.Errors[0].Message)
	require.Equal(t, http.StatusOK, miss.Status)

	full := post(map[string]any{"query": query, "extensions": pq(hash)})
	require.Empty(t, full.Errors, "%+v", full.Errors)
	require.JSONEq(t, `{"me":{"balance":70}}`, string(full.Data))

	hashOnly := post(map[string]any{"extensions": pq(hash)})
	require.Empty(t, hashOnly.Errors, "%+v", hashOnly.Errors)
	require.JSONEq(t, `{"me":{"balance":70}}`, string(hashOnly.Data))

	other := sha256.Sum256([]byte(`{ me { id } }`))
	for name, body := range map[string]map[string]any{
		"hash of another query": {"query": query, "extensions": pq(hex.EncodeToString(other[:]))},
		"version 2":             {"query": query, "extensions": map[string]any{"persistedQuery": map[string]any{"version": 2, "sha256Hash": hash}}},
		"not an object":         {"query": query, "extensions": map[string]any{"persistedQuery": "yes"}},
	} {
		res := post(body)
		require.Equal(t, "BAD_REQUEST", res.ErrorCode(), "%s: %+v", name, res.Errors)
		require.Equal(t, "extensions.persistedQuery", res.Errors[0].Extensions["field"], name)
	}
	// The mismatched hash stored nothing.
	require.Equal(t, "PERSISTED_QUERY_NOT_FOUND", post(map[string]any{"extensions": pq(hex.EncodeToString(other[:]))}).ErrorCode())
	require.NotContains(t, env.Logs.String(), "graphql internal error")
}
