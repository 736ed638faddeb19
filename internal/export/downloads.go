package export

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// Download is one export downloaded from the portal: where the next one
// starts (NextCursor), so the portal can offer the changes since.
type Download struct {
	bun.BaseModel `bun:"table:export_downloads"`

	PartnerID  uuid.UUID  `bun:"partner_id,pk,type:uuid"`
	ID         int64      `bun:"id,pk,autoincrement"`
	AccountID  *uuid.UUID `bun:"account_id,type:uuid"`
	FromCursor *string    `bun:"from_cursor"`
	NextCursor string     `bun:"next_cursor"`
	HasMore    bool       `bun:"has_more"`
	Rows       int        `bun:"rows"`
	CreatedAt  time.Time  `bun:"created_at"`
}

// RecordDownload remembers a completed download (after its last row
// was sent: a download cut short is not a watermark).
func (s *Service) RecordDownload(ctx context.Context, db bun.IDB, d *Download) error {
	if _, err := db.NewInsert().Model(d).Exec(ctx); err != nil {
		return fmt.Errorf("record export download: %w", err)
	}
	return nil
}

// Downloads lists the partner's recent downloads, newest first.
func (s *Service) Downloads(ctx context.Context, db bun.IDB, partnerID uuid.UUID, limit int) ([]Download, error) {
	var out []Download
	err := db.NewSelect().Model(&out).Where("partner_id = ?", partnerID).OrderExpr("id DESC").Limit(int64(limit)).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("list export downloads: %w", err)
	}
	return out, nil
}
