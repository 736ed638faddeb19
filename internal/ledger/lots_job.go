package ledger

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/event"
	"github.com/perkshq/perks/internal/jobs"
)

// LotsInterval is how often due lots are activated and expired: pending
// points become spendable, and expired points stop being, at most about
// this long after their date. Until the job runs, a pending lot stays
// unspendable (it is not in the balance) and an expired lot stays
// spendable: a burn in that minute may still draw from it, which the user
// cannot tell from spending it just before.
const LotsInterval = time.Minute

// LotsBatch is how many lots one transaction activates or expires: small
// enough that a batch holds its users' balance locks briefly, large enough
// that a million due lots take a few hundred transactions.
const LotsBatch = 1000

// LotsArgs activates due pending lots and expires due lots.
type LotsArgs struct{}

// Kind implements river.JobArgs.
func (LotsArgs) Kind() string { return "ledger_lots" }

// InsertOpts keeps one pending run at a time across replicas.
func (LotsArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueMaintenance, MaxAttempts: 5, UniqueOpts: river.UniqueOpts{ByPeriod: LotsInterval}}
}

// LotsWorker works LotsArgs: ActivateDueTx, then ExpireDueTx (with its
// points.expired events, through Events), each in
// batches of Batch (LotsBatch when zero) until nothing is due, each batch
// its own transaction. A crash loses at most the batch in flight (rolled
// back) and the next run resumes where it stopped: due is a state of the
// lots, not of the job. Activation comes first so that a lot that became
// available and expired between two runs is activated, then expired.
type LotsWorker struct {
	river.WorkerDefaults[LotsArgs]
	DB    bun.IDB
	Now   func() time.Time // nil: the wall clock
	Batch int
	// Events records points.activated and points.expired (through the
	// webhook outbox in the app); nil stores the events only.
	Events *event.Recorder
	// Activated, when set, is called in each activation batch's
	// transaction with the users whose pending points became available,
	// per partner: the app re-places them on the partner's tiers
	// (tier.EvaluateTx), since activated points start to qualify.
	Activated func(ctx context.Context, tx bun.Tx, partnerID uuid.UUID, userIDs []uuid.UUID) error
}

// Work implements river.Worker.
func (w *LotsWorker) Work(ctx context.Context, _ *river.Job[LotsArgs]) error {
	_, _, err := w.Run(ctx)
	return err
}

// Run does one full pass and says how many lots it activated and expired.
// The clock is read once: lots falling due during the pass wait for the
// next run, so the pass ends even under a steady stream of earns.
func (w *LotsWorker) Run(ctx context.Context) (activated, expired int, err error) {
	now := time.Now()
	if w.Now != nil {
		now = w.Now()
	}
	batch := w.Batch
	if batch <= 0 {
		batch = LotsBatch
	}
	activate := func(ctx context.Context, tx bun.Tx, now time.Time, batch int) (int, error) {
		rows, err := activateDueTx(ctx, tx, w.Events, now, batch)
		if err != nil || w.Activated == nil {
			return len(rows), err
		}
		byPartner := map[uuid.UUID][]uuid.UUID{}
		for _, r := range rows {
			if ids := byPartner[r.PartnerID]; !slices.Contains(ids, r.UserID) {
				byPartner[r.PartnerID] = append(ids, r.UserID)
			}
		}
		for p, users := range byPartner {
			if err := w.Activated(ctx, tx, p, users); err != nil {
				return 0, fmt.Errorf("after activating lots: %w", err)
			}
		}
		return len(rows), nil
	}
	if activated, err = w.drain(ctx, now, batch, activate); err != nil {
		return activated, 0, err
	}
	expired, err = w.drain(ctx, now, batch, func(ctx context.Context, tx bun.Tx, now time.Time, batch int) (int, error) {
		return ExpireDueTx(ctx, tx, w.Events, now, batch)
	})
	return activated, expired, err
}

// drain runs step in its own transactions until a batch finds nothing (a
// batch whose lots a burn drained meanwhile counts fewer than it chose,
// so only 0 means done).
func (w *LotsWorker) drain(ctx context.Context, now time.Time, batch int,
	step func(context.Context, bun.Tx, time.Time, int) (int, error)) (int, error) {
	total := 0
	for {
		n := 0
		err := w.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			var err error
			n, err = step(ctx, tx, now, batch)
			return err
		})
		total += n
		if err != nil || n == 0 {
			return total, err
		}
	}
}

// Timeout: see jobs.MaintenanceTimeout.
func (w *LotsWorker) Timeout(*river.Job[LotsArgs]) time.Duration {
	return jobs.MaintenanceTimeout
}

// Periodic returns the periodic ledger jobs.
func Periodic() []*river.PeriodicJob {
	return []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(LotsInterval), func() (river.JobArgs, *river.InsertOpts) {
			return LotsArgs{}, nil
		}, &river.PeriodicJobOpts{ID: "ledger_lots", RunOnStart: true}),
		river.NewPeriodicJob(river.PeriodicInterval(LotWarningsInterval), func() (river.JobArgs, *river.InsertOpts) {
			return LotWarningsArgs{}, nil
		}, &river.PeriodicJobOpts{ID: "ledger_lot_warnings", RunOnStart: true}),
	}
}
