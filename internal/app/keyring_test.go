package app_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/app"
	"github.com/perkshq/perks/internal/config"
	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/dbtest"
)

// TestMasterKeyRules: production refuses to start without PERKS_MASTER_KEY;
// development generates one into the secrets directory, warns, and reuses
// it; a given key must decode to 32 bytes.
func TestMasterKeyRules(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	load := func(env map[string]string) (*config.Config, error) {
		return config.Load(func(k string) string { return env[k] })
	}
	var logs strings.Builder
	log := slog.New(slog.NewJSONHandler(&logs, nil))

	prod, err := load(map[string]string{"PERKS_ENV": "production", "PERKS_SECRETS_DIR": dir})
	require.NoError(t, err)
	_, err = app.LoadKeyring(prod, log)
	require.ErrorContains(t, err, "PERKS_MASTER_KEY is required in production")
	_, statErr := os.Stat(filepath.Join(dir, "master.key"))
	require.True(t, os.IsNotExist(statErr), "production never writes a key")

	dev, err := load(map[string]string{"PERKS_SECRETS_DIR": dir})
	require.NoError(t, err)
	k1, err := app.LoadKeyring(dev, log)
	require.NoError(t, err)
	require.Contains(t, logs.String(), "PERKS_MASTER_KEY is unset")
	k2, err := app.LoadKeyring(dev, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	require.NoError(t, err)
	require.Equal(t, k1.LookupHash("a", "b"), k2.LookupHash("a", "b"), "the generated key is reused")

	bad, err := load(map[string]string{"PERKS_ENV": "production", "PERKS_MASTER_KEY": base64.StdEncoding.EncodeToString([]byte("short"))})
	require.NoError(t, err)
	_, err = app.LoadKeyring(bad, log)
	require.Error(t, err)
	good, err := load(map[string]string{"PERKS_ENV": "production", "PERKS_MASTER_KEY": base64.StdEncoding.EncodeToString(make([]byte, 32))})
	require.NoError(t, err)
	_, err = app.LoadKeyring(good, log)
	require.NoError(t, err)
}

// TestCLIAndServerAgreeOnTheMasterKey is issue 11's stray key: a CLI run
// from outside the repository generated a second development key and sealed
// a partner secret with it. Now the first key used with the database is
// recorded and every other one is refused before anything is sealed, with
// an error that names the setting and never the key.
func TestCLIAndServerAgreeOnTheMasterKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.NewDB(t)
	log := slog.New(slog.DiscardHandler)
	load := func(env map[string]string) *config.Config {
		cfg, err := config.Load(func(k string) string { return env[k] })
		require.NoError(t, err)
		return cfg
	}
	serverDir := t.TempDir()
	server := load(map[string]string{"PERKS_SECRETS_DIR": serverDir})
	k1, err := app.LoadKeyringFor(ctx, server, log, db.Bun)
	require.NoError(t, err, "the first use records the key")
	k2, err := app.LoadKeyringFor(ctx, server, log, db.Bun)
	require.NoError(t, err, "the server restarts with the same key")
	require.Equal(t, k1.Fingerprint(), k2.Fingerprint())

	// The CLI looking in another secrets directory: no key is generated.
	strayDir := t.TempDir()
	_, err = app.LoadKeyringFor(ctx, load(map[string]string{"PERKS_SECRETS_DIR": strayDir}), log, db.Bun)
	require.ErrorIs(t, err, database.ErrMasterKeyMismatch)
	require.ErrorContains(t, err, "PERKS_SECRETS_DIR")
	_, statErr := os.Stat(filepath.Join(strayDir, "master.key"))
	require.True(t, os.IsNotExist(statErr), "no second development key")

	// A stray key file that exists (made before this check) is refused too.
	other := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	require.NoError(t, os.WriteFile(filepath.Join(strayDir, "master.key"), []byte(other+"\n"), 0o600))
	_, err = app.LoadKeyringFor(ctx, load(map[string]string{"PERKS_SECRETS_DIR": strayDir}), log, db.Bun)
	require.ErrorIs(t, err, database.ErrMasterKeyMismatch)

	// Another PERKS_MASTER_KEY, development or production.
	for _, env := range []string{"development", "production"} {
		_, err = app.LoadKeyringFor(ctx, load(map[string]string{"PERKS_ENV": env, "PERKS_MASTER_KEY": other}), log, db.Bun)
		require.ErrorIs(t, err, database.ErrMasterKeyMismatch, env)
		require.ErrorContains(t, err, "PERKS_MASTER_KEY", env)
		require.NotContains(t, err.Error(), other, env)
	}

	// Outside the repository a relative secrets directory stays relative
	// (config.Load resolves it against the repository root only): refused,
	// and nothing is created relative to the working directory.
	outside := load(map[string]string{"PERKS_SECRETS_DIR": strayDir})
	outside.SecretsDir = "perks-test-never-created"
	_, err = app.LoadKeyringFor(ctx, outside, log, db.Bun)
	require.ErrorContains(t, err, "PERKS_SECRETS_DIR")
	_, statErr = os.Stat(outside.SecretsDir)
	require.True(t, os.IsNotExist(statErr))

	// The server's own key still works.
	_, err = app.LoadKeyringFor(ctx, server, log, db.Bun)
	require.NoError(t, err)
}
