package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/dbtest"
)

// TestWebhookCommand drives `perks webhook` the way an operator would:
// add (secret printed once), list, rotate, disable, enable, replay, delete.
func TestWebhookCommand(t *testing.T) {
	t.Parallel()
	penv := testEnv{}
	_, url := dbtest.NewDBWithURL(t)
	penv.set("DATABASE_URL", url)
	penv.set("PERKS_SECRETS_DIR", t.TempDir())
	penv.set("PERKS_WEBHOOK_ALLOW_PRIVATE", "true")
	ctx := context.Background()
	perks := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := penv.run(ctx, args, &out, &errOut)
		return out.String() + errOut.String(), err
	}
	_, err := perks("seed")
	require.NoError(t, err)

	out, err := perks("webhook", "add", "--partner", "acme", "--url", "http://127.0.0.1:9/hooks", "--events", "user.created,user.anonymised")
	require.NoError(t, err, out)
	m := regexp.MustCompile(`endpoint: (\S+)\nsecret:   (whsec_\S+)`).FindStringSubmatch(out)
	require.Len(t, m, 3, out)
	id := m[1]

	out, err = perks("webhook", "list", "--partner", "acme")
	require.NoError(t, err)
	require.Contains(t, out, id)
	require.Contains(t, out, "user.anonymised,user.created")
	require.NotContains(t, out, "whsec_")

	out, err = perks("webhook", "rotate", "--partner", "acme", "--id", id, "--grace", "1h")
	require.NoError(t, err, out)
	require.Contains(t, out, "secret: whsec_")
	require.NotContains(t, out, m[2])
	require.Contains(t, out, "previous secret keeps signing until")

	_, err = perks("webhook", "disable", "--partner", "acme", "--id", id)
	require.NoError(t, err)
	out, _ = perks("webhook", "list", "--partner", "acme")
	require.Contains(t, out, "false")
	_, err = perks("webhook", "enable", "--partner", "acme", "--id", id)
	require.NoError(t, err)

	out, err = perks("webhook", "replay", "--partner", "acme", "--from", "2026-01-01T00:00:00Z", "--to", "2026-01-02T00:00:00Z", "--status", "failed")
	require.NoError(t, err, out)
	require.Contains(t, out, "replay queued as River job")
	out, err = perks("webhook", "deliveries", "--partner", "acme")
	require.NoError(t, err, out)
	require.True(t, strings.HasPrefix(out, "DELIVERY"))

	_, err = perks("webhook", "delete", "--partner", "acme", "--id", id)
	require.NoError(t, err)
	out, _ = perks("webhook", "list", "--partner", "acme")
	require.NotContains(t, out, id)

	_, err = perks("webhook", "list")
	require.ErrorContains(t, err, "--partner is required")
	_, err = perks("webhook", "frobnicate", "--partner", "acme")
	require.ErrorIs(t, err, errUsage)
}
