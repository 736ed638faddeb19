package jobs

import (
	"context"
	"time"

	"github.com/riverqueue/river"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/idempotency"
	"github.com/perkshq/perks/internal/partner"
)

// PruneReplayCacheArgs deletes expired signature replay-cache entries.
type PruneReplayCacheArgs struct{}

// Kind implements river.JobArgs.
func (PruneReplayCacheArgs) Kind() string { return "prune_replay_cache" }

// InsertOpts keeps one pending prune at a time across replicas.
func (PruneReplayCacheArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueMaintenance, MaxAttempts: 3, UniqueOpts: river.UniqueOpts{ByPeriod: time.Minute}}
}

// PruneReplayCacheWorker works PruneReplayCacheArgs.
type PruneReplayCacheWorker struct {
	river.WorkerDefaults[PruneReplayCacheArgs]
	DB  bun.IDB
	Now func() time.Time
}

// Work implements river.Worker.
func (w *PruneReplayCacheWorker) Work(ctx context.Context, _ *river.Job[PruneReplayCacheArgs]) error {
	if _, err := auth.PruneReplayCache(ctx, w.DB, w.Now()); err != nil {
		return err
	}
	// Expired back-end tokens of the request-JWT scheme go with the same
	// sweep: both are short-lived authentication bookkeeping.
	_, err := partner.PruneBackendTokens(ctx, w.DB, w.Now())
	return err
}

// Timeout gives a large backlog more than the default JobTimeout; a crashed
// prune is rescued after it (see RescueStuckJobsAfter).
func (w *PruneReplayCacheWorker) Timeout(*river.Job[PruneReplayCacheArgs]) time.Duration {
	return MaintenanceTimeout
}

// PruneIdempotencyArgs deletes idempotency records past their retention.
type PruneIdempotencyArgs struct{}

// Kind implements river.JobArgs.
func (PruneIdempotencyArgs) Kind() string { return "prune_idempotency_keys" }

// InsertOpts keeps one pending prune at a time across replicas.
func (PruneIdempotencyArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueMaintenance, MaxAttempts: 3, UniqueOpts: river.UniqueOpts{ByPeriod: time.Hour}}
}

// PruneIdempotencyWorker works PruneIdempotencyArgs.
type PruneIdempotencyWorker struct {
	river.WorkerDefaults[PruneIdempotencyArgs]
	DB  bun.IDB
	Now func() time.Time
}

// Work implements river.Worker.
func (w *PruneIdempotencyWorker) Work(ctx context.Context, _ *river.Job[PruneIdempotencyArgs]) error {
	_, err := idempotency.Prune(ctx, w.DB, w.Now())
	return err
}

// Timeout: see PruneReplayCacheWorker.Timeout.
func (w *PruneIdempotencyWorker) Timeout(*river.Job[PruneIdempotencyArgs]) time.Duration {
	return MaintenanceTimeout
}

// MaintenanceTimeout bounds one run of a maintenance job. Each is idempotent
// and periodic, so a run cut short is simply continued by the next one.
const MaintenanceTimeout = 2 * time.Minute

// MaintenancePeriodic returns the periodic jobs of this package.
func MaintenancePeriodic() []*river.PeriodicJob {
	return []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(5*time.Minute), func() (river.JobArgs, *river.InsertOpts) {
			return PruneReplayCacheArgs{}, nil
		}, &river.PeriodicJobOpts{ID: "prune_replay_cache", RunOnStart: true}),
		river.NewPeriodicJob(river.PeriodicInterval(time.Hour), func() (river.JobArgs, *river.InsertOpts) {
			return PruneIdempotencyArgs{}, nil
		}, &river.PeriodicJobOpts{ID: "prune_idempotency_keys", RunOnStart: true}),
	}
}
