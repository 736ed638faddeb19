package main

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// testEnv is a test's whole environment for the commands it runs: nothing
// comes from the process environment and nothing is written to it, so CLI
// tests run in parallel (t.Parallel) with their own DATABASE_URL,
// PERKS_SECRETS_DIR, etc.
type testEnv map[string]string

func (e testEnv) lookup(k string) (string, bool) {
	v, ok := e[k]
	return v, ok
}

// run runs one command line with no standard input.
func (e testEnv) run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return e.runIO(ctx, args, nil, stdout, stderr)
}

// runIO runs one command line with stdin as its standard input.
func (e testEnv) runIO(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return runner{stdin: stdin, stdout: stdout, stderr: stderr, lookupEnv: e.lookup}.run(ctx, args...)
}

func (e testEnv) set(k, v string) { e[k] = v }

// TestCommandsReadTheInjectedEnvironment: flags with environment sources,
// the export's secret variable and the configuration come from the
// runner's environment, never the process's.
func TestCommandsReadTheInjectedEnvironment(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var out bytes.Buffer
	err := testEnv{}.run(ctx, []string{"export"}, &out, &out)
	require.ErrorContains(t, err, "--partner is required")
	err = testEnv{"PERKS_PARTNER": "acme"}.run(ctx, []string{"export"}, &out, &out)
	require.ErrorContains(t, err, "set the partner's HMAC secret in $PERKS_PARTNER_SECRET")
	err = testEnv{"PERKS_PARTNER": "acme", "MY_SECRET": "s", "PERKS_URL": "http://127.0.0.1:1"}.run(ctx,
		[]string{"export", "--secret-env", "MY_SECRET", "--out", filepath.Join(t.TempDir(), "u.ndjson")}, &out, &out)
	require.ErrorContains(t, err, "127.0.0.1:1", "the secret was found and PERKS_URL used")
	err = testEnv{}.run(ctx, []string{"migrate", "status"}, &out, &out)
	require.ErrorContains(t, err, "DATABASE_URL is unset")
	err = testEnv{"DATABASE_URL": "postgres://perks@127.0.0.1:1/x?sslmode=disable&connect_timeout=1"}.run(ctx, []string{"migrate", "status"}, &out, &out)
	require.Error(t, err)
	require.NotContains(t, err.Error(), "DATABASE_URL is unset")
}
