package app_test

import (
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
