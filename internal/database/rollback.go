package database

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"

	"github.com/perkshq/perks/migrations"
)

// RollbackTarget says how far a rollback goes. Exactly one of To and Steps
// is set: there is no default, because bun's own rollback (the last applied
// group) is every migration on a database migrated in one go.
type RollbackTarget struct {
	// To is the version (the migration's timestamp, 20260108000000) that
	// stays applied: every applied migration after it is rolled back. "0"
	// rolls back everything.
	To string
	// Steps rolls back this many of the most recent applied migrations.
	Steps int
}

// ErrNoTarget is returned by RollbackPlan for a target naming neither a
// version nor a number of steps.
var ErrNoTarget = errors.New("a rollback needs a target: a version to roll back to, or a number of steps")

func (t RollbackTarget) validate() error {
	switch {
	case t.To != "" && t.Steps != 0:
		return errors.New("give a version to roll back to or a number of steps, not both")
	case t.To == "" && t.Steps == 0:
		return ErrNoTarget
	case t.Steps < 0:
		return errors.New("the number of steps must be positive")
	case t.To != "":
		if _, err := strconv.ParseUint(t.To, 10, 64); err != nil {
			return fmt.Errorf("version %q: want a migration timestamp such as 20260108000000 (see `perks migrate status`), or 0", t.To)
		}
	}
	return nil
}

// RollbackPlan returns the migrations a rollback to target would revert,
// newest first, without changing anything.
func RollbackPlan(ctx context.Context, db *bun.DB, target RollbackTarget) ([]migrate.Migration, error) {
	if err := target.validate(); err != nil {
		return nil, err
	}
	m := migrator(db)
	if err := m.Init(ctx); err != nil {
		return nil, fmt.Errorf("init migrations: %w", err)
	}
	return plan(ctx, m, target)
}

func plan(ctx context.Context, m *migrate.Migrator, target RollbackTarget) ([]migrate.Migration, error) {
	ms, err := m.MigrationsWithStatus(ctx)
	if err != nil {
		return nil, fmt.Errorf("migration status: %w", err)
	}
	applied := ms.Applied() // sorted by name, oldest first
	slices.SortFunc(applied, func(a, b migrate.Migration) int { return -compareNames(a.Name, b.Name) })
	if target.Steps > 0 {
		if target.Steps > len(applied) {
			return nil, fmt.Errorf("only %d migrations are applied; --steps %d would go past the first", len(applied), target.Steps)
		}
		return applied[:target.Steps], nil
	}
	if target.To != "0" {
		known := slices.ContainsFunc(ms, func(mg migrate.Migration) bool { return mg.Name == target.To })
		if !known {
			return nil, fmt.Errorf("no migration has version %s (see `perks migrate status`)", target.To)
		}
	}
	var out []migrate.Migration
	for _, mg := range applied {
		if target.To == "0" || compareNames(mg.Name, target.To) > 0 {
			out = append(out, mg)
		}
	}
	return out, nil
}

// compareNames orders migration names (timestamps) numerically, so a
// shorter name cannot sort after a later one.
func compareNames(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// RollbackTo reverts, newest first, the migrations RollbackPlan listed as
// expect, under the migration lock. If the applied set changed since the
// plan was shown (another operator, a replica migrating), it refuses and
// changes nothing. Each migration is marked unapplied as soon as its down
// script succeeded, so a failure stops with the database at a known version.
func RollbackTo(ctx context.Context, db *bun.DB, log *slog.Logger, target RollbackTarget, expect []migrate.Migration) error {
	if err := target.validate(); err != nil {
		return err
	}
	unlock, err := advisoryLock(ctx, db)
	if err != nil {
		return err
	}
	defer unlock()
	m := migrator(db)
	if err := m.Init(ctx); err != nil {
		return fmt.Errorf("init migrations: %w", err)
	}
	todo, err := plan(ctx, m, target)
	if err != nil {
		return err
	}
	names := func(ms []migrate.Migration) []string {
		out := make([]string, len(ms))
		for i, mg := range ms {
			out[i] = mg.Name
		}
		return out
	}
	if !slices.Equal(names(todo), names(expect)) {
		return errors.New("the applied migrations changed since the rollback was planned; nothing was rolled back, run it again")
	}
	// The discovered set carries the down scripts; the status rows do not
	// necessarily (a migration applied by an older binary).
	downs := map[string]migrate.Migration{}
	for _, mg := range migrations.Set.Sorted() {
		downs[mg.Name] = mg
	}
	for i := range todo {
		mg := &todo[i]
		src, ok := downs[mg.Name]
		if !ok {
			return fmt.Errorf("migration %s is applied but unknown to this binary: roll it back with the binary that applied it", mg.Name)
		}
		if src.Down != nil {
			// bun >= 1.3 runs a migration function through its migrator
			// (for the before/after hooks and template data it holds).
			if err := src.Down(ctx, m, &src); err != nil {
				return fmt.Errorf("roll back %s: %w", mg, err)
			}
		}
		if err := m.MarkUnapplied(ctx, mg); err != nil {
			return fmt.Errorf("mark %s unapplied: %w", mg, err)
		}
		log.Info("rolled back", "migration", mg.String())
	}
	return nil
}
