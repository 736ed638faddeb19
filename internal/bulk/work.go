package bulk

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/earning"
	"github.com/perkshq/perks/internal/event"
	"github.com/perkshq/perks/internal/user"
)

// Attempts of a bulk job are short so that a crashed one is rescued soon
// (see jobs.RescueStuckJobsAfter for River's rules): an attempt works
// chunks for AttemptBudget, then yields with river.JobSnooze(0), which
// makes the job available again at once without using up an attempt; any
// replica continues it from its committed progress. AttemptTimeout, the
// worker's River timeout, leaves the chunk in flight at the end of the
// budget room to commit; it must not exceed jobs.RescueStuckJobsAfter, or
// River would leave a crashed attempt alone until it passed.
const (
	AttemptBudget  = 15 * time.Second
	AttemptTimeout = 30 * time.Second
	// MaxRetryDelay caps the wait after a failed or rescued attempt, so a
	// crashed job is not left waiting for River's attempt⁴ backoff (81 s at
	// the third attempt) on top of the rescue.
	MaxRetryDelay = 10 * time.Second
)

// Worker processes bulk jobs.
type Worker struct {
	river.WorkerDefaults[WorkArgs]
	DB      *bun.DB
	Service *Service
	// Now measures the attempt budget (time.Now when nil).
	Now func() time.Time
}

// Timeout bounds one attempt; see AttemptTimeout.
func (w *Worker) Timeout(*river.Job[WorkArgs]) time.Duration { return AttemptTimeout }

// NextRetry retries a failed attempt (a database outage, or a crash found by
// River's rescuer) after attempt² seconds, at most MaxRetryDelay. Snoozes do
// not count as attempts, so a long job never runs out of them by yielding.
func (w *Worker) NextRetry(j *river.Job[WorkArgs]) time.Time {
	d := min(time.Duration(j.Attempt*j.Attempt)*time.Second, MaxRetryDelay)
	return w.now().Add(d)
}

func (w *Worker) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

// Work processes chunks until the job is complete or the attempt's budget
// is spent. Every chunk commits its effects with its items' results and the
// job's progress in one transaction, so whatever ends an attempt (budget,
// timeout, shutdown, crash) loses at most the chunk in flight, which the
// next attempt processes again; no item is processed twice, even if two
// attempts overlap, because each chunk locks the job row first and reads
// the pending items after the lock.
func (w *Worker) Work(ctx context.Context, j *river.Job[WorkArgs]) error {
	start := w.now()
	for {
		finished, err := w.Service.ProcessChunk(ctx, w.DB, j.Args.PartnerID, j.Args.JobID)
		if err != nil {
			if errors.Is(err, context.Canceled) && errors.Is(ctx.Err(), context.Canceled) {
				// Shutdown (StopAndCancel): continue elsewhere at once,
				// without spending an attempt.
				return river.JobSnooze(0)
			}
			return err
		}
		if finished {
			return nil
		}
		if w.now().Sub(start) >= AttemptBudget {
			return river.JobSnooze(0)
		}
	}
}

// ProcessChunk processes the next ChunkSize pending items of a job in one
// transaction, and completes the job when none is left.
func (s *Service) ProcessChunk(ctx context.Context, db *bun.DB, partnerID, jobID uuid.UUID) (bool, error) {
	finished := false
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		j := new(Job)
		if err := tx.NewSelect().Model(j).Where("partner_id = ? AND id = ?", partnerID, jobID).For("UPDATE").Scan(ctx); err != nil {
			return fmt.Errorf("lock job %s: %w", jobID, err)
		}
		if j.State == StateCompleted || j.State == StateFailed {
			finished = true
			return nil
		}
		now := s.Now().UTC()
		if j.State == StatePending {
			j.State, j.StartedAt = StateRunning, &now
		}
		var items []Item
		q := tx.NewSelect().Model(&items).Where("item.partner_id = ? AND item.job_id = ? AND item.status = 'pending'", partnerID, jobID).
			OrderExpr("item.position").Limit(ChunkSize)
		if j.Kind == KindMultistore {
			// The items' users in the same statement, not one more
			// (earning.ManyItem.Resolved).
			q = q.ColumnExpr("item.*").ColumnExpr("u.id AS joined_user_id, u.anonymised_at AS joined_anonymised_at").
				Join("LEFT JOIN users AS u ON u.partner_id = item.partner_id AND u.external_id_hash = item.user_hash")
		}
		err := q.Scan(ctx)
		if err != nil {
			return fmt.Errorf("load job items: %w", err)
		}
		if len(items) == 0 {
			j.State, j.FinishedAt, finished = StateCompleted, &now, true
			if _, err := tx.NewUpdate().Model(j).Column("state", "started_at", "finished_at").WherePK().Exec(ctx); err != nil {
				return fmt.Errorf("complete job: %w", err)
			}
			_, err := s.Events.EmitTx(ctx, tx, partnerID, event.BulkJobCompleted, nil, map[string]any{
				"jobId": j.ID, "kind": j.Kind, "total": j.Total, "done": j.Done, "failed": j.Failed,
			})
			return err
		}
		switch j.Kind {
		case KindMultistore:
			err = s.processEarns(ctx, tx, partnerID, items)
		case KindMultidelete:
			mode, _ := j.Params["mode"].(string)
			err = s.processDeletes(ctx, tx, partnerID, items, mode)
		case KindCodes:
			sku, _ := j.Params["sku"].(string)
			err = s.processCodes(ctx, tx, partnerID, sku, items)
		default:
			err = fmt.Errorf("unknown job kind %q", j.Kind)
		}
		if err != nil {
			return err
		}
		if err := s.saveItems(ctx, tx, items); err != nil {
			return err
		}
		for _, it := range items {
			if it.Status == "ok" {
				j.Done++
			} else {
				j.Failed++
			}
		}
		_, err = tx.NewUpdate().Model(j).Column("state", "started_at", "done", "failed").WherePK().Exec(ctx)
		return err
	})
	return finished, err
}

