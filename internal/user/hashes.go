package user

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// ByHashes finds many users by the keyed hash of their external id
// (ExternalIDHash) in one query, for work that keeps only the hash (bulk
// job items). The map is keyed by string(hash); a hash that names no user
// is absent. Only the id, the hash and anonymised_at are loaded: enough to
// refuse an anonymised user, not to show one.
func (s *Service) ByHashes(ctx context.Context, db bun.IDB, partnerID uuid.UUID, hashes [][]byte) (map[string]*User, error) {
	if len(hashes) == 0 {
		return map[string]*User{}, nil
	}
	var users []User
	err := db.NewSelect().Model(&users).Column("partner_id", "id", "external_id_hash", "anonymised_at").
		Where("partner_id = ? AND external_id_hash = ANY(?)", partnerID, pgdialect.Array(hashes)).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("resolve users: %w", err)
	}
	out := make(map[string]*User, len(users))
	for i := range users {
		out[string(users[i].ExternalIDHash)] = &users[i]
	}
	return out, nil
}
