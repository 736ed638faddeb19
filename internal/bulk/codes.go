package bulk

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/catalog"
)

// EnqueueCodesTx stores an upload of voucher codes for a pool gift as a
// codes job, processed in chunks like every bulk job (the portal shows its
// progress). The whole upload is checked first, and refused with the
// position of the first bad code, so a bad row changes nothing; codes
// repeated within the upload are stored as failed items (CONFLICT) at once,
// and codes already stored for the partner fail with CONFLICT when their
// chunk runs. The gift must exist and take its codes from a pool.
func (s *Service) EnqueueCodesTx(ctx context.Context, tx bun.Tx, partnerID uuid.UUID, sku string, codes []string) (*Job, error) {
	if len(codes) == 0 {
		return nil, apperr.Field(apperr.CodeMissingField, "codes", "send at least one code")
	}
	if len(codes) > catalog.MaxCodesPerUpload {
		return nil, apperr.Field(apperr.CodeInvalidField, "codes", "at most %d codes per upload; split the file", catalog.MaxCodesPerUpload)
	}
	for i, c := range codes {
		if err := catalog.ValidateCode("codes", c); err != nil {
			return nil, apperr.Field(apperr.CodeInvalidField, "codes", "the code at position %d is not valid: codes are 3-64 characters of letters, digits, '_', '.', '-', starting with a letter or digit", i+1)
		}
	}
	g, err := s.Catalog.GiftBySKU(ctx, tx, partnerID, sku)
	if err != nil {
		return nil, err
	}
	if g.CodeSource != catalog.SourcePool {
		return nil, apperr.New(apperr.CodeCodeSource, "gift %q takes its codes from %q, not from an uploaded pool", sku, g.CodeSource)
	}
	items := make([]Item, len(codes))
	seen := make(map[string]bool, len(codes))
	conflict := string(apperr.CodeConflict)
	for i, c := range codes {
		items[i] = Item{Position: i}
		if seen[c] {
			items[i].ErrorCode = &conflict
			continue
		}
		seen[c] = true
		items[i].Code = &codes[i]
	}
	return s.createJobTx(ctx, tx, partnerID, KindCodes, map[string]any{"sku": sku, "giftId": g.ID.String()}, items)
}

// processCodes stores a chunk's codes with catalog.UploadCodesTx (one
// statement whatever the count); a code already stored fails with
// CONFLICT. A gift retired or switched away from a pool since the upload
// fails the remaining items with that error's code.
func (s *Service) processCodes(ctx context.Context, tx bun.Tx, partnerID uuid.UUID, sku string, items []Item) error {
	var codes []string
	idx := make(map[string]int, len(items))
	for i, it := range items {
		if it.ErrorCode != nil || it.Code == nil {
			items[i].Status = "error"
			if items[i].ErrorCode == nil {
				c := string(apperr.CodeInvalidField)
				items[i].ErrorCode = &c
			}
			continue
		}
		idx[*it.Code] = i
		codes = append(codes, *it.Code)
	}
	if len(codes) == 0 {
		return nil
	}
	res, err := s.Catalog.UploadCodesTx(ctx, tx, partnerID, sku, codes)
	if e := apperr.As(err); e != nil {
		code := string(e.Code)
		for _, i := range idx {
			items[i].Status, items[i].ErrorCode = "error", &code
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("codes job: %w", err)
	}
	for _, i := range idx {
		items[i].Status = "ok"
	}
	conflict := string(apperr.CodeConflict)
	for _, d := range res.Duplicates {
		if i, ok := idx[d.Code]; ok {
			items[i].Status, items[i].ErrorCode = "error", &conflict
		}
	}
	return nil
}
