package graph

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/vikstrous/dataloadgen"

	"github.com/perkshq/perks/graph/model"
	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/ledger"
	"github.com/perkshq/perks/internal/voucher"
)

func voucherStatus(s voucher.Status) model.VoucherStatus {
	switch s {
	case voucher.StatusRedeemed:
		return model.VoucherStatusRedeemed
	case voucher.StatusExpired:
		return model.VoucherStatusExpired
	case voucher.StatusCancelled:
		return model.VoucherStatusCancelled
	}
	return model.VoucherStatusClaimed
}

func domainVoucherStatus(s *model.VoucherStatus) voucher.Status {
	if s == nil {
		return ""
	}
	switch *s {
	case model.VoucherStatusRedeemed:
		return voucher.StatusRedeemed
	case model.VoucherStatusExpired:
		return voucher.StatusExpired
	case model.VoucherStatusCancelled:
		return voucher.StatusCancelled
	}
	return voucher.StatusClaimed
}

// voucherOf resolves the voucher a ledger entry is about, through the
// operation's (user-scoped) voucher loader.
func voucherOf(ctx context.Context, l *Loaders, e *ledger.Entry) (*voucher.Voucher, error) {
	if e.SourceType == nil || *e.SourceType != voucher.SourceType || e.SourceID == nil {
		return nil, nil
	}
	id, err := uuid.Parse(*e.SourceID)
	if err != nil {
		return nil, nil
	}
	v, err := l.Vouchers.Load(ctx, id)
	if errors.Is(err, dataloadgen.ErrNotFound) {
		return nil, nil
	}
	return v, err
}

// inTx runs fn in a transaction and returns its value.
func inTx[T any](ctx context.Context, r *Resolver, fn func(ctx context.Context, tx bun.Tx) (T, error)) (T, error) {
	var out T
	err := r.DB.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		out, err = fn(ctx, tx)
		return err
	})
	return out, err
}

// parseID reads an ID argument that must be a UUID.
func parseID(field, s string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, apperr.Field(apperr.CodeInvalidField, field, "%s is not a valid id", field)
	}
	return id, nil
}
