package database_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"

	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/dbtest"
)

// TestRiverSchemaMigratesForward: a database migrated by a release that
// linked River v0.41 (our River baseline migration applied, River schema
// version 7, and nothing newer) reaches the linked River's latest schema
// version through Migrate, and River's own validation then finds no version
// missing. This is what fails when a River upgrade's new schema versions are
// generated into the already-applied baseline migration instead of a new one
// (see migrations/internal/rivergen).
func TestRiverSchemaMigratesForward(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	db := dbtest.NewDB(t)
	river, err := rivermigrate.New(riverpgxv5.New(db.Pool), nil)
	require.NoError(t, err)
	all := river.AllVersions()
	latest := all[len(all)-1].Version
	applied := func() int {
		t.Helper()
		vs, err := river.ExistingVersions(ctx)
		require.NoError(t, err)
		nums := make([]int, len(vs))
		for i, v := range vs {
			nums[i] = v.Version
		}
		require.NotEmpty(t, nums)
		return slices.Max(nums)
	}
	valid := func() {
		t.Helper()
		res, err := river.Validate(ctx, nil)
		require.NoError(t, err)
		require.True(t, res.OK, "river validate: %v", res.Messages)
	}

	require.Equal(t, latest, applied(), "a fresh database has River's latest schema")
	valid()

	// Back to what a database migrated before the upgrade has.
	const baseline, baselineRiverVersion = "20260101000000", 7
	target := database.RollbackTarget{To: baseline}
	plan, err := database.RollbackPlan(ctx, db.Bun, target)
	require.NoError(t, err)
	require.NoError(t, database.RollbackTo(ctx, db.Bun, log, target, plan))
	require.Equal(t, baselineRiverVersion, applied(), "the baseline migration is the schema released with River v0.41")

	require.NoError(t, database.Migrate(ctx, db.Bun, log))
	require.Equal(t, latest, applied())
	valid()
	require.NoError(t, database.Check(ctx, db.Bun))
}
