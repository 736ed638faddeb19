package idempotency

import (
	"context"
	"time"

	"github.com/riverqueue/river"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/jobs"
)

// PruneArgs deletes idempotency records past their retention. The kind
// keeps its historical name: rows already queued under it must still be
// worked.
type PruneArgs struct{}

// Kind implements river.JobArgs.
func (PruneArgs) Kind() string { return "prune_idempotency_keys" }

// InsertOpts keeps one pending prune at a time across replicas.
func (PruneArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueMaintenance, MaxAttempts: 3, UniqueOpts: river.UniqueOpts{ByPeriod: time.Hour}}
}

// PruneWorker works PruneArgs.
type PruneWorker struct {
	river.WorkerDefaults[PruneArgs]
	DB  bun.IDB
	Now func() time.Time
}

// Work implements river.Worker.
func (w *PruneWorker) Work(ctx context.Context, _ *river.Job[PruneArgs]) error {
	_, err := Prune(ctx, w.DB, w.Now())
	return err
}

// Timeout: see jobs.MaintenanceTimeout.
func (w *PruneWorker) Timeout(*river.Job[PruneArgs]) time.Duration {
	return jobs.MaintenanceTimeout
}

// Periodic returns this package's periodic jobs.
func Periodic() []*river.PeriodicJob {
	return []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(time.Hour), func() (river.JobArgs, *river.InsertOpts) {
			return PruneArgs{}, nil
		}, &river.PeriodicJobOpts{ID: "prune_idempotency_keys", RunOnStart: true}),
	}
}
