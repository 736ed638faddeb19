package partner_test

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/catalog"
	"github.com/perkshq/perks/internal/partner"
)

// TestSandboxCreation: one sandbox per live partner, even under
// concurrent calls; a sandbox's own id answers itself; the -sandbox suffix
// is reserved; the sandbox copies names only.
func TestSandboxCreation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := apptest.New(t)
	svc, db := env.App.Partners, env.DB.Bun
	globex := env.Globex.Partner

	var wg sync.WaitGroup
	ids := make([]uuid.UUID, 4)
	created := make([]bool, 4)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sb, c, err := svc.EnsureSandbox(ctx, db, globex.ID)
			if err == nil {
				ids[i], created[i] = sb.ID, c
			}
		}()
	}
	wg.Wait()
	for _, id := range ids {
		require.Equal(t, ids[0], id)
	}
	require.Equal(t, 1, len(slices.DeleteFunc(created, func(c bool) bool { return !c })))

	sb, err := svc.Sandbox(ctx, db, globex.ID)
	require.NoError(t, err)
	require.Equal(t, "globex-sandbox", sb.Slug)
	require.Equal(t, globex.ID, *sb.SandboxOf)
	require.Equal(t, globex.DisplayName, sb.DisplayName)
	require.Nil(t, sb.Issuer, "issuers are unique: tokens of globex's issuer stay live")
	require.True(t, sb.IsSandbox())
	require.Equal(t, "sandbox", sb.Environment())
	require.Equal(t, "live", globex.Environment())
	creds, err := svc.ListCredentials(ctx, db, sb.ID)
	require.NoError(t, err)
	require.Empty(t, creds, "EnsureSandbox copies no credential")

	again, c, err := svc.EnsureSandbox(ctx, db, sb.ID)
	require.NoError(t, err)
	require.False(t, c)
	require.Equal(t, sb.ID, again.ID, "a sandbox has no sandbox")

	_, err = svc.Upsert(ctx, db, partner.CreateParams{Slug: "initech-sandbox", Name: "Initech"})
	require.True(t, apperr.Is(err, apperr.CodeInvalidField), "%v", err)
}

// tenantCounts counts the sandbox's rows in every table with a partner_id.
func tenantCounts(t *testing.T, db bun.IDB, id uuid.UUID) map[string]int {
	t.Helper()
	ctx := context.Background()
	var tables []string
	require.NoError(t, db.NewRaw(`SELECT table_name FROM information_schema.columns
		WHERE table_schema = current_schema() AND column_name = 'partner_id'`).Scan(ctx, &tables))
	out := map[string]int{}
	for _, table := range tables {
		var n int
		require.NoError(t, db.NewRaw("SELECT count(*) FROM ? WHERE partner_id = ?", bun.Ident(table), id).Scan(ctx, &n))
		if n > 0 {
			out[table] = n
		}
	}
	return out
}

// TestResetSandbox: a reset empties every tenant table of the sandbox but
// the credentials' (SandboxKeeps), refuses a live partner, and leaves the
// live partner's rows alone.
func TestResetSandbox(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := apptest.New(t)
	svc, db := env.App.Partners, env.DB.Bun
	acme, sb := env.Acme.Partner, env.Acme.Sandbox

	// Data in the sandbox: users, points, a gift and a claim, an event
	// with a webhook delivery.
	ep := env.PartnerJSON("acme-sandbox", http.MethodPost, "/integrations/webhook-endpoints", map[string]any{"url": "http://127.0.0.1:1/hook"})
	require.Equal(t, http.StatusCreated, ep.StatusCode, "%s", ep.Body)
	env.FundedUser("acme-sandbox", "tester", "SG", 1000)
	env.PutGift("acme-sandbox", "sbx-gift", catalog.GiftInput{Title: "Gift", CostPoints: 10, CodeSource: catalog.SourceNone})
	liveEP := env.PartnerJSON("acme", http.MethodPost, "/integrations/webhook-endpoints", map[string]any{"url": "http://127.0.0.1:1/live"})
	require.Equal(t, http.StatusCreated, liveEP.StatusCode, "%s", liveEP.Body)
	env.FundedUser("acme", "tester", "SG", 1000)
	jobs := func(id uuid.UUID) int {
		var n int
		require.NoError(t, db.NewRaw("SELECT count(*) FROM river_job WHERE args->>'partnerId' = ?", id.String()).Scan(ctx, &n))
		return n
	}
	liveJobs := jobs(acme.ID)
	require.Positive(t, liveJobs)
	require.Positive(t, jobs(sb.ID), "webhook deliveries queued for the sandbox")
	liveBefore := tenantCounts(t, db, acme.ID)
	before := tenantCounts(t, db, sb.ID)
	require.Contains(t, before, "users")
	require.Contains(t, before, "ledger_entries")
	require.Contains(t, before, "gifts")
	require.Contains(t, before, "events")

	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		_, err := svc.ResetSandboxTx(ctx, tx, acme.ID)
		return err
	})
	require.True(t, apperr.Is(err, apperr.CodeNotFound), "a live partner is never reset: %v", err)
	require.Equal(t, liveBefore, tenantCounts(t, db, acme.ID))

	var deleted map[string]int64
	require.NoError(t, db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		deleted, err = svc.ResetSandboxTx(ctx, tx, sb.ID)
		return err
	}))
	require.EqualValues(t, before["users"], deleted["users"])
	after := tenantCounts(t, db, sb.ID)
	for table := range after {
		require.Contains(t, partner.SandboxKeeps, table, "%s survived the reset", table)
	}
	require.Equal(t, before["partner_credentials"], after["partner_credentials"])
	require.Equal(t, before["consumer_keys"], after["consumer_keys"])
	require.Equal(t, before["webhook_endpoints"], after["webhook_endpoints"])
	require.Equal(t, liveBefore, tenantCounts(t, db, acme.ID), "live untouched")
	require.Zero(t, jobs(sb.ID), "the sandbox's queued jobs are cancelled")
	require.Equal(t, liveJobs, jobs(acme.ID))

	// The sandbox works after the reset, with the same credential.
	res := env.Partner("acme-sandbox", http.MethodPost, "/integrations/users", []byte(`{"externalUserId":"tester"}`))
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
}
