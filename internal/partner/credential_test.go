package partner_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/keyring"
	"github.com/perkshq/perks/internal/partner"
)

// TestUnsealableCredentialIsSkipped is issue 11's stray key: an HMAC secret
// sealed under another master key (by a CLI run with the wrong key) made
// every request of acme's scheme answer 500. Now the credential that does
// not open is skipped and logged by id, never with a secret, and acme's
// other credentials keep verifying; one corrupted in place is skipped too.
func TestUnsealableCredentialIsSkipped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := apptest.New(t)
	acme := env.Acme.Partner.ID

	other := make([]byte, keyring.KeySize)
	_, _ = rand.Read(other)
	otherKeys, err := keyring.New(other)
	require.NoError(t, err)
	straySecret := []byte("stray-secret-sealed-under-another-key")
	stray, err := partner.NewService(otherKeys).AddSharedSecret(ctx, env.DB.Bun, acme, partner.KindHMAC, "sealed by a stray CLI", straySecret)
	require.NoError(t, err)
	corruptSecret := []byte("corrupted-secret-of-acme-0123456789")
	corrupt, err := env.App.Partners.AddSharedSecret(ctx, env.DB.Bun, acme, partner.KindHMAC, "corrupted", corruptSecret)
	require.NoError(t, err)
	_, err = env.DB.Bun.NewRaw("UPDATE partner_credentials SET secret_sealed = set_byte(secret_sealed, 20, (get_byte(secret_sealed, 20) + 1) % 256) WHERE id = ?", corrupt.ID).Exec(ctx)
	require.NoError(t, err)

	// The service: both loaders return the good secret only.
	p, secrets, err := env.App.Partners.BySlugWithSecrets(ctx, env.DB.Bun, "acme", partner.KindHMAC)
	require.NoError(t, err)
	require.Equal(t, acme, p.ID)
	require.Len(t, secrets, 1)
	require.Equal(t, env.HMACSecret("acme"), string(secrets[0].Secret))
	enabled, err := env.App.Partners.EnabledSecrets(ctx, env.DB.Bun, acme, partner.KindHMAC)
	require.NoError(t, err)
	require.Len(t, enabled, 1)
	require.Equal(t, secrets[0].CredentialID, enabled[0].CredentialID)

	// The transport: acme's requests signed with its good secret still work.
	res := env.Partner("acme", http.MethodPost, "/integrations/users", []byte(`{"externalUserId":"u1","email":"u1@example.com"}`))
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	res = env.Partner("acme", http.MethodGet, "/integrations/users/u1", nil)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)

	// Consumer keys (HS256 secrets are sealed too): the same rule.
	strayKey, err := partner.NewService(otherKeys).UpsertConsumerKey(ctx, env.DB.Bun, acme, partner.AddConsumerKeyParams{
		Kid: "stray-hs256", Algorithm: partner.AlgHS256, Secret: straySecret,
	})
	require.NoError(t, err)
	good, err := env.App.Partners.UpsertConsumerKey(ctx, env.DB.Bun, acme, partner.AddConsumerKeyParams{
		Kid: "good-hs256", Algorithm: partner.AlgHS256, Secret: corruptSecret,
	})
	require.NoError(t, err)
	keys, err := env.App.Partners.EnabledConsumerKeys(ctx, env.DB.Bun, acme, "")
	require.NoError(t, err)
	var kids []string
	for _, k := range keys {
		kids = append(kids, k.Kid)
	}
	require.Contains(t, kids, good.Kid)
	require.NotContains(t, kids, strayKey.Kid)

	logs := env.Logs.String()
	for _, id := range []string{stray.ID.String(), corrupt.ID.String(), strayKey.ID.String()} {
		require.Contains(t, logs, id, "the operator learns which credential to replace")
	}
	require.Contains(t, logs, "cannot be unsealed")
	for _, secret := range [][]byte{straySecret, corruptSecret, []byte(env.HMACSecret("acme"))} {
		require.False(t, bytes.Contains([]byte(logs), secret), "no secret in the log")
	}
}
