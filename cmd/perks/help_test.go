package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v3"

	"github.com/perkshq/perks/internal/config"
	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/dbtest"
)

// commandPaths lists the path of every command and subcommand of the tree.
func commandPaths(cmds []*cli.Command, prefix []string) [][]string {
	var out [][]string
	for _, c := range cmds {
		p := append(append([]string{}, prefix...), c.Name)
		out = append(out, p)
		out = append(out, commandPaths(c.Commands, p)...)
	}
	return out
}

// schemaSnapshot is what a --help must leave alone: the applied migrations
// and the tables.
func schemaSnapshot(t *testing.T, db *database.DB) string {
	t.Helper()
	var migrations, tables []string
	require.NoError(t, db.Bun.NewRaw("SELECT name FROM bun_migrations ORDER BY name").Scan(t.Context(), &migrations))
	require.NoError(t, db.Bun.NewRaw("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1").Scan(t.Context(), &tables))
	require.NotEmpty(t, migrations)
	return strings.Join(migrations, ",") + "|" + strings.Join(tables, ",")
}

// TestEveryCommandHelpOnlyPrintsHelp: `perks migrate down --help` used to
// roll back every migration. Every command and subcommand of the tree
// answers --help and -h with its usage and exit status 0, and touches no
// database: against a real one the schema is unchanged, and against an
// unreachable one no command tries to connect.
func TestEveryCommandHelpOnlyPrintsHelp(t *testing.T) {
	t.Parallel()
	penv := testEnv{}
	db, url := dbtest.NewDBWithURL(t)
	before := schemaSnapshot(t, db)
	paths := commandPaths(newApp(runner{}).Commands, nil)
	require.Greater(t, len(paths), 30, "the whole tree is walked")
	for _, dbURL := range []string{url, "postgres://perks@127.0.0.1:1/unreachable?sslmode=disable&connect_timeout=1"} {
		penv.set("DATABASE_URL", dbURL)
		for _, path := range append(paths, nil) {
			for _, help := range []string{"--help", "-h"} {
				args := append(append([]string{}, path...), help)
				// Flags before --help parse but do not run anything either.
				if len(path) > 0 && path[len(path)-1] == "down" {
					args = append(append([]string{}, path...), "--to", "0", "--yes", help)
				}
				var out, errOut bytes.Buffer
				err := penv.runIO(context.Background(), args, strings.NewReader("yes\n"), &out, &errOut)
				require.NoError(t, err, "perks %s\nstderr: %s", strings.Join(args, " "), errOut.String())
				require.Contains(t, out.String(), "USAGE:", "perks %s", strings.Join(args, " "))
				require.Contains(t, out.String(), strings.Join(append([]string{"perks"}, path...), " "))
				require.Empty(t, errOut.String(), "perks %s", strings.Join(args, " "))
			}
		}
	}
	require.Equal(t, before, schemaSnapshot(t, db), "no --help changed the database")
}

// TestVersionAndServeHelp: --version prints the build's version; `perks
// serve --help` lists every variable of the configuration.
func TestVersionAndServeHelp(t *testing.T) {
	t.Parallel()
	penv := testEnv{}
	var out bytes.Buffer
	require.NoError(t, penv.runIO(context.Background(), []string{"--version"}, nil, &out, &out))
	require.Equal(t, "perks version "+buildVersion()+"\n", out.String())

	out.Reset()
	require.NoError(t, penv.runIO(context.Background(), []string{"serve", "--help"}, nil, &out, &out))
	var env bytes.Buffer
	config.Usage(&env)
	names := regexp.MustCompile(`(?m)^(PERKS_[A-Z_]+|DATABASE_URL)`).FindAllString(env.String(), -1)
	require.Greater(t, len(names), 20)
	for _, name := range names {
		require.Contains(t, out.String(), name)
	}
}

// TestUsageErrors: unknown commands, flags and stray arguments are usage
// errors (exit status 2) that run nothing.
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	penv := testEnv{}
	for _, args := range [][]string{
		nil,
		{"frobnicate"},
		{"key"},
		{"key", "frobnicate"},
		{"key", "list", "--partner", "acme", "--nope"},
		{"seed", "extra"},
		{"migrate", "down", "--steps", "many"},
		{"migrate", "sideways"},
	} {
		var out bytes.Buffer
		err := penv.runIO(context.Background(), args, nil, &out, &out)
		require.ErrorIs(t, err, errUsage, "perks %s", strings.Join(args, " "))
	}
}
