package ranking

import (
	"context"
	"time"

	"github.com/riverqueue/river"
	"github.com/uptrace/bun"
)

// RefreshArgs brings the leaderboards of the replica that works it up to
// date. Boards now keep themselves up to date (see the package comment), so
// nothing schedules it any more; the worker stays registered for jobs
// inserted by earlier versions.
type RefreshArgs struct{}

// Kind implements river.JobArgs.
func (RefreshArgs) Kind() string { return "refresh_leaderboard" }

// InsertOpts keeps one pending refresh at a time across replicas.
func (RefreshArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: "maintenance", MaxAttempts: 3, UniqueOpts: river.UniqueOpts{ByPeriod: 15 * time.Second}}
}

// RefreshWorker works RefreshArgs.
type RefreshWorker struct {
	river.WorkerDefaults[RefreshArgs]
	DB      bun.IDB
	Service *Service
}

// Work implements river.Worker.
func (w *RefreshWorker) Work(ctx context.Context, _ *river.Job[RefreshArgs]) error {
	return w.Service.Refresh(ctx, w.DB)
}

// Timeout allows for large partners.
func (w *RefreshWorker) Timeout(*river.Job[RefreshArgs]) time.Duration { return 10 * time.Minute }
