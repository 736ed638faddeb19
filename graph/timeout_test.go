package graph_test

import (
	"context"
	"net/http"
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
	// Every GraphQL operation of this app has 2 s: the test makes no other
	// GraphQL call, so a slow machine cannot make a healthy one time out.
	const deadline = 2 * time.Second
	env := apptest.New(t, apptest.Options{Env: map[string]string{"PERKS_GRAPHQL_TIMEOUT": deadline.String()}})
	ctx := context.Background()
	putRule(t, env, "tap", earning.RuleInput{Name: "Tap", Points: 3, ClientTriggerable: true, Enabled: true})
	tok := env.Token("acme", "slowpoke", nil)
	res := env.Partner("acme", http.MethodPost, "/integrations/users", []byte(`{"externalUserId":"slowpoke"}`))
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)

	// Another transaction holds the user's row: the earn waits for it.
	lock, err := env.DB.Bun.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer func() { _ = lock.Rollback() }()
	_, err = lock.ExecContext(ctx, "SELECT 1 FROM users WHERE external_id = 'slowpoke' FOR UPDATE")
	require.NoError(t, err)

	started := time.Now()
	gql := env.GraphQL(tok, trigger, map[string]any{"code": "tap", "key": "slow-1"})
	require.Equal(t, "TIMEOUT", gql.ErrorCode(), "%+v", gql.Errors)
	require.GreaterOrEqual(t, time.Since(started), deadline, "cut off by the deadline, not by something else")
	require.NoError(t, lock.Rollback())

	var n int
	require.NoError(t, env.DB.Bun.NewRaw("SELECT count(*) FROM ledger_entries WHERE action_code = 'tap'").Scan(ctx, &n))
	require.Zero(t, n, "the cut-off earn was rolled back")
}
