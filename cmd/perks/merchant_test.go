package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/demo"
)

// TestMerchantCommand: create shows the API key and private key once (and
// they authenticate), list shows no secret, disable switches the
// credentials off.
func TestMerchantCommand(t *testing.T) {
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

	keyPath := filepath.Join(t.TempDir(), "shop.pem")
	out, err := perks("merchant", "create", "--partner", "acme", "--name", "Corner Shop", "--key-out", keyPath)
	require.NoError(t, err, out)
	require.Contains(t, out, "merchant:    corner-shop (Corner Shop) of partner acme")
	apiKey := regexp.MustCompile(`api key:     (mk_\S+)`).FindStringSubmatch(out)
	require.Len(t, apiKey, 2, out)
	fi, err := os.Stat(keyPath)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	_, err = perks("merchant", "create", "--partner", "acme", "--name", "Other", "--key-out", keyPath)
	require.ErrorContains(t, err, "exists", "never overwrites a key file")
	pemBytes, err := os.ReadFile(keyPath)
	require.NoError(t, err)
	key, err := demo.ParsePrivateKey(pemBytes)
	require.NoError(t, err)
	client := &apptest.MerchantClient{Env: env, APIKey: apiKey[1], PrivateKey: key.(ed25519.PrivateKey)}
	require.Equal(t, "VOUCHER_NOT_FOUND", client.Lookup("ANY-CODE").Code(), "the printed credentials authenticate")

	out, err = perks("merchant", "create", "--partner", "acme", "--name", "Corner Shop")
	require.ErrorContains(t, err, "CONFLICT", out)
	out, err = perks("merchant", "create", "--partner", "acme", "--name", "Kiosk", "--code", "kiosk-1")
	require.NoError(t, err)
	require.Contains(t, out, "-----BEGIN PRIVATE KEY-----")

	out, err = perks("merchant", "list", "--partner", "acme")
	require.NoError(t, err)
	for _, code := range []string{"acme-store", "corner-shop", "kiosk-1"} {
		require.Contains(t, out, code)
	}
	require.NotContains(t, out, apiKey[1])
	require.NotContains(t, out, "PRIVATE KEY")

	out, err = perks("merchant", "disable", "--partner", "acme", "--code", "corner-shop")
	require.NoError(t, err, out)
	out, _ = perks("merchant", "list", "--partner", "acme")
	require.Regexp(t, `corner-shop\s+Corner Shop\s+false`, out)
	require.Equal(t, "INVALID_SIGNATURE", client.Lookup("ANY-CODE").Code(), "disabled")

	_, err = perks("merchant", "disable", "--partner", "acme", "--code", "nope")
	require.ErrorContains(t, err, "NOT_FOUND")
	_, err = perks("merchant", "create", "--partner", "nobody", "--name", "X")
	require.Error(t, err)
	_, err = perks("merchant", "explode", "--partner", "acme")
	require.ErrorIs(t, err, errUsage)
	out, err = perks("merchant")
	require.ErrorIs(t, err, errUsage)
	require.True(t, strings.Contains(out, "perks merchant create"))
}
