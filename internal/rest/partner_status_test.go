package rest_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/audit"
	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/partner"
)

// TestPartnerStatusGatesAccess: a pending partner (onboarding not approved)
// and a suspended one are refused on every partner scheme (HMAC, Ed25519),
// for consumer tokens on REST and GraphQL, and for their merchants' calls,
// each with its stable 403 code and no change; approval and resumption give
// access back at once (no cache to wait for).
func TestPartnerStatusGatesAccess(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	ctx := context.Background()
	ed := newSeed004Client(t, env, "acme")
	acme := env.PartnerID("acme")
	cli := audit.Actor{Kind: audit.ActorOperator, Label: "cli"}
	set := func(status string) {
		t.Helper()
		_, err := env.DB.Bun.NewUpdate().Table("partners").Set("status = ?", status).Where("id = ?", acme).Exec(ctx)
		require.NoError(t, err)
	}
	act := func(action string) {
		t.Helper()
		_, err := env.App.Partners.SetStatusTx(ctx, env.DB.Bun, env.App.Audit, cli, acme, action)
		require.NoError(t, err)
	}
	body := []byte(`{"externalUserId":"status-user"}`)
	token := env.Token("acme", "status-user", nil)
	calls := map[string]func() (int, string){
		"hmac": func() (int, string) {
			r := env.Partner("acme", http.MethodPost, "/integrations/users", body)
			return r.StatusCode, r.Code()
		},
		"ed25519": func() (int, string) {
			r := ed.do(http.MethodPost, "/integrations/users", body, "idem-"+uuid.NewString())
			return r.StatusCode, r.Code()
		},
		"consumer rest": func() (int, string) {
			r := env.Consumer(token, http.MethodGet, "/me", nil)
			return r.StatusCode, r.Code()
		},
		"consumer graphql": func() (int, string) {
			g := env.GraphQL(token, `{ me { id } }`, nil)
			if code := g.ErrorCode(); code != "" {
				return http.StatusForbidden, code
			}
			return http.StatusOK, ""
		},
		"merchant": func() (int, string) {
			r := env.DemoMerchant().Lookup("NO-SUCH-CODE")
			if r.StatusCode == http.StatusNotFound {
				return http.StatusOK, "" // authenticated, then not found
			}
			return r.StatusCode, r.Code()
		},
	}
	for _, tc := range []struct{ status, code string }{
		{partner.StatusPending, "PARTNER_PENDING"},
		{partner.StatusSuspended, "PARTNER_SUSPENDED"},
	} {
		set(tc.status)
		before := dbtest.Snapshot(t, env.DB.Bun)
		for name, call := range calls {
			status, code := call()
			require.Equal(t, http.StatusForbidden, status, "%s while %s", name, tc.status)
			require.Equal(t, tc.code, code, "%s while %s", name, tc.status)
		}
		require.Equal(t, before, dbtest.Snapshot(t, env.DB.Bun), "a refused call changes nothing")
	}

	set(partner.StatusPending)
	act(partner.ActionApprove)
	for name, call := range calls {
		status, _ := call()
		require.Contains(t, []int{200, 201}, status, "%s once approved", name)
	}
	act(partner.ActionSuspend)
	status, code := calls["hmac"]()
	require.Equal(t, http.StatusForbidden, status)
	require.Equal(t, "PARTNER_SUSPENDED", code)
	act(partner.ActionResume)
	status, _ = calls["ed25519"]()
	require.Contains(t, []int{200, 201}, status, "resumed")
}
