package merchant

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
)

// Listed is a merchant as the platform console lists it: with the partner
// it serves. A merchant serving several partners has one row per partner,
// all under the same id (AttachTx in served.go).
type Listed struct {
	Merchant
	PartnerSlug string `bun:"partner_slug"`
	Admins      int    `bun:"admins"`
}

// ListAll lists every partner's merchants, by code then partner, with the
// number of merchant-portal admins each has. Only the platform console
// reads across partners.
func (s *Service) ListAll(ctx context.Context, db bun.IDB) ([]Listed, error) {
	var out []Listed
	err := db.NewRaw(`SELECT m.*, p.slug AS partner_slug,
		(SELECT count(*) FROM accounts a WHERE a.realm = 'merchant' AND a.realm_id = m.id AND a.role = 'admin' AND a.status <> 'removed') AS admins
		FROM merchants m JOIN partners p ON p.id = m.partner_id ORDER BY m.code, p.slug`).Scan(ctx, &out)
	if err != nil {
		return nil, fmt.Errorf("list all merchants: %w", err)
	}
	return out, nil
}

// ByID loads a merchant by id alone (the console's forms carry it): its
// row at the first partner it served.
func (s *Service) ByID(ctx context.Context, db bun.IDB, id uuid.UUID) (*Merchant, error) {
	m := new(Merchant)
	err := db.NewSelect().Model(m).Where("id = ?", id).OrderExpr("created_at").Limit(1).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.New(apperr.CodeNotFound, "merchant not found")
	}
	if err != nil {
		return nil, fmt.Errorf("load merchant: %w", err)
	}
	return m, nil
}
