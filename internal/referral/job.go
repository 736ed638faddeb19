package referral

import (
	"context"
	"fmt"
	"time"

	"github.com/riverqueue/river"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/jobs"
)

// RewardInterval is how often held referrals are settled; the reward
// lots themselves activate with the lots job (ledger.LotsInterval).
const RewardInterval = time.Minute

// RewardBatch is how many referrals one transaction settles.
const RewardBatch = 1000

// RewardArgs is the periodic referral settling job.
type RewardArgs struct{}

// Kind implements river.JobArgs.
func (RewardArgs) Kind() string { return "referral_rewards" }

// InsertOpts keeps one pending run at a time across replicas.
func (RewardArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueMaintenance, MaxAttempts: 5, UniqueOpts: river.UniqueOpts{ByPeriod: RewardInterval}}
}

// RewardWorker runs RewardDueTx in batches, each its own transaction,
// until a batch finds nothing; a crash loses only the batch in flight.
type RewardWorker struct {
	river.WorkerDefaults[RewardArgs]
	DB      *bun.DB
	Service *Service
	Now     func() time.Time // nil: the wall clock
	Batch   int
}

// Work implements river.Worker.
func (w *RewardWorker) Work(ctx context.Context, _ *river.Job[RewardArgs]) error {
	_, err := w.Run(ctx)
	return err
}

// Run settles every due referral and says how many.
func (w *RewardWorker) Run(ctx context.Context) (int, error) {
	now := time.Now()
	if w.Now != nil {
		now = w.Now()
	}
	batch := w.Batch
	if batch <= 0 {
		batch = RewardBatch
	}
	total := 0
	for {
		var n int
		err := w.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			var err error
			n, err = w.Service.RewardDueTx(ctx, tx, now, batch)
			return err
		})
		if err != nil {
			return total, fmt.Errorf("settle referrals: %w", err)
		}
		total += n
		if n < batch {
			return total, nil
		}
	}
}

// Timeout implements river.Worker.
func (w *RewardWorker) Timeout(*river.Job[RewardArgs]) time.Duration { return jobs.MaintenanceTimeout }

// Periodic returns the periodic referral jobs.
func Periodic() []*river.PeriodicJob {
	return []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(RewardInterval), func() (river.JobArgs, *river.InsertOpts) {
			return RewardArgs{}, nil
		}, &river.PeriodicJobOpts{ID: "referral_rewards", RunOnStart: true}),
	}
}
