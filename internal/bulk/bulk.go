// Package bulk runs partner work over many users: multistore (one or many
// actions for many users) and multidelete (anonymise or erase many users).
//
// Small multistores run in the request. Large ones, and every multidelete,
// become a bulk job: its items are stored in one set-based insert, a River
// job (inserted in the same transaction) processes them in chunks, and each
// chunk commits its effects together with its items' results and the job's
// progress. A crash loses at most the uncommitted chunk, which the retried
// job processes again: no item is processed twice and none is lost. Items
// keep the keyed hash of the external user id, never the id itself, and the
// hash is cleared once the item is processed.
package bulk

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/catalog"
	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/earning"
	"github.com/perkshq/perks/internal/event"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/user"
)

// Limits.
const (
	MaxMultistoreItems  = 10_000
	MaxMultideleteUsers = 100_000
	// SyncThreshold: larger multistores always run as a job.
	SyncThreshold = 2_000
	// ChunkSize items are processed per transaction. Each chunk pays about
	// fifteen statements whatever its size (job lock, item load, partner,
	// users, rules, policy, savepoints, progress, commit), a tenth of a
	// 500-item chunk's time; 1,000 halves that share while a chunk's locks
	// on its users' balances stay held for a fraction of a second.
	ChunkSize = 1000
)

// Job kinds and states.
const (
	KindMultistore  = "multistore"
	KindMultidelete = "multidelete"
	// KindCodes adds uploaded voucher codes to a pool gift (the portal's
	// CSV upload, or POST /integrations/gifts/{sku}/codes?async=true).
	KindCodes = "codes"

	StatePending   = "pending"
	StateRunning   = "running"
	StateCompleted = "completed"
	StateFailed    = "failed"
)

// Delete modes.
const (
	ModeAnonymise = "anonymise"
	ModeErase     = "erase"
)

// Job is a bulk job.
type Job struct {
	bun.BaseModel `bun:"table:bulk_jobs"`

	PartnerID  uuid.UUID      `bun:"partner_id,pk,type:uuid"`
	ID         uuid.UUID      `bun:"id,pk,type:uuid"`
	Kind       string         `bun:"kind"`
	State      string         `bun:"state"`
	Params     map[string]any `bun:"params,type:jsonb"`
	Total      int            `bun:"total"`
	Done       int            `bun:"done"`
	Failed     int            `bun:"failed"`
	CreatedAt  time.Time      `bun:"created_at"`
	StartedAt  *time.Time     `bun:"started_at"`
	FinishedAt *time.Time     `bun:"finished_at"`
}

// Item is one unit of a job.
type Item struct {
	bun.BaseModel `bun:"table:bulk_job_items"`

	PartnerID  uuid.UUID  `bun:"partner_id,pk,type:uuid"`
	JobID      uuid.UUID  `bun:"job_id,pk,type:uuid"`
	Position   int        `bun:"position,pk"`
	UserHash   []byte     `bun:"user_hash"`
	ActionCode *string    `bun:"action_code"`
	Points     *int64     `bun:"points"`
	Amount     *int64     `bun:"amount"`
	Reference  *string    `bun:"reference"`
	OccurredAt *time.Time `bun:"occurred_at"`
	Status     string     `bun:"status"`
	EntryID    *int64     `bun:"entry_id"`
	ErrorCode  *string    `bun:"error_code"`

	// PendingUntil and Held: the item's pendingUntil / pending: true.
	PendingUntil *time.Time `bun:"pending_until"`
	Held         bool       `bun:"held"`

	// Code is a codes job's voucher code, cleared once processed.
	Code *string `bun:"code"`

	// The user a multistore item's hash names, joined when its chunk is
	// loaded (not columns of the table): nil when no user has the hash.
	JoinedUserID       *uuid.UUID `bun:"joined_user_id,scanonly"`
	JoinedAnonymisedAt *time.Time `bun:"joined_anonymised_at,scanonly"`
}

