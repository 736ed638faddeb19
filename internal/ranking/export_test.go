package ranking

import (
	"context"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// MisguessForTest makes the partner's board guess that the lookup hash
// names user id (loading the board first), as a prefix shared by two users
// or a hash changed behind the board's back would.
func (s *Service) MisguessForTest(ctx context.Context, db bun.IDB, partnerID uuid.UUID, hash []byte, id uuid.UUID) error {
	b, err := s.board(ctx, db, partnerID)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.o.byHash[hashPrefix(hash)] = id
	return nil
}

// LastSyncReadForTest is how many changed rows the partner's board read
// the last time it was brought up to date.
func (s *Service) LastSyncReadForTest(partnerID uuid.UUID) int {
	s.mu.Lock()
	b := s.boards[partnerID]
	s.mu.Unlock()
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.read
}
