package voucher

import (
	"context"
	"time"

	"github.com/riverqueue/river"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/jobs"
)

// ExpiryInterval is how often claimed vouchers past their lifetime are
// expired: one is recorded as expired (and refunded when its gift says so)
// at most about this long after its expires_at. Until then it already counts
// as expired everywhere (EffectiveStatus) and cannot be redeemed.
const ExpiryInterval = time.Minute

// ExpireArgs expires claimed vouchers past their lifetime. The kind keeps
// its historical name: rows already queued under it must still be worked.
type ExpireArgs struct{}

// Kind implements river.JobArgs.
func (ExpireArgs) Kind() string { return "expire_vouchers" }

// InsertOpts keeps one pending expiry run at a time across replicas.
func (ExpireArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueMaintenance, MaxAttempts: 5, UniqueOpts: river.UniqueOpts{ByPeriod: ExpiryInterval}}
}

// ExpireWorker works ExpireArgs: batches of ExpireBatch until none is due.
type ExpireWorker struct {
	river.WorkerDefaults[ExpireArgs]
	DB       bun.IDB
	Vouchers *Service
}

// Work implements river.Worker.
func (w *ExpireWorker) Work(ctx context.Context, _ *river.Job[ExpireArgs]) error {
	_, err := w.Vouchers.ExpireDue(ctx, w.DB, ExpireBatch)
	return err
}

// Timeout: see jobs.MaintenanceTimeout.
func (w *ExpireWorker) Timeout(*river.Job[ExpireArgs]) time.Duration {
	return jobs.MaintenanceTimeout
}

// Periodic returns the periodic voucher jobs.
func Periodic() []*river.PeriodicJob {
	return []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(ExpiryInterval), func() (river.JobArgs, *river.InsertOpts) {
			return ExpireArgs{}, nil
		}, &river.PeriodicJobOpts{ID: "expire_vouchers", RunOnStart: true}),
	}
}
