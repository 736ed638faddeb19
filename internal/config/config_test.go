package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLoadDefaultsAndOverrides(t *testing.T) {
	t.Parallel()
	c, err := Load(func(string) string { return "" })
	require.NoError(t, err)
	require.Equal(t, ":4000", c.Addr)
	require.Equal(t, EnvDevelopment, c.Env)
	require.Equal(t, int64(1<<20), c.MaxBodyBytes)
	require.Equal(t, 300*time.Second, c.SignatureSkew)
	require.True(t, c.Development())

	env := map[string]string{"PERKS_ADDR": ":9", "PERKS_ENV": "production", "PERKS_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.1"}
	c, err = Load(func(k string) string { return env[k] })
	require.NoError(t, err)
	require.Equal(t, ":9", c.Addr)
	require.False(t, c.Development())
	require.Len(t, c.TrustedProxies, 2)
}

func TestLoadRejectsBadValues(t *testing.T) {
	t.Parallel()
	for k, v := range map[string]string{
		"PERKS_ENV": "staging", "PERKS_MAX_BODY_BYTES": "-1", "PERKS_SHUTDOWN_TIMEOUT": "soon",
		"PERKS_WORKERS": "maybe", "PERKS_TRUSTED_PROXIES": "not-an-ip",
	} {
		_, err := Load(func(name string) string {
			if name == k {
				return v
			}
			return ""
		})
		require.ErrorContains(t, err, k)
	}
}

func TestUsageListsEveryVariable(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	Usage(&b)
	md := MarkdownTable()
	for _, v := range vars {
		require.Contains(t, b.String(), v.name)
		require.Contains(t, md, "`"+v.name+"`")
	}
}

func TestREADMEListsEveryVariable(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	for _, v := range vars {
		require.True(t, strings.Contains(string(b), "`"+v.name+"`"), "README's configuration table lacks %s", v.name)
	}
}

// TestRelativeSecretsDirIsTheRepository: the default `.secrets` is the
// repository's, wherever under it the command runs (here, a package
// directory), so the CLI and `make run` share one development key.
func TestRelativeSecretsDirIsTheRepository(t *testing.T) {
	t.Parallel()
	root, ok := RepoRoot()
	require.True(t, ok)
	require.FileExists(t, filepath.Join(root, "go.mod"))
	c, err := Load(func(string) string { return "" })
	require.NoError(t, err)
	require.Equal(t, filepath.Join(root, ".secrets"), c.SecretsDir)
	wd, err := os.Getwd()
	require.NoError(t, err)
	require.NotEqual(t, filepath.Join(wd, ".secrets"), c.SecretsDir, "not the working directory")

	abs := t.TempDir()
	c, err = Load(func(k string) string {
		if k == "PERKS_SECRETS_DIR" {
			return abs
		}
		return ""
	})
	require.NoError(t, err)
	require.Equal(t, abs, c.SecretsDir)
}
