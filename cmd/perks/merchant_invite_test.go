package main

import (
	"bytes"
	"context"
	"net/url"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
)

// TestMerchantInvite: `perks merchant invite` prints a working merchant
// portal activation link for an account of the merchant (not of the
// partner); bad input is a clear error that creates nothing.
func TestMerchantInvite(t *testing.T) {
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
	code := env.Acme.Merchant.Merchant.Code
	out, err := perks("merchant", "invite", "--partner", "acme", "--code", code, "--email", "ada@shop.example", "--name", "Ada")
	require.NoError(t, err, out)
	require.Contains(t, out, "invited ada@shop.example as admin of merchant "+code)
	m := regexp.MustCompile(`https://perks\.example\.test/merchant/activate\?token=(\S+)`).FindStringSubmatch(out)
	require.NotNil(t, m, out)
	tok, err := url.QueryUnescape(m[1])
	require.NoError(t, err)
	a, _, err := env.App.Accounts.ActivationOffer(ctx, env.DB.Bun, tok)
	require.NoError(t, err)
	require.Equal(t, "merchant", a.Realm)
	require.Equal(t, "admin", a.Role)
	require.Equal(t, env.Acme.Merchant.Merchant.ID, a.Scope())

	out, err = perks("merchant", "invite", "--partner", "acme", "--code", code, "--email", "op@shop.example", "--role", "operator")
	require.NoError(t, err, out)
	require.Contains(t, out, "as operator of merchant")

	_, err = perks("merchant", "invite", "--partner", "acme", "--email", "x@shop.example")
	require.ErrorIs(t, err, errUsage)
	out, err = perks("merchant", "invite", "--partner", "acme", "--code", "no-such-shop", "--email", "x@shop.example")
	require.ErrorContains(t, err, "NOT_FOUND", out)
	out, err = perks("merchant", "invite", "--partner", "acme", "--code", code, "--email", "x@shop.example", "--role", "owner")
	require.ErrorContains(t, err, "INVALID_FIELD", out)
	require.Equal(t, 2, env.Count("accounts", "realm = 'merchant'"))
	require.Equal(t, 2, env.Count("audit_log", "realm = 'merchant' AND action = 'account.invite' AND actor_label = 'cli'"))
}

// TestMerchantAttach: `perks merchant attach` makes acme's demo merchant a
// merchant of globex too (same id, its own code there); twice is a no-op;
// a code taken at globex is a clear conflict.
func TestMerchantAttach(t *testing.T) {
	t.Parallel()
	penv := testEnv{}
	env := apptest.New(t)
	penv.set("DATABASE_URL", env.DBURL)
	perks := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := penv.run(context.Background(), args, &out, &errb)
		return out.String() + errb.String(), err
	}
	m := env.Acme.Merchant.Merchant
	out, err := perks("merchant", "attach", "--partner", "acme", "--code", m.Code, "--to", "globex", "--as", "acme-at-globex")
	require.NoError(t, err, out)
	require.Contains(t, out, "now also serves globex as acme-at-globex")
	require.Equal(t, 1, env.Count("merchants", "partner_id = ? AND id = ? AND code = 'acme-at-globex'", env.Globex.Partner.ID, m.ID))
	out, err = perks("merchant", "attach", "--partner", "acme", "--code", m.Code, "--to", "globex")
	require.NoError(t, err, out)
	require.Contains(t, out, "as acme-at-globex", "attaching twice keeps the first code")
	other := env.NewMerchant("acme", "Other Shop")
	out, err = perks("merchant", "attach", "--partner", "acme", "--code", other.Merchant.Code, "--to", "globex", "--as", "acme-at-globex")
	require.ErrorContains(t, err, "CONFLICT", out)
	_, err = perks("merchant", "attach", "--partner", "acme", "--code", m.Code)
	require.ErrorIs(t, err, errUsage)
	require.Equal(t, 1, env.Count("audit_log", "action = 'merchant.attach'"))
}
