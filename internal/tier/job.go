package tier

import (
	"context"
	"time"

	"github.com/riverqueue/river"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/jobs"
)

// ReviewInterval is how often due tier reviews run: a downgrade happens at
// most this long after its period end (plus grace).
const ReviewInterval = 10 * time.Minute

// ReviewBatch is how many users one transaction reviews.
const ReviewBatch = 1000

// ReviewArgs reviews the tiers that are due (periodEnd and immediate
// downgrades).
type ReviewArgs struct{}

// Kind implements river.JobArgs.
func (ReviewArgs) Kind() string { return "tier_review" }

// InsertOpts keeps one pending run at a time across replicas.
func (ReviewArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueMaintenance, MaxAttempts: 5, UniqueOpts: river.UniqueOpts{ByPeriod: ReviewInterval}}
}

// ReviewWorker works ReviewArgs: ReviewDueTx in batches, each its own
// transaction, until a batch finds nothing due. Due is a state of the rows
// (review_at), not of the job: a crash loses the batch in flight only, and
// the next run resumes; a reviewed row's next review is after now, so the
// pass ends and never reviews a row twice.
type ReviewWorker struct {
	river.WorkerDefaults[ReviewArgs]
	DB      bun.IDB
	Service *Service
	Now     func() time.Time // nil: the wall clock
	Batch   int
}

// Work implements river.Worker.
func (w *ReviewWorker) Work(ctx context.Context, _ *river.Job[ReviewArgs]) error {
	_, _, err := w.Run(ctx)
	return err
}

// Run does one full pass and says how many users it reviewed and moved.
func (w *ReviewWorker) Run(ctx context.Context) (reviewed, changed int, err error) {
	now := time.Now()
	if w.Now != nil {
		now = w.Now()
	}
	batch := w.Batch
	if batch <= 0 {
		batch = ReviewBatch
	}
	for {
		var n int
		var c []Change
		err := w.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			var err error
			n, c, err = w.Service.ReviewDueTx(ctx, tx, now, batch)
			return err
		})
		if err != nil {
			return reviewed, changed, err
		}
		reviewed += n
		changed += len(c)
		if n == 0 {
			return reviewed, changed, nil
		}
	}
}

// Timeout: see jobs.MaintenanceTimeout.
func (w *ReviewWorker) Timeout(*river.Job[ReviewArgs]) time.Duration {
	return jobs.MaintenanceTimeout
}

// Periodic returns the periodic tier jobs.
func Periodic() []*river.PeriodicJob {
	return []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(ReviewInterval), func() (river.JobArgs, *river.InsertOpts) {
			return ReviewArgs{}, nil
		}, &river.PeriodicJobOpts{ID: "tier_review", RunOnStart: true}),
	}
}
