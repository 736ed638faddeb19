package main

import (
	"bytes"
	"context"
	"net/url"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/account"
	"github.com/perkshq/perks/internal/apptest"
)

// TestAdminCreate: `perks admin create` prints an activation link for a
// platform admin (no realm id), audited as "cli"; bad input creates
// nothing.
func TestAdminCreate(t *testing.T) {
	t.Parallel()
	penv := testEnv{}
	env := apptest.New(t)
	penv.set("DATABASE_URL", env.DBURL)
	penv.set("PERKS_PUBLIC_BASE_URL", "https://perks.example.test")
	ctx := context.Background()
	perks := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := penv.run(ctx, args, &out, &errb)
		return out.String() + errb.String(), err
	}
	out, err := perks("admin", "create", "--email", "ops@perks.example", "--name", "Ops")
	require.NoError(t, err, out)
	m := regexp.MustCompile(`https://perks\.example\.test/admin/activate\?token=(\S+)`).FindStringSubmatch(out)
	require.NotNil(t, m, out)
	tok, err := url.QueryUnescape(m[1])
	require.NoError(t, err)
	a, _, err := env.App.Accounts.ActivationOffer(ctx, env.DB.Bun, tok)
	require.NoError(t, err)
	require.Equal(t, account.RealmPlatform, a.Realm)
	require.Equal(t, account.RolePlatformAdmin, a.Role)
	require.Nil(t, a.RealmID)
	require.Equal(t, 1, env.Count("audit_log", "realm = 'platform' AND action = 'account.invite' AND actor_label = 'cli'"))

	_, err = perks("admin", "create")
	require.ErrorIs(t, err, errUsage)
	out, err = perks("admin", "create", "--email", "not an address")
	require.ErrorContains(t, err, "INVALID_FIELD", out)
	require.Equal(t, 1, env.Count("accounts", "realm = 'platform'"))
}

// TestPartnerOnboardingCommands: a partner created --pending is refused
// until `perks partner approve`; suspend and resume follow, each audited;
// a transition that does not apply is a clear error.
func TestPartnerOnboardingCommands(t *testing.T) {
	t.Parallel()
	penv := testEnv{}
	env := apptest.New(t)
	penv.set("DATABASE_URL", env.DBURL)
	ctx := context.Background()
	perks := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := penv.run(ctx, args, &out, &errb)
		return out.String() + errb.String(), err
	}
	out, err := perks("partner", "create", "--partner", "newco", "--name", "NewCo", "--pending")
	require.NoError(t, err, out)
	require.Contains(t, out, "pending")
	out, err = perks("partner", "resume", "--partner", "newco")
	require.ErrorContains(t, err, "approve it instead", out)
	for _, step := range []struct{ cmd, want string }{
		{"approve", "partner newco is active"},
		{"suspend", "partner newco is suspended"},
		{"resume", "partner newco is active"},
	} {
		out, err := perks("partner", step.cmd, "--partner", "newco")
		require.NoError(t, err, out)
		require.Contains(t, out, step.want)
	}
	out, err = perks("partner", "show", "--partner", "newco")
	require.NoError(t, err, out)
	require.Regexp(t, `status:\s+active`, out)
	require.Equal(t, 3, env.Count("audit_log", "realm = 'platform' AND action LIKE 'partner.%' AND actor_label = 'cli'"))
	out, err = perks("partner", "create", "--partner", "oldway", "--name", "Old Way")
	require.NoError(t, err, out)
	require.Contains(t, out, "active", "without --pending a CLI partner is active, as before")
}
