package bulk

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// List returns the partner's most recent jobs, newest first (at most
// limit; the operator's `perks jobs list`).
func (s *Service) List(ctx context.Context, db bun.IDB, partnerID uuid.UUID, limit int) ([]Job, error) {
	jobs := []Job{}
	err := db.NewSelect().Model(&jobs).Where("partner_id = ?", partnerID).
		OrderExpr("created_at DESC, id").Limit(int64(limit)).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	return jobs, nil
}

// Finished reports whether the job has stopped (completed or failed).
func (j *Job) Finished() bool { return j.State == StateCompleted || j.State == StateFailed }
