package demo_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/demo"
	"github.com/perkshq/perks/internal/keyring"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/webhook"
)

// TestDemoWebhookEndpoint: with PERKS_DEMO_WEBHOOK_URL set, seeding gives
// acme one endpoint however often it runs, printing its secret only when it
// is created; a URL the policy refuses fails with advice.
func TestDemoWebhookEndpoint(t *testing.T) {
	t.Parallel()
	db := dbtest.NewDB(t)
	keys, err := keyring.New(make([]byte, keyring.KeySize))
	require.NoError(t, err)
	svc := &webhook.Service{Keys: keys, Policy: &webhook.URLPolicy{AllowPrivate: true}}
	s := &demo.Seeder{DB: db.Bun, Partners: partner.NewService(keys), SecretsDir: t.TempDir(), Webhooks: svc, DemoWebhookURL: "http://localhost:9999/hooks"}

	var first, second bytes.Buffer
	res, err := s.Run(context.Background(), &first)
	require.NoError(t, err)
	require.Regexp(t, `secret: +whsec_\S+ +\(shown once`, first.String())
	_, err = s.Run(context.Background(), &second)
	require.NoError(t, err)
	require.NotContains(t, second.String(), "whsec_")
	require.Contains(t, second.String(), "perks webhook rotate --partner acme")

	eps, err := svc.Endpoints(context.Background(), db.Bun, res[0].Partner.ID)
	require.NoError(t, err)
	require.Len(t, eps, 1)
	require.Equal(t, "http://localhost:9999/hooks", eps[0].URL)
	require.True(t, eps[0].Enabled)
	globex, err := svc.Endpoints(context.Background(), db.Bun, res[1].Partner.ID)
	require.NoError(t, err)
	require.Empty(t, globex)

	s.Webhooks = &webhook.Service{Keys: keys, Policy: &webhook.URLPolicy{}}
	s.DemoWebhookURL = "http://127.0.0.1:9999/other"
	_, err = s.Run(context.Background(), &bytes.Buffer{})
	require.Error(t, err)
	require.True(t, strings.Contains(err.Error(), "PERKS_WEBHOOK_ALLOW_PRIVATE=true"), err.Error())
}
