// Package ranking is the leaderboard: users ranked by lifetime points.
//
// Ranks come from the leaderboard materialized view, refreshed concurrently
// by a periodic River job, so that a user's rank and their neighbours are two
// index lookups whatever the number of users (counting the users above
// someone live would scan up to the whole partner per request). The price is
// freshness: ranks are as of the last refresh (RefreshedAt says when), and a
// user who just earned their first points appears after the next refresh.
//
// Ties share a rank (competition ranking: 1, 2, 2, 4). Within a tie, earlier
// members come first, then by user id, so lists are deterministic. Users with
// no lifetime points are not ranked. Only display names are shown.
package ranking

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
)

// Entry is one line of the leaderboard.
type Entry struct {
	UserID      uuid.UUID `bun:"user_id,type:uuid"`
	ExternalID  *string   `bun:"external_id"`
	DisplayName *string   `bun:"display_name"`
	Score       int64     `bun:"score"`
	Rank        int64     `bun:"rank"`
	Position    int64     `bun:"position"`
	RefreshedAt time.Time `bun:"refreshed_at"`
}

// Around is a user's standing and their neighbours.
type Around struct {
	// Me is nil when the user is not ranked (yet).
	Me          *Entry
	Above       []Entry
	Below       []Entry
	RefreshedAt *time.Time
}

// MaxAround bounds n in Around.
const MaxAround = 50

// Service reads and refreshes the leaderboard.
type Service struct{}

const selectEntries = `SELECT l.user_id, u.external_id, u.display_name, l.score, l.rank, l.position, l.refreshed_at
	FROM leaderboard l JOIN users u ON u.partner_id = l.partner_id AND u.id = l.user_id`

// Top returns the first n entries.
func (s *Service) Top(ctx context.Context, db bun.IDB, partnerID uuid.UUID, n int) ([]Entry, error) {
	var out []Entry
	err := db.NewRaw(selectEntries+` WHERE l.partner_id = ? AND l.position <= ? ORDER BY l.position`, partnerID, n).Scan(ctx, &out)
	if err != nil {
		return nil, fmt.Errorf("leaderboard top: %w", err)
	}
	return out, nil
}

// Around returns the user's entry and up to n entries above and below.
func (s *Service) Around(ctx context.Context, db bun.IDB, partnerID, userID uuid.UUID, n int) (*Around, error) {
	if n < 0 || n > MaxAround {
		return nil, apperr.Field(apperr.CodeInvalidField, "n", "n must be between 0 and %d", MaxAround)
	}
	me := new(Entry)
	err := db.NewRaw(selectEntries+` WHERE l.partner_id = ? AND l.user_id = ?`, partnerID, userID).Scan(ctx, me)
	if errors.Is(err, sql.ErrNoRows) {
		return &Around{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("leaderboard entry: %w", err)
	}
	var near []Entry
	err = db.NewRaw(selectEntries+` WHERE l.partner_id = ? AND l.position BETWEEN ? AND ? AND l.position <> ? ORDER BY l.position`,
		partnerID, me.Position-int64(n), me.Position+int64(n), me.Position).Scan(ctx, &near)
	if err != nil {
		return nil, fmt.Errorf("leaderboard neighbours: %w", err)
	}
	out := &Around{Me: me, RefreshedAt: &me.RefreshedAt}
	for _, e := range near {
		if e.Position < me.Position {
			out.Above = append(out.Above, e)
		} else {
			out.Below = append(out.Below, e)
		}
	}
	return out, nil
}

// Refresh recomputes the leaderboard without blocking readers.
func (s *Service) Refresh(ctx context.Context, db bun.IDB) error {
	if _, err := db.ExecContext(ctx, "REFRESH MATERIALIZED VIEW CONCURRENTLY leaderboard"); err != nil {
		return fmt.Errorf("refresh leaderboard: %w", err)
	}
	return nil
}
