package database_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/dbtest"
)

// TestMigrateIsIdempotent: migrating an up-to-date database, even from
// several replicas at once, changes nothing; Check tells a database with a
// missing migration from a current one.
func TestMigrateIsIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.NewDB(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	count := func() (n int) {
		require.NoError(t, db.Bun.NewRaw("SELECT count(*) FROM bun_migrations").Scan(ctx, &n))
		return n
	}
	before := count()
	require.Positive(t, before)
	require.NoError(t, database.Check(ctx, db.Bun))

	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = database.Migrate(ctx, db.Bun, log)
		}()
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	require.Equal(t, before, count(), "no migration applied twice")
	require.NoError(t, database.Check(ctx, db.Bun))

	_, err := db.Bun.NewRaw("DELETE FROM bun_migrations WHERE id = (SELECT max(id) FROM bun_migrations)").Exec(ctx)
	require.NoError(t, err)
	require.ErrorIs(t, database.Check(ctx, db.Bun), database.ErrPending)
}

// TestPreparedStatements: QueryRow and Exec run in the caller's transaction
// as statements prepared once per connection.
func TestPreparedStatements(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tx := dbtest.Tx(t)

	const q = "SELECT $1::int + 1 /* prepared-test */"
	for i := range 3 {
		row, err := database.QueryRow(ctx, tx, q, 41+i)
		require.NoError(t, err)
		var n int
		require.NoError(t, row.Scan(&n))
		require.Equal(t, 42+i, n)
	}
	var prepared int
	require.NoError(t, tx.NewRaw("SELECT count(*) FROM pg_prepared_statements WHERE statement = ?", q).Scan(ctx, &prepared))
	require.Equal(t, 1, prepared, "one prepared statement on the connection, reused by every call")

	_, err := database.Exec(ctx, tx, "CREATE TEMP TABLE prepared_probe (n int) ON COMMIT DROP")
	require.NoError(t, err)
	res, err := database.Exec(ctx, tx, "INSERT INTO prepared_probe SELECT generate_series(1, $1::int)", 5)
	require.NoError(t, err)
	affected, err := res.RowsAffected()
	require.NoError(t, err)
	require.EqualValues(t, 5, affected)
	var n int
	require.NoError(t, tx.NewRaw("SELECT count(*) FROM prepared_probe").Scan(ctx, &n))
	require.Equal(t, 5, n, "the statement ran in the caller's transaction")

	// On the pool too.
	row, err := database.QueryRow(ctx, dbtest.Shared(t).Bun, "SELECT $1::text", "pool")
	require.NoError(t, err)
	var s string
	require.NoError(t, row.Scan(&s))
	require.Equal(t, "pool", s)
}

// TestIsUniqueViolation recognises PostgreSQL's unique violation, by
// constraint when one is named.
func TestIsUniqueViolation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tx := dbtest.Tx(t)
	_, err := tx.ExecContext(ctx, "CREATE TEMP TABLE uv (k int CONSTRAINT uv_k_key UNIQUE) ON COMMIT DROP")
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, "INSERT INTO uv VALUES (1)")
	require.NoError(t, err)
	sp, err := tx.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = sp.ExecContext(ctx, "INSERT INTO uv VALUES (1)")
	require.Error(t, err)
	require.NoError(t, sp.Rollback())
	require.True(t, database.IsUniqueViolation(err, ""))
	require.True(t, database.IsUniqueViolation(err, "uv_k_key"))
	require.False(t, database.IsUniqueViolation(err, "other_key"))
	require.False(t, database.IsUniqueViolation(errors.New("duplicate key uv_k_key"), ""), "only PostgreSQL's own error")
	require.False(t, database.IsUniqueViolation(nil, ""))
}
