package jobs_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/jobs"
)

type pingArgs struct{ N int }

func (pingArgs) Kind() string { return "test_ping" }

type pingWorker struct {
	river.WorkerDefaults[pingArgs]
	done chan int
}

func (w *pingWorker) Work(_ context.Context, j *river.Job[pingArgs]) error {
	w.done <- j.Args.N
	return nil
}

// TestInsertTxFollowsTheTransaction: a job inserted in a transaction that
// rolls back never exists; one that commits is worked.
func TestInsertTxFollowsTheTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.NewDB(t)
	w := &pingWorker{done: make(chan int, 4)}
	workers := river.NewWorkers()
	river.AddWorker(workers, w)
	c, err := jobs.New(db, workers, jobs.Options{Work: true, Log: slog.New(slog.DiscardHandler), FetchPollInterval: 20 * time.Millisecond})
	require.NoError(t, err)

	errRollback := errors.New("roll back")
	err = db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		require.NoError(t, c.InsertTx(ctx, tx, pingArgs{N: 1}, nil))
		return errRollback
	})
	require.ErrorIs(t, err, errRollback)
	var n int
	require.NoError(t, db.Bun.NewRaw("SELECT count(*) FROM river_job").Scan(ctx, &n))
	require.Zero(t, n, "the rolled-back job does not exist")

	require.NoError(t, db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		return c.InsertTx(ctx, tx, pingArgs{N: 2}, nil)
	}))
	require.NoError(t, c.Start(ctx))
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Stop(sctx)
	})
	select {
	case got := <-w.done:
		require.Equal(t, 2, got)
	case <-time.After(10 * time.Second):
		t.Fatal("the committed job was not worked")
	}
	select {
	case got := <-w.done:
		t.Fatalf("unexpected job %d", got)
	case <-time.After(200 * time.Millisecond):
	}
}
