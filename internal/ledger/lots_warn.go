package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/event"
	"github.com/perkshq/perks/internal/jobs"
	"github.com/perkshq/perks/internal/program"
)

// LotWarningsInterval is how often expiring lots are warned: a warning goes
// out at most about this long after its time, which for a warning counted
// in days is immaterial, and an idle run reads only an index.
const LotWarningsInterval = 15 * time.Minute

// WarnDueTx sends the points.expiring warning of up to batch lots whose
// warning time has come: spendable lots with points left, expires_at after
// now and no later than now + the partner's expiry_warning_days (program
// policy; program.Default's for a partner without one; 0: the partner gets
// no warnings), not warned before. Each gets warned_at = now and one event
// (userId, lotId, the points left, expiresAt), in tx, through ev in one
// statement for the batch.
//
// Once per lot ever: warned_at is set in the transaction of the event, and
// a lot with warned_at leaves the scan (a rolled-back batch warns again
// next time, a committed one never). A lot drained by burns, or past its
// expiry (expired, or about to be by the lots job), before its warning time
// gets none; a lot earned closer to its expiry than the warning days is
// warned at the next run.
//
// The lots are locked with SKIP LOCKED and only their own rows: a burn
// holding one of them (it locks its balance row, then its lots in FIFO
// order) is never waited for, so the two never deadlock; the skipped lot is
// warned by a later batch or run. It returns how many lots it warned; 0
// means nothing is due (or everything due is locked right now).
func WarnDueTx(ctx context.Context, tx bun.Tx, ev *event.Recorder, now time.Time, batch int) (int, error) {
	now = now.UTC()
	defDays := program.Default(uuid.Nil).ExpiryWarningDays
	var warned []struct {
		PartnerID uuid.UUID `bun:"partner_id"`
		ID        int64     `bun:"id"`
		UserID    uuid.UUID `bun:"user_id"`
		Remaining int64     `bun:"remaining"`
		ExpiresAt time.Time `bun:"expires_at"`
	}
	// Per partner (a lateral scan of point_lots_warning_idx with the
	// partner's own horizon), so one partner's long warning period never
	// makes the job read another's lots early.
	err := tx.NewRaw(`WITH due AS (
		SELECT l.partner_id, l.id
		FROM partners pa
		LEFT JOIN program_policies pp ON pp.partner_id = pa.id
		CROSS JOIN LATERAL (
			SELECT l.partner_id, l.id FROM point_lots l
			WHERE l.partner_id = pa.id AND l.open AND NOT l.pending AND l.expires_at IS NOT NULL AND l.warned_at IS NULL
			  AND l.expires_at > ?0 AND l.expires_at <= ?0::timestamptz + make_interval(days => coalesce(pp.expiry_warning_days, ?1))
			ORDER BY l.expires_at LIMIT ?2
		) l
		WHERE coalesce(pp.expiry_warning_days, ?1) > 0
		LIMIT ?2
	), locked AS (
		SELECT l.partner_id, l.id FROM point_lots l JOIN due ON l.partner_id = due.partner_id AND l.id = due.id
		WHERE l.open AND NOT l.pending AND l.warned_at IS NULL AND l.expires_at > ?0
		FOR UPDATE OF l SKIP LOCKED
	)
	UPDATE point_lots l SET warned_at = ?0 FROM locked
	WHERE l.partner_id = locked.partner_id AND l.id = locked.id
	RETURNING l.partner_id, l.id, l.user_id, l.remaining, l.expires_at`, now, defDays, batch).Scan(ctx, &warned)
	if err != nil {
		return 0, fmt.Errorf("warn expiring lots: %w", err)
	}
	events := make([]*event.Event, len(warned))
	for i, w := range warned {
		data, err := json.Marshal(map[string]any{"userId": w.UserID, "lotId": w.ID, "points": w.Remaining, "expiresAt": w.ExpiresAt.UTC()})
		if err != nil {
			return 0, fmt.Errorf("marshal points.expiring: %w", err)
		}
		uid := w.UserID
		events[i] = &event.Event{PartnerID: w.PartnerID, ID: uuid.New(), Type: event.PointsExpiring, UserID: &uid, Data: data, CreatedAt: now}
	}
	if err := ev.RecordTx(ctx, tx, events...); err != nil {
		return 0, fmt.Errorf("record points.expiring: %w", err)
	}
	return len(warned), nil
}

// LotWarningsArgs sends the due expiry warnings.
type LotWarningsArgs struct{}

// Kind implements river.JobArgs.
func (LotWarningsArgs) Kind() string { return "ledger_lot_warnings" }

// InsertOpts keeps one pending run at a time across replicas.
func (LotWarningsArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueMaintenance, MaxAttempts: 5, UniqueOpts: river.UniqueOpts{ByPeriod: LotWarningsInterval}}
}

// LotWarningsWorker works LotWarningsArgs: WarnDueTx in batches of Batch
// (LotsBatch when zero), each batch its own transaction, until a batch
// warns nothing. Resumable like LotsWorker: a crash loses the batch in
// flight, whose lots stay unwarned and are warned by the next run. The
// clock is read once per run.
type LotWarningsWorker struct {
	river.WorkerDefaults[LotWarningsArgs]
	DB     bun.IDB
	Now    func() time.Time // nil: the wall clock
	Batch  int
	Events *event.Recorder // nil: events are stored only
}

// Work implements river.Worker.
func (w *LotWarningsWorker) Work(ctx context.Context, _ *river.Job[LotWarningsArgs]) error {
	_, err := w.Run(ctx)
	return err
}

// Run does one full pass and says how many lots it warned.
func (w *LotWarningsWorker) Run(ctx context.Context) (int, error) {
	now := time.Now()
	if w.Now != nil {
		now = w.Now()
	}
	batch := w.Batch
	if batch <= 0 {
		batch = LotsBatch
	}
	ev := w.Events
	if ev == nil {
		ev = event.NewRecorder()
	}
	total := 0
	for {
		n := 0
		err := w.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			var err error
			n, err = WarnDueTx(ctx, tx, ev, now, batch)
			return err
		})
		total += n
		if err != nil || n == 0 {
			return total, err
		}
	}
}

// Timeout: see jobs.MaintenanceTimeout.
func (w *LotWarningsWorker) Timeout(*river.Job[LotWarningsArgs]) time.Duration {
	return jobs.MaintenanceTimeout
}
