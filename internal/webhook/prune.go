package webhook

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/jobs"
)

// pruneBatch bounds each delete so pruning never holds long locks.
const pruneBatch = 5000

// PruneDeliveries deletes finished deliveries (and their attempts) whose
// event and last activity are older than retention. Pending deliveries stay
// whatever their age: their job still owns them. It returns how many
// deliveries it deleted.
func (s *Service) PruneDeliveries(ctx context.Context, db bun.IDB, now time.Time, retention time.Duration) (int64, error) {
	cutoff := now.Add(-retention)
	var partners []uuid.UUID
	if err := db.NewRaw("SELECT id FROM partners ORDER BY id").Scan(ctx, &partners); err != nil {
		return 0, fmt.Errorf("list partners: %w", err)
	}
	var total int64
	// Partner by partner, so every delete leads with partner_id like every
	// other query, and uses the (partner_id, created_at) index.
	for _, p := range partners {
		for {
			res, err := db.NewRaw(`DELETE FROM webhook_deliveries WHERE partner_id = ? AND id IN (
					SELECT id FROM webhook_deliveries
					WHERE partner_id = ? AND created_at < ? AND updated_at < ? AND status <> ?
					LIMIT ?)`, p, p, cutoff, cutoff, StatusPending, pruneBatch).Exec(ctx)
			if err != nil {
				return total, fmt.Errorf("prune webhook deliveries of partner %s: %w", p, err)
			}
			n, _ := res.RowsAffected()
			total += n
			if n < pruneBatch {
				break
			}
		}
	}
	return total, nil
}

// PruneArgs is the periodic delivery-log cleanup.
type PruneArgs struct{}

// Kind implements river.JobArgs.
func (PruneArgs) Kind() string { return "webhook_prune_deliveries" }

// InsertOpts keeps one prune per hour across replicas.
func (PruneArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueMaintenance, MaxAttempts: 3, UniqueOpts: river.UniqueOpts{ByPeriod: time.Hour}}
}

// PruneWorker works PruneArgs.
type PruneWorker struct {
	river.WorkerDefaults[PruneArgs]
	DB        bun.IDB
	Webhooks  *Service
	Retention time.Duration
}

// Work implements river.Worker.
func (w *PruneWorker) Work(ctx context.Context, job *river.Job[PruneArgs]) error {
	n, err := w.Webhooks.PruneDeliveries(ctx, w.DB, w.Webhooks.now(), w.Retention)
	if n > 0 {
		w.Webhooks.log().Info("pruned webhook deliveries", "job_id", job.ID, "deleted", n, "retention", w.Retention.String())
	}
	return err
}

// Periodic returns this package's periodic jobs.
func Periodic() []*river.PeriodicJob {
	return []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(time.Hour), func() (river.JobArgs, *river.InsertOpts) {
			return PruneArgs{}, nil
		}, &river.PeriodicJobOpts{ID: "webhook_prune_deliveries", RunOnStart: true}),
	}
}
