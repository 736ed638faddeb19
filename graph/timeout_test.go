package graph_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/earning"
)

// TestSlowResolverIsCutOff: a resolver stuck behind a row lock is
// cancelled at the operation deadline (PERKS_GRAPHQL_TIMEOUT) and answers
// TIMEOUT; its transaction is rolled back, so nothing was earned.
func TestSlowResolverIsCutOff(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, apptest.Options{Env: map[string]string{"PERKS_GRAPHQL_TIMEOUT": "300ms"}})
	ctx := context.Background()
	putRule(t, env, "tap", earning.RuleInput{Name: "Tap", Points: 3, ClientTriggerable: true, Enabled: true})
	tok := env.Token("acme", "slowpoke", nil)
	require.Empty(t, env.GraphQL(tok, `{ me { id } }`, nil).Errors)

	// Another transaction holds the user's row: the earn waits for it.
	lock, err := env.DB.Bun.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer func() { _ = lock.Rollback() }()
	_, err = lock.ExecContext(ctx, "SELECT 1 FROM users WHERE external_id = 'slowpoke' FOR UPDATE")
	require.NoError(t, err)

	started := time.Now()
	res := env.GraphQL(tok, trigger, map[string]any{"code": "tap", "key": "slow-1"})
	require.Equal(t, "TIMEOUT", res.ErrorCode(), "%+v", res.Errors)
	require.Less(t, time.Since(started), 5*time.Second, "cut off near the deadline, not after the lock")
	require.NoError(t, lock.Rollback())

	var n int
	require.NoError(t, env.DB.Bun.NewRaw("SELECT count(*) FROM ledger_entries WHERE action_code = 'tap'").Scan(ctx, &n))
	require.Zero(t, n, "the cut-off earn was rolled back")

	// With the lock gone the same request earns.
	res = env.GraphQL(tok, trigger, map[string]any{"code": "tap", "key": "slow-2"})
	require.Empty(t, res.Errors)
}