// Inserter inserts River jobs inside a bun transaction.
type Inserter interface {
	InsertTx(ctx context.Context, tx bun.Tx, args river.JobArgs, opts *river.InsertOpts) error
}

// Service runs bulk work.
type Service struct {
	Users    *user.Service
	Earning  *earning.Service
	Partners *partner.Service
	Events   *event.Recorder
	Jobs     Inserter
	Now      func() time.Time
	// Catalog stores the codes of KindCodes jobs.
	Catalog *catalog.Service
}

// MultistoreTx earns the items now, in tx (earning.EarnManyTx resolves
// their users and applies the rules).
func (s *Service) MultistoreTx(ctx context.Context, tx bun.Tx, p *partner.Partner, in []earning.ManyItem) ([]earning.ManyResult, error) {
	return s.Earning.EarnManyTx(ctx, tx, p, in)
}

// WorkArgs processes a bulk job. It carries ids only.
type WorkArgs struct {
	PartnerID uuid.UUID `json:"partnerId"`
	JobID     uuid.UUID `json:"jobId"`
}

// Kind implements river.JobArgs.
func (WorkArgs) Kind() string { return "bulk_job" }

// InsertOpts: retried generously (each attempt resumes where the last one
// stopped), one per bulk job.
func (WorkArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 20, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

func (s *Service) createJobTx(ctx context.Context, tx bun.Tx, partnerID uuid.UUID, kind string, params map[string]any, items []Item) (*Job, error) {
	j := &Job{PartnerID: partnerID, ID: uuid.New(), Kind: kind, State: StatePending, Params: params, Total: len(items), CreatedAt: s.Now().UTC()}
	if _, err := tx.NewInsert().Model(j).ExcludeColumn("started_at", "finished_at").Exec(ctx); err != nil {
		return nil, fmt.Errorf("create %s job: %w", kind, err)
	}
	if err := storeItems(ctx, tx, partnerID, j.ID, items); err != nil {
		return nil, err
	}
	if err := s.Jobs.InsertTx(ctx, tx, WorkArgs{PartnerID: partnerID, JobID: j.ID}, nil); err != nil {
		return nil, err
	}
	return j, nil
}

// storeItemsSQL stores a job's items from column arrays.
const storeItemsSQL = `INSERT INTO bulk_job_items (partner_id, job_id, position, user_hash, action_code, points, amount, reference,
		occurred_at, status, error_code, pending_until, held, code)
	SELECT $1, $2, t.pos, t.hash, t.action, t.points, t.amount, t.ref, t.at, 'pending', t.code, t.until, t.held, t.vcode
	FROM unnest($3::int[], $4::bytea[], $5::text[], $6::bigint[], $7::bigint[], $8::text[], $9::timestamptz[], $10::text[], $11::timestamptz[], $12::boolean[], $13::text[])
		AS t(pos, hash, action, points, amount, ref, at, code, until, held, vcode)`

// storeItems stores a job's items in one prepared statement over column
// arrays sent in binary: bun's multi-row VALUES spent more time formatting
// and parsing 10,000 rows than PostgreSQL spent inserting them, and its
// inlined array literals (10,000 hex-encoded hashes) still cost a
// formatting pass in Go and a parse in PostgreSQL.
func storeItems(ctx context.Context, tx bun.Tx, partnerID, jobID uuid.UUID, items []Item) error {
	n := len(items)
	var (
		pos     = make([]int32, n)
		hashes  = make([][]byte, n)
		actions = make([]*string, n)
		points  = make([]*int64, n)
		amounts = make([]*int64, n)
		refs    = make([]*string, n)
		at      = make([]*time.Time, n)
		codes   = make([]*string, n)
		until   = make([]*time.Time, n)
		held    = make([]bool, n)
		vcodes  = make([]*string, n)
	)
	for i := range items {
		it := &items[i]
		it.PartnerID, it.JobID, it.Status = partnerID, jobID, "pending"
		pos[i], hashes[i], actions[i], points[i], amounts[i] = int32(it.Position), it.UserHash, it.ActionCode, it.Points, it.Amount
		refs[i], at[i], codes[i], until[i], held[i] = it.Reference, it.OccurredAt, it.ErrorCode, it.PendingUntil, it.Held
		vcodes[i] = it.Code
	}
	_, err := database.Exec(ctx, tx, storeItemsSQL, partnerID, jobID, pos, hashes, actions, points, amounts, refs, at, codes, until, held, vcodes)
	if err != nil {
		return fmt.Errorf("store %d job items: %w", n, err)
	}
	return nil
}

// EnqueueMultistoreTx stores a multistore as a job: each item's error code
// when it failed validation, otherwise its request with the keyed hash of
// its external user id in place of the id.
func (s *Service) EnqueueMultistoreTx(ctx context.Context, tx bun.Tx, partnerID uuid.UUID, in []earning.ManyItem) (*Job, error) {
	items := make([]Item, len(in))
	for i, it := range in {
		items[i] = Item{Position: i}
		if it.Err != nil {
			code := string(apperr.CodeOf(it.Err))
			items[i].ErrorCode = &code
			continue
		}
		items[i].UserHash = s.Users.ExternalIDHash(partnerID, it.ExternalUserID)
		action := it.Code
		items[i].ActionCode, items[i].Points, items[i].Reference = &action, it.Points, it.Reference
		items[i].Amount = it.Amount
		if !it.OccurredAt.IsZero() {
			at := it.OccurredAt
			items[i].OccurredAt = &at
		}
		items[i].PendingUntil, items[i].Held = it.PendingUntil, it.Hold
	}
	return s.createJobTx(ctx, tx, partnerID, KindMultistore, map[string]any{}, items)
}

// EnqueueMultideleteTx stores a multidelete as a job.
func (s *Service) EnqueueMultideleteTx(ctx context.Context, tx bun.Tx, partnerID uuid.UUID, externalIDs []string, mode string) (*Job, error) {
	items := make([]Item, len(externalIDs))
	for i, ext := range externalIDs {
		items[i] = Item{Position: i, UserHash: s.Users.ExternalIDHash(partnerID, ext)}
	}
	return s.createJobTx(ctx, tx, partnerID, KindMultidelete, map[string]any{"mode": mode}, items)
}

// Get loads a job of the partner.
func (s *Service) Get(ctx context.Context, db bun.IDB, partnerID, id uuid.UUID) (*Job, error) {
	j := new(Job)
	err := db.NewSelect().Model(j).Where("partner_id = ? AND id = ?", partnerID, id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.New(apperr.CodeNotFound, "job not found")
	}
	if err != nil {
		return nil, fmt.Errorf("load job %s: %w", id, err)
	}
	return j, nil
}

// Errors returns failed items of a job after a position, in order.
func (s *Service) Errors(ctx context.Context, db bun.IDB, partnerID, jobID uuid.UUID, after, limit int) ([]Item, error) {
	var items []Item
	err := db.NewSelect().Model(&items).Column("position", "error_code").
		Where("partner_id = ? AND job_id = ? AND status = 'error' AND position > ?", partnerID, jobID, after).
		OrderExpr("position").Limit(int64(limit)).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("job errors: %w", err)
	}
	return items, nil
}

// Results returns items of a job after a position, in order.
func (s *Service) Results(ctx context.Context, db bun.IDB, partnerID, jobID uuid.UUID, after, limit int) ([]Item, error) {
	var items []Item
	err := db.NewSelect().Model(&items).Column("position", "status", "entry_id", "error_code").
		Where("partner_id = ? AND job_id = ? AND position > ?", partnerID, jobID, after).
		OrderExpr("position").Limit(int64(limit)).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("job results: %w", err)
	}
	return items, nil
}
