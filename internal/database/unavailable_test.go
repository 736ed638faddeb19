package database_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/dbtest"
)

// TestUnavailable tells an unreachable database from a failed statement,
// with real errors: a connection to a closed port, a connection the server
// terminated, a unique violation, a syntax error and a deadline.
func TestUnavailable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	// A port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	_, err = database.Open(ctx, "postgres://postgres@"+addr+"/perks?sslmode=disable&connect_timeout=2", 2)
	require.Error(t, err)
	require.True(t, database.Unavailable(err), "closed port: %v", err)

	db := dbtest.NewDB(t)
	conn, err := db.Pool.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	var pid int
	require.NoError(t, conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid))
	_, err = db.Pool.Exec(ctx, "SELECT pg_terminate_backend($1)", pid)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "SELECT 1")
	require.Error(t, err)
	require.True(t, database.Unavailable(err), "terminated connection: %v", err)

	_, err = db.Bun.ExecContext(ctx, "CREATE TEMP TABLE u (id int PRIMARY KEY); INSERT INTO u VALUES (1), (1)")
	require.Error(t, err)
	require.False(t, database.Unavailable(err), "unique violation: %v", err)
	_, err = db.Bun.ExecContext(ctx, "SELEC 1")
	require.False(t, database.Unavailable(err), "syntax error: %v", err)

	dctx, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	_, err = db.Bun.ExecContext(dctx, "SELECT pg_sleep(1)")
	require.Error(t, err)
	require.False(t, database.Unavailable(err), "deadline: %v", err)

	require.False(t, database.Unavailable(nil))
	require.False(t, database.Unavailable(fmt.Errorf("wrapped: %w", errors.New("boom"))))
}
