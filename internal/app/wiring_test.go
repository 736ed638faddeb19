package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/app"
	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/dbtest"
)

// TestEraseCoversEveryUserTable: every table with a user_id column either
// goes with the user by a cascading foreign key to users, or is cleared by
// a step of app.EraseSteps, or is listed below as deliberately kept. A new
// table keyed by user fails here until its erasure is decided.
func TestEraseCoversEveryUserTable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.Shared(t)
	// Kept on purpose: the reason is the test's documentation.
	kept := map[string]string{
		"user_erasures": "the erasure marker outlives the user (refuses old tokens, reported by the export)",
	}
	stepped := map[string]bool{}
	for _, st := range app.EraseSteps() {
		require.NotEmpty(t, st.Name)
		require.NotEmpty(t, st.SQL)
		if st.Table != "" {
			stepped[st.Table] = true
		}
	}
	var tables []struct {
		Table    string `bun:"table_name"`
		Cascaded bool   `bun:"cascaded"`
	}
	require.NoError(t, db.Bun.NewRaw(`
		SELECT c.table_name, EXISTS (
			SELECT 1 FROM pg_constraint con
			JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = ANY (con.conkey)
			WHERE con.conrelid = format('%I.%I', c.table_schema, c.table_name)::regclass
			  AND con.contype = 'f' AND con.confrelid = 'users'::regclass
			  AND con.confdeltype = 'c' AND a.attname = 'user_id') AS cascaded
		FROM information_schema.columns c
		JOIN information_schema.tables t USING (table_schema, table_name)
		WHERE c.table_schema = 'public' AND c.column_name = 'user_id' AND t.table_type = 'BASE TABLE'
		ORDER BY 1`).Scan(ctx, &tables))
	require.NotEmpty(t, tables)
	for _, tb := range tables {
		_, isKept := kept[tb.Table]
		require.True(t, tb.Cascaded || stepped[tb.Table] || isKept,
			"table %s has a user_id column but neither cascades from users nor has a step in app.EraseSteps", tb.Table)
		require.False(t, tb.Cascaded && stepped[tb.Table], "table %s cascades and also has an erase step", tb.Table)
	}
}

// TestEveryPeriodicJobIsWorked: the composition root's lists agree. With
// workers on, River runs every periodic job at start (RunOnStart); each
// completes only if its kind has a worker in app's list (River refuses to
// insert a kind it has no worker for).
func TestEveryPeriodicJobIsWorked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := apptest.New(t, apptest.Options{Workers: true})
	want := len(app.Periodic(env.App.Config))
	require.Positive(t, want)
	var kinds []string
	require.Eventually(t, func() bool {
		kinds = nil
		err := env.DB.Bun.NewRaw("SELECT DISTINCT kind FROM river_job WHERE state = 'completed' ORDER BY 1").Scan(ctx, &kinds)
		return err == nil && len(kinds) == want
	}, 30*time.Second, 50*time.Millisecond, "completed periodic kinds: %v", kinds)
}
