package auth

import (
	"context"
	"time"

	"github.com/riverqueue/river"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/jobs"
	"github.com/perkshq/perks/internal/partner"
)

// PruneReplayCacheArgs deletes expired signature replay-cache entries.
type PruneReplayCacheArgs struct{}

// Kind implements river.JobArgs.
func (PruneReplayCacheArgs) Kind() string { return "prune_replay_cache" }

// InsertOpts keeps one pending prune at a time across replicas.
func (PruneReplayCacheArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueMaintenance, MaxAttempts: 3, UniqueOpts: river.UniqueOpts{ByPeriod: time.Minute}}
}

// PruneReplayCacheWorker works PruneReplayCacheArgs.
type PruneReplayCacheWorker struct {
	river.WorkerDefaults[PruneReplayCacheArgs]
	DB  bun.IDB
	Now func() time.Time
}

// Work implements river.Worker.
func (w *PruneReplayCacheWorker) Work(ctx context.Context, _ *river.Job[PruneReplayCacheArgs]) error {
	if _, err := PruneReplayCache(ctx, w.DB, w.Now()); err != nil {
		return err
	}
	// Expired back-end tokens of the request-JWT scheme go with the same
	// sweep: both are short-lived authentication bookkeeping.
	_, err := partner.PruneBackendTokens(ctx, w.DB, w.Now())
	return err
}

// Timeout gives a large backlog more than the default JobTimeout; a crashed
// prune is rescued after it (see jobs.RescueStuckJobsAfter).
func (w *PruneReplayCacheWorker) Timeout(*river.Job[PruneReplayCacheArgs]) time.Duration {
	return jobs.MaintenanceTimeout
}

// Periodic returns this package's periodic jobs.
func Periodic() []*river.PeriodicJob {
	return []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(5*time.Minute), func() (river.JobArgs, *river.InsertOpts) {
			return PruneReplayCacheArgs{}, nil
		}, &river.PeriodicJobOpts{ID: "prune_replay_cache", RunOnStart: true}),
	}
}