func (s *Service) processEarns(ctx context.Context, tx bun.Tx, partnerID uuid.UUID, items []Item) error {
	p, err := s.Partners.ByID(ctx, tx, partnerID)
	if err != nil {
		return err
	}
	many := make([]earning.ManyItem, len(items))
	for i, it := range items {
		m := earning.ManyItem{EarnParams: earning.EarnParams{Points: it.Points, Amount: it.Amount, Reference: it.Reference,
			PendingUntil: it.PendingUntil, Hold: it.Held}, UserHash: it.UserHash}
		if it.ActionCode != nil {
			m.Code = *it.ActionCode
		}
		if it.OccurredAt != nil {
			m.OccurredAt = *it.OccurredAt
		}
		if it.ErrorCode != nil {
			m.Err = apperr.New(apperr.Code(*it.ErrorCode), "invalid item")
		}
		m.Resolved = true
		if it.JoinedUserID != nil {
			m.User = &user.User{PartnerID: partnerID, ID: *it.JoinedUserID, ExternalIDHash: it.UserHash, AnonymisedAt: it.JoinedAnonymisedAt}
		}
		many[i] = m
	}
	res, err := s.Earning.EarnManyTx(ctx, tx, p, many)
	if err != nil {
		return err
	}
	for i := range items {
		if r := res[i]; r.Err != nil {
			code := string(r.Err.Code)
			items[i].Status, items[i].ErrorCode = "error", &code
		} else {
			items[i].Status, items[i].EntryID = "ok", r.EntryID
		}
	}
	return nil
}

func (s *Service) processDeletes(ctx context.Context, tx bun.Tx, partnerID uuid.UUID, items []Item, mode string) error {
	hashes := make([][]byte, len(items))
	for i, it := range items {
		hashes[i] = it.UserHash
	}
	users, err := s.Users.ByHashes(ctx, tx, partnerID, hashes)
	if err != nil {
		return err
	}
	var erase []uuid.UUID
	seen := map[uuid.UUID]bool{}
	notFound := string(apperr.CodeUserNotFound)
	for i, it := range items {
		u := users[string(it.UserHash)]
		if u == nil || seen[u.ID] {
			// Unknown, or already handled earlier in this job.
			if u == nil {
				items[i].Status, items[i].ErrorCode = "error", &notFound
			} else {
				items[i].Status = "ok"
			}
			continue
		}
		seen[u.ID] = true
		items[i].Status = "ok"
		if mode == ModeErase {
			erase = append(erase, u.ID)
			continue
		}
		full, err := s.Users.ByID(ctx, tx, partnerID, u.ID)
		if err != nil {
			return err
		}
		if err := s.Users.AnonymiseUserTx(ctx, tx, full); err != nil {
			return err
		}
	}
	return s.Users.EraseTx(ctx, tx, partnerID, erase)
}

// saveItemsSQL records a chunk's results from column arrays.
const saveItemsSQL = `UPDATE bulk_job_items i SET status = t.status, entry_id = t.entry, error_code = t.code, user_hash = NULL, code = NULL
	FROM unnest($1::int[], $2::text[], $3::bigint[], $4::text[]) AS t(pos, status, entry, code)
	WHERE i.partner_id = $5 AND i.job_id = $6 AND i.position = t.pos`

// saveItems records results and forgets the user hashes, in one prepared
// statement with its arrays sent in binary.
func (s *Service) saveItems(ctx context.Context, tx bun.Tx, items []Item) error {
	pos := make([]int32, len(items))
	status := make([]string, len(items))
	entry := make([]*int64, len(items))
	code := make([]*string, len(items))
	for i, it := range items {
		pos[i], status[i], entry[i], code[i] = int32(it.Position), it.Status, it.EntryID, it.ErrorCode
	}
	_, err := database.Exec(ctx, tx, saveItemsSQL, pos, status, entry, code, items[0].PartnerID, items[0].JobID)
	if err != nil {
		return fmt.Errorf("save %d item results: %w", len(items), err)
	}
	return nil
}
