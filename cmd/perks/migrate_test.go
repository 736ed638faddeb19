package main

import (
	"bytes"
	"context"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/dbtest"
)

// terminal is a stdin that says it is an interactive terminal.
type terminal struct{ io.Reader }

func (terminal) IsTerminal() bool { return true }

// TestMigrateDownNeedsTargetConfirmationAndOverride: `perks migrate down`
// refuses without a target, without a confirmation, in production without
// --allow-production, and for an unknown version, changing nothing each
// time; confirmed, it rolls back exactly to the target.
func TestMigrateDownNeedsTargetConfirmationAndOverride(t *testing.T) {
	t.Parallel()
	penv := testEnv{}
	db, url := dbtest.NewDBWithURL(t)
	penv.set("DATABASE_URL", url)
	penv.set("PERKS_ENV", "development")
	applied := func() []string {
		t.Helper()
		ms, err := database.Statuses(t.Context(), db.Bun)
		require.NoError(t, err)
		var out []string
		for _, m := range ms.Applied() {
			out = append(out, m.Name)
		}
		slices.Sort(out) // oldest first
		return out
	}
	all := applied()
	require.Greater(t, len(all), 4)
	perks := func(stdin io.Reader, args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := penv.runIO(context.Background(), append([]string{"migrate", "down"}, args...), stdin, &out, &errOut)
		return out.String() + errOut.String(), err
	}
	notTTY := strings.NewReader("yes\n")
	target := all[len(all)-3]

	for _, tc := range []struct {
		name   string
		env    string
		stdin  io.Reader
		args   []string
		errIs  error
		errHas string
	}{
		{name: "no target", stdin: notTTY, args: []string{"--yes"}, errIs: errUsage, errHas: "without a target"},
		{name: "zero steps", stdin: notTTY, args: []string{"--steps", "0", "--yes"}, errIs: errUsage},
		{name: "empty version", stdin: notTTY, args: []string{"--to", "", "--yes"}, errIs: errUsage},
		{name: "both", stdin: notTTY, args: []string{"--to", target, "--steps", "1", "--yes"}, errHas: "not both"},
		{name: "unknown version", stdin: notTTY, args: []string{"--to", "20260108000001", "--yes"}, errHas: "no migration has version 20260108000001"},
		{name: "too many steps", stdin: notTTY, args: []string{"--steps", "1000", "--yes"}, errHas: "only"},
		{name: "no confirmation, not a terminal", stdin: notTTY, args: []string{"--to", target}, errHas: "pass --yes"},
		{name: "declined at the prompt", stdin: terminal{strings.NewReader("no\n")}, args: []string{"--to", target}, errIs: errNotConfirmed},
		{name: "prompt closed", stdin: terminal{strings.NewReader("")}, args: []string{"--steps", "1"}, errIs: errNotConfirmed},
		{name: "production", env: "production", stdin: notTTY, args: []string{"--to", target, "--yes"}, errHas: "--allow-production"},
	} {
		if tc.env != "" {
			penv.set("PERKS_ENV", tc.env)
		}
		out, err := perks(tc.stdin, tc.args...)
		require.Error(t, err, tc.name)
		if tc.errIs != nil {
			require.ErrorIs(t, err, tc.errIs, tc.name)
		}
		require.ErrorContains(t, err, tc.errHas, tc.name)
		require.Equal(t, all, applied(), "%s: nothing rolled back\n%s", tc.name, out)
		penv.set("PERKS_ENV", "development")
	}

	// Confirmed with --yes: exactly the migrations after the target.
	out, err := perks(notTTY, "--to", target, "--yes")
	require.NoError(t, err, out)
	require.Equal(t, all[:len(all)-2], applied())
	require.Contains(t, out, all[len(all)-1])
	require.Contains(t, out, "rolled back 2 migration(s)")
	out, err = perks(notTTY, "--to", target, "--yes")
	require.NoError(t, err)
	require.Contains(t, out, "nothing to roll back")

	// Confirmed at the prompt, by steps.
	out, err = perks(terminal{strings.NewReader("yes\n")}, "--steps", "1")
	require.NoError(t, err, out)
	require.Contains(t, out, `type "yes"`)
	require.Equal(t, all[:len(all)-3], applied())

	// Production with the override.
	penv.set("PERKS_ENV", "production")
	out, err = perks(notTTY, "--steps", "1", "--yes", "--allow-production")
	require.NoError(t, err, out)
	require.Equal(t, all[:len(all)-4], applied())
	penv.set("PERKS_ENV", "development")

	// The down scripts leave a schema the up scripts re-apply.
	var buf bytes.Buffer
	require.NoError(t, penv.runIO(context.Background(), []string{"migrate"}, nil, &buf, &buf), buf.String())
	require.Equal(t, all, applied())
}
