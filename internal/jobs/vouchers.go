package jobs

import (
	"context"
	"time"

	"github.com/riverqueue/river"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/voucher"
)

// VoucherExpiryInterval is how often claimed vouchers past their lifetime
// are expired: one is recorded as expired (and refunded when its gift says
// so) at most about this long after its expires_at. Until then it already
// counts as expired everywhere (voucher.EffectiveStatus) and cannot be
// redeemed.
const VoucherExpiryInterval = time.Minute

// ExpireVouchersArgs expires claimed vouchers past their lifetime.
type ExpireVouchersArgs struct{}

// Kind implements river.JobArgs.
func (ExpireVouchersArgs) Kind() string { return "expire_vouchers" }

// InsertOpts keeps one pending expiry run at a time across replicas.
func (ExpireVouchersArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueMaintenance, MaxAttempts: 5, UniqueOpts: river.UniqueOpts{ByPeriod: VoucherExpiryInterval}}
}

// ExpireVouchersWorker works ExpireVouchersArgs: batches of
// voucher.ExpireBatch until none is due.
type ExpireVouchersWorker struct {
	river.WorkerDefaults[ExpireVouchersArgs]
	DB       bun.IDB
	Vouchers *voucher.Service
}

// Work implements river.Worker.
func (w *ExpireVouchersWorker) Work(ctx context.Context, _ *river.Job[ExpireVouchersArgs]) error {
	_, err := w.Vouchers.ExpireDue(ctx, w.DB, voucher.ExpireBatch)
	return err
}

// Timeout: see MaintenanceTimeout.
func (w *ExpireVouchersWorker) Timeout(*river.Job[ExpireVouchersArgs]) time.Duration {
	return MaintenanceTimeout
}

// VoucherPeriodic returns the periodic voucher jobs.
func VoucherPeriodic() []*river.PeriodicJob {
	return []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(VoucherExpiryInterval), func() (river.JobArgs, *river.InsertOpts) {
			return ExpireVouchersArgs{}, nil
		}, &river.PeriodicJobOpts{ID: "expire_vouchers", RunOnStart: true}),
	}
}
