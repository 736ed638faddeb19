package program

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/locale"
)

// SetDefaultLocale sets the partner's default content locale: the gift
// and ad translation shown to a user whose own locale has none, before the
// base text (package locale). nil or "" clears it. It returns the
// canonical tag stored.
func (s *Service) SetDefaultLocale(ctx context.Context, db bun.IDB, partnerID uuid.UUID, tag *string) (*string, error) {
	var v *string
	if tag != nil && *tag != "" {
		c, err := locale.Canonical("defaultLocale", *tag)
		if err != nil {
			return nil, err
		}
		v = &c
	}
	if s.PartnerChanged != nil {
		s.PartnerChanged()
	}
	if _, err := db.NewRaw("UPDATE partners SET default_locale = ?, updated_at = ? WHERE id = ?", v, s.now().UTC(), partnerID).Exec(ctx); err != nil {
		return nil, fmt.Errorf("set default locale: %w", err)
	}
	return v, nil
}
