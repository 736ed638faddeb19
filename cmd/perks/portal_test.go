package main

import (
	"bytes"
	"context"
	"net/url"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/mailer/mailertest"
)

// TestPortalInvite: `perks portal invite` prints a working activation link;
// inviting again prints a new one and retires the old; bad input is a
// clear error that creates nothing.
func TestPortalInvite(t *testing.T) {
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
	linkRE := regexp.MustCompile(`https://perks\.example\.test/portal/activate\?token=(\S+)`)
	token := func(out string) string {
		m := linkRE.FindStringSubmatch(out)
		require.NotNil(t, m, out)
		tok, err := url.QueryUnescape(m[1])
		require.NoError(t, err)
		return tok
	}

	out, err := perks("portal", "invite", "--partner", "acme", "--email", "boss@acme.example")
	require.NoError(t, err, out)
	require.Contains(t, out, "invited boss@acme.example as owner of acme")
	first := token(out)
	a, _, err := env.App.Accounts.ActivationOffer(ctx, env.DB.Bun, first)
	require.NoError(t, err)
	require.Equal(t, "owner", a.Role)
	require.Equal(t, env.PartnerID("acme"), a.Scope())

	out, err = perks("portal", "invite", "--partner", "acme", "--email", "boss@acme.example", "--role", "developer")
	require.NoError(t, err, out)
	second := token(out)
	_, _, err = env.App.Accounts.ActivationOffer(ctx, env.DB.Bun, first)
	require.True(t, apperr.Is(err, apperr.CodeTokenInvalid), "%v", err)
	a, _, err = env.App.Accounts.ActivationOffer(ctx, env.DB.Bun, second)
	require.NoError(t, err)
	require.Equal(t, "developer", a.Role)

	_, err = perks("portal", "invite", "--partner", "acme")
	require.ErrorIs(t, err, errUsage)
	out, err = perks("portal", "invite", "--partner", "acme", "--email", "x@acme.example", "--role", "root")
	require.ErrorContains(t, err, "INVALID_FIELD", out)
	out, err = perks("portal", "invite", "--partner", "acme", "--email", "not an address")
	require.ErrorContains(t, err, "INVALID_FIELD", out)
	require.Equal(t, 1, env.Count("accounts", "true"))
	require.Equal(t, 2, env.Count("audit_log", "action = 'account.invite' AND actor_label = 'cli'"))
}

// TestPortalInviteMails: with PERKS_SMTP_URL the link is mailed, not printed.
func TestPortalInviteMails(t *testing.T) {
	t.Parallel()
	penv := testEnv{}
	env := apptest.New(t)
	smtp := mailertest.Start(t)
	penv.set("DATABASE_URL", env.DBURL)
	penv.set("PERKS_SMTP_URL", smtp.URL())
	penv.set("PERKS_SMTP_FROM", "perks@example.test")
	var out, errb bytes.Buffer
	require.NoError(t, penv.run(context.Background(), []string{"portal", "invite", "--partner", "acme", "--email", "mailme@acme.example"}, &out, &errb), errb.String())
	require.Contains(t, out.String(), "the activation link was mailed")
	require.NotContains(t, out.String(), "token=")
	msgs := smtp.Messages()
	require.Len(t, msgs, 1)
	require.Equal(t, "<mailme@acme.example>", msgs[0].To)
	tok := regexp.MustCompile(`/portal/activate\?token=(\S+)`).FindStringSubmatch(msgs[0].Body)
	require.NotNil(t, tok, msgs[0].Body)
	_, _, err := env.App.Accounts.ActivationOffer(context.Background(), env.DB.Bun, tok[1])
	require.NoError(t, err, "the mailed link works")
}
